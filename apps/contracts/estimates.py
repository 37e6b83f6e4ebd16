"""Live figures of a contract's lines while it is drafted (docs/contracts.md#drafting-screen).

The drafting screen posts its unsaved rows here on every keystroke; nothing is saved. Each row
gets the list price it will take (the line's own, else the price list's), the effective unit
price, a monthly estimate, the provider cost and the margin; the contract gets its totals and the
approval its discounts will need.

The monthly estimate is what the rating engine bills for the contract's first full calendar month
when every card is busy all month: hourly lines bill the month's hours, daily lines its days,
monthly lines one month, yearly lines a twelfth of a year (an upfront line shows that monthly
equivalent and its yearly amount). Rounded once per line, half up, like an invoice line.
The quote (apps/contracts/quotes.py) prices the same month with the engine itself.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field
from decimal import Decimal

from django.conf import settings
from django.db.models import Q

from apps.core.money import ZERO, effective_unit_price, round_money, round_unit_price, split_tax
from apps.core.periods import Period, periods_between
from apps.providers.models import SupplyAgreement

from .models import Contract, PriceListItem, TaxCategory
from .services import DEFAULT_TAX_CATEGORY, approval_rule_text

HUNDRED = Decimal(100)
SECONDS_PER_HOUR = 3600
SECONDS_PER_DAY = 86400

UNIT_LABELS = {
    ("card", "hourly"): "card-hour 卡时",
    ("card", "daily"): "card-day 卡日",
    ("card", "monthly"): "card-month 卡月",
    ("card", "yearly"): "card-year 卡年",
    ("server", "hourly"): "server-hour 台时",
    ("server", "daily"): "server-day 台日",
    ("server", "monthly"): "server-month 台月",
    ("server", "yearly"): "server-year 台年",
    ("p_unit", "hourly"): "P-hour P时",
    ("p_unit", "daily"): "P-day P日",
    ("p_unit", "monthly"): "P-month P月",
    ("p_unit", "yearly"): "P-year P年",
}


@dataclass
class RowInput:
    """One row of the screen as typed: any field may be missing while the user types."""

    key: str
    resource: str | None
    gpu_model: object | None
    quantity: Decimal | None
    term: str | None
    list_unit_price: Decimal | None = None
    term_discount_percent: Decimal | None = None
    discount_percent: Decimal | None = None
    tax_category: TaxCategory | None = None
    start_at: datetime.datetime | None = None
    end_at: datetime.datetime | None = None
    yearly_billing: str = "monthly_instalments"
    provider_ids: frozenset[int] = frozenset()  # providers of the line's allocated hardware
    position: int | None = None


@dataclass
class RowFigures:
    key: str
    position: int | None
    problem: str = ""
    list_unit_price: Decimal | None = None
    price_list_price: Decimal | None = None
    term_discount_percent: Decimal | None = None
    discount_percent: Decimal = ZERO
    combined_discount_percent: Decimal = ZERO
    tax_rate: Decimal | None = None
    effective_unit_price: Decimal | None = None
    unit: str = ""
    monthly_amount: Decimal | None = None
    monthly_net: Decimal | None = None
    upfront_yearly_amount: Decimal | None = None
    monthly_cost: Decimal | None = None
    cost_basis: str = ""
    monthly_margin: Decimal | None = None
    margin_percent: Decimal | None = None
    term_months: Decimal | None = None
    term_value: Decimal | None = None


@dataclass
class DraftFigures:
    month: Period
    rows: list[RowFigures]
    approval_needed: bool
    approval_text: str
    monthly_amount: Decimal = ZERO
    monthly_net: Decimal = ZERO
    monthly_cost: Decimal = ZERO
    monthly_margin: Decimal = ZERO
    rows_without_cost: int = 0
    term_value: Decimal | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def margin_percent(self) -> Decimal | None:
        covered = self.monthly_net - sum(
            (r.monthly_net or ZERO for r in self.rows if r.monthly_cost is None), ZERO
        )
        if not covered:
            return None
        return (self.monthly_margin / covered * HUNDRED).quantize(Decimal("0.1"))


def estimate_month(contract: Contract) -> Period:
    """The contract's first full calendar month in the billing zone (the one the quote prices)."""
    tz = settings.BILLING_TIME_ZONE
    period = Period.containing(contract.start_at, tz)
    start, _ = period.bounds(tz)
    return period if contract.start_at <= start else period.next()


def _units_per_month(term: str, month: Period) -> Decimal:
    start, end = month.bounds(settings.BILLING_TIME_ZONE)
    seconds = int((end - start).total_seconds())
    if term == "hourly":
        return Decimal(seconds // SECONDS_PER_HOUR)
    if term == "daily":
        return Decimal(seconds // SECONDS_PER_DAY)
    if term == "yearly":
        return Decimal(1) / Decimal(12)
    return Decimal(1)


def months_between(start: datetime.datetime, end: datetime.datetime) -> Decimal:
    """Calendar months from ``start`` to ``end`` in the billing zone, partial months by time."""
    tz = settings.BILLING_TIME_ZONE
    months = ZERO
    for period in periods_between(start, end, tz):
        month_start, month_end = period.bounds(tz)
        active = (min(end, month_end) - max(start, month_start)).total_seconds()
        if active > 0:
            months += Decimal(int(active)) / Decimal(int((month_end - month_start).total_seconds()))
    return months.quantize(Decimal("0.01"))


def _price_items(contract: Contract, rows: list[RowInput]) -> dict[tuple, PriceListItem]:
    """(model id, resource, term) → the contract's price list item, else the default list's."""
    model_ids = {row.gpu_model.pk for row in rows if row.gpu_model is not None}
    items = PriceListItem.objects.select_related("tax_category", "price_list").filter(
        gpu_model_id__in=model_ids
    )
    if contract.price_list_id:
        items = items.filter(Q(price_list_id=contract.price_list_id) | Q(price_list__is_default=True))
    else:
        items = items.filter(price_list__is_default=True)
    found: dict[tuple, PriceListItem] = {}
    for item in items:
        key = (item.gpu_model_id, item.resource, item.term)
        if key not in found or item.price_list_id == contract.price_list_id:
            found[key] = item
    return found


def _supply_costs(rows: list[RowInput], on: datetime.date) -> dict[tuple, dict[int, Decimal]]:
    """(model id, resource, term) → {provider id: cost per unit} valid on ``on``."""
    model_ids = {row.gpu_model.pk for row in rows if row.gpu_model is not None}
    agreements = (
        SupplyAgreement.objects.filter(gpu_model_id__in=model_ids, valid_from__lte=on)
        .filter(Q(valid_to__isnull=True) | Q(valid_to__gte=on))
        .order_by("-valid_from")
        .values_list("gpu_model_id", "resource", "term", "provider_id", "cost_unit_price")
    )
    costs: dict[tuple, dict[int, Decimal]] = {}
    for model_id, resource, term, provider_id, cost in agreements:
        costs.setdefault((model_id, resource, term), {}).setdefault(provider_id, cost)
    return costs


def draft_figures(*, contract: Contract, rows: list[RowInput]) -> DraftFigures:
    """Figures of every row and the contract's totals (two queries, whatever the row count)."""
    month = estimate_month(contract)
    items = _price_items(contract, rows)
    costs = _supply_costs(rows, month.first_day)
    default_tax = None
    figures = []
    for row in rows:
        figure = RowFigures(key=row.key, position=row.position)
        figures.append(figure)
        if row.gpu_model is None or not row.resource or not row.term:
            figure.problem = "Choose the resource, GPU model and term. 请选择资源、型号与期限。"
            continue
        item = items.get((row.gpu_model.pk, row.resource, row.term))
        figure.unit = UNIT_LABELS[(row.resource, row.term)]
        figure.price_list_price = item.list_unit_price if item else None
        figure.list_unit_price = (
            row.list_unit_price if row.list_unit_price is not None else figure.price_list_price
        )
        figure.term_discount_percent = (
            row.term_discount_percent
            if row.term_discount_percent is not None
            else (item.term_discount_percent if item else ZERO)
        )
        figure.discount_percent = row.discount_percent or ZERO
        combined = 1 - (1 - figure.term_discount_percent / HUNDRED) * (1 - figure.discount_percent / HUNDRED)
        figure.combined_discount_percent = combined * HUNDRED
        tax_category = row.tax_category or (item.tax_category if item else None)
        if tax_category is None:
            default_tax = default_tax or TaxCategory.objects.get(code=DEFAULT_TAX_CATEGORY)
            tax_category = default_tax
        figure.tax_rate = tax_category.rate
        if figure.list_unit_price is None:
            figure.problem = (
                "No list price for this model, resource and term: give one. 价目表无此价格，请填写。"
            )
            continue
        if row.quantity is None or row.quantity <= 0:
            figure.problem = "Give a quantity above zero. 请填写大于零的数量。"
            continue
        unit_price = effective_unit_price(
            figure.list_unit_price, figure.term_discount_percent, figure.discount_percent
        )
        figure.effective_unit_price = round_unit_price(unit_price)
        per_month = _units_per_month(row.term, month)
        figure.monthly_amount = round_money(unit_price * row.quantity * per_month)
        if row.term == "yearly" and row.yearly_billing == "upfront":
            figure.upfront_yearly_amount = round_money(unit_price * row.quantity)
        split = split_tax(
            figure.monthly_amount, figure.tax_rate, prices_include_tax=contract.prices_include_tax
        )
        figure.monthly_net = split.net
        _cost(figure, row, costs, per_month)
        start = row.start_at or contract.start_at
        end = row.end_at or contract.end_at
        if end is not None and end > start:
            figure.term_months = months_between(start, end)
            figure.term_value = round_money(figure.monthly_amount * figure.term_months)
    return _totals(contract, month, rows, figures)


def _cost(figure: RowFigures, row: RowInput, costs: dict, per_month: Decimal) -> None:
    """Provider cost of the row's month: its allocated providers' prices, else the lowest offer."""
    offers = costs.get((row.gpu_model.pk, row.resource, row.term), {})
    if row.provider_ids:
        if not row.provider_ids <= set(offers):
            figure.cost_basis = "An allocated provider has no supply price. 所分配供应商无供货价。"
            return
        unit_cost = max(offers[p] for p in row.provider_ids)
        figure.cost_basis = "allocated hardware 已分配资源"
    elif offers:
        unit_cost = min(offers.values())
        figure.cost_basis = "lowest supply price 最低供货价"
    else:
        figure.cost_basis = "No supply price for this model, resource and term. 无供货价。"
        return
    figure.monthly_cost = round_money(unit_cost * row.quantity * per_month)
    figure.monthly_margin = figure.monthly_net - figure.monthly_cost
    if figure.monthly_net:
        figure.margin_percent = (figure.monthly_margin / figure.monthly_net * HUNDRED).quantize(
            Decimal("0.1")
        )


def _totals(
    contract: Contract, month: Period, rows: list[RowInput], figures: list[RowFigures]
) -> DraftFigures:
    priced = [f for f in figures if f.monthly_amount is not None]
    top = max(figures, key=lambda f: f.combined_discount_percent, default=None)
    needed, text = approval_rule_text(
        top_discount=top.combined_discount_percent if top else None,
        top_position=(top.position or figures.index(top) + 1) if top else None,
    )
    result = DraftFigures(month=month, rows=figures, approval_needed=needed, approval_text=text)
    for figure in priced:
        result.monthly_amount += figure.monthly_amount
        result.monthly_net += figure.monthly_net
        if figure.monthly_cost is None:
            result.rows_without_cost += 1
        else:
            result.monthly_cost += figure.monthly_cost
            result.monthly_margin += figure.monthly_margin
    if priced and contract.end_at is not None and all(f.term_value is not None for f in priced):
        result.term_value = sum((f.term_value for f in priced), ZERO)
    return result
