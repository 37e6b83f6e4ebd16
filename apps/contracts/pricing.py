"""Rating engine: contract lines and usage in, priced lines out (docs/rating.md). Pure: no Django, no ORM.

Inputs are frozen dataclasses that billing fills from set-based queries (all lines of a run with
their allocations and cards, all usage records of those cards and servers in the window); outputs
are frozen dataclasses of ``Decimal``. Nothing reads the wall clock; the billing time zone is a
parameter (default ``Asia/Shanghai``).

Rules (docs/rating.md), effective unit price = list × (1 − term discount) × (1 − negotiated discount):

1. ``hourly`` lines are metered in arrears. Billable time = length of the **union** of usage
   intervals, clipped to the window, to the line's ``[start, end)`` and to each allocation's
   interval. ``card``: Σ per allocated card; ``server``: Σ per allocated server of the union of the
   server's records and its cards' records; ``p_unit``: Σ per allocated card × card TFLOPS / 1000.
   A server record counts for each of its cards. Usage on cards that are not allocated to the
   line (or outside the allocation) is not rated here; the caller reports it as unrated usage.
   The line's own ``quantity`` is not used: the allocations say what was leased.
2. ``daily`` / ``monthly`` / ``yearly`` lines are recurring, in arrears: price × quantity ×
   active seconds / unit seconds, the unit being 86,400 s, the month (its real length in the
   billing zone), or for yearly ``monthly_instalments`` the month with the price / 12. Allocations
   and usage play no part. ``upfront`` yearly lines bill price × quantity once per contract
   year, on the window holding the year's start (anniversaries of the line start in the billing
   zone; a Feb 29 start falls on Feb 28 in other years). A year cut short by the line's end is
   still billed whole at its start; a refund for the unused part is a credit note (the issued
   invoice never changes). Years starting on or after the line's end are not billed.
3. A contract with a minimum monthly amount whose rated lines (sum of rounded amounts, same tax
   basis) fall short of the minimum × active seconds / month seconds gets a
   ``minimum_commitment_shortfall`` line for the difference.
5. Late usage for an invoiced period bills only the time not already billed:
   Σ per card or server (|∪ all ∪ billed| − |∪ billed|), same clipping; with graduated tiers, the
   marginal price of that time on top of what was billed.

Decisions: time is exact to the microsecond (integer microseconds, never rounded to seconds);
instants are normalised to UTC on input. Graduated tiers apply to the metered quantity of the
window for hourly lines and to the line quantity (cards, servers, P) for recurring lines. Each
line is rounded once, half up, from exact intermediate values (multiply first, divide last).
"""

from __future__ import annotations

import calendar
import functools
import operator
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, fields, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from itertools import pairwise
from typing import Literal
from zoneinfo import ZoneInfo

from apps.core.money import ZERO, TaxSplit, effective_unit_price, round_money, round_unit_price, split_tax
from apps.core.periods import DEFAULT_BILLING_TIME_ZONE, Period, periods_between, prorate
from apps.core.units import TFLOPS_PER_P

Resource = Literal["card", "server", "p_unit"]
Term = Literal["hourly", "daily", "monthly", "yearly"]
YearlyBilling = Literal["monthly_instalments", "upfront"]
ChargeKind = Literal["usage", "recurring", "minimum_commitment_shortfall", "late_usage"]
Interval = tuple[datetime, datetime]
Bound = tuple[datetime, datetime | None]

MICROS_PER_SECOND = 1_000_000
MICROS_PER_HOUR = 3600 * MICROS_PER_SECOND
MICROS_PER_DAY = 86400 * MICROS_PER_SECOND
SHORTFALL_UNIT = "item"
_RESOURCES = ("card", "server", "p_unit")
_TERMS = ("hourly", "daily", "monthly", "yearly")
_YEARLY_BILLINGS = ("monthly_instalments", "upfront")
_UNIT_SUFFIX = {"hourly": "hour", "daily": "day", "monthly": "month", "yearly": "year"}


def _utc(instant: datetime) -> datetime:
    if instant.tzinfo is UTC:
        return instant
    if instant.tzinfo is None or instant.utcoffset() is None:
        raise ValueError("datetimes must be timezone-aware")
    return instant.astimezone(UTC)


def _utc_or_none(instant: datetime | None) -> datetime | None:
    return None if instant is None else _utc(instant)


def _decimal(name: str, value: object) -> None:
    if not isinstance(value, Decimal):
        raise TypeError(f"{name} must be a Decimal, got {type(value).__name__}")


def _set(obj: object, name: str, value: object) -> None:
    object.__setattr__(obj, name, value)  # normalising a frozen dataclass in __post_init__


def _zone(tz: str | ZoneInfo) -> ZoneInfo:
    return tz if isinstance(tz, ZoneInfo) else ZoneInfo(tz)


# --- intervals -------------------------------------------------------------------------------


def micros_between(start: datetime, end: datetime) -> int:
    """Exact elapsed microseconds from ``start`` to ``end`` (UTC arithmetic, DST-safe)."""
    delta = _utc(end) - _utc(start)
    return (delta.days * 86400 + delta.seconds) * MICROS_PER_SECOND + delta.microseconds


EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_MICRO = timedelta(microseconds=1)


def epoch_micros(instant: datetime) -> int:
    """``instant`` as exact microseconds since the Unix epoch (UTC)."""
    return (_utc(instant) - EPOCH) // _ONE_MICRO


def clip(interval: Interval, *bounds: Bound) -> Interval | None:
    """``interval`` ∩ every ``[start, end)`` bound (``end=None``: open-ended); None when empty."""
    lo, hi = interval
    for start, end in bounds:
        lo = max(lo, start)
        if end is not None:
            hi = min(hi, end)
    return (lo, hi) if lo < hi else None


def union(intervals: Iterable[Interval]) -> list[Interval]:
    """Disjoint, sorted intervals covering the same instants (overlapping or touching merge)."""
    merged: list[Interval] = []
    for start, end in sorted((_utc(s), _utc(e)) for s, e in intervals):
        if end <= start:
            continue
        if merged and start <= merged[-1][1]:
            if end > merged[-1][1]:
                merged[-1] = (merged[-1][0], end)
        else:
            merged.append((start, end))
    return merged


def _union_micros(intervals: Iterable[Interval]) -> int:
    """|∪ intervals| in µs for aware datetimes."""
    return _union_length((epoch_micros(start), epoch_micros(end)) for start, end in intervals)


def _union_length(intervals: Iterable[tuple[int, int]]) -> int:
    """|∪ intervals| for intervals in epoch microseconds (the hot path of metered rating)."""
    total = 0
    run_start = run_end = None
    for start, end in sorted(intervals):
        if end <= start:
            continue
        if run_end is not None and start <= run_end:
            if end > run_end:
                run_end = end
        else:
            if run_end is not None:
                total += run_end - run_start
            run_start, run_end = start, end
    if run_end is not None:
        total += run_end - run_start
    return total


def union_seconds(intervals: Iterable[Interval]) -> Decimal:
    """Length of the union of half-open intervals, in seconds, exact to the microsecond."""
    return Decimal(_union_micros(intervals)) / MICROS_PER_SECOND


# --- inputs ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Window:
    """A rating window ``[start, end)``; a billing period is ``Window.of(period, tz)``."""

    start: datetime
    end: datetime

    def __post_init__(self) -> None:
        _set(self, "start", _utc(self.start))
        _set(self, "end", _utc(self.end))
        if self.end <= self.start:
            raise ValueError("window end must be after its start")

    @classmethod
    def of(cls, period: Period | Window, tz: str | ZoneInfo = DEFAULT_BILLING_TIME_ZONE) -> Window:
        if isinstance(period, Window):
            return period
        return cls(*period.bounds(_zone(tz)))


@dataclass(frozen=True, slots=True)
class CardRef:
    """One GPU card: its server (so server records count for it) and its dense FP16 TFLOPS."""

    card_id: int
    server_id: int | None
    tflops: Decimal

    def __post_init__(self) -> None:
        _decimal("tflops", self.tflops)


@dataclass(frozen=True, slots=True)
class Allocation:
    """Cards or one whole server serving a line over ``[start, end)``.

    A card allocation has ``server_id=None`` and one card; a server allocation has the server's
    id and all of its cards (build them with ``Allocation.card`` / ``Allocation.server``).
    """

    start: datetime
    end: datetime | None
    cards: tuple[CardRef, ...]
    server_id: int | None = None

    def __post_init__(self) -> None:
        _set(self, "start", _utc(self.start))
        _set(self, "end", _utc_or_none(self.end))
        if self.server_id is None and len(self.cards) != 1:
            raise ValueError("a card allocation has exactly one card")
        if self.server_id is not None and any(c.server_id != self.server_id for c in self.cards):
            raise ValueError("a server allocation lists only that server's cards")

    @classmethod
    def card(cls, card: CardRef, start: datetime, end: datetime | None = None) -> Allocation:
        return cls(start=start, end=end, cards=(card,))

    @classmethod
    def server(
        cls, server_id: int, cards: Sequence[CardRef], start: datetime, end: datetime | None = None
    ) -> Allocation:
        return cls(start=start, end=end, cards=tuple(cards), server_id=server_id)


@dataclass(frozen=True, slots=True)
class UsageRecord:
    """``[start, end)`` of a card (``card_id``) or of a whole server (``server_id``), not both."""

    start: datetime
    end: datetime
    card_id: int | None = None
    server_id: int | None = None

    def __post_init__(self) -> None:
        _set(self, "start", _utc(self.start))
        _set(self, "end", _utc(self.end))
        if (self.card_id is None) == (self.server_id is None):
            raise ValueError("a usage record is for one card or one server")
        if self.end < self.start:
            raise ValueError("a usage record must not end before it starts")


@dataclass(frozen=True, slots=True)
class CardUsage:
    """One card's usage as ``[start, end)`` pairs: the same as one ``UsageRecord`` per pair.

    The bulk form for billing, which reads many intervals per card at once; the engine treats
    the pairs exactly like records of that card (union, clipping, server expansion all apply).
    """

    card_id: int
    intervals: tuple[Interval, ...]

    def __post_init__(self) -> None:
        for start, end in self.intervals:
            if start.tzinfo is None or end.tzinfo is None:
                raise ValueError("datetimes must be timezone-aware")
            if end < start:
                raise ValueError("a usage interval must not end before it starts")


@dataclass(frozen=True, slots=True)
class CardMicros:
    """One card's usage as ``[starts[i], ends[i])`` in epoch microseconds (UTC): ``CardUsage`` as
    billing reads it from SQL, in bulk, without a datetime per instant; rated exactly alike."""

    card_id: int
    starts: Sequence[int]
    ends: Sequence[int]
    # True when no two intervals overlap or touch, as PostgreSQL's range_agg returns them: the
    # engine may then add up their lengths instead of sorting and merging them (not checked)
    disjoint: bool = False

    def __post_init__(self) -> None:
        if len(self.starts) != len(self.ends):
            raise ValueError("a usage interval needs a start and an end")
        if any(map(int.__gt__, self.starts, self.ends)):
            raise ValueError("a usage interval must not end before it starts")


@dataclass(frozen=True, slots=True)
class CardTotal:
    """One card's merged usage summed up in SQL: ``micros`` of usage, all of it inside
    ``[first, last)`` (epoch microseconds). The form of a billing run for a card whose line and
    allocation cover the whole period: nothing needs clipping, so the engine adds the total up
    (docs/rating.md#usage-summed-up-in-sql). Rated like the intervals it sums; the engine refuses
    it where it would have to clip or union it with other usage of the card."""

    card_id: int
    first: int
    last: int
    micros: int

    def __post_init__(self) -> None:
        if self.micros < 0 or self.micros > self.last - self.first:
            raise ValueError("a usage total must fit between its first and last instant")


@dataclass(frozen=True, slots=True)
class Tier:
    """Graduated tier: quantity up to ``up_to`` (None: no limit) at ``list_unit_price``."""

    up_to: Decimal | None
    list_unit_price: Decimal


@dataclass(frozen=True, slots=True)
class LineInput:
    """A contract line as rating needs it. ``tax_rate`` is exact, e.g. ``Decimal("0.06")``.

    ``start``/``end`` None take the contract's in ``rate_contract``; ``rate_line`` needs ``start``.
    ``tiers``, when given, replace ``list_unit_price``; ascending ``up_to``, the last one None.
    """

    line_id: int
    resource: Resource
    term: Term
    quantity: Decimal
    list_unit_price: Decimal
    tax_rate: Decimal
    term_discount_percent: Decimal = ZERO
    discount_percent: Decimal = ZERO
    start: datetime | None = None
    end: datetime | None = None
    yearly_billing: YearlyBilling = "monthly_instalments"
    tiers: tuple[Tier, ...] = ()
    allocations: tuple[Allocation, ...] = ()

    def __post_init__(self) -> None:
        if self.resource not in _RESOURCES or self.term not in _TERMS:
            raise ValueError(f"unknown resource/term {self.resource}/{self.term}")
        if self.yearly_billing not in _YEARLY_BILLINGS:
            raise ValueError(f"unknown yearly billing {self.yearly_billing}")
        for name in ("quantity", "list_unit_price", "tax_rate", "term_discount_percent", "discount_percent"):
            _decimal(name, getattr(self, name))
        if self.quantity < 0 or self.list_unit_price < 0 or self.tax_rate < 0:
            raise ValueError("quantity, price and tax rate must not be negative")
        if not (0 <= self.term_discount_percent <= 100 and 0 <= self.discount_percent <= 100):
            raise ValueError("discounts are percentages from 0 to 100")
        _set(self, "start", _utc_or_none(self.start))
        _set(self, "end", _utc_or_none(self.end))
        if self.tiers:
            limits = [ZERO, *(t.up_to for t in self.tiers[:-1])]
            if self.tiers[-1].up_to is not None or None in limits:
                raise ValueError("the last tier, and only it, is unlimited")
            for value in [*limits, *(t.list_unit_price for t in self.tiers)]:
                _decimal("tier", value)
            if any(lower >= upper for lower, upper in pairwise(limits)):
                raise ValueError("tier limits must be positive and ascending")


@dataclass(frozen=True, slots=True)
class ContractInput:
    """A contract's rating inputs. ``minimum_tax_rate`` None: the highest rate of its lines."""

    contract_id: int
    prices_include_tax: bool
    start: datetime
    end: datetime | None = None
    minimum_monthly_amount: Decimal | None = None
    minimum_tax_rate: Decimal | None = None
    lines: tuple[LineInput, ...] = ()

    def __post_init__(self) -> None:
        _set(self, "start", _utc(self.start))
        _set(self, "end", _utc_or_none(self.end))
        for name in ("minimum_monthly_amount", "minimum_tax_rate"):
            if getattr(self, name) is not None:
                _decimal(name, getattr(self, name))


# --- outputs ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LineCharge:
    """One priced line. ``amount`` is rounded once, on the contract's tax basis.

    ``quantity`` is rounded to 6 places for display; ``exact_quantity`` and the unit prices are
    exact (to ``Decimal`` precision where a division does not terminate, e.g. yearly / 12). For a
    tiered line the unit prices are averages (exact amount / exact quantity).
    """

    line_id: int | None
    kind: ChargeKind
    quantity: Decimal
    exact_quantity: Decimal
    unit: str
    list_unit_price: Decimal
    unit_price: Decimal
    list_amount: Decimal
    discount_amount: Decimal
    amount: Decimal
    tax: TaxSplit
    tax_rate: Decimal
    service_start: datetime
    service_end: datetime

    @property
    def tax_amount(self) -> Decimal:
        return self.tax.tax

    @property
    def net_amount(self) -> Decimal:
        return self.tax.net


_charge_after_id = operator.attrgetter(*[f.name for f in fields(LineCharge)][1:])  # all but line_id


@dataclass(frozen=True, slots=True)
class ContractCharges:
    """A contract's charges for a window; ``total_amount`` = Σ rounded lines incl. shortfall."""

    contract_id: int
    service_start: datetime
    service_end: datetime
    lines: tuple[LineCharge, ...]
    shortfall: LineCharge | None
    rated_amount: Decimal  # Σ line amounts before the shortfall
    minimum_amount: Decimal | None  # the prorated minimum, rounded (None: no commitment)
    total_amount: Decimal

    @property
    def all_lines(self) -> tuple[LineCharge, ...]:
        return (*self.lines, self.shortfall) if self.shortfall else self.lines

    @property
    def tax_amount(self) -> Decimal:
        return sum((line.tax.tax for line in self.all_lines), ZERO)

    @property
    def net_amount(self) -> Decimal:
        return sum((line.tax.net for line in self.all_lines), ZERO)


# --- pricing ---------------------------------------------------------------------------------


def _price_tiers(line: LineInput) -> tuple[tuple[Decimal | None, Decimal, Decimal], ...]:
    """(up to, list price, effective price) per tier; a line without tiers is one unlimited tier."""
    return _priced_tiers(line.tiers, line.list_unit_price, line.term_discount_percent, line.discount_percent)


@functools.lru_cache(maxsize=4096)
def _priced_tiers(
    tiers: tuple[Tier, ...], list_unit_price: Decimal, term_discount: Decimal, discount: Decimal
) -> tuple[tuple[Decimal | None, Decimal, Decimal], ...]:
    # a pure function of its (immutable) arguments, asked for several times per line and shared by
    # the many lines of one price list: a billing run computes each effective price once
    return tuple(
        (t.up_to, t.list_unit_price, effective_unit_price(t.list_unit_price, term_discount, discount))
        for t in (tiers or (Tier(None, list_unit_price),))
    )


def _graduated(line: LineInput, scaled: Decimal, scale: Decimal | int) -> tuple[Decimal, Decimal]:
    """(list, effective) cost × ``scale`` of quantity ``scaled / scale`` through the tiers."""
    list_total = net_total = lower = ZERO
    for up_to, list_price, price in _price_tiers(line):
        upper = scaled if up_to is None else min(scaled, up_to * scale)
        if upper <= lower:
            break
        list_total += (upper - lower) * list_price
        net_total += (upper - lower) * price
        lower = upper
    return list_total, net_total


def _unit(line: LineInput) -> str:
    prefix = "p" if line.resource == "p_unit" else line.resource
    if line.term == "yearly" and line.yearly_billing == "monthly_instalments":
        return f"{prefix}_month"
    return f"{prefix}_{_UNIT_SUFFIX[line.term]}"


def _charge(
    line: LineInput,
    kind: ChargeKind,
    quantity: Decimal,
    list_exact: Decimal,
    net_exact: Decimal,
    service: Interval,
    *,
    prices_include_tax: bool,
    price_divisor: int = 1,
) -> LineCharge:
    """Round once and assemble the line; unit prices are per displayed unit."""
    if line.tiers and quantity > 0:
        list_price, price = list_exact / quantity, net_exact / quantity
    else:
        _, first_list, first_price = _price_tiers(line)[0]
        list_price, price = first_list / price_divisor, first_price / price_divisor
    amount, list_amount = round_money(net_exact), round_money(list_exact)
    return LineCharge(
        line_id=line.line_id,
        kind=kind,
        quantity=round_unit_price(quantity),  # 6 places, half up: the display quantum
        exact_quantity=quantity,
        unit=_unit(line),
        list_unit_price=list_price,
        unit_price=price,
        list_amount=list_amount,
        discount_amount=list_amount - amount,
        amount=amount,
        tax=split_tax(amount, line.tax_rate, prices_include_tax=prices_include_tax),
        tax_rate=line.tax_rate,
        service_start=service[0],
        service_end=service[1],
    )


def _line_bound(line: LineInput) -> Bound:
    if line.start is None:
        raise ValueError(f"line {line.line_id} has no start (rate_contract fills it from the contract)")
    return line.start, line.end


# --- rule 1: metered ------------------------------------------------------------------------


def _metered_intervals(
    line: LineInput, window: Window, usage: Iterable[UsageRecord | CardUsage | CardMicros | CardTotal]
) -> dict[tuple[str, int], list]:
    """Per allocated card (server for server lines): [weight, clipped intervals in epoch
    microseconds not yet unioned, microseconds already added up]. A unit whose only usage is one
    disjoint ``CardMicros`` inside its bounds, in one allocation, is added up at once (the bulk
    case of a billing run); anything else is clipped and unioned."""
    by_card: dict[int, list[tuple[int, int]]] = defaultdict(list)
    by_server: dict[int, list[tuple[int, int]]] = defaultdict(list)
    bulk: dict[int, list[CardMicros | CardTotal]] = defaultdict(list)
    for record in usage:
        if isinstance(record, CardTotal):
            bulk[record.card_id].append(record)
            continue
        if isinstance(record, CardMicros):
            if record.disjoint:
                bulk[record.card_id].append(record)
            else:
                by_card[record.card_id].extend(zip(record.starts, record.ends, strict=True))
            continue
        if isinstance(record, CardUsage):
            by_card[record.card_id].extend((epoch_micros(s), epoch_micros(e)) for s, e in record.intervals)
            continue
        target = by_card[record.card_id] if record.card_id is not None else by_server[record.server_id]
        target.append((epoch_micros(record.start), epoch_micros(record.end)))
    keyed_by_alloc = []
    allocations_of: dict[tuple[str, int], int] = defaultdict(int)
    for alloc in line.allocations:
        bounds = clip((window.start, window.end), _line_bound(line), (alloc.start, alloc.end))
        if bounds is not None:
            bounds = (epoch_micros(bounds[0]), epoch_micros(bounds[1]))
        if line.resource == "server":
            if alloc.server_id is None:
                raise ValueError(f"server line {line.line_id} must be allocated whole servers")
            raw = by_server.get(alloc.server_id, []) + [
                i for c in alloc.cards for i in by_card.get(c.card_id, [])
            ]
            pieces = [m for c in alloc.cards for m in bulk.get(c.card_id, ())]
            keyed = [(("server", alloc.server_id), Decimal(1), raw, pieces)]
        else:
            keyed = [
                (
                    ("card", card.card_id),
                    card.tflops if line.resource == "p_unit" else Decimal(1),
                    by_card.get(card.card_id, [])
                    + (by_server.get(card.server_id, []) if card.server_id is not None else []),
                    bulk.get(card.card_id, []),
                )
                for card in alloc.cards
            ]
        for key, *_ in keyed:
            allocations_of[key] += 1
        keyed_by_alloc.append((bounds, keyed))
    units: dict[tuple[str, int], list] = {}
    for bounds, keyed in keyed_by_alloc:
        for key, weight, raw, pieces in keyed:
            unit = units.setdefault(key, [weight, [], 0])
            if bounds is None:
                continue
            if not raw and len(pieces) == 1 and allocations_of[key] == 1:
                piece = pieces[0]
                if isinstance(piece, CardTotal):
                    if piece.first >= bounds[0] and piece.last <= bounds[1]:
                        unit[2] += piece.micros  # summed up in SQL, inside: just add
                        continue
                else:
                    if not piece.starts:
                        continue
                    if min(piece.starts) >= bounds[0] and max(piece.ends) <= bounds[1]:
                        unit[2] += sum(piece.ends) - sum(piece.starts)  # disjoint, inside: just add
                        continue
            if any(isinstance(piece, CardTotal) for piece in pieces):
                raise ValueError(
                    f"line {line.line_id}: the usage of {key[0]} {key[1]} was summed up, but the line or its "
                    "allocations need it clipped or unioned: read its intervals"
                )
            raw = raw + [i for piece in pieces for i in zip(piece.starts, piece.ends, strict=True)]
            if not raw:
                continue
            if min(raw)[0] >= bounds[0] and max(end for _, end in raw) <= bounds[1]:
                unit[1].extend(raw)  # all inside the bounds already: nothing to clip
            else:
                unit[1].extend(c for i in raw if (c := clip(i, bounds)) is not None)
    return units


def _metered_scaled(line: LineInput, window: Window, usage: Iterable[UsageRecord]) -> Decimal:
    """Σ weight × |∪ intervals| in µs; quantity = this / ``_metered_scale``."""
    units = _metered_intervals(line, window, usage).values()
    return sum((weight * (_union_length(intervals) + added) for weight, intervals, added in units), ZERO)


def _metered_scale(line: LineInput) -> Decimal | int:
    return MICROS_PER_HOUR * (TFLOPS_PER_P if line.resource == "p_unit" else 1)


def _metered_charge(
    line: LineInput,
    window: Window,
    kind: ChargeKind,
    total: Decimal,
    before: Decimal,
    *,
    prices_include_tax: bool,
) -> LineCharge | None:
    """Charge for metered quantity ``total`` on top of ``before`` (already billed) through the tiers."""
    service = clip((window.start, window.end), _line_bound(line))
    if service is None:
        return None
    scale = _metered_scale(line)
    list_total, net_total = _graduated(line, total, scale)
    list_before, net_before = _graduated(line, before, scale)
    return _charge(
        line,
        kind,
        (total - before) / scale,
        (list_total - list_before) / scale,
        (net_total - net_before) / scale,
        service,
        prices_include_tax=prices_include_tax,
    )


def rate_late_usage(
    line: LineInput,
    period: Period | Window,
    usage: Iterable[UsageRecord],
    already_billed: Iterable[UsageRecord],
    *,
    prices_include_tax: bool,
    tz: str | ZoneInfo = DEFAULT_BILLING_TIME_ZONE,
) -> LineCharge | None:
    """``late_usage`` charge of an hourly line for an invoiced period: only time not yet billed.

    ``already_billed``: the records rated on the issued invoice; ``usage`` may include them or not.
    Per card (server): |∪ usage ∪ billed| − |∪ billed|, clipped as in rule 1. None: nothing new.
    """
    if line.term != "hourly":
        raise ValueError("only hourly lines have usage")
    window, billed = Window.of(period, tz), list(already_billed)
    total = _metered_scaled(line, window, [*usage, *billed])
    before = _metered_scaled(line, window, billed)
    if total <= before:
        return None
    return _metered_charge(line, window, "late_usage", total, before, prices_include_tax=prices_include_tax)


# --- rule 2: recurring ----------------------------------------------------------------------


def _month_pieces(active: Interval, zone: ZoneInfo) -> list[tuple[int, int]]:
    """(active µs, month µs) for each billing month that ``active`` touches."""
    pieces = []
    for period in periods_between(active[0], active[1], zone):
        month_start, month_end, month_micros = _month_span(period, zone)
        piece = clip(active, (month_start, month_end))
        if piece is not None:
            pieces.append((micros_between(*piece), month_micros))
    return pieces


@functools.lru_cache(maxsize=1024)
def _month_span(period: Period, zone: ZoneInfo) -> tuple[datetime, datetime, int]:
    """A billing month's bounds in UTC and its length in µs (every recurring line asks)."""
    month_start, month_end = (_utc(b) for b in period.bounds(zone))
    return month_start, month_end, micros_between(month_start, month_end)


def _anniversary(start: datetime, years: int, zone: ZoneInfo) -> datetime:
    """``start`` + ``years`` calendar years in ``zone``; Feb 29 → Feb 28 in common years."""
    local = start.astimezone(zone)
    year = local.year + years
    day = min(local.day, calendar.monthrange(year, local.month)[1])
    return _utc(local.replace(year=year, day=day, tzinfo=zone))


def _upfront_years(line: LineInput, window: Window, zone: ZoneInfo) -> list[int]:
    """Contract years (0, 1, …) of an upfront line that start inside the window and the line."""
    start, end = _line_bound(line)
    years = []
    k = max(0, window.start.astimezone(zone).year - start.astimezone(zone).year - 1)
    while (year_start := _anniversary(start, k, zone)) < window.end and (end is None or year_start < end):
        if year_start >= window.start:
            years.append(k)
        k += 1
    return years


# Recurring charges already computed, by everything but the line's id (see _rate_recurring).
_RECURRING_CHARGES: dict[tuple, LineCharge | None] = {}
_RECURRING_CHARGES_MAX = 4096


def _rate_recurring(
    line: LineInput, window: Window, zone: ZoneInfo, *, prices_include_tax: bool
) -> LineCharge | None:
    """The recurring charge of ``line``: computed once per distinct (prices, quantity, active span,
    window) and given the line's id, since alike lines rate alike (docs/rating.md#alike-lines).

    A line running the whole window is active over the window whatever its start, so the lines of
    one price list, quantity and term share one computation; an upfront yearly line's years come
    from its own dates, which are part of its key.
    """
    upfront = line.term == "yearly" and line.yearly_billing == "upfront"
    if upfront:
        span: Bound | None = _line_bound(line)
    else:
        span = clip((window.start, window.end), _line_bound(line))
        if span is None:
            return None
    key = (
        line.resource,
        line.term,
        line.yearly_billing,
        line.quantity,
        line.list_unit_price,
        line.tax_rate,
        line.term_discount_percent,
        line.discount_percent,
        line.tiers,
        span,
        window.start,
        window.end,
        zone,
        prices_include_tax,
    )
    try:
        charge = _RECURRING_CHARGES[key]
    except KeyError:
        charge = _recurring_charge(line, window, zone, prices_include_tax=prices_include_tax)
        if len(_RECURRING_CHARGES) >= _RECURRING_CHARGES_MAX:
            _RECURRING_CHARGES.clear()
        _RECURRING_CHARGES[key] = charge
    if charge is None or charge.line_id == line.line_id:
        return charge
    return LineCharge(line.line_id, *_charge_after_id(charge))


def _recurring_charge(
    line: LineInput, window: Window, zone: ZoneInfo, *, prices_include_tax: bool
) -> LineCharge | None:
    """Pieces (active µs, unit µs) × price / ``per_unit``: a day, the month, the month with
    price / 12 (yearly instalments), or one whole year per anniversary (yearly upfront)."""
    per_unit = 1
    if line.term == "yearly" and line.yearly_billing == "upfront":
        years = _upfront_years(line, window, zone)
        if not years:
            return None
        start, _ = _line_bound(line)
        pieces = [(len(years), 1)]
        active = (_anniversary(start, years[0], zone), _anniversary(start, years[-1] + 1, zone))
    else:
        active = clip((window.start, window.end), _line_bound(line))
        if active is None:
            return None
        daily = line.term == "daily"
        pieces = [(micros_between(*active), MICROS_PER_DAY)] if daily else _month_pieces(active, zone)
        per_unit = 12 if line.term == "yearly" else 1
    list_num, net_num = _graduated(line, line.quantity, 1)
    return _charge(
        line,
        "recurring",
        sum((prorate(line.quantity, part, unit) for part, unit in pieces), ZERO),
        sum((prorate(list_num, part, unit * per_unit) for part, unit in pieces), ZERO),
        sum((prorate(net_num, part, unit * per_unit) for part, unit in pieces), ZERO),
        active,
        prices_include_tax=prices_include_tax,
        price_divisor=per_unit,
    )


# --- public entry points --------------------------------------------------------------------


def rate_line(
    line: LineInput,
    period: Period | Window,
    usage: Iterable[UsageRecord] = (),
    *,
    prices_include_tax: bool,
    tz: str | ZoneInfo = DEFAULT_BILLING_TIME_ZONE,
) -> LineCharge | None:
    """Charge of one line for a period (or any window). None: the line has nothing in the window
    (not active in it; an upfront yearly line with no year starting in it). An hourly line that is
    active but unused gives a zero line. ``usage`` may hold records of other cards: they are ignored.
    """
    window = Window.of(period, tz)
    if line.term == "hourly":
        total = _metered_scaled(line, window, usage)
        return _metered_charge(line, window, "usage", total, ZERO, prices_include_tax=prices_include_tax)
    return _rate_recurring(line, window, _zone(tz), prices_include_tax=prices_include_tax)


def _resolve_line(contract: ContractInput, line: LineInput) -> LineInput:
    """The line's ``[start, end)`` defaulted from, and kept within, the contract's."""
    start = max(line.start or contract.start, contract.start)
    ends = [e for e in (line.end, contract.end) if e is not None]
    end = min(ends) if ends else None
    if start == line.start and end == line.end:
        return line  # already resolved (billing passes resolved lines)
    return replace(line, start=start, end=end)


def _shortfall(
    contract: ContractInput, window: Window, rated: Decimal, zone: ZoneInfo
) -> tuple[LineCharge | None, Decimal | None]:
    minimum = contract.minimum_monthly_amount
    active = clip((window.start, window.end), (contract.start, contract.end))
    if minimum is None or active is None:
        return None, None
    minimum_exact = sum((prorate(minimum, part, month) for part, month in _month_pieces(active, zone)), ZERO)
    amount = round_money(minimum_exact - rated)
    if amount <= 0:
        return None, round_money(minimum_exact)
    rate = contract.minimum_tax_rate
    if rate is None:
        if not contract.lines:
            raise ValueError(
                f"contract {contract.contract_id}: no lines to take the shortfall's tax rate from"
            )
        rate = max(line.tax_rate for line in contract.lines)
    charge = LineCharge(
        line_id=None,
        kind="minimum_commitment_shortfall",
        quantity=Decimal(1),
        exact_quantity=Decimal(1),
        unit=SHORTFALL_UNIT,
        list_unit_price=amount,
        unit_price=amount,
        list_amount=amount,
        discount_amount=ZERO,
        amount=amount,
        tax=split_tax(amount, rate, prices_include_tax=contract.prices_include_tax),
        tax_rate=rate,
        service_start=active[0],
        service_end=active[1],
    )
    return charge, round_money(minimum_exact)


def rate_contract(
    contract: ContractInput,
    period: Period | Window,
    usage: Iterable[UsageRecord] = (),
    *,
    tz: str | ZoneInfo = DEFAULT_BILLING_TIME_ZONE,
) -> ContractCharges:
    """All lines of a contract for a period (or window), plus the minimum-commitment shortfall."""
    window = Window.of(period, tz)
    records = list(usage)
    charges = []
    for line in contract.lines:
        charge = rate_line(
            _resolve_line(contract, line),
            window,
            records,
            prices_include_tax=contract.prices_include_tax,
            tz=tz,
        )
        if charge is not None:
            charges.append(charge)
    rated = sum((c.amount for c in charges), ZERO)
    shortfall, minimum = _shortfall(contract, window, rated, _zone(tz))
    return ContractCharges(
        contract_id=contract.contract_id,
        service_start=window.start,
        service_end=window.end,
        lines=tuple(charges),
        shortfall=shortfall,
        rated_amount=rated,
        minimum_amount=minimum,
        total_amount=rated + (shortfall.amount if shortfall else ZERO),
    )


def rate_contract_late_usage(
    contract: ContractInput,
    period: Period | Window,
    usage: Iterable[UsageRecord],
    already_billed: Iterable[UsageRecord],
    *,
    tz: str | ZoneInfo = DEFAULT_BILLING_TIME_ZONE,
) -> tuple[LineCharge, ...]:
    """``late_usage`` lines of a contract's hourly lines for an already invoiced period."""
    records, billed = list(usage), list(already_billed)
    charges = (
        rate_late_usage(
            _resolve_line(contract, line),
            period,
            records,
            billed,
            prices_include_tax=contract.prices_include_tax,
            tz=tz,
        )
        for line in contract.lines
        if line.term == "hourly"
    )
    return tuple(c for c in charges if c is not None)
