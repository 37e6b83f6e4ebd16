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

# dimension → (label, key column, label column, join); the key is NULL when a part of a line
# cannot be attributed to that dimension.
DIMENSIONS: dict[str, tuple[str, str, str, str]] = {
    "month": ("month 月份", "p.period", "p.period", ""),
    "customer": (
        "customer 客户",
        "c.code",
        "c.name",
        f"LEFT JOIN {Customer._meta.db_table} c ON c.id = p.customer_id",
    ),
    "gpu-model": (
        "GPU model 显卡型号",
        "g.name",
        "g.vendor",
        f"LEFT JOIN {GpuModel._meta.db_table} g ON g.id = p.gpu_model_id",
    ),
    "provider": (
        "provider 供应商",
        "pr.code",
        "pr.name",
        f"LEFT JOIN {Provider._meta.db_table} pr ON pr.id = p.provider_id",
    ),
    "hub": ("hub 枢纽", "p.hub", "p.hub", ""),
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
# its contract line, no provider, no hub, no cost).
PARTS = f"""
WITH billed AS (
    SELECT i.id, i.period, i.customer_id, i.currency, i.net_amount
    FROM {T["invoice"]} i
    WHERE i.status = ANY(%(statuses)s) AND i.period >= %(first)s AND i.period <= %(last)s
), lines AS (
    SELECT il.id, il.kind, il.net_amount, il.contract_line_id, b.period, b.customer_id, b.currency,
           (il.contract_line_id IS NOT NULL AND il.kind = ANY(%(settled_kinds)s)) AS hardware
    FROM billed b JOIN {T["line"]} il ON il.invoice_id = b.id
), parts AS (
    SELECT l.period, l.customer_id, l.currency, l.hardware, TRUE AS settled,
           sl.gpu_model_id, st.provider_id,
           CASE WHEN sl.allocation_id IS NOT NULL THEN own_site.hub
                WHEN shared.hubs = 1 THEN shared.hub END AS hub,
           sl.revenue_net_amount AS revenue, sl.cost_amount AS cost
    FROM lines l
    JOIN {T["sline"]} sl ON sl.invoice_line_id = l.id
    JOIN {T["statement"]} st ON st.id = sl.statement_id
    LEFT JOIN {T["allocation"]} own ON own.id = sl.allocation_id
    LEFT JOIN {T["server"]} own_server ON own_server.id = own.server_id
    LEFT JOIN {T["site"]} own_site ON own_site.id = own_server.site_id
    LEFT JOIN LATERAL (
        -- a share carried by several allocations of one provider and model: its hub when they
        -- are all in one hub
        SELECT min(s2.hub) AS hub, count(DISTINCT s2.hub) AS hubs
        FROM {T["allocation"]} a2
        JOIN {T["server"]} v2 ON v2.id = a2.server_id
        JOIN {T["site"]} s2 ON s2.id = v2.site_id
        WHERE sl.allocation_id IS NULL AND a2.line_id = sl.contract_line_id AND a2.firm
          AND v2.provider_id = st.provider_id AND v2.gpu_model_id = sl.gpu_model_id
          AND tstzrange(a2.start_at, a2.end_at, '[)')
              && tstzrange(sl.service_start_at, sl.service_end_at, '[)')
    ) shared ON TRUE
    UNION ALL
    SELECT l.period, l.customer_id, l.currency, l.hardware, FALSE, cl.gpu_model_id, NULL, NULL,
           l.net_amount, 0.00
    FROM lines l
    LEFT JOIN {T["cline"]} cl ON cl.id = l.contract_line_id
    WHERE NOT EXISTS (SELECT 1 FROM {T["sline"]} sl WHERE sl.invoice_line_id = l.id)
)
"""

QUERY = (
    PARTS
    + """
SELECT {key} AS key, {label} AS label,
       CASE WHEN {key} IS NOT NULL THEN ''
            WHEN NOT p.hardware THEN 'no_hardware'
            WHEN NOT p.settled THEN 'unsettled'
            ELSE 'several_hubs' END AS reason,
       p.currency, sum(p.revenue), sum(p.cost),
       coalesce(sum(p.revenue) FILTER (WHERE p.hardware AND NOT p.settled), 0.00)
FROM parts p {join}
GROUP BY 1, 2, 3, 4
UNION ALL
SELECT NULL, NULL, 'total', b.currency, sum(b.net_amount), 0.00, 0.00 FROM billed b GROUP BY b.currency
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
    _, key, label, join = DIMENSIONS[by]
    with connection.cursor() as cursor:
        cursor.execute(
            QUERY.format(key=key, label=label, join=join),
            {
                "statuses": list(BILLED),
                "first": str(period_range.first),
                "last": str(period_range.last),
                "settled_kinds": list(SETTLED_KINDS),
            },
        )
        fetched = cursor.fetchall()
    totals: dict[str, Decimal] = {}
    rows: list[MarginRow] = []
    for row_key, row_label, reason, currency, revenue, cost, unsettled in fetched:
        if reason == "total":
            totals[currency] = revenue
            continue
        attributed = reason == ""
        if by == "hub" and attributed:
            row_label = HUB_LABELS.get(row_key, row_key)
        rows.append(
            MarginRow(
                key=row_key if attributed else reason,
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
