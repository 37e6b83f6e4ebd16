"""Revenue and margin by dimension — month, customer, GPU model, provider, hub — as one SQL
aggregation per report (docs/reports.md#revenue-and-margin-by-dimension).

Every billed invoice line is attributed to hardware through its provider settlement lines
(docs/settlements.md): each settlement line carries one provider's share of the line's net
revenue, its GPU model, its cost and, when one allocation carries it, the server (so the site and
its hub). What cannot be attributed for a dimension lands in an explicit *unattributed* row with
its reason, so every breakdown adds up to the billed net revenue of the range, per currency.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from apps.core.money import round_percent
from apps.customers.models import Customer
from apps.inventory.models import GpuModel
from apps.providers.models import HubRegion, Provider
from apps.reports import facts
from apps.reports.selectors import PeriodRange, report_cursor

ZERO = Decimal("0.00")

# dimension → (label, the parts' column it groups by, key and label of a group ``g`` (``g.k`` is
# the grouped value), the join that names it); the grouped value is NULL when a part of a line
# cannot be attributed to that dimension.
DIMENSIONS: dict[str, tuple[str, str, str, str, str]] = {
    "month": ("month 月份", "p.period", "g.k", "g.k", ""),
    "customer": (
        "customer 客户",
        "p.customer_id",
        "c.code",
        "c.name",
        f"LEFT JOIN {Customer._meta.db_table} c ON c.id = g.k",
    ),
    "gpu-model": (
        "GPU model 显卡型号",
        "p.gpu_model_id",
        "m.name",
        "m.vendor",
        f"LEFT JOIN {GpuModel._meta.db_table} m ON m.id = g.k",
    ),
    "provider": (
        "provider 供应商",
        "p.provider_id",
        "pr.code",
        "pr.name",
        f"LEFT JOIN {Provider._meta.db_table} pr ON pr.id = g.k",
    ),
    "hub": ("hub 枢纽", "p.hub", "g.k", "g.k", ""),
}

# why a part has no key for the chosen dimension
REASONS = {
    "no_hardware": "unattributed: no hardware (minimum commitment shortfall) 未归属：非硬件费用",
    "unsettled": "unattributed: no settlement line yet 未归属：尚未结算",
    "several_hubs": "unattributed: not one hub (allocations in several hubs) 未归属：分配跨多个枢纽",
    "rest": "unattributed: invoice amount outside its lines 未归属：发票行之外的金额",
}
HUB_LABELS = dict(HubRegion.choices)

# The parts of the range's billed invoices, per fact key: the revenue facts of the keys not marked
# changed, and the live parts of the marked ones (apps/reports/facts.py), read in one snapshot;
# grouped by the dimension's value and, where it has none, the reason (named in Python); reason
# ``rest``: the invoices' net amount beyond their parts.
QUERY = """
WITH marked_invoices AS MATERIALIZED ({marked_invoices}),
live AS ({live}),
parts AS (
    SELECT {group} AS k, p.hardware, p.settled, p.currency, sum(p.revenue) AS revenue, sum(p.cost) AS cost
    FROM {fact} p
    WHERE p.period >= %(first)s AND p.period <= %(last)s AND {fresh}
    GROUP BY 1, 2, 3, 4
    UNION ALL
    SELECT {group} AS k, p.hardware, p.settled, p.currency, sum(p.revenue) AS revenue, sum(p.cost) AS cost
    FROM live p
    GROUP BY 1, 2, 3, 4
)
SELECT {key}, {label}, g.reason, g.currency, g.revenue, g.cost, g.unsettled
FROM (
    SELECT k,
           CASE WHEN hardware IS NULL THEN 'rest' WHEN k IS NOT NULL THEN ''
                WHEN NOT hardware THEN 'no_hardware' WHEN NOT settled THEN 'unsettled'
                ELSE 'several_hubs' END AS reason,
           currency, sum(revenue) AS revenue, sum(cost) AS cost,
           coalesce(sum(revenue) FILTER (WHERE hardware AND NOT settled), 0) AS unsettled
    FROM parts
    GROUP BY 1, 2, 3
) g {join}
"""


@dataclass(frozen=True)
class MarginRow:
    """One key of a dimension (or an unattributed reason) in one currency."""

    key: str
    label: str
    currency: str
    revenue_amount: Decimal  # billed net revenue (excl. VAT)
    cost_amount: Decimal  # provider cost from settlement lines
    unsettled_amount: Decimal  # of the revenue: hardware lines with no settlement line yet
    attributed: bool = True

    @property
    def margin_amount(self) -> Decimal:
        return self.revenue_amount - self.cost_amount

    @property
    def margin_percent(self) -> Decimal | None:
        if not self.revenue_amount:
            return None
        return round_percent(self.margin_amount * 100 / self.revenue_amount, places=1)


def revenue_margin(*, period_range: PeriodRange, by: str) -> list[MarginRow]:
    """Billed net revenue, provider cost and margin of the range by ``by`` (a key of DIMENSIONS),
    per currency, largest revenue first (months in order, every month shown), the unattributed
    rows last; their revenue adds up to the invoices' net amounts. One query."""
    _, group, key, label, join = DIMENSIONS[by]
    hub = by == "hub"
    sql = QUERY.format(
        live=facts.parts_sql(
            "i.id IN (SELECT id FROM marked_invoices) AND i.period >= %(first)s AND i.period <= %(last)s",
            hub=hub,
        ),
        marked_invoices=facts.MARKED_INVOICES,
        fact=facts.T["fact"],
        fresh=facts.unmarked("p"),
        group=group,
        key=key,
        label=label,
        join=join,
    )
    with report_cursor() as cursor:
        cursor.execute(
            sql, {**facts.parameters(), "first": str(period_range.first), "last": str(period_range.last)}
        )
        fetched = cursor.fetchall()
    outside: dict[str, Decimal] = {}  # per currency billed: the invoices' net amount beyond their parts
    sums: dict[tuple[str, str, str], list] = {}  # (reason, key, currency) → label, revenue, cost, unsettled
    for row_key, row_label, reason, currency, revenue, cost, unsettled in fetched:
        if reason == "rest":
            outside[currency] = outside.get(currency, ZERO) + revenue
            continue
        entry = sums.setdefault((reason, row_key or reason, currency), [row_label, ZERO, ZERO, ZERO])
        entry[1] += revenue
        entry[2] += cost
        entry[3] += unsettled
    rows: list[MarginRow] = []
    for (reason, row_key, currency), (row_label, revenue, cost, unsettled) in sums.items():
        attributed = reason == ""
        if hub and attributed:
            row_label = HUB_LABELS.get(row_key, row_key)
        rows.append(
            MarginRow(
                key=row_key,
                label=row_label if attributed else REASONS[reason],
                currency=currency,
                revenue_amount=revenue,
                cost_amount=cost,
                unsettled_amount=unsettled,
                attributed=attributed,
            )
        )
    # whatever the invoices' net amounts hold beyond their lines (none when they agree)
    currencies = {currency for _, _, currency in sums} | set(outside)
    for currency, rest in outside.items():
        if rest:
            rows.append(MarginRow("rest", REASONS["rest"], currency, rest, ZERO, ZERO, attributed=False))
    if by == "month":
        present = {(r.key, r.currency) for r in rows}
        for currency in sorted(currencies):
            rows.extend(
                MarginRow(period, period, currency, ZERO, ZERO, ZERO)
                for period in period_range.texts
                if (period, currency) not in present
            )
        return sorted(rows, key=lambda r: (r.currency, not r.attributed, r.key))
    return sorted(
        rows, key=lambda r: (r.currency, not r.attributed, -r.revenue_amount if r.attributed else 0, r.key)
    )


def margin_totals(rows: list[MarginRow]) -> list[MarginRow]:
    """The rows' totals per currency (revenue, cost, unsettled), as rows keyed ``total``."""
    out = []
    for currency in sorted({r.currency for r in rows}):
        mine = [r for r in rows if r.currency == currency]
        out.append(
            MarginRow(
                "total",
                "total 合计",
                currency,
                sum((r.revenue_amount for r in mine), ZERO),
                sum((r.cost_amount for r in mine), ZERO),
                sum((r.unsettled_amount for r in mine), ZERO),
                attributed=False,
            )
        )
    return out
