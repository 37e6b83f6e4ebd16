"""Billing periods and proration, pure (no Django).

A billing period is a calendar month in the billing time zone: ``[first day 00:00, next first
day 00:00)`` (docs/rating.md#billing-periods). Intervals are half-open ``[start, end)`` of
timezone-aware datetimes; durations are exact seconds.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

DEFAULT_BILLING_TIME_ZONE = "Asia/Shanghai"
SECONDS_PER_DAY = 86400
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_PERIOD_RE = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")


def _zone(tz: str | ZoneInfo | None) -> ZoneInfo:
    if tz is None:
        return ZoneInfo(DEFAULT_BILLING_TIME_ZONE)
    return tz if isinstance(tz, ZoneInfo) else ZoneInfo(tz)


@dataclass(frozen=True, slots=True, order=True)
class Period:
    """A billing month, ``Period(2026, 11)``; its text form is ``"2026-11"``."""

    year: int
    month: int

    def __post_init__(self) -> None:
        if not 1 <= self.month <= 12 or not 1 <= self.year <= 9998:
            raise ValueError(f"invalid period {self.year}-{self.month}")

    @classmethod
    def parse(cls, text: str) -> Period:
        match = _PERIOD_RE.match(text or "")
        if not match:
            raise ValueError(f"period must look like YYYY-MM, got {text!r}")
        return cls(int(match.group(1)), int(match.group(2)))

    @classmethod
    def containing(cls, instant: datetime, tz: str | ZoneInfo | None = None) -> Period:
        local = instant.astimezone(_zone(tz))
        return cls(local.year, local.month)

    def __str__(self) -> str:
        return f"{self.year:04d}-{self.month:02d}"

    def next(self) -> Period:
        return Period(self.year + 1, 1) if self.month == 12 else Period(self.year, self.month + 1)

    def previous(self) -> Period:
        return Period(self.year - 1, 12) if self.month == 1 else Period(self.year, self.month - 1)

    @property
    def first_day(self) -> date:
        return date(self.year, self.month, 1)

    def bounds(self, tz: str | ZoneInfo | None = None) -> tuple[datetime, datetime]:
        """``(start, end)`` as aware datetimes in the billing zone; end is exclusive."""
        zone = _zone(tz)
        nxt = self.next()
        start = datetime(self.year, self.month, 1, tzinfo=zone)
        end = datetime(nxt.year, nxt.month, 1, tzinfo=zone)
        return start, end

    def seconds(self, tz: str | ZoneInfo | None = None) -> int:
        start, end = self.bounds(tz)
        return seconds_between(start, end)


def _whole_second(instant: datetime) -> int:
    """Seconds since the epoch of an aware instant, microseconds rounded half up."""
    delta: timedelta = instant - _EPOCH
    return delta.days * SECONDS_PER_DAY + delta.seconds + (1 if delta.microseconds >= 500_000 else 0)


def seconds_between(start: datetime, end: datetime) -> int:
    """Elapsed whole seconds between two aware datetimes (UTC arithmetic, DST-safe).

    Each instant is rounded to the nearest second before subtracting, so durations add up
    exactly: ``seconds_between(a, b) + seconds_between(b, c) == seconds_between(a, c)`` for any
    ``b``, also with sub-second timestamps (a usage record cut at a period boundary bills the
    same seconds as the whole record).
    """
    if start.tzinfo is None or end.tzinfo is None:
        raise ValueError("datetimes must be timezone-aware")
    return _whole_second(end) - _whole_second(start)


def overlap_seconds(
    start: datetime, end: datetime | None, window_start: datetime, window_end: datetime
) -> int:
    """Seconds of ``[start, end)`` inside ``[window_start, window_end)``; ``end=None`` is open-ended."""
    lo = max(start, window_start)
    hi = window_end if end is None else min(end, window_end)
    if hi <= lo:
        return 0
    return seconds_between(lo, hi)


def prorate(amount: Decimal, active_seconds: int, unit_seconds: int) -> Decimal:
    """Exact ``amount × active / unit`` (not rounded: round once per line, later)."""
    if unit_seconds <= 0:
        raise ValueError("unit_seconds must be positive")
    if active_seconds < 0:
        raise ValueError("active_seconds must not be negative")
    return amount * Decimal(active_seconds) / Decimal(unit_seconds)


def split_at(start: datetime, end: datetime, cut: datetime) -> list[tuple[datetime, datetime]]:
    """Split ``[start, end)`` at ``cut`` into one or two non-empty half-open parts."""
    if not start < cut < end:
        return [(start, end)]
    return [(start, cut), (cut, end)]


def periods_between(start: datetime, end: datetime, tz: str | ZoneInfo | None = None) -> list[Period]:
    """Every period that ``[start, end)`` touches, in order."""
    if end <= start:
        return []
    first = Period.containing(start, tz)
    last_instant = end - timedelta(microseconds=1)
    last = Period.containing(last_instant, tz)
    out = [first]
    while out[-1] < last:
        out.append(out[-1].next())
    return out


def _zone_label(local: datetime) -> str:
    offset = local.utcoffset() or timedelta(0)
    sign = "-" if offset < timedelta(0) else "+"
    minutes = abs(int(offset.total_seconds())) // 60
    return f"{local.tzname()} (UTC{sign}{minutes // 60:02d}:{minutes % 60:02d})"


def local_time_text(instant: datetime, tz: str | ZoneInfo | None = None) -> str:
    """An instant as a person reads it: in the billing zone, with the zone shown,
    ``"2026-12-01 00:00 CST (UTC+08:00)"``. Every time shown to people goes through this or
    :func:`local_range_text`, never through ``f"{instant:%H:%M}"`` on a UTC value."""
    local = instant.astimezone(_zone(tz))
    return f"{local:%Y-%m-%d %H:%M} {_zone_label(local)}"


def local_range_text(start: datetime, end: datetime | None, tz: str | ZoneInfo | None = None) -> str:
    """``[start, end)`` in the billing zone, the zone shown once: ``"2026-12-01 02:00–06:00 CST
    (UTC+08:00)"`` within a day, both dates across days, ``"2026-12-01 00:00 – … CST (UTC+08:00)"``
    when open-ended."""
    zone = _zone(tz)
    first = start.astimezone(zone)
    if end is None:
        return f"{first:%Y-%m-%d %H:%M} – … {_zone_label(first)}"
    last = end.astimezone(zone)
    if last.date() == first.date():
        return f"{first:%Y-%m-%d %H:%M}–{last:%H:%M} {_zone_label(last)}"
    return f"{first:%Y-%m-%d %H:%M} – {last:%Y-%m-%d %H:%M} {_zone_label(last)}"
