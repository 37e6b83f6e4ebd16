"""Rating engine (docs/rating.md): tables of what the customer sees, and hypothesis properties.

Pure: no Django, no database, the clock is never read (every instant is written out).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from decimal import Decimal
from itertools import pairwise
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from apps.contracts import pricing
from apps.contracts.pricing import (
    Allocation,
    CardRef,
    ContractInput,
    LineInput,
    Tier,
    UsageRecord,
    Window,
    clip,
    rate_contract,
    rate_contract_late_usage,
    rate_late_usage,
    rate_line,
    union,
    union_seconds,
)
from apps.core.periods import Period

D = Decimal
SH = "Asia/Shanghai"
A100 = D("312")  # dense FP16 TFLOPS
SERVER = 7
CARDS = tuple(CardRef(card_id=100 + slot, server_id=SERVER, tflops=A100) for slot in range(8))
OTHER_CARD = CardRef(card_id=999, server_id=8, tflops=A100)
EPOCH = datetime.fromisoformat("2020-01-01T00:00:00+08:00")


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)


def line(**overrides) -> LineInput:
    fields = {
        "line_id": 1,
        "resource": "card",
        "term": "hourly",
        "quantity": D("1"),
        "list_unit_price": D("22.70"),
        "tax_rate": D("0.06"),
        "start": EPOCH,
        "allocations": (Allocation.card(CARDS[0], EPOCH),),
    }
    return LineInput(**{**fields, **overrides})


def server_alloc(start: datetime = EPOCH, end: datetime | None = None) -> Allocation:
    return Allocation.server(SERVER, CARDS, start, end)


def card_use(start: str, end: str, card: CardRef = CARDS[0]) -> UsageRecord:
    return UsageRecord(at(start), at(end), card_id=card.card_id)


def server_use(start: str, end: str) -> UsageRecord:
    return UsageRecord(at(start), at(end), server_id=SERVER)


def seconds(delta: timedelta) -> Decimal:
    return D(delta // timedelta(microseconds=1)) / 10**6


def amount(charge) -> Decimal | None:
    return None if charge is None else charge.amount


# --- worked examples (docs/rating.md#worked-examples) ------------------------------------------


def test_server_hourly_all_year_2027_bills_1_576_800():
    """8 × A100-40G server at 180.00 per server-hour, every card busy all year (month-long records)."""
    server_line = line(resource="server", list_unit_price=D("180.00"), allocations=(server_alloc(),))
    usage = []
    for month in range(1, 13):
        start, end = Period(2027, month).bounds(SH)
        usage += [UsageRecord(start, end, card_id=c.card_id) for c in CARDS]
    charges = [
        rate_line(server_line, Period(2027, m), usage, prices_include_tax=True, tz=SH) for m in range(1, 13)
    ]
    assert [c.quantity for c in charges[:3]] == [D("744"), D("672"), D("744")]
    assert [c.amount for c in charges[:3]] == [D("133920.00"), D("120960.00"), D("133920.00")]
    assert {c.unit for c in charges} == {"server_hour"}
    assert sum(c.amount for c in charges) == D("1576800.00")


def test_monthly_server_with_yearly_term_discount_bills_122_400():
    monthly = line(
        resource="server",
        term="monthly",
        list_unit_price=D("144000.00"),
        term_discount_percent=D("15"),
        allocations=(server_alloc(),),
    )
    charge = rate_line(monthly, Period(2026, 11), prices_include_tax=True, tz=SH)
    assert (charge.kind, charge.quantity, charge.unit) == ("recurring", D("1"), "server_month")
    assert (charge.unit_price, charge.list_amount, charge.discount_amount) == (
        D("122400"),
        D("144000.00"),
        D("21600.00"),
    )
    assert charge.amount == D("122400.00")


def test_metered_card_hours_including_vat():
    """12 card-hours at list 22.70, negotiated 10 %, prices include 6 % VAT."""
    usage = [card_use("2026-11-03T08:00+08:00", "2026-11-03T20:00+08:00")]
    charge = rate_line(
        line(discount_percent=D("10")), Period(2026, 11), usage, prices_include_tax=True, tz=SH
    )
    assert (charge.kind, charge.quantity, charge.unit, charge.unit_price) == (
        "usage",
        D("12"),
        "card_hour",
        D("20.43"),
    )
    assert (charge.list_amount, charge.discount_amount, charge.amount) == (
        D("272.40"),
        D("27.24"),
        D("245.16"),
    )
    assert (charge.tax_amount, charge.net_amount, charge.tax.gross) == (D("13.88"), D("231.28"), D("245.16"))


def test_p_unit_yearly_monthly_instalment_bills_35_416_67():
    p_line = line(
        resource="p_unit",
        term="yearly",
        quantity=D("2.5"),
        list_unit_price=D("200000.00"),
        term_discount_percent=D("15"),
    )
    charge = rate_line(p_line, Period(2026, 11), prices_include_tax=True, tz=SH)
    assert (charge.quantity, charge.unit, charge.amount) == (D("2.5"), "p_month", D("35416.67"))
    assert round(charge.unit_price, 6) == D("14166.666667")
    assert charge.list_amount == D("41666.67")


# --- recurring: proration by the real month in the billing zone -----------------------------

RECURRING_CASES = [
    # (label, term, list price, line start, line end, period, amount)
    ("Jan 31 start: 1 day of 31", "monthly", "31000.00", "2027-01-31T00:00+08:00", None, (2027, 1), "1000.00"),
    ("the month after: whole", "monthly", "31000.00", "2027-01-31T00:00+08:00", None, (2027, 2), "31000.00"),
    ("Nov 16 start: 15 of 30 days", "monthly", "30000.00", "2026-11-16T00:00+08:00", None, (2026, 11), "15000.00"),
    ("leap Feb 15 start: 15 of 29", "monthly", "29000.00", "2028-02-15T00:00+08:00", None, (2028, 2), "15000.00"),
    ("ends Nov 11 noon: 10.5 of 30", "monthly", "30000.00", "2026-10-01T00:00+08:00", "2026-11-11T12:00+08:00",
     (2026, 11), "10500.00"),
    ("daily, leap Feb 2028: 29 days", "daily", "100.00", "2028-01-01T00:00+08:00", None, (2028, 2), "2900.00"),
    ("daily, Feb 2027: 28 days", "daily", "100.00", "2027-01-01T00:00+08:00", None, (2027, 2), "2800.00"),
    ("daily, start 18:00 on the 30th", "daily", "100.00", "2026-11-30T18:00+08:00", None, (2026, 11), "25.00"),
    ("yearly instalments, half a month", "yearly", "120000.00", "2026-11-16T00:00+08:00", None, (2026, 11),
     "5000.00"),
    ("not started yet", "monthly", "30000.00", "2026-12-01T00:00+08:00", None, (2026, 11), None),
    ("ended before the period", "monthly", "30000.00", "2026-01-01T00:00+08:00", "2026-11-01T00:00+08:00",
     (2026, 11), None),
]  # fmt: skip


@pytest.mark.parametrize(("label", "term", "price", "start", "end", "period", "expected"), RECURRING_CASES)
def test_recurring_proration(label, term, price, start, end, period, expected):
    recurring = line(term=term, list_unit_price=D(price), start=at(start), end=at(end) if end else None)
    charge = rate_line(recurring, Period(*period), prices_include_tax=True, tz=SH)
    assert amount(charge) == (D(expected) if expected else None), label


def test_daily_line_quantity_is_days():
    daily = line(term="daily", quantity=D("2"), list_unit_price=D("100.00"))
    charge = rate_line(daily, Period(2028, 2), prices_include_tax=True, tz=SH)
    assert (charge.quantity, charge.unit, charge.amount) == (D("58"), "card_day", D("5800.00"))


def test_recurring_month_is_the_billing_zone_month():
    """In UTC, Asia/Shanghai's November starts Oct 31 16:00; a UTC-zone run prorates by its own month."""
    monthly = line(term="monthly", list_unit_price=D("30000.00"), start=at("2026-11-16T00:00+00:00"))
    assert rate_line(monthly, Period(2026, 11), prices_include_tax=True, tz="UTC").amount == D("15000.00")
    shanghai = rate_line(monthly, Period(2026, 11), prices_include_tax=True, tz=SH)
    assert shanghai.amount == D("14666.67")  # 14 days 16 hours of 30 days


# --- yearly upfront: the whole year in the anniversary period --------------------------------

UPFRONT_CASES = [
    # (line start, line end, period, amount)
    ("2026-01-31T00:00+08:00", None, (2026, 1), "170000.00"),
    ("2026-01-31T00:00+08:00", None, (2026, 2), None),
    ("2026-01-31T00:00+08:00", None, (2026, 12), None),
    ("2026-01-31T00:00+08:00", None, (2027, 1), "170000.00"),
    ("2028-02-29T00:00+08:00", None, (2028, 2), "170000.00"),
    ("2028-02-29T00:00+08:00", None, (2029, 2), "170000.00"),  # Feb 28 2029
    ("2028-02-29T00:00+08:00", None, (2029, 3), None),
    ("2028-02-29T00:00+08:00", None, (2032, 2), "170000.00"),
    # cut short: the first year is billed whole; no second year starts before the end
    ("2026-01-31T00:00+08:00", "2026-06-30T00:00+08:00", (2026, 1), "170000.00"),
    ("2026-01-31T00:00+08:00", "2027-01-31T00:00+08:00", (2027, 1), None),
    ("2026-01-31T00:00+08:00", "2027-01-31T00:00:01+08:00", (2027, 1), "170000.00"),
    # an anniversary at local midnight on the 1st is in that month, not the previous (UTC) one
    ("2026-03-01T00:00+08:00", None, (2027, 2), None),
    ("2026-03-01T00:00+08:00", None, (2027, 3), "170000.00"),
]


@pytest.mark.parametrize(("start", "end", "period", "expected"), UPFRONT_CASES)
def test_upfront_yearly_bills_only_in_anniversary_period(start, end, period, expected):
    upfront = line(
        term="yearly",
        yearly_billing="upfront",
        list_unit_price=D("200000.00"),
        term_discount_percent=D("15"),
        start=at(start),
        end=at(end) if end else None,
    )
    charge = rate_line(upfront, Period(*period), prices_include_tax=True, tz=SH)
    assert amount(charge) == (D(expected) if expected else None)
    if charge is not None:
        assert (charge.quantity, charge.unit) == (D("1"), "card_year")


def test_upfront_service_period_is_the_contract_year():
    upfront = line(
        term="yearly", yearly_billing="upfront", list_unit_price=D("1000"), start=at("2028-02-29T10:00+08:00")
    )
    charge = rate_line(upfront, Period(2029, 2), prices_include_tax=True, tz=SH)
    assert (charge.service_start, charge.service_end) == (
        at("2029-02-28T10:00+08:00"),
        at("2030-02-28T10:00+08:00"),
    )


def test_alike_recurring_lines_rate_alike_each_with_its_own_id():
    """Recurring charges are computed once per distinct prices, quantity and active span
    (docs/rating.md#alike-lines): lines that differ only in id or in a start before the window share
    one; a start inside the window, another discount or an upfront year of its own do not."""
    monthly = {"term": "monthly", "list_unit_price": D("30000.00")}
    nov = Period(2026, 11)
    since_jan = rate_line(
        line(line_id=1, start=at("2026-01-01T00:00+08:00"), **monthly), nov, prices_include_tax=True, tz=SH
    )
    since_jun = rate_line(
        line(line_id=2, start=at("2026-06-01T00:00+08:00"), **monthly), nov, prices_include_tax=True, tz=SH
    )
    mid_nov = rate_line(
        line(line_id=3, start=at("2026-11-16T00:00+08:00"), **monthly), nov, prices_include_tax=True, tz=SH
    )
    discounted = rate_line(
        line(line_id=4, discount_percent=D("10"), **monthly), nov, prices_include_tax=True, tz=SH
    )
    assert [(c.line_id, c.amount) for c in (since_jan, since_jun, mid_nov, discounted)] == [
        (1, D("30000.00")),
        (2, D("30000.00")),
        (3, D("15000.00")),
        (4, D("27000.00")),
    ]
    assert replace(since_jun, line_id=1) == since_jan

    upfront = {"term": "yearly", "yearly_billing": "upfront", "list_unit_price": D("1000")}
    this_year = rate_line(
        line(line_id=5, start=at("2026-11-05T00:00+08:00"), **upfront), nov, prices_include_tax=True, tz=SH
    )
    last_year = rate_line(
        line(line_id=6, start=at("2025-11-05T00:00+08:00"), **upfront), nov, prices_include_tax=True, tz=SH
    )
    assert (this_year.line_id, this_year.service_start) == (5, at("2026-11-05T00:00+08:00"))
    assert (last_year.line_id, last_year.service_start) == (6, at("2026-11-05T00:00+08:00"))
    assert this_year.service_end == last_year.service_end == at("2027-11-05T00:00+08:00")
    assert (
        rate_line(
            line(line_id=7, start=at("2025-11-05T00:00+08:00"), end=at("2026-11-01T00:00+08:00"), **upfront),
            nov,
            prices_include_tax=True,
            tz=SH,
        )
        is None
    )


@settings(max_examples=200, deadline=None)
@given(
    term=st.sampled_from(["daily", "monthly", "yearly"]),
    upfront=st.booleans(),
    start_day=st.integers(-800, 40),
    length=st.one_of(st.none(), st.integers(1, 900)),
    price=st.decimals(min_value=D("0.01"), max_value=D("99999.99"), places=2),
    quantity=st.integers(1, 16),
)
def test_a_recurring_charge_is_the_same_computed_afresh(term, upfront, start_day, length, price, quantity):
    start = at("2026-11-01T00:00+08:00") + timedelta(days=start_day, hours=start_day % 7)
    recurring = line(
        line_id=start_day + 1000,
        term=term,
        yearly_billing="upfront" if upfront and term == "yearly" else "monthly_instalments",
        list_unit_price=price,
        quantity=D(quantity),
        start=start,
        end=None if length is None else start + timedelta(days=length),
    )
    window = Window.of(Period(2026, 11), SH)
    cached = rate_line(recurring, window, prices_include_tax=False, tz=SH)
    afresh = pricing._recurring_charge(recurring, window, ZoneInfo(SH), prices_include_tax=False)
    assert cached == afresh


# --- metered usage ---------------------------------------------------------------------------

METERED_CASES = [
    # (label, resource, allocation, records, period, quantity, unit)
    ("UTC record across Shanghai month end: Nov part", "card", "card0",
     [card_use("2026-11-30T15:00Z", "2026-11-30T17:00Z")], (2026, 11), "1", "card_hour"),
    ("UTC record across Shanghai month end: Dec part", "card", "card0",
     [card_use("2026-11-30T15:00Z", "2026-11-30T17:00Z")], (2026, 12), "1", "card_hour"),
    ("+08:00 record across month end: Nov part", "card", "card0",
     [card_use("2026-11-30T23:00+08:00", "2026-12-01T01:00+08:00")], (2026, 11), "1", "card_hour"),
    ("+08:00 record across month end: Dec part", "card", "card0",
     [card_use("2026-11-30T23:00+08:00", "2026-12-01T01:00+08:00")], (2026, 12), "1", "card_hour"),
    ("overlapping records on one card count once", "card", "card0",
     [card_use("2026-11-02T10:00+08:00", "2026-11-02T12:00+08:00"),
      card_use("2026-11-02T11:00+08:00", "2026-11-02T13:00+08:00"),
      card_use("2026-11-02T03:00Z", "2026-11-02T04:00Z")], (2026, 11), "3", "card_hour"),
    ("the same record in two zones counts once", "card", "card0",
     [card_use("2026-11-02T10:00+08:00", "2026-11-02T12:00+08:00"),
      card_use("2026-11-02T02:00Z", "2026-11-02T04:00Z")], (2026, 11), "2", "card_hour"),
    ("a server record counts for the allocated card", "card", "card0",
     [server_use("2026-11-02T10:00+08:00", "2026-11-02T11:00+08:00")], (2026, 11), "1", "card_hour"),
    ("a server record counts for each card of a server allocation", "card", "server",
     [server_use("2026-11-02T10:00+08:00", "2026-11-02T11:00+08:00")], (2026, 11), "8", "card_hour"),
    ("server record on a p_unit line: 8 × 0.312 P", "p_unit", "server",
     [server_use("2026-11-02T10:00+08:00", "2026-11-02T11:00+08:00")], (2026, 11), "2.496", "p_hour"),
    ("server and card records union per card on a p_unit line", "p_unit", "server",
     [server_use("2026-11-02T10:00+08:00", "2026-11-02T11:00+08:00"),
      card_use("2026-11-02T10:30+08:00", "2026-11-02T12:00+08:00")], (2026, 11), "2.808", "p_hour"),
    ("server line: server and card records union per server", "server", "server",
     [server_use("2026-11-02T10:00+08:00", "2026-11-02T11:00+08:00"),
      card_use("2026-11-02T10:30+08:00", "2026-11-02T12:00+08:00"),
      card_use("2026-11-02T11:00+08:00", "2026-11-02T12:00+08:00", CARDS[5])], (2026, 11), "2", "server_hour"),
    ("usage outside the allocation interval is not billed", "card", "card0 Nov 10-20",
     [card_use("2026-11-05T00:00+08:00", "2026-11-12T00:00+08:00"),
      card_use("2026-11-19T12:00+08:00", "2026-11-25T00:00+08:00")], (2026, 11), "60", "card_hour"),
    ("usage on a card not allocated to the line is not billed", "card", "card0",
     [card_use("2026-11-02T10:00+08:00", "2026-11-02T11:00+08:00", CARDS[1]),
      card_use("2026-11-02T10:00+08:00", "2026-11-02T11:00+08:00", OTHER_CARD),
      UsageRecord(at("2026-11-02T10:00+08:00"), at("2026-11-02T11:00+08:00"), server_id=8)],
     (2026, 11), "0", "card_hour"),
    ("seconds are exact: 90 s is 0.025 h", "card", "card0",
     [card_use("2026-11-02T10:00:00+08:00", "2026-11-02T10:01:30+08:00")], (2026, 11), "0.025", "card_hour"),
]  # fmt: skip

ALLOCATIONS = {
    "card0": (Allocation.card(CARDS[0], EPOCH),),
    "server": (server_alloc(),),
    "card0 Nov 10-20": (
        Allocation.card(CARDS[0], at("2026-11-10T00:00+08:00"), at("2026-11-20T00:00+08:00")),
    ),
}


@pytest.mark.parametrize(("label", "resource", "alloc", "usage", "period", "quantity", "unit"), METERED_CASES)
def test_metered_quantity(label, resource, alloc, usage, period, quantity, unit):
    metered = line(resource=resource, list_unit_price=D("10.00"), allocations=ALLOCATIONS[alloc])
    charge = rate_line(metered, Period(*period), usage, prices_include_tax=True, tz=SH)
    assert (charge.quantity, charge.unit) == (D(quantity), unit), label
    assert charge.amount == (D(quantity) * D("10.00")).quantize(D("0.01")), label


def test_metered_line_clipped_to_its_own_start_and_end():
    metered = line(start=at("2026-11-02T10:30+08:00"), end=at("2026-11-02T11:15+08:00"))
    usage = [card_use("2026-11-02T10:00+08:00", "2026-11-02T12:00+08:00")]
    charge = rate_line(metered, Period(2026, 11), usage, prices_include_tax=True, tz=SH)
    assert (charge.quantity, charge.amount) == (D("0.75"), D("17.03"))  # 22.70 × 0.75 = 17.025 → half up


def test_metered_quantity_is_rounded_for_display_amount_from_exact_seconds():
    usage = [card_use("2026-11-02T10:00:00+08:00", "2026-11-02T10:00:01+08:00")] * 3
    usage += [card_use("2026-11-03T10:00:00+08:00", "2026-11-03T10:20:00+08:00")]
    charge = rate_line(
        line(list_unit_price=D("0.03")), Period(2026, 11), usage, prices_include_tax=True, tz=SH
    )
    assert charge.quantity == D("0.333611")  # 1201 s
    assert charge.amount == D("0.01")


def test_server_line_requires_whole_server_allocations():
    bad = line(resource="server", allocations=(Allocation.card(CARDS[0], EPOCH),))
    with pytest.raises(ValueError, match="whole servers"):
        rate_line(bad, Period(2026, 11), [], prices_include_tax=True, tz=SH)


def test_unused_hourly_line_is_a_zero_line_and_inactive_line_none():
    charge = rate_line(line(), Period(2026, 11), [], prices_include_tax=True, tz=SH)
    assert (charge.quantity, charge.amount, charge.tax_amount) == (D("0"), D("0.00"), D("0.00"))
    ended = line(end=at("2026-11-01T00:00+08:00"))
    assert rate_line(ended, Period(2026, 11), [], prices_include_tax=True, tz=SH) is None


# --- graduated tiers -------------------------------------------------------------------------

TIERS = (Tier(D("100"), D("20.00")), Tier(D("200"), D("15.00")), Tier(None, D("10.00")))


@pytest.mark.parametrize(
    ("hours", "list_amount", "expected"),
    [
        (0, "0.00", "0.00"),
        (50, "1000.00", "900.00"),
        (100, "2000.00", "1800.00"),
        (150, "2750.00", "2475.00"),
        (250, "4000.00", "3600.00"),
    ],
)
def test_graduated_tiers_on_hours_per_period(hours, list_amount, expected):
    tiered = line(tiers=TIERS, discount_percent=D("10"))
    start = at("2026-11-01T00:00+08:00")
    usage = [UsageRecord(start, start + timedelta(hours=hours), card_id=CARDS[0].card_id)]
    charge = rate_line(tiered, Period(2026, 11), usage, prices_include_tax=True, tz=SH)
    assert (charge.quantity, charge.list_amount, charge.amount) == (D(hours), D(list_amount), D(expected))
    assert charge.discount_amount == D(list_amount) - D(expected)


def test_graduated_tiers_on_recurring_quantity_then_prorated():
    tiered = line(term="monthly", quantity=D("10"), tiers=(Tier(D("8"), D("1000")), Tier(None, D("500"))))
    full = rate_line(tiered, Period(2026, 11), prices_include_tax=True, tz=SH)
    assert (full.quantity, full.amount, full.unit_price) == (D("10"), D("9000.00"), D("900"))
    half = rate_line(
        replace(tiered, start=at("2026-11-16T00:00+08:00")), Period(2026, 11), prices_include_tax=True, tz=SH
    )
    assert (half.quantity, half.amount) == (D("5"), D("4500.00"))


def test_tiers_must_ascend_and_end_unlimited():
    with pytest.raises(ValueError, match="unlimited"):
        line(tiers=(Tier(D("100"), D("20")),))
    with pytest.raises(ValueError, match="ascending"):
        line(tiers=(Tier(D("100"), D("20")), Tier(D("50"), D("15")), Tier(None, D("10"))))


# --- tax basis -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("include", "amount_", "tax", "net", "gross"),
    [(True, "245.16", "13.88", "231.28", "245.16"), (False, "245.16", "14.71", "245.16", "259.87")],
)
def test_tax_inclusive_and_exclusive(include, amount_, tax, net, gross):
    usage = [card_use("2026-11-03T08:00+08:00", "2026-11-03T20:00+08:00")]
    charge = rate_line(
        line(discount_percent=D("10")), Period(2026, 11), usage, prices_include_tax=include, tz=SH
    )
    assert (charge.amount, charge.tax.tax, charge.tax.net, charge.tax.gross) == (
        D(amount_),
        D(tax),
        D(net),
        D(gross),
    )


# --- contracts: defaults and minimum commitment ----------------------------------------------


def contract(**overrides) -> ContractInput:
    fields = {
        "contract_id": 9,
        "prices_include_tax": True,
        "start": at("2026-01-01T00:00+08:00"),
        "minimum_monthly_amount": D("10000.00"),
        "lines": (line(start=None, discount_percent=D("10")),),
    }
    return ContractInput(**{**fields, **overrides})


TWELVE_HOURS = [card_use("2026-11-03T08:00+08:00", "2026-11-03T20:00+08:00")]

SHORTFALL_CASES = [
    # (label, contract start, minimum, usage, minimum shown, shortfall)
    ("full month", "2026-01-01T00:00+08:00", "10000.00", TWELVE_HOURS, "10000.00", "9754.84"),
    ("from Nov 16: half the minimum", "2026-11-16T00:00+08:00", "10000.00", [], "5000.00", "5000.00"),
    ("from Nov 21 12:00", "2026-11-21T12:00+08:00", "10000.00", [], "3166.67", "3166.67"),
    ("rated above the minimum", "2026-01-01T00:00+08:00", "200.00", TWELVE_HOURS, "200.00", None),
    ("rated equal to the minimum", "2026-01-01T00:00+08:00", "245.16", TWELVE_HOURS, "245.16", None),
]


@pytest.mark.parametrize(("label", "start", "minimum", "usage", "minimum_shown", "expected"), SHORTFALL_CASES)
def test_minimum_commitment_shortfall(label, start, minimum, usage, minimum_shown, expected):
    charges = rate_contract(
        contract(start=at(start), minimum_monthly_amount=D(minimum)), Period(2026, 11), usage, tz=SH
    )
    assert charges.minimum_amount == D(minimum_shown), label
    assert amount(charges.shortfall) == (D(expected) if expected else None), label
    assert charges.total_amount == max(charges.rated_amount, D(minimum_shown)), label
    if expected:
        shortfall = charges.shortfall
        assert (shortfall.kind, shortfall.line_id, shortfall.tax_rate) == (
            "minimum_commitment_shortfall",
            None,
            D("0.06"),
        )
        assert (shortfall.tax.gross, shortfall.tax.net + shortfall.tax.tax) == (D(expected), D(expected))


def test_shortfall_takes_the_highest_line_tax_rate_unless_given():
    lease = line(line_id=2, start=None, term="monthly", list_unit_price=D("100.00"), tax_rate=D("0.13"))
    charges = rate_contract(contract(lines=(line(start=None), lease)), Period(2026, 11), [], tz=SH)
    assert (charges.shortfall.amount, charges.shortfall.tax_rate) == (D("9900.00"), D("0.13"))
    given = rate_contract(contract(lines=(lease,), minimum_tax_rate=D("0.06")), Period(2026, 11), [], tz=SH)
    assert given.shortfall.tax_rate == D("0.06")


def test_no_minimum_no_shortfall_and_lines_take_contract_dates():
    monthly = line(line_id=2, start=None, term="monthly", list_unit_price=D("30000.00"))
    deal = contract(
        minimum_monthly_amount=None,
        start=at("2026-11-16T00:00+08:00"),
        end=at("2026-11-26T00:00+08:00"),
        lines=(line(start=None), monthly),
    )
    usage = [card_use("2026-11-15T00:00+08:00", "2026-11-17T00:00+08:00")]
    charges = rate_contract(deal, Period(2026, 11), usage, tz=SH)
    assert [c.amount for c in charges.lines] == [D("544.80"), D("10000.00")]  # 24 h × 22.70; 10 of 30 days
    assert (charges.shortfall, charges.minimum_amount, charges.total_amount) == (None, None, D("10544.80"))
    assert charges.lines[1].service_start == at("2026-11-16T00:00+08:00")


def test_contract_outside_period_has_no_lines_and_no_shortfall():
    charges = rate_contract(contract(start=at("2026-12-01T00:00+08:00")), Period(2026, 11), [], tz=SH)
    assert (charges.lines, charges.shortfall, charges.total_amount) == ((), None, D("0"))


# --- late usage ------------------------------------------------------------------------------


def test_late_usage_bills_only_the_unbilled_time():
    billed = [card_use("2026-11-02T10:00+08:00", "2026-11-02T12:00+08:00")]
    arrived = [
        card_use("2026-11-02T11:00+08:00", "2026-11-02T13:00+08:00"),  # 1 h new
        card_use("2026-11-02T10:30+08:00", "2026-11-02T11:30+08:00"),  # nothing new
        card_use("2026-11-30T23:00+08:00", "2026-12-01T02:00+08:00"),  # 1 h in November
    ]
    charge = rate_late_usage(
        line(), Period(2026, 11), [*billed, *arrived], billed, prices_include_tax=True, tz=SH
    )
    assert (charge.kind, charge.quantity, charge.amount) == ("late_usage", D("2"), D("45.40"))
    assert rate_late_usage(
        line(), Period(2026, 11), arrived, billed, prices_include_tax=True, tz=SH
    ).amount == D("45.40")


def test_late_usage_with_nothing_new_is_none():
    billed = [card_use("2026-11-02T10:00+08:00", "2026-11-02T12:00+08:00")]
    late = [card_use("2026-11-02T10:30+08:00", "2026-11-02T11:00+08:00")]
    assert rate_late_usage(line(), Period(2026, 11), late, billed, prices_include_tax=True, tz=SH) is None


def test_late_usage_prices_the_marginal_tier():
    start = at("2026-11-01T00:00+08:00")
    billed = [UsageRecord(start, start + timedelta(hours=90), card_id=CARDS[0].card_id)]
    late = [UsageRecord(start + timedelta(hours=90), start + timedelta(hours=120), card_id=CARDS[0].card_id)]
    charge = rate_late_usage(
        line(tiers=TIERS), Period(2026, 11), late, billed, prices_include_tax=True, tz=SH
    )
    assert (charge.quantity, charge.amount) == (D("30"), D("500.00"))  # 10 h × 20 + 20 h × 15


def test_contract_late_usage_lines_for_hourly_lines_only():
    monthly = line(line_id=2, start=None, term="monthly", list_unit_price=D("30000.00"))
    usage = [card_use("2026-11-02T10:00+08:00", "2026-11-02T11:00+08:00")]
    lines = rate_contract_late_usage(
        contract(lines=(line(start=None), monthly)), Period(2026, 11), usage, [], tz=SH
    )
    assert [(c.line_id, c.kind, c.amount) for c in lines] == [(1, "late_usage", D("22.70"))]


# --- inputs refused --------------------------------------------------------------------------


def test_float_and_naive_inputs_are_refused():
    with pytest.raises(TypeError, match="Decimal"):
        line(list_unit_price=22.7)
    with pytest.raises(ValueError, match="timezone-aware"):
        UsageRecord(datetime(2026, 11, 1), datetime(2026, 11, 2), card_id=1)
    with pytest.raises(ValueError, match="one card or one server"):
        UsageRecord(EPOCH, EPOCH, card_id=1, server_id=2)


def test_clip_and_union_helpers():
    a, b, c, d = (at(f"2026-11-0{n}T00:00+08:00") for n in (1, 2, 3, 4))
    assert clip((a, d), (b, None)) == (b, d)
    assert clip((a, b), (c, d)) is None
    assert union([(c, d), (a, b), (b, c)]) == [(a, d)]
    assert union_seconds([(a, c), (b, d), (a, b)]) == D(3 * 86400)


# --- properties ------------------------------------------------------------------------------

NOV_START, NOV_END = Period(2026, 11).bounds(SH)
SPAN_US = (NOV_END - NOV_START) // timedelta(microseconds=1)


@st.composite
def records(draw, max_size=12):
    """Records around November 2026 (spilling over both ends), microsecond resolution."""
    out = []
    for _ in range(draw(st.integers(0, max_size))):
        start = NOV_START + timedelta(microseconds=draw(st.integers(-3 * 86400 * 10**6, SPAN_US)))
        length = timedelta(microseconds=draw(st.integers(0, 4 * 86400 * 10**6)))
        if draw(st.booleans()):
            out.append(UsageRecord(start, start + length, card_id=draw(st.sampled_from(CARDS[:3])).card_id))
        else:
            out.append(UsageRecord(start, start + length, server_id=draw(st.sampled_from([SERVER, 8]))))
    return out


instants = st.integers(0, SPAN_US).map(lambda us: NOV_START + timedelta(microseconds=us))
resources = st.sampled_from(["card", "server", "p_unit"])
prices = st.decimals(min_value=D("0.01"), max_value=D("500"), places=2)
percents = st.decimals(min_value=D("0"), max_value=D("50"), places=2)
PROPS = settings(max_examples=200, deadline=None)


def metered_line(resource: str, price: Decimal, discount: Decimal, alloc_start: datetime) -> LineInput:
    allocations = (
        (server_alloc(alloc_start),)
        if resource == "server"
        else (
            Allocation.card(CARDS[0], alloc_start),
            Allocation.card(CARDS[1], EPOCH, alloc_start + timedelta(days=9)),
        )
    )
    return line(resource=resource, list_unit_price=price, discount_percent=discount, allocations=allocations)


@PROPS
@given(usage=records(), resource=st.sampled_from(["card", "p_unit"]), alloc_start=instants)
def test_a_card_never_bills_more_than_wall_clock_time(usage, resource, alloc_start):
    charge = rate_line(metered_line(resource, D("1"), D("0"), alloc_start), Period(2026, 11), usage, tz=SH,
                       prices_include_tax=True)  # fmt: skip
    card_hours = D(SPAN_US) / 3600 / 10**6 * 2  # two cards allocated
    assert charge.exact_quantity <= card_hours * (D("0.312") if resource == "p_unit" else 1)


@PROPS
@given(
    usage=records(), resource=resources, price=prices, discount=percents, cut=instants, alloc_start=instants
)
def test_splitting_a_window_changes_a_metered_line_by_at_most_a_cent(
    usage, resource, price, discount, cut, alloc_start
):
    metered = metered_line(resource, price, discount, alloc_start)
    whole = rate_line(metered, Period(2026, 11), usage, prices_include_tax=True, tz=SH).amount
    parts = [
        rate_line(metered, Window(a, b), usage, prices_include_tax=True, tz=SH)
        for a, b in ((NOV_START, cut), (cut, NOV_END))
        if a < b
    ]
    assert abs(sum(p.amount for p in parts) - whole) <= D("0.01")


@PROPS
@given(
    term=st.sampled_from(["daily", "monthly", "yearly"]),
    price=st.decimals(min_value=D("0.01"), max_value=D("1000000"), places=2),
    quantity=st.decimals(min_value=D("0.000001"), max_value=D("64"), places=6),
    start=st.integers(-40 * 86400 * 10**6, SPAN_US).map(lambda us: NOV_START + timedelta(microseconds=us)),
    cuts=st.lists(st.integers(-59 * 86400 * 10**6, 59 * 86400 * 10**6), min_size=1, max_size=3),
)
def test_splitting_a_window_changes_a_recurring_line_by_at_most_a_cent_per_cut(
    term, price, quantity, start, cuts
):
    recurring = line(term=term, quantity=quantity, list_unit_price=price, start=start)
    lo, hi = NOV_START - timedelta(days=60), NOV_END + timedelta(days=60)
    edges = [lo, *sorted({NOV_START + timedelta(microseconds=c) for c in cuts}), hi]
    whole = rate_line(recurring, Window(lo, hi), prices_include_tax=True, tz=SH)
    parts = [rate_line(recurring, Window(a, b), prices_include_tax=True, tz=SH) for a, b in pairwise(edges)]
    total = sum(p.amount for p in parts if p is not None)
    assert abs(total - whole.amount) <= D("0.01") * len(cuts)


@PROPS
@given(usage=records(), more=records(max_size=4), resource=resources, price=prices, alloc_start=instants)
def test_charges_never_decrease_as_usage_grows(usage, more, resource, price, alloc_start):
    metered = replace(
        metered_line(resource, price, D("0"), alloc_start), tiers=(Tier(D("5"), price), Tier(None, D("0.5")))
    )
    before = rate_line(metered, Period(2026, 11), usage, prices_include_tax=True, tz=SH)
    after = rate_line(metered, Period(2026, 11), usage + more, prices_include_tax=True, tz=SH)
    assert after.exact_quantity >= before.exact_quantity
    assert after.amount >= before.amount


@PROPS
@given(
    usage=records(),
    minimum=st.none() | st.decimals(min_value=D("0"), max_value=D("50000"), places=2),
    start=instants,
    include=st.booleans(),
)
def test_contract_total_is_the_sum_of_its_rounded_lines(usage, minimum, start, include):
    lines = (
        line(
            line_id=1, start=None, allocations=(Allocation.card(CARDS[0], EPOCH),), discount_percent=D("7.5")
        ),
        line(
            line_id=2,
            start=None,
            resource="p_unit",
            allocations=(server_alloc(),),
            list_unit_price=D("61.37"),
        ),
        line(line_id=3, start=None, term="monthly", quantity=D("3"), list_unit_price=D("9999.99")),
        line(
            line_id=4,
            start=None,
            term="yearly",
            quantity=D("2.496"),
            list_unit_price=D("200000"),
            tax_rate=D("0.13"),
        ),
    )
    deal = contract(start=start, minimum_monthly_amount=minimum, prices_include_tax=include, lines=lines)
    charges = rate_contract(deal, Period(2026, 11), usage, tz=SH)
    assert charges.total_amount == sum(c.amount for c in charges.all_lines)
    assert all(c.amount == c.amount.quantize(D("0.01")) for c in charges.all_lines)
    assert all(c.tax.gross == c.tax.net + c.tax.tax for c in charges.all_lines)
    if charges.minimum_amount is not None:
        assert charges.total_amount >= charges.minimum_amount


@PROPS
@given(usage=records(max_size=20))
def test_a_union_is_never_longer_than_its_span_or_the_sum(usage):
    intervals = [(r.start, r.end) for r in usage]
    length = union_seconds(intervals)
    if intervals:
        assert length <= seconds(max(e for _, e in intervals) - min(s for s, _ in intervals))
    assert length <= sum((seconds(e - s) for s, e in intervals), D(0))
    merged = union(intervals)
    assert all(a[1] < b[0] for a, b in pairwise(merged))


def _hourly_card_line(alloc_start, alloc_end=None) -> LineInput:
    """Card 1 at 10.00 an hour (6 % VAT) from 1 November (+08:00), allocated over the given span."""
    from datetime import timezone

    card = CardRef(1, 10, Decimal("312"))
    return LineInput(
        line_id=1,
        resource="card",
        term="hourly",
        quantity=Decimal(1),
        list_unit_price=Decimal("10.00"),
        tax_rate=Decimal("0.06"),
        start=datetime(2026, 11, 1, tzinfo=timezone(timedelta(hours=8))),
        allocations=(Allocation.card(card, alloc_start, alloc_end),),
    )


def test_card_usage_rates_exactly_like_the_same_records():
    from datetime import UTC, timezone

    from apps.contracts.pricing import CardUsage

    plus8 = timezone(timedelta(hours=8))
    base = datetime(2026, 11, 3, tzinfo=UTC)
    pairs = [(base, base + timedelta(hours=3)), (base + timedelta(hours=2), base + timedelta(hours=5))]
    line = _hourly_card_line(datetime(2026, 11, 1, tzinfo=plus8))
    records = [UsageRecord(s, e, card_id=1) for s, e in pairs]
    as_records = rate_line(line, Period(2026, 11), records, prices_include_tax=True)
    as_card_usage = rate_line(line, Period(2026, 11), [CardUsage(1, tuple(pairs))], prices_include_tax=True)
    assert as_card_usage == as_records
    assert as_card_usage.quantity == Decimal("5.000000")
    with pytest.raises(ValueError, match="must not end before"):
        CardUsage(1, ((base, base - timedelta(seconds=1)),))
    with pytest.raises(ValueError, match="timezone-aware"):
        CardUsage(1, ((datetime(2026, 11, 3), datetime(2026, 11, 4)),))


def test_card_micros_rate_exactly_like_the_same_records_to_the_microsecond():
    """Billing's bulk form (epoch microseconds from SQL) against records: the same charge, also
    for intervals that cross the allocation's start and end and are off by one microsecond."""
    from datetime import UTC, timezone

    from apps.contracts.pricing import CardMicros, epoch_micros

    plus8 = timezone(timedelta(hours=8))
    alloc_start = datetime(2026, 11, 5, 9, tzinfo=plus8)
    alloc_end = datetime(2026, 11, 20, 9, tzinfo=plus8)
    one = timedelta(microseconds=1)
    pairs = [
        (alloc_start - timedelta(hours=2), alloc_start + timedelta(hours=1) + one),  # crosses the start
        (datetime(2026, 11, 10, tzinfo=UTC), datetime(2026, 11, 10, 7, 30, tzinfo=UTC) - one),
        (datetime(2026, 11, 10, 6, tzinfo=UTC), datetime(2026, 11, 10, 8, tzinfo=UTC)),  # overlaps
        (alloc_end - timedelta(minutes=30), alloc_end + timedelta(hours=4)),  # crosses the end
    ]
    line = _hourly_card_line(alloc_start, alloc_end)
    records = [UsageRecord(s, e, card_id=1) for s, e in pairs]
    as_records = rate_line(line, Period(2026, 11), records, prices_include_tax=True)
    micros = CardMicros(1, [epoch_micros(s) for s, _ in pairs], [epoch_micros(e) for _, e in pairs])
    as_micros = rate_line(line, Period(2026, 11), [micros], prices_include_tax=True)
    assert as_micros == as_records
    # 1 h + 1 µs after the start, 8 h less 1 µs on the 10th, 30 min before the end: 9.5 h
    assert as_micros.quantity == Decimal("9.500000")
    assert as_micros.amount == Decimal("95.00")
    assert epoch_micros(datetime(1970, 1, 1, 8, tzinfo=plus8)) == 0
    with pytest.raises(ValueError, match="must not end before"):
        CardMicros(1, [10], [9])

    # as a billing run reads them: merged (disjoint), added up when inside the allocation, clipped
    # when not — the same charge either way
    merged = union(pairs)
    disjoint = CardMicros(1, [epoch_micros(s) for s, _ in merged], [epoch_micros(e) for _, e in merged], True)
    assert rate_line(line, Period(2026, 11), [disjoint], prices_include_tax=True) == as_records
    inside = [(datetime(2026, 11, 10, tzinfo=UTC), datetime(2026, 11, 10, 7, 30, tzinfo=UTC) - one)]
    inside_micros = CardMicros(1, [epoch_micros(inside[0][0])], [epoch_micros(inside[0][1])], disjoint=True)
    added_up = rate_line(line, Period(2026, 11), [inside_micros], prices_include_tax=True)
    assert added_up == rate_line(
        line, Period(2026, 11), [UsageRecord(*inside[0], card_id=1)], prices_include_tax=True
    )
    assert added_up.quantity == Decimal("7.500000")  # 7.5 h less 1 µs, rounded to the quantity's places
    # two disjoint pieces of one card (billed and late usage together) are unioned, not added
    twice = rate_line(line, Period(2026, 11), [inside_micros, inside_micros], prices_include_tax=True)
    assert twice == added_up


def test_a_card_total_rates_like_the_intervals_it_sums_and_is_refused_where_they_need_clipping():
    """Billing reads a card's merged usage summed up in SQL when its line and allocation cover the
    whole month (docs/rating.md#usage-summed-up-in-sql): the same charge as the intervals; where
    the allocation would clip them, the engine refuses the total instead of billing it whole."""
    from datetime import timezone

    from apps.contracts.pricing import CardMicros, CardTotal, epoch_micros

    plus8 = timezone(timedelta(hours=8))
    merged = [
        (datetime(2026, 11, 3, 8, tzinfo=plus8), datetime(2026, 11, 3, 16, tzinfo=plus8)),  # 8 h
        (datetime(2026, 11, 20, 9, tzinfo=plus8), datetime(2026, 11, 20, 10, 45, tzinfo=plus8)),  # 1.75 h
    ]
    starts, ends = [epoch_micros(s) for s, _ in merged], [epoch_micros(e) for _, e in merged]
    total = CardTotal(1, starts[0], ends[-1], sum(ends) - sum(starts))
    whole_month = _hourly_card_line(datetime(2026, 11, 1, tzinfo=plus8))
    as_intervals = rate_line(
        whole_month, Period(2026, 11), [CardMicros(1, starts, ends, True)], prices_include_tax=True
    )
    as_total = rate_line(whole_month, Period(2026, 11), [total], prices_include_tax=True)
    assert as_total == as_intervals
    assert (as_total.quantity, as_total.amount) == (Decimal("9.750000"), Decimal("97.50"))
    # allocated from the 10th: the first interval falls outside, which a total cannot tell
    from_the_10th = _hourly_card_line(datetime(2026, 11, 10, tzinfo=plus8))
    with pytest.raises(ValueError, match="summed up, but the line or its allocations need it clipped"):
        rate_line(from_the_10th, Period(2026, 11), [total], prices_include_tax=True)
    with pytest.raises(ValueError, match="must fit between its first and last"):
        CardTotal(1, 0, 10, 11)
