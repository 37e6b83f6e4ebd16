"""Card samples → usage records (pure: no clock, no I/O).

Windows. Time is cut into windows ``[start, start + interval)`` whose starts are multiples of the
interval since the Unix epoch (UTC), so every agent, restart or resend cuts the same windows. A
sample taken at instant ``t`` is evidence about the window that *contains* ``t``:
``[floor(t / interval) * interval, … + interval)``. The daemon samples each window shortly before
it ends; ``--once`` samples the window it runs in.

Event ids. ``f"{card_uuid}:{window_start}"`` with the window start in UTC ISO 8601, e.g.
``GPU-5f0c…:2026-11-01T08:15:00+00:00`` (66 characters for an NVML UUID). The same card and
window always give the same id, so a resend is a duplicate at the server, never a second record.

Records have the shape of ``POST /api/v1/usage/`` (docs/usage-api.md#request)::

    {"event_id": "GPU-…:2026-11-01T08:15:00+00:00", "card": "GPU-…",
     "start": "2026-11-01T08:15:00+00:00", "end": "2026-11-01T08:16:00+00:00",
     "telemetry": {"utilization_percent": 87, "memory_used_bytes": 42949672960,
                   "energy_mj": 123456789}}

Telemetry holds what NVML could read at the sample (keys it could not read are left out):
utilisation is NVML's GPU utilisation %, memory is bytes in use, and ``energy_mj`` is the card's
*cumulative* energy counter (millijoules since the driver loaded), so the energy of a stretch of
time is the difference between two records of the card.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from apps.metering.agent.nvml import CardSample

MODE_BUSY = "busy"
MODE_ALWAYS = "always"
MODES = (MODE_BUSY, MODE_ALWAYS)

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_SECOND = timedelta(seconds=1)


def window_containing(at: datetime, interval: int) -> tuple[datetime, datetime]:
    """The aligned window ``[start, end)`` (UTC) that contains the instant ``at``."""
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError("the clock must return timezone-aware datetimes")
    if interval < 1:
        raise ValueError("interval must be at least 1 second")
    seconds = (at - _EPOCH) // _SECOND  # exact integer floor, no float rounding
    start = _EPOCH + timedelta(seconds=seconds - seconds % interval)
    return start, start + timedelta(seconds=interval)


def isoformat(at: datetime) -> str:
    """``2026-11-01T08:15:00+00:00``: UTC, whole seconds, explicit offset."""
    return at.astimezone(UTC).replace(microsecond=0).isoformat()


def event_id(card_uuid: str, window_start: datetime) -> str:
    return f"{card_uuid}:{isoformat(window_start)}"


def is_busy(sample: CardSample, mode: str) -> bool:
    """``always``: every card counts (dedicated lease). ``busy``: compute processes present.

    A card whose processes NVML could not list is not busy: usage is a billing basis, so the
    agent reports only time it can show.
    """
    if mode == MODE_ALWAYS:
        return True
    if mode != MODE_BUSY:
        raise ValueError(f"unknown mode {mode!r}; expected one of {', '.join(MODES)}")
    return bool(sample.compute_processes)


def telemetry(sample: CardSample) -> dict[str, int]:
    values = {
        "utilization_percent": sample.utilization_percent,
        "memory_used_bytes": sample.memory_used_bytes,
        "energy_mj": sample.energy_mj,
    }
    return {key: value for key, value in values.items() if value is not None}


def usage_record(sample: CardSample, window_start: datetime, window_end: datetime) -> dict[str, Any]:
    return {
        "event_id": event_id(sample.uuid, window_start),
        "card": sample.uuid,
        "start": isoformat(window_start),
        "end": isoformat(window_end),
        "telemetry": telemetry(sample),
    }


def build_records(
    samples: Iterable[CardSample], *, at: datetime, interval: int, mode: str
) -> list[dict[str, Any]]:
    """Records for the window containing ``at``: one per busy card, in NVML index order."""
    start, end = window_containing(at, interval)
    return [usage_record(sample, start, end) for sample in samples if is_busy(sample, mode)]
