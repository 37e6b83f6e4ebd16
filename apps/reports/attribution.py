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

from django.db import connection

from apps.billing.models import Invoice, InvoiceLine, SettlementLine, SettlementStatement
from apps.billing.settlements.services.planning import SETTLED_KINDS
from apps.contracts.models import Allocation, ContractLine
from apps.core.money import round_percent
from apps.customers.models import Customer
from apps.inventory.models import GpuModel, Server
from apps.providers.models import HubRegion, Provider, Site
from apps.reports.selectors import BILLED, PeriodRange

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

T = {
    "invoice": Invoice._meta.db_table,
    "line": InvoiceLine._meta.db_table,
    "sline": SettlementLine._meta.db_table,
    "statement": SettlementStatement._meta.db_table,
    "cline": ContractLine._meta.db_table,
    "allocation": Allocation._meta.db_table,
    "server": Server._meta.db_table,
    "site": Site._meta.db_table,
}

# One row per part of a billed invoice line: a settlement line's share (provider, GPU model, hub
# when one hub holds it, cost), or the whole line when it has no settlement line (GPU model from
# its contract line, no provider, no hub, no cost). One pass: the lines of the range's billed
# invoices, each with its settlement lines if any (joins whose columns a dimension does not use
# are dropped by the planner).
PARTS = f"""
WITH parts AS (
    SELECT i.period, i.customer_id, i.currency,
           (il.contract_line_id IS NOT NULL AND il.kind = ANY(%(settled_kinds)s)) AS hardware,
           sl.id IS NOT NULL AS settled,
           coalesce(sl.gpu_model_id, cl.gpu_model_id) AS gpu_model_id, st.provider_id, {{hub}} AS hub,
           coalesce(sl.revenue_net_amount, il.net_amount) AS revenue, coalesce(sl.cost_amount, 0.00) AS cost
    FROM {T["invoice"]} i
    JOIN {T["line"]} il ON il.invoice_id = i.id
    LEFT JOIN {T["sline"]} sl ON sl.invoice_line_id = il.id
    LEFT JOIN {T["statement"]} st ON st.id = sl.statement_id
    LEFT JOIN {T["cline"]} cl ON cl.id = il.contract_line_id
    {{hub_joins}}
    WHERE i.status = ANY(%(statuses)s) AND i.period >= %(first)s AND i.period <= %(last)s
)
"""

# The hub of a settled share: its allocation's site's hub; with no single allocation (a P-unit or
# multi-card line), the hub of the line's firm allocations to that provider and model when they
# are all in one hub.
HUB = "CASE WHEN sl.allocation_id IS NOT NULL THEN own_site.hub WHEN shared.hubs = 1 THEN shared.hub END"
HUB_JOINS = f"""
    LEFT JOIN {T["allocation"]} own ON own.id = sl.allocation_id
    LEFT JOIN {T["server"]} own_server ON own_server.id = own.server_id
    LEFT JOIN {T["site"]} own_site ON own_site.id = own_server.site_id
    LEFT JOIN (
        SELECT a2.line_id, v2.provider_id, v2.gpu_model_id, min(s2.hub) AS hub, count(DISTINCT s2.hub) AS hubs
        FROM {T["allocation"]} a2
        JOIN {T["server"]} v2 ON v2.id = a2.server_id
        JOIN {T["site"]} s2 ON s2.id = v2.site_id
        WHERE a2.firm
        GROUP BY 1, 2, 3
    ) shared ON sl.allocation_id IS NULL AND shared.line_id = sl.contract_line_id
            AND shared.provider_id = st.provider_id AND shared.gpu_model_id = sl.gpu_model_id
"""

# grouped by the dimension's value and whether the part is hardware / settled (few groups, so a
# hash aggregate); the reason of a NULL value is named in Python
QUERY = (
    PARTS
    + """
SELECT {key}, {label}, g.hardware, g.settled, g.currency, g.revenue, g.cost
FROM (
    SELECT {group} AS k, p.hardware, p.settled, p.currency, sum(p.revenue) AS revenue, sum(p.cost) AS cost
    FROM parts p
    GROUP BY 1, 2, 3, 4
) g {join}
UNION ALL
SELECT NULL, 'total', NULL, NULL, i.currency, sum(i.net_amount), 0.00
FROM {T_invoice} i
WHERE i.status = ANY(%(statuses)s) AND i.period >= %(first)s AND i.period <= %(last)s
GROUP BY i.currency
"""
)


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
        group=group,
        key=key,
        label=label,
        join=join,
        T_invoice=T["invoice"],
        hub=HUB if hub else "NULL::varchar",
        hub_joins=HUB_JOINS if hub else "",
    )
    with connection.cursor() as cursor:
        cursor.execute(
            sql,
            {
                "statuses": list(BILLED),
                "first": str(period_range.first),
                "last": str(period_range.last),
                "settled_kinds": list(SETTLED_KINDS),
            },
        )
        fetched = cursor.fetchall()
    totals: dict[str, Decimal] = {}
    sums: dict[tuple[str, str, str], list] = {}  # (reason, key, currency) → label, revenue, cost, unsettled
    for row_key, row_label, hardware, settled, currency, revenue, cost in fetched:
        if hardware is None:
            totals[currency] = revenue
            continue
        if row_key is not None:
            reason = ""
        elif not hardware:
            reason = "no_hardware"
        elif not settled:
            reason = "unsettled"
        else:
            reason = "several_hubs"
        entry = sums.setdefault((reason, row_key or reason, currency), [row_label, ZERO, ZERO, ZERO])
        entry[1] += revenue
        entry[2] += cost
        if hardware and not settled:
            entry[3] += revenue
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
    for currency, total in totals.items():
        rest = total - sum((r.revenue_amount for r in rows if r.currency == currency), ZERO)
        if rest:
            rows.append(MarginRow("rest", REASONS["rest"], currency, rest, ZERO, ZERO, attributed=False))
    if by == "month":
        present = {(r.key, r.currency) for r in rows}
        for currency in totals:
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
