"""apps.core.periods: billing months in Asia/Shanghai, exact seconds, proration. No Django."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from itertools import pairwise
from zoneinfo import ZoneInfo

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from apps.core.money import round_money
from apps.core.periods import (
    Period,
    overlap_seconds,
    periods_between,
    prorate,
    seconds_between,
    split_at,
)

D = Decimal
PROPERTY = settings(max_examples=300, deadline=None)
SHANGHAI = ZoneInfo("Asia/Shanghai")
PLUS8 = timezone(timedelta(hours=8))
DAY = 86400


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


# --- parsing and arithmetic ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "period"),
    [("2026-11", Period(2026, 11)), ("2027-01", Period(2027, 1)), ("2028-02", Period(2028, 2))],
)
def test_parse_round_trips(text, period):
    assert Period.parse(text) == period
    assert str(period) == text


@pytest.mark.parametrize(
    "text", ["2026-13", "26-01", "2026-1", "", "2026-00", "2026/01", " 2026-01", "2026-01-01", "202601"]
)
def test_parse_rejects_malformed(text):
    with pytest.raises(ValueError, match="YYYY-MM"):
        Period.parse(text)


@pytest.mark.parametrize(("year", "month"), [(2026, 0), (2026, 13), (0, 1), (9999, 1)])
def test_period_rejects_invalid_month_or_year(year, month):
    with pytest.raises(ValueError, match="invalid period"):
        Period(year, month)


@pytest.mark.parametrize(
    ("period", "nxt", "prev"),
    [
        (Period(2026, 11), Period(2026, 12), Period(2026, 10)),
        (Period(2026, 12), Period(2027, 1), Period(2026, 11)),
        (Period(2027, 1), Period(2027, 2), Period(2026, 12)),
    ],
)
def test_next_and_previous(period, nxt, prev):
    assert period.next() == nxt
    assert period.previous() == prev
    assert period.next().previous() == period
    assert prev < period < nxt


# --- lengths and bounds in the billing time zone ---------------------------------------------


@pytest.mark.parametrize(
    ("period", "days"),
    [
        (Period(2028, 2), 29),  # leap year
        (Period(2027, 2), 28),
        (Period(2000, 2), 29),  # divisible by 400
        (Period(2100, 2), 28),  # century, not a leap year
        (Period(2026, 1), 31),
        (Period(2026, 4), 30),
        (Period(2026, 11), 30),
        (Period(2026, 12), 31),
    ],
)
def test_period_length_in_days(period, days):
    assert period.seconds() == days * DAY


def test_period_length_follows_dst_in_another_zone():
    """Seconds are real elapsed time: Berlin's March loses an hour, October gains one."""
    assert Period(2026, 3).seconds("Europe/Berlin") == 31 * DAY - 3600
    assert Period(2026, 10).seconds("Europe/Berlin") == 31 * DAY + 3600
    assert Period(2026, 3).seconds() == 31 * DAY  # Shanghai has no DST


@pytest.mark.parametrize(
    ("period", "start", "end"),
    [
        (Period(2026, 11), utc(2026, 10, 31, 16), utc(2026, 11, 30, 16)),
        (Period(2026, 1), utc(2025, 12, 31, 16), utc(2026, 1, 31, 16)),
        (Period(2028, 2), utc(2028, 1, 31, 16), utc(2028, 2, 29, 16)),
        (Period(2027, 12), utc(2027, 11, 30, 16), utc(2027, 12, 31, 16)),
    ],
)
def test_bounds_in_shanghai_start_at_16z_the_day_before(period, start, end):
    bounds = period.bounds()
    assert bounds == (start, end)
    assert all(b.utcoffset() == timedelta(hours=8) for b in bounds)
    assert period.bounds("Asia/Shanghai") == bounds == period.bounds(SHANGHAI)


def test_bounds_in_utc_are_midnight_utc():
    assert Period(2026, 11).bounds("UTC") == (utc(2026, 11, 1), utc(2026, 12, 1))


@pytest.mark.parametrize(
    ("instant", "period"),
    [
        (utc(2026, 10, 31, 15, 59, 59), Period(2026, 10)),
        (utc(2026, 10, 31, 16, 0, 0), Period(2026, 11)),
        (datetime(2026, 11, 1, 0, 0, 0, tzinfo=PLUS8), Period(2026, 11)),
        (datetime(2026, 10, 31, 23, 59, 59, 999999, tzinfo=PLUS8), Period(2026, 10)),
        (datetime(2026, 11, 1, 0, 0, 0, tzinfo=SHANGHAI), Period(2026, 11)),
        # still 31 October in UTC, already 1 November 04:00 in Shanghai
        (utc(2026, 10, 31, 20, 0, 0), Period(2026, 11)),
        # New Year in Shanghai happens at 16:00Z on 31 December
        (utc(2026, 12, 31, 16, 0, 0), Period(2027, 1)),
        (utc(2026, 12, 31, 15, 59, 59), Period(2026, 12)),
    ],
)
def test_containing_uses_the_billing_zone(instant, period):
    assert Period.containing(instant) == period


def test_same_instant_in_plus8_and_utc_lands_in_the_same_period():
    local = datetime(2026, 11, 1, 0, 30, tzinfo=PLUS8)
    as_utc = local.astimezone(UTC)
    assert as_utc == utc(2026, 10, 31, 16, 30)
    assert Period.containing(local) == Period.containing(as_utc) == Period(2026, 11)
    # with a UTC billing zone the same instant is still October
    assert Period.containing(local, "UTC") == Period(2026, 10)


def test_hours_in_2027_and_the_full_year_server_example():
    """180.00 per server-hour for all of 2027: 180 × 8760 = 1,576,800.00 (docs/rating.md)."""
    seconds = sum(Period(2027, month).seconds() for month in range(1, 13))
    hours = D(seconds) / 3600
    assert hours == 8760
    assert round_money(D("180.00") * hours) == D("1576800.00")
    assert sum(Period(2028, month).seconds() for month in range(1, 13)) == 8784 * 3600


# --- seconds, overlap, split -----------------------------------------------------------------


def test_seconds_between_refuses_naive_datetimes():
    with pytest.raises(ValueError, match="timezone-aware"):
        seconds_between(datetime(2026, 11, 1), utc(2026, 11, 2))


def test_seconds_between_is_elapsed_time_across_a_dst_change():
    """Same-zone datetimes subtract as wall clock in Python; elapsed seconds must not."""
    berlin = ZoneInfo("Europe/Berlin")
    spring = datetime(2026, 3, 29, 1, tzinfo=berlin), datetime(2026, 3, 29, 4, tzinfo=berlin)
    autumn = datetime(2026, 10, 25, 1, tzinfo=berlin), datetime(2026, 10, 25, 4, tzinfo=berlin)
    assert seconds_between(*spring) == 2 * 3600
    assert seconds_between(*autumn) == 4 * 3600


def test_seconds_between_mixed_offsets():
    assert seconds_between(datetime(2026, 11, 1, tzinfo=PLUS8), utc(2026, 11, 1)) == 8 * 3600


def test_sub_second_record_split_at_a_boundary_bills_the_same_seconds():
    """[0.5 s, 10.5 s) cut at 5 s: 10 s in total, not 5 + 6 (each part rounded on its own)."""
    base = utc(2026, 11, 1)
    start, end = base + timedelta(microseconds=500_000), base + timedelta(seconds=10, microseconds=500_000)
    cut, far = base + timedelta(seconds=5), base + timedelta(seconds=20)
    whole = overlap_seconds(start, end, base, far)
    assert whole == 10
    assert overlap_seconds(start, end, base, cut) + overlap_seconds(start, end, cut, far) == whole


@pytest.mark.parametrize(
    ("start", "end", "expected"),
    [
        (utc(2026, 11, 10), utc(2026, 11, 11), DAY),  # inside
        (utc(2026, 10, 31), utc(2026, 11, 1), 8 * 3600),  # straddles the start (16:00Z)
        (utc(2026, 11, 30), None, 16 * 3600),  # open-ended, clipped at the end
        (utc(2026, 10, 1), None, 30 * DAY),  # open-ended, covers the whole period
        (utc(2026, 12, 1), utc(2026, 12, 2), 0),  # after
        (utc(2026, 10, 1), utc(2026, 10, 31, 16), 0),  # ends exactly at the start: half-open
    ],
)
def test_overlap_seconds_with_november_2026(start, end, expected):
    window_start, window_end = Period(2026, 11).bounds()
    assert overlap_seconds(start, end, window_start, window_end) == expected


@pytest.mark.parametrize(
    ("cut", "parts"),
    [
        (utc(2026, 11, 15), [(utc(2026, 11, 1), utc(2026, 11, 15)), (utc(2026, 11, 15), utc(2026, 12, 1))]),
        (utc(2026, 11, 1), [(utc(2026, 11, 1), utc(2026, 12, 1))]),  # at start: nothing to split
        (utc(2026, 12, 1), [(utc(2026, 11, 1), utc(2026, 12, 1))]),  # at end
        (utc(2027, 1, 1), [(utc(2026, 11, 1), utc(2026, 12, 1))]),  # outside
    ],
)
def test_split_at(cut, parts):
    assert split_at(utc(2026, 11, 1), utc(2026, 12, 1), cut) == parts


# --- periods_between -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("start", "end", "periods"),
    [
        (utc(2026, 10, 31, 16), utc(2026, 11, 30, 16), ["2026-11"]),
        (utc(2026, 10, 31, 16), utc(2026, 11, 30, 16, 0, 0, 1), ["2026-11", "2026-12"]),
        (utc(2026, 10, 15), utc(2026, 12, 2), ["2026-10", "2026-11", "2026-12"]),
        (utc(2026, 12, 15), utc(2027, 1, 2), ["2026-12", "2027-01"]),
        (utc(2026, 10, 31, 15), utc(2026, 10, 31, 17), ["2026-10", "2026-11"]),
        (utc(2026, 11, 5), utc(2026, 11, 5), []),
        (utc(2026, 11, 6), utc(2026, 11, 5), []),
    ],
)
def test_periods_between(start, end, periods):
    assert [str(p) for p in periods_between(start, end)] == periods


def test_periods_between_in_utc():
    assert periods_between(utc(2026, 10, 31, 16), utc(2026, 11, 30, 16), "UTC") == [
        Period(2026, 10),
        Period(2026, 11),
    ]


# --- proration -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("amount", "active", "unit", "expected"),
    [
        (D("144000.00"), 15 * DAY, 30 * DAY, D("72000")),
        (D("122400.00"), 30 * DAY, 30 * DAY, D("122400.00")),
        (D("100"), 1, 3, D("100") / D("3")),  # not rounded
        (D("100"), 0, 3, D("0")),
        (D("200000") * D("0.85") * D("2.5") / 12, 28 * DAY, 28 * DAY, D("425000") / 12),
    ],
)
def test_prorate_is_exact(amount, active, unit, expected):
    assert prorate(amount, active, unit) == expected


def test_prorate_keeps_precision_until_the_line_is_rounded():
    third = prorate(D("100"), 1, 3)
    assert third != round_money(third)
    assert round_money(third) == D("33.33")


def test_p_unit_monthly_instalment_is_the_same_in_february():
    """The unit is the period's month, so a full February bills the full instalment (docs/rating.md)."""
    monthly = D("2.5") * D("200000") * D("0.85") / 12
    for period in (Period(2027, 2), Period(2028, 2), Period(2027, 3)):
        seconds = period.seconds()
        assert round_money(prorate(monthly, seconds, seconds)) == D("35416.67")


def test_half_month_of_a_monthly_line():
    """Active from 16 November 00:00 Shanghai: 15 of 30 days of 122,400.00 = 61,200.00."""
    start, end = Period(2026, 11).bounds()
    active = overlap_seconds(datetime(2026, 11, 16, tzinfo=SHANGHAI), None, start, end)
    assert active == 15 * DAY
    assert round_money(prorate(D("122400.00"), active, Period(2026, 11).seconds())) == D("61200.00")


@pytest.mark.parametrize(
    ("active", "unit", "message"),
    [(1, 0, "unit_seconds"), (1, -1, "unit_seconds"), (-1, 10, "active_seconds")],
)
def test_prorate_rejects_bad_durations(active, unit, message):
    with pytest.raises(ValueError, match=message):
        prorate(D("100"), active, unit)


def test_prorate_refuses_float_amount():
    with pytest.raises(TypeError):
        prorate(100.0, 1, 3)


# --- hypothesis properties -------------------------------------------------------------------

periods = st.builds(
    Period, st.integers(min_value=1971, max_value=2100), st.integers(min_value=1, max_value=12)
)
zones = st.sampled_from([UTC, SHANGHAI, PLUS8])
instants = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=zones)
monthly_amounts = st.decimals(
    min_value=D("0"), max_value=D("100000000"), places=2, allow_nan=False, allow_infinity=False
)


@PROPERTY
@given(periods, monthly_amounts, st.data(), st.booleans())
def test_parts_of_a_split_period_sum_to_the_whole(period, amount, data, whole_seconds):
    start, end = period.bounds()
    total = period.seconds()
    offset_us = data.draw(st.integers(min_value=0, max_value=total * 1_000_000), label="cut offset µs")
    if whole_seconds:
        offset_us -= offset_us % 1_000_000
    cut = start + timedelta(microseconds=offset_us)
    parts = split_at(start, end, cut)
    seconds = [seconds_between(a, b) for a, b in parts]
    assert sum(seconds) == total
    rounded = [round_money(prorate(amount, s, total)) for s in seconds]
    assert abs(sum(rounded) - round_money(amount)) <= D("0.01") * (len(parts) - 1)


@PROPERTY
@given(instants, st.one_of(st.none(), instants), instants, instants, instants)
def test_overlap_of_adjacent_windows_sums_to_overlap_of_union(start, end, w1, w2, w3):
    assume(end is None or start <= end)
    a, b, c = sorted([w1, w2, w3])
    assert overlap_seconds(start, end, a, b) + overlap_seconds(start, end, b, c) == overlap_seconds(
        start, end, a, c
    )


@PROPERTY
@given(instants, instants, instants)
def test_seconds_between_adds_up(a, b, c):
    a, b, c = sorted([a, b, c])
    assert seconds_between(a, b) + seconds_between(b, c) == seconds_between(a, c)
    assert seconds_between(a, c) >= 0


@PROPERTY
@given(instants, st.sampled_from(["Asia/Shanghai", "UTC"]))
def test_containing_period_bounds_hold_the_instant(instant, tz):
    period = Period.containing(instant, tz)
    start, end = period.bounds(tz)
    assert start <= instant < end


@PROPERTY
@given(instants, st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=800)))
def test_periods_between_cover_the_interval_exactly(start, length):
    end = start + length
    found = periods_between(start, end)
    if not length:
        assert found == []
        return
    assert found[0] == Period.containing(start)
    assert all(p.next() == q for p, q in pairwise(found))
    covered = sum(overlap_seconds(start, end, *p.bounds()) for p in found)
    assert covered == seconds_between(start, end)
