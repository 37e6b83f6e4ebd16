"""Quote: what a draft contract costs, computed by the rating engine (docs/quotes.md).

Two views of the same lines, both rated by ``pricing.rate_line`` (nothing here computes a charge
of its own):

- the **monthly value**: one full calendar month (the contract's first full month), every line as
  if active all month; yearly lines as their monthly instalment, also upfront ones ("monthly
  equivalent");
- the **value over the term**: every calendar month of the contract's term in the billing zone,
  each line clipped to its own ``[start, end)``, so partial first and last months come out as the
  engine prorates them and upfront yearly lines bill their whole year in the month it starts.
  The months are grouped by contract year (year 1 = the first 12 months from the contract start);
  a month that an anniversary cuts in two is rated as two windows, one per year. An open-ended
  contract has no total: its first 12 months are priced instead, labelled as such.

Hourly lines are rated on synthetic usage at the utilisation the account manager expects (default
100 %), for the quantity on the line, through the line's graduated tiers. Provider cost is rated by the same engine at the supply
agreement's price for the same quantity basis (valid on each month's first day), so the margin
compares like with like. Lines, allocations and supply agreements are read once, whatever the
length of the term.
"""

from __future__ import annotations

import calendar
import datetime
from dataclasses import dataclass, field
from decimal import Decimal
from zoneinfo import ZoneInfo

from django.conf import settings

from apps.core.money import ZERO, decimal_text, percent_to_rate, round_money
from apps.core.periods import Period, local_range_text, local_time_text, periods_between
from apps.core.units import TFLOPS_PER_P
from apps.providers.models import SupplyAgreement

from . import pricing
from .models import Contract, ContractLine

HUNDRED = Decimal(100)
OPEN_ENDED_LABEL = "first 12 months 前12个月"
TERM_LABEL = "whole term 合同全期"
QUOTE_VALIDITY_DAYS = 30


@dataclass(frozen=True)
class Figures:
    """Money of one line (or a sum of lines) over some window; ``cost`` None: not known."""

    list_amount: Decimal = ZERO
    term_discount_amount: Decimal = ZERO
    negotiated_discount_amount: Decimal = ZERO
    amount: Decimal = ZERO
    tax_amount: Decimal = ZERO
    net_amount: Decimal = ZERO
    gross_amount: Decimal = ZERO
    cost_amount: Decimal | None = ZERO

    def __add__(self, other: Figures) -> Figures:
        cost = (
            None
            if self.cost_amount is None or other.cost_amount is None
            else self.cost_amount + other.cost_amount
        )
        return Figures(
            list_amount=self.list_amount + other.list_amount,
            term_discount_amount=self.term_discount_amount + other.term_discount_amount,
            negotiated_discount_amount=self.negotiated_discount_amount + other.negotiated_discount_amount,
            amount=self.amount + other.amount,
            tax_amount=self.tax_amount + other.tax_amount,
            net_amount=self.net_amount + other.net_amount,
            gross_amount=self.gross_amount + other.gross_amount,
            cost_amount=cost,
        )

    @property
    def discount_amount(self) -> Decimal:
        return self.term_discount_amount + self.negotiated_discount_amount

    @property
    def margin_amount(self) -> Decimal | None:
        return None if self.cost_amount is None else self.net_amount - self.cost_amount


def _sum(figures) -> Figures:
    total = Figures()
    for item in figures:
        total = total + item
    return total


@dataclass(frozen=True)
class QuoteLine:
    line: ContractLine
    charge: pricing.LineCharge | None
    list_amount: Decimal
    term_discount_amount: Decimal
    negotiated_discount_amount: Decimal
    amount: Decimal
    tax_amount: Decimal
    net_amount: Decimal
    gross_amount: Decimal
    cost_amount: Decimal | None
    margin_amount: Decimal | None


@dataclass(frozen=True)
class TermYear:
    """Contract year ``number`` (1, 2, …): ``[start, end)`` and what every line bills in it."""

    number: int
    start: datetime.datetime
    end: datetime.datetime
    figures: Figures
    by_line: dict[int, Figures]

    @property
    def months(self) -> int:
        return len(periods_between(self.start, self.end, settings.BILLING_TIME_ZONE))


@dataclass(frozen=True)
class TermLine:
    line: ContractLine
    figures: Figures
    years: tuple[Figures, ...]


@dataclass(frozen=True)
class TermValue:
    """The value over ``[start, end)``: the whole term, or the first 12 months when open-ended."""

    start: datetime.datetime
    end: datetime.datetime
    open_ended: bool
    lines: list[TermLine]
    years: list[TermYear]
    months: list[tuple[Period, Figures]]
    total: Figures

    @property
    def label(self) -> str:
        return OPEN_ENDED_LABEL if self.open_ended else TERM_LABEL


@dataclass(frozen=True)
class Quote:
    contract: Contract
    period: Period
    utilisation_percent: Decimal
    lines: list[QuoteLine]
    term: TermValue | None = field(default=None)

    def _sum(self, name: str) -> Decimal:
        return sum((getattr(line, name) for line in self.lines), ZERO)

    @property
    def list_amount(self) -> Decimal:
        return self._sum("list_amount")

    @property
    def discount_amount(self) -> Decimal:
        return self._sum("term_discount_amount") + self._sum("negotiated_discount_amount")

    @property
    def amount(self) -> Decimal:
        return self._sum("amount")

    @property
    def tax_amount(self) -> Decimal:
        return self._sum("tax_amount")

    @property
    def net_amount(self) -> Decimal:
        return self._sum("net_amount")

    @property
    def gross_amount(self) -> Decimal:
        return self._sum("gross_amount")

    @property
    def cost_amount(self) -> Decimal | None:
        costs = [line.cost_amount for line in self.lines]
        return None if any(c is None for c in costs) else sum(costs, ZERO)

    @property
    def margin_amount(self) -> Decimal | None:
        cost = self.cost_amount
        return None if cost is None else self.net_amount - cost


def quote_period(contract: Contract) -> Period:
    """The first full calendar month of the contract in the billing zone."""
    tz = settings.BILLING_TIME_ZONE
    period = Period.containing(contract.start_at, tz)
    start, _ = period.bounds(tz)
    return period if contract.start_at <= start else period.next()


def add_years(start: datetime.datetime, years: int, tz: str | ZoneInfo) -> datetime.datetime:
    """``start`` + ``years`` calendar years in the billing zone (29 February → 28 February), as
    the engine finds the anniversaries of upfront yearly lines."""
    zone = tz if isinstance(tz, ZoneInfo) else ZoneInfo(tz)
    local = start.astimezone(zone)
    year = local.year + years
    day = min(local.day, calendar.monthrange(year, local.month)[1])
    return local.replace(year=year, day=day, tzinfo=zone)


# --- one line through the engine ------------------------------------------------------------


@dataclass(frozen=True)
class _Price:
    list_price: Decimal
    term_discount: Decimal
    discount: Decimal
    quantity: Decimal
    tax_rate: Decimal
    include_tax: bool
    yearly_billing: str = "monthly_instalments"
    tiers: tuple[pricing.Tier, ...] = ()


def _synthetic_line(
    line: ContractLine,
    active: pricing.Interval,
    bounds: tuple[datetime.datetime, datetime.datetime | None],
    utilisation: Decimal,
    price: _Price,
):
    """A line over ``bounds`` and usage that bill ``price.quantity`` over ``active`` at ``utilisation``."""
    tflops = line.gpu_model.fp16_dense_tflops
    quantity = price.quantity
    allocations: list[pricing.Allocation] = []
    usage: list[pricing.UsageRecord] = []
    if line.term == "hourly":
        start = active[0]
        busy_micros = pricing.micros_between(*active) * utilisation
        busy = start + datetime.timedelta(microseconds=int(busy_micros))
        if line.resource == "server":
            for server_id in range(1, int(quantity) + 1):
                cards = [pricing.CardRef(server_id * 100 + slot, server_id, tflops) for slot in range(8)]
                allocations.append(pricing.Allocation.server(server_id, cards, bounds[0]))
                usage.append(pricing.UsageRecord(start, busy, server_id=server_id))
        else:
            # P lines: whole cards of the model, the last one scaled by its fraction of a card.
            cards_needed = quantity if line.resource == "card" else quantity * TFLOPS_PER_P / tflops
            whole = int(cards_needed)
            fractions = [Decimal(1)] * whole + ([cards_needed - whole] if cards_needed > whole else [])
            for index, fraction in enumerate(fractions, start=1):
                allocations.append(pricing.Allocation.card(pricing.CardRef(index, None, tflops), bounds[0]))
                end = start + datetime.timedelta(microseconds=int(busy_micros * fraction))
                if end > start:
                    usage.append(pricing.UsageRecord(start, end, card_id=index))
    rated = pricing.LineInput(
        line_id=line.pk,
        resource=line.resource,
        term=line.term,
        quantity=quantity,
        list_unit_price=price.list_price,
        tax_rate=price.tax_rate,
        term_discount_percent=price.term_discount,
        discount_percent=price.discount,
        start=bounds[0],
        end=bounds[1],
        yearly_billing=price.yearly_billing,
        tiers=price.tiers,
        allocations=tuple(allocations),
    )
    return rated, usage


def _rate(line, window: pricing.Window, bounds, utilisation, price: _Price) -> pricing.LineCharge | None:
    active = pricing.clip((window.start, window.end), bounds)
    if active is None:
        return None
    rated, usage = _synthetic_line(line, active, bounds, utilisation, price)
    return pricing.rate_line(
        rated, window, usage, prices_include_tax=price.include_tax, tz=settings.BILLING_TIME_ZONE
    )


class _Agreements:
    """Every supply price the quote may need, read in one query."""

    def __init__(self, lines: list[ContractLine]) -> None:
        providers = {a.server.provider_id for line in lines for a in line.allocations.all()}
        models = {line.gpu_model_id for line in lines}
        self.by_key: dict[tuple, list[SupplyAgreement]] = {}
        if not providers:
            return
        rows = SupplyAgreement.objects.filter(provider_id__in=providers, gpu_model_id__in=models).order_by(
            "-valid_from"
        )
        for row in rows:
            self.by_key.setdefault((row.provider_id, row.gpu_model_id, row.resource, row.term), []).append(
                row
            )

    def price(self, provider_id: int, line: ContractLine, on: datetime.date) -> Decimal | None:
        for row in self.by_key.get((provider_id, line.gpu_model_id, line.resource, line.term), []):
            if row.valid_from <= on and (row.valid_to is None or row.valid_to >= on):
                return row.cost_unit_price
        return None


def _shares(line: ContractLine) -> dict[int, int]:
    """Weight of each provider in the line's allocated hardware (cards)."""
    shares: dict[int, int] = {}
    for allocation in line.allocations.all():
        weight = 1 if allocation.card_id else allocation.server.card_count
        shares[allocation.server.provider_id] = shares.get(allocation.server.provider_id, 0) + weight
    return shares


def _provider_cost(
    line: ContractLine, window, bounds, utilisation: Decimal, on: datetime.date, agreements: _Agreements
) -> Decimal | None:
    """Cost of the line's allocated hardware at each provider's supply price, same quantity basis."""
    shares = _shares(line)
    if not shares:
        return None
    prices = {provider_id: agreements.price(provider_id, line, on) for provider_id in shares}
    if any(price is None for price in prices.values()):
        return None
    total_weight = sum(shares.values())
    cost = ZERO
    for provider_id, weight in shares.items():
        quantity = line.quantity * weight / total_weight
        price = _Price(prices[provider_id], ZERO, ZERO, quantity, ZERO, False)
        charge = _rate(line, window, bounds, utilisation, price)
        cost += charge.amount if charge else ZERO
    return round_money(cost)


def _figures(line: ContractLine, charge: pricing.LineCharge | None, cost: Decimal | None) -> Figures:
    if charge is None:
        return Figures(cost_amount=cost)
    list_amount, amount = charge.list_amount, charge.amount
    after_term = round_money(list_amount * (1 - percent_to_rate(line.term_discount_percent)))
    term_disc = list_amount - after_term
    return Figures(
        list_amount=list_amount,
        term_discount_amount=term_disc,
        negotiated_discount_amount=list_amount - term_disc - amount,
        amount=amount,
        tax_amount=charge.tax.tax,
        net_amount=charge.tax.net,
        gross_amount=charge.tax.gross,
        cost_amount=cost,
    )


def _line_price(line: ContractLine, contract: Contract, yearly_billing: str) -> _Price:
    return _Price(
        line.list_unit_price,
        line.term_discount_percent,
        line.discount_percent,
        line.quantity,
        line.tax_category.rate,
        contract.prices_include_tax,
        yearly_billing,
        tuple(pricing.Tier(t.up_to, t.list_unit_price) for t in line.tiers.all()),
    )


# --- the two views --------------------------------------------------------------------------


def _windows(
    start: datetime.datetime, end: datetime.datetime, tz
) -> list[tuple[int, Period, pricing.Window]]:
    """(contract year 0, 1, …, billing month, window) covering ``[start, end)``: calendar months
    of the billing zone, cut at the contract's anniversaries."""
    out = []
    year = 0
    while (year_start := add_years(start, year, tz)) < end:
        year_end = min(add_years(start, year + 1, tz), end)
        for period in periods_between(year_start, year_end, tz):
            month_start, month_end = period.bounds(tz)
            out.append((year, period, pricing.Window(max(month_start, year_start), min(month_end, year_end))))
        year += 1
    return out


def _term_value(contract: Contract, lines: list[ContractLine], utilisation, agreements) -> TermValue:
    tz = settings.BILLING_TIME_ZONE
    start = contract.start_at
    open_ended = contract.end_at is None
    end = add_years(start, 1, tz) if open_ended else contract.end_at
    windows = _windows(start, end, tz)
    year_count = windows[-1][0] + 1 if windows else 0
    per_line: dict[int, list[Figures]] = {line.pk: [Figures() for _ in range(year_count)] for line in lines}
    months: dict[Period, Figures] = {}
    for line in lines:
        line_start = max(line.start_at or start, start)
        line_end = min(e for e in (line.end_at, end) if e is not None)
        if line_end <= line_start:
            continue
        bounds = (line_start, line_end)
        price = _line_price(line, contract, line.yearly_billing)
        years = per_line[line.pk]
        for year, period, window in windows:
            charge = _rate(line, window, bounds, utilisation, price)
            if charge is None:
                continue
            on = window.start.astimezone(ZoneInfo(tz)).date()
            cost = _provider_cost(line, window, bounds, utilisation, on, agreements)
            figures = _figures(line, charge, cost)
            years[year] = years[year] + figures
            months[period] = months.get(period, Figures()) + figures
    term_lines = [
        TermLine(line=line, figures=_sum(per_line[line.pk]), years=tuple(per_line[line.pk])) for line in lines
    ]
    term_years = [
        TermYear(
            number=year + 1,
            start=add_years(start, year, tz),
            end=min(add_years(start, year + 1, tz), end),
            figures=_sum(per_line[line.pk][year] for line in lines),
            by_line={line.pk: per_line[line.pk][year] for line in lines},
        )
        for year in range(year_count)
    ]
    return TermValue(
        start=start,
        end=end,
        open_ended=open_ended,
        lines=term_lines,
        years=term_years,
        months=sorted(months.items()),
        total=_sum(t.figures for t in term_lines),
    )


def contract_quote(
    *, contract: Contract, utilisation_percent: Decimal = HUNDRED, over_term: bool = False
) -> Quote:
    """Price every line of ``contract`` for one full month, and with ``over_term`` over its whole
    term (or first 12 months) too. Nothing is saved."""
    utilisation = min(max(utilisation_percent, ZERO), HUNDRED) / HUNDRED
    period = quote_period(contract)
    window = pricing.Window.of(period, settings.BILLING_TIME_ZONE)
    lines = list(
        contract.lines.select_related("gpu_model", "tax_category").prefetch_related(
            "allocations__server", "tiers"
        )
    )
    agreements = _Agreements(lines)
    quote_lines = []
    whole_month = (window.start, None)
    for line in lines:
        charge = _rate(
            line, window, whole_month, utilisation, _line_price(line, contract, "monthly_instalments")
        )
        cost = _provider_cost(line, window, whole_month, utilisation, period.first_day, agreements)
        f = _figures(line, charge, cost)
        quote_lines.append(
            QuoteLine(
                line=line,
                charge=charge,
                list_amount=f.list_amount,
                term_discount_amount=f.term_discount_amount,
                negotiated_discount_amount=f.negotiated_discount_amount,
                amount=f.amount,
                tax_amount=f.tax_amount,
                net_amount=f.net_amount,
                gross_amount=f.gross_amount,
                cost_amount=cost,
                margin_amount=f.margin_amount,
            )
        )
    term = _term_value(contract, lines, utilisation, agreements) if over_term else None
    return Quote(
        contract=contract,
        period=period,
        utilisation_percent=utilisation * HUNDRED,
        lines=quote_lines,
        term=term,
    )


# --- the frozen form ------------------------------------------------------------------------


def _money(value: Decimal | None) -> str | None:
    return None if value is None else str(round_money(value))


def _figures_json(f: Figures) -> dict:
    return {
        "list_amount": _money(f.list_amount),
        "term_discount_amount": _money(f.term_discount_amount),
        "negotiated_discount_amount": _money(f.negotiated_discount_amount),
        "discount_amount": _money(f.discount_amount),
        "amount": _money(f.amount),
        "tax_amount": _money(f.tax_amount),
        "net_amount": _money(f.net_amount),
        "gross_amount": _money(f.gross_amount),
        "cost_amount": _money(f.cost_amount),
        "margin_amount": _money(f.margin_amount),
    }


def _line_json(line: ContractLine) -> dict:
    return {
        "position": line.position,
        "description": f"{line.gpu_model} {line.get_resource_display()}",
        "quantity": decimal_text(line.quantity),
        "term": line.term,
        "term_label": line.get_term_display(),
        "yearly_billing": line.yearly_billing if line.term == "yearly" else "",
        "yearly_billing_label": line.get_yearly_billing_display() if line.term == "yearly" else "",
        "tax_rate_percent": decimal_text(line.tax_category.rate * HUNDRED),
    }


def quote_snapshot(quote: Quote) -> dict:
    """The quote's figures as JSON-ready text (amounts as ``"1234.50"``): what a saved version
    keeps, and what its page and PDF show, whatever happens to the draft afterwards."""
    contract = quote.contract
    tz = settings.BILLING_TIME_ZONE
    monthly = Figures()
    lines = []
    for q in quote.lines:
        f = Figures(
            q.list_amount,
            q.term_discount_amount,
            q.negotiated_discount_amount,
            q.amount,
            q.tax_amount,
            q.net_amount,
            q.gross_amount,
            q.cost_amount,
        )
        monthly = monthly + f
        unit = ""
        if q.charge is not None:
            unit = f"{decimal_text(q.charge.quantity)} {q.charge.unit} × {q.charge.unit_price:.6f}"
        lines.append({**_line_json(q.line), "rated": unit, **_figures_json(f)})
    snapshot = {
        "contract": {
            "number": contract.number,
            "version": contract.version,
            "customer": contract.customer.name,
            "customer_tax_id": contract.customer.tax_id,
            "currency": contract.currency,
            "prices_include_tax": contract.prices_include_tax,
            "term_text": local_range_text(contract.start_at, contract.end_at, tz),
            "start_text": local_time_text(contract.start_at, tz),
        },
        "period": str(quote.period),
        "utilisation_percent": decimal_text(quote.utilisation_percent),
        "lines": lines,
        "monthly": _figures_json(monthly),
    }
    term = quote.term
    if term is not None:
        snapshot["term"] = {
            "label": term.label,
            "open_ended": term.open_ended,
            "range_text": local_range_text(term.start, term.end, tz),
            "lines": [
                {
                    **_line_json(t.line),
                    "years": [_money(y.amount) for y in t.years],
                    **_figures_json(t.figures),
                }
                for t in term.lines
            ],
            "years": [
                {
                    "number": y.number,
                    "range_text": local_range_text(y.start, y.end, tz),
                    "months": y.months,
                    **_figures_json(y.figures),
                }
                for y in term.years
            ],
            "months": [{"period": str(p), **_figures_json(f)} for p, f in term.months],
            "total": _figures_json(term.total),
        }
    return snapshot


def default_quote_terms(*, contract: Contract) -> str:
    """The terms printed on a quote, bilingual: the setting ``QUOTE_TERMS`` when set (with
    ``{payment_terms_days}``, ``{validity_days}``, ``{currency}``, ``{tax_basis}`` filled in)."""
    days = contract.customer.payment_terms_days
    validity = getattr(settings, "QUOTE_VALIDITY_DAYS", QUOTE_VALIDITY_DAYS)
    if contract.prices_include_tax:
        tax_basis = "含增值税 including VAT"
    else:
        tax_basis = "不含增值税 excluding VAT"
    values = {
        "payment_terms_days": days,
        "validity_days": validity,
        "currency": contract.currency,
        "tax_basis": tax_basis,
    }
    custom = getattr(settings, "QUOTE_TERMS", "")
    if custom:
        return custom.format(**values)
    return (
        f"1. 付款期限：发票开具后 {days} 天内付款。Payment terms: {days} days from the invoice date.\n"
        f"2. 有效期：本报价自出具之日起 {validity} 天内有效。Validity: {validity} days from the date of this quote.\n"
        f"3. 价格以 {contract.currency} 计，{tax_basis}。"
        f"Prices are in {contract.currency}, {tax_basis.split(' ', 1)[1]}.\n"
        "4. 按小时计费的资源按实际分配并使用的时长计费，本报价按预计使用率估算。"
        "Hourly resources bill the allocated time used; this quote estimates them at the expected "
        "utilisation.\n"
        "5. 本报价仅供参考，以双方签署的正式合同为准。"
        "This quote is for reference; the signed contract governs."
    )
