"""Revenue facts (docs/reports.md#revenue-facts): the parts of billed invoices that the revenue
and margin reports sum, kept per (period, customer, currency, hardware, settled, GPU model,
provider, hub) in ``reports_revenuefact``.

Database triggers (migration ``reports/0003_revenue_facts``) write a ``reports_factchange`` row
for every (period, customer) whose inputs change — a billed invoice, its lines, its settlement
lines, the customer's allocations and contract lines, or (for every key) a server's site or a
site's hub — in the changing transaction, whoever changes them. A report reads the facts of the
keys not marked and computes the marked ones live (``parts_sql``), in one statement and one
snapshot, so its figures are always those of the live computation; ``facts_refresh`` (Celery
beat every five minutes, and ``manage.py rebuild_report_facts``) folds the marked keys into the
facts so that reads stay small.
"""

from __future__ import annotations

from django.db import connection, transaction

from apps.billing.models import Invoice, InvoiceLine, SettlementLine, SettlementStatement
from apps.billing.settlements.services.planning import SETTLED_KINDS
from apps.contracts.models import Allocation, ContractLine
from apps.inventory.models import Server
from apps.providers.models import Site
from apps.reports.models import FactChange, RevenueFact
from apps.reports.selectors import BILLED

T = {
    "invoice": Invoice._meta.db_table,
    "line": InvoiceLine._meta.db_table,
    "sline": SettlementLine._meta.db_table,
    "statement": SettlementStatement._meta.db_table,
    "cline": ContractLine._meta.db_table,
    "allocation": Allocation._meta.db_table,
    "server": Server._meta.db_table,
    "site": Site._meta.db_table,
    "fact": RevenueFact._meta.db_table,
    "change": FactChange._meta.db_table,
}
COLUMNS = "period, customer_id, currency, hardware, settled, gpu_model_id, provider_id, hub, revenue, cost"
# advisory lock key of the refresh: one refresh at a time
REFRESH_LOCK = 7_240_301


def marked(alias: str, changes: str = T["change"]) -> str:
    """SQL: the row ``alias`` (with ``period`` and ``customer_id``) has a key marked in ``changes``."""
    return f"""(
    ({alias}.period, {alias}.customer_id) IN
        (SELECT period, customer_id FROM {changes} WHERE period IS NOT NULL AND customer_id IS NOT NULL)
    OR {alias}.customer_id IN (SELECT customer_id FROM {changes} WHERE period IS NULL AND customer_id IS NOT NULL)
    OR {alias}.period IN (SELECT period FROM {changes} WHERE period IS NOT NULL AND customer_id IS NULL)
    OR EXISTS (SELECT 1 FROM {changes} WHERE period IS NULL AND customer_id IS NULL))"""


def unmarked(alias: str) -> str:
    """SQL: the row ``alias`` has no key marked changed — as anti-joins on the customer (and on the
    few marks of every customer), so a read stays linear however many marks wait for a refresh."""
    return f"""(
    NOT EXISTS (SELECT 1 FROM {T["change"]} c WHERE c.customer_id = {alias}.customer_id
                  AND (c.period IS NULL OR c.period = {alias}.period))
    AND NOT EXISTS (SELECT 1 FROM {T["change"]} c WHERE c.customer_id IS NULL
                      AND (c.period IS NULL OR c.period = {alias}.period)))"""


# The billed-or-not invoices whose key is marked changed (as ``marked("i")``), found from the marks
# through the invoices' customer index: few marks, few rows, so the planner keeps the live part
# of a report small (no parallel scan of every invoice, no JIT compilation).
MARKED_INVOICES = f"""
    SELECT i.id FROM {T["change"]} c JOIN {T["invoice"]} i ON i.customer_id = c.customer_id
     WHERE c.customer_id IS NOT NULL AND (c.period IS NULL OR c.period = i.period)
    UNION
    SELECT i.id FROM {T["change"]} c JOIN {T["invoice"]} i ON c.period IS NULL OR c.period = i.period
     WHERE c.customer_id IS NULL
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


def parts_sql(where: str, *, hub: bool = True) -> str:
    """SQL of the live parts of the billed invoices ``i`` that match ``where``, summed per fact key.

    One part per settlement line of a billed invoice line (a provider's share: its revenue, GPU
    model, provider, hub when one hub holds it, cost), or the whole line when it has none (GPU model
    from its contract line, no provider, no hub, no cost); and per (period, customer, currency) the
    invoices' net amount beyond their parts (``hardware`` NULL; kept when not zero, or when the
    invoices have no parts, so that their currency shows). Without ``hub`` the hub is NULL (the
    allocation joins are left out). Parameters: ``statuses``, ``settled_kinds``."""
    return f"""
WITH parts AS (
    SELECT i.period, i.customer_id, i.currency,
           (il.contract_line_id IS NOT NULL AND il.kind = ANY(%(settled_kinds)s)) AS hardware,
           sl.id IS NOT NULL AS settled,
           coalesce(sl.gpu_model_id, cl.gpu_model_id) AS gpu_model_id, st.provider_id,
           {HUB if hub else "NULL::varchar"} AS hub,
           coalesce(sl.revenue_net_amount, il.net_amount) AS revenue, coalesce(sl.cost_amount, 0.00) AS cost
    FROM {T["invoice"]} i
    JOIN {T["line"]} il ON il.invoice_id = i.id
    LEFT JOIN {T["sline"]} sl ON sl.invoice_line_id = il.id
    LEFT JOIN {T["statement"]} st ON st.id = sl.statement_id
    LEFT JOIN {T["cline"]} cl ON cl.id = il.contract_line_id
    {HUB_JOINS if hub else ""}
    WHERE i.status = ANY(%(statuses)s) AND {where}
), grouped AS (
    SELECT period, customer_id, currency, hardware, settled, gpu_model_id, provider_id, hub,
           sum(revenue) AS revenue, sum(cost) AS cost
    FROM parts GROUP BY 1, 2, 3, 4, 5, 6, 7, 8
), totals AS (
    SELECT i.period, i.customer_id, i.currency, sum(i.net_amount) AS net
    FROM {T["invoice"]} i
    WHERE i.status = ANY(%(statuses)s) AND {where}
    GROUP BY 1, 2, 3
)
SELECT {COLUMNS} FROM grouped
UNION ALL
SELECT t.period, t.customer_id, t.currency, NULL::boolean, NULL::boolean, NULL::bigint, NULL::bigint,
       NULL::varchar, t.net - coalesce(g.revenue, 0.00), 0.00
FROM totals t
LEFT JOIN (SELECT period, customer_id, currency, sum(revenue) AS revenue FROM grouped GROUP BY 1, 2, 3) g
       ON g.period = t.period AND g.customer_id = t.customer_id AND g.currency = t.currency
WHERE g.revenue IS NULL OR g.revenue <> t.net
"""


def parameters() -> dict:
    return {"statuses": list(BILLED), "settled_kinds": list(SETTLED_KINDS)}


# The marks a refresh takes: deleted from the table of changes into a temporary table (analysed, so
# the key look-ups below are hashed), every key when one mark says so.
CLAIM = f"""
CREATE TEMPORARY TABLE claimed ON COMMIT DROP AS
WITH taken AS (DELETE FROM {T["change"]} RETURNING period, customer_id)
SELECT DISTINCT period, customer_id FROM taken
"""
REFRESH = f"""
WITH gone AS (
    DELETE FROM {T["fact"]} f WHERE {marked("f", "claimed")} RETURNING 1
), fresh AS (
    {parts_sql(marked("i", "claimed"))}
), added AS (
    INSERT INTO {T["fact"]} ({COLUMNS}) SELECT {COLUMNS} FROM fresh RETURNING 1
)
SELECT (SELECT count(*) FROM claimed), (SELECT count(*) FROM gone), (SELECT count(*) FROM added)
"""


def facts_refresh() -> dict:
    """Fold the marked keys into the facts: take (delete) the marks seen, recompute their facts
    from the live invoices, in one transaction. One refresh at a time (an advisory lock); a key
    marked while it runs stays marked for the next. Returns ``{"changes", "deleted", "written"}``."""
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [REFRESH_LOCK])
        cursor.execute(CLAIM)
        cursor.execute(
            "DELETE FROM claimed WHERE EXISTS (SELECT 1 FROM claimed WHERE period IS NULL AND customer_id IS NULL)"
            " AND (period IS NOT NULL OR customer_id IS NOT NULL)"
        )
        cursor.execute("ANALYZE claimed")
        cursor.execute(REFRESH, parameters())
        changes, deleted, written = cursor.fetchone()
        cursor.execute("DROP TABLE claimed")
        # the marks just taken leave the table (nearly) empty: say so to the planner, whose
        # estimate of the reports' anti-joins would otherwise stay at the last bulk load's marks
        cursor.execute(f"ANALYZE {T['change']}")
    return {"changes": changes, "deleted": deleted, "written": written}


def facts_rebuild(*, period: str | None = None) -> dict:
    """Recompute the facts of ``period`` (every period when None; idempotent): mark it, then
    refresh (which also folds in whatever else is marked)."""
    with transaction.atomic():
        FactChange.objects.create(period=period, customer_id=None)
        return facts_refresh()


def fact_periods() -> list[str]:
    """Every period with billed invoices or with facts, in order."""
    billed = Invoice.objects.filter(status__in=BILLED).order_by().values_list("period", flat=True)
    held = RevenueFact.objects.order_by().values_list("period", flat=True)
    return sorted(set(billed.distinct()) | set(held.distinct()))
