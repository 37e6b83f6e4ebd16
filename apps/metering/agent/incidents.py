"""Card health → hardware incidents with a start and an end (pure: no clock, no I/O;
docs/hardware-truth.md#sources-and-incidents).

Each read of the cards' health (``nvml.CardHealth``, once per cycle) is compared with the
incidents open so far:

- ``fell_off_bus``: open while NVML answers GPU_IS_LOST for the card; ends at the first read at
  which it answers again.
- ``xid`` (one incident per Xid code) and ``ecc_double_bit`` (an ECC event, or the volatile
  uncorrected ECC counter grew): open at the read that saw them; end at the first later read
  that saw none again on a card that answers (the card is healthy again).
- ``thermal_throttle`` and ``power_throttle``: open while the clock event reasons say so, but
  reported only once they have lasted ``throttle_seconds`` (default 300 s); a shorter spell is
  forgotten.

Every change is a record for ``POST /api/v1/agent/incidents/``::

    {"event_id": "GPU-…:xid-79:2026-11-01T08:15:00+00:00", "card": "GPU-…", "kind": "xid",
     "xid_code": 79, "detail": "Xid 79: GPU has fallen off the bus", "start": "2026-11-01T08:15:00+00:00", "end": null}

sent when the incident opens (``end`` null) and again when it ends (``end`` set); the event id
is the same, so the server ends the stored incident, and a resend changes nothing.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from apps.metering.agent.collector import isoformat
from apps.metering.agent.nvml import CardHealth

XID = "xid"
ECC_DOUBLE_BIT = "ecc_double_bit"
FELL_OFF_BUS = "fell_off_bus"
THERMAL_THROTTLE = "thermal_throttle"
POWER_THROTTLE = "power_throttle"
THROTTLES = (THERMAL_THROTTLE, POWER_THROTTLE)
DEFAULT_THROTTLE_SECONDS = 300

# What the common Xid codes mean (NVIDIA's Xid catalogue), for the incident's detail.
XID_MEANINGS = {
    13: "graphics engine exception",
    31: "GPU memory page fault",
    43: "GPU stopped processing",
    45: "preemptive cleanup",
    48: "double-bit ECC error",
    61: "internal micro-controller breakpoint",
    62: "internal micro-controller halt",
    63: "ECC page retirement or row remapping",
    64: "ECC page retirement or row remapper failure",
    74: "NVLink error",
    79: "GPU has fallen off the bus",
    92: "high single-bit ECC error rate",
    94: "contained ECC error",
    95: "uncontained ECC error",
    119: "GSP RPC timeout",
    120: "GSP error",
}

DETAILS = {
    FELL_OFF_BUS: "GPU is lost (NVML_ERROR_GPU_IS_LOST): fell off the bus",
    ECC_DOUBLE_BIT: "Double-bit (uncorrectable) ECC error",
    THERMAL_THROTTLE: "Clocks slowed down for temperature",
    POWER_THROTTLE: "Clocks slowed down by the hardware power brake",
}


def _key(card: str, kind: str, xid_code: int | None = None) -> str:
    return f"{card}|{kind}" if xid_code is None else f"{card}|{kind}-{xid_code}"


def incident_record(state: dict[str, Any], end: datetime | None) -> dict[str, Any]:
    record = {
        "event_id": state["event_id"],
        "card": state["card"],
        "kind": state["kind"],
        "detail": state["detail"],
        "start": state["start"],
        "end": isoformat(end) if end is not None else None,
    }
    if state.get("xid_code") is not None:
        record["xid_code"] = state["xid_code"]
    return record


class IncidentTracker:
    """The incidents open now, and the last ECC counter per card; ``state()`` is JSON, so the
    agent keeps it in a file across restarts."""

    def __init__(
        self, *, throttle_seconds: int = DEFAULT_THROTTLE_SECONDS, state: dict[str, Any] | None = None
    ) -> None:
        self.throttle = timedelta(seconds=throttle_seconds)
        state = state or {}
        self.open: dict[str, dict[str, Any]] = dict(state.get("open") or {})
        self.ecc: dict[str, int] = dict(state.get("ecc") or {})
        self.cards: dict[str, str] = dict(state.get("cards") or {})  # NVML index → UUID last seen

    def state(self) -> dict[str, Any]:
        return {"open": self.open, "ecc": self.ecc, "cards": self.cards}

    def observe(self, health: Iterable[CardHealth], at: datetime) -> list[dict[str, Any]]:
        """The incident records this read brings (new incidents, ended ones), in card order."""
        records: list[dict[str, Any]] = []
        seen: set[str] = set()  # keys of conditions present now
        readable: set[str] = set()  # cards that answered
        for card in health:
            present: list[tuple[str, int | None]] = []
            if not card.uuid:  # lost before this process read it: named by the index
                known = self.cards.get(str(card.index))
                if known is None:
                    continue
                card = replace(card, uuid=known)
            if not card.lost:
                self.cards[str(card.index)] = card.uuid
            if card.lost:
                present.append((FELL_OFF_BUS, None))
            else:
                readable.add(card.uuid)
                present.extend((XID, code) for code in dict.fromkeys(card.xid_codes))
                grew = card.ecc_uncorrected is not None and card.ecc_uncorrected > self.ecc.get(
                    card.uuid, card.ecc_uncorrected
                )
                if card.ecc_double_bit_event or grew:
                    present.append((ECC_DOUBLE_BIT, None))
                if card.ecc_uncorrected is not None:
                    self.ecc[card.uuid] = card.ecc_uncorrected
                if card.thermal_throttle:
                    present.append((THERMAL_THROTTLE, None))
                if card.power_throttle:
                    present.append((POWER_THROTTLE, None))
            for kind, code in present:
                key = _key(card.uuid, kind, code)
                seen.add(key)
                state = self.open.get(key)
                if state is None:
                    state = self._open(card.uuid, kind, code, at)
                    self.open[key] = state
                if not state["reported"] and self._due(state, at):
                    state["reported"] = True
                    records.append(incident_record(state, None))
        for key, state in list(self.open.items()):
            if key in seen:
                continue
            if state["kind"] != FELL_OFF_BUS and state["card"] not in readable:
                continue  # a card that did not answer is not healthy again yet
            if isoformat(at) <= state["start"]:
                continue  # whole seconds: an end must come after the start (the next read ends it)
            del self.open[key]
            if state["reported"] or self._due(state, at):
                records.append(incident_record(state, at))
        return records

    def _open(self, card: str, kind: str, code: int | None, at: datetime) -> dict[str, Any]:
        start = isoformat(at)
        name = kind if code is None else f"{kind}-{code}"
        return {
            "event_id": f"{card}:{name}:{start}",
            "card": card,
            "kind": kind,
            "xid_code": code,
            "detail": _xid_detail(code) if kind == XID and code is not None else DETAILS[kind],
            "start": start,
            "reported": False,
        }

    def _due(self, state: dict[str, Any], at: datetime) -> bool:
        """Reported at once, but throttling only once it has lasted ``throttle_seconds``."""
        if state["kind"] not in THROTTLES:
            return True
        return at - datetime.fromisoformat(state["start"]) >= self.throttle


def _xid_detail(code: int) -> str:
    meaning = XID_MEANINGS.get(code)
    return f"Xid {code}: {meaning}" if meaning else f"Xid {code}"
