"""The demo's calendar: every date of the story counts from the month *now* falls in (billing time zone).

The demo covers the twelve months that end with the current one: offset 0 is the current month
(November 2026 on the test suite's clock), -1 the last closed month, -11 the first month of the
history (December 2025 on that clock). A date is written as ``at(offset, day, hour)``, so a load
on any later day tells the same story ending at that day (docs/operations.md#demo-data).
"""

from __future__ import annotations

import calendar
import datetime

from django.utils import timezone

from apps.core.periods import Period

SHANGHAI = datetime.timezone(datetime.timedelta(hours=8), "Asia/Shanghai")
HISTORY_MONTHS = 12  # the current month and the eleven closed months before it
FIRST = -(HISTORY_MONTHS - 1)


def current_period() -> Period:
    local = timezone.now().astimezone(SHANGHAI)
    return Period(local.year, local.month)


def period(offset: int) -> Period:
    """The month ``offset`` months from the current one (negative: earlier)."""
    current = current_period()
    index = current.year * 12 + current.month - 1 + offset
    return Period(index // 12, index % 12 + 1)


def month(offset: int) -> str:
    """``"YYYY-MM"`` of the month ``offset`` months from the current one."""
    return str(period(offset))


def days_in(offset: int) -> int:
    p = period(offset)
    return calendar.monthrange(p.year, p.month)[1]


def at(offset: int, day: int = 1, hour: int = 0, minute: int = 0) -> datetime.datetime:
    """An instant in the month ``offset`` months from now, in the billing time zone (UTC+08:00);
    a day past the month's end is its last day."""
    p = period(offset)
    return datetime.datetime(p.year, p.month, min(day, days_in(offset)), hour, minute, tzinfo=SHANGHAI)


def offset_of(text: str) -> int:
    """How many months ``"YYYY-MM"`` lies from the current month."""
    p, current = Period.parse(text), current_period()
    return (p.year - current.year) * 12 + p.month - current.month


def history() -> list[str]:
    """The months of the demo, oldest first: eleven closed ones and the current one."""
    return [month(offset) for offset in range(FIRST, 1)]


def due(instant: datetime.datetime) -> bool:
    """Whether a step dated ``instant`` has happened by now (the demo never records a fact after now)."""
    return instant <= timezone.now()


def today_start() -> datetime.datetime:
    """Midnight of today in the billing time zone: the demo reports usage of the days before it."""
    today = timezone.now().astimezone(SHANGHAI).date()
    return datetime.datetime.combine(today, datetime.time(), SHANGHAI)
