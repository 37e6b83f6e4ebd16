"""Finance reports benchmark (not a test): every report selector and page over 100,000 invoices.

    .venv/bin/python bench/reports.py [--customers 10000] [--months 10] [--runs 7] [--keep | --reuse] [--only TEXT] [--jit]

Builds a scratch PostgreSQL database (``suanli_bench_reports`` on the server of ``BENCH_DATABASE_URL``,
default ``postgres://postgres@127.0.0.1:5432/postgres``), migrates it and fills it with set-based
SQL: bench/billing.py's customers, contracts (an hourly 2-card line, a monthly server, a yearly
P-unit server each) and hardware, the servers spread over 4 providers × 4 sites in 4 hubs, one
in ten platform-owned, one card in a hundred retired; then ``--customers`` × ``--months`` issued
invoices (January onwards, a third of them paid) with a line per contract line and, one invoice
in ten, a minimum-commitment shortfall line; and a draft settlement statement per provider and
month whose lines carry 19 of every 20 hardware lines (cost 60 % of the revenue).

It then times, over the whole range, every report selector (apps/reports/selectors.py,
attribution.py, utilisation.py) and every report page through Django's test client as a finance
user, HTML and CSV: median and p95 of ``--runs`` runs, SQL queries per call. The floor, measured
in the same run, is the plainest query over the same rows: ``SELECT period, currency,
sum(net_amount) FROM billing_invoice WHERE status IN ('issued', 'paid') AND period BETWEEN …
GROUP BY 1, 2``. Its connections are opened as the application's are (JIT off, 64 MB work_mem,
config/settings/base.py) unless ``--jit``. ``--keep`` leaves the scratch database in place; ``--reuse`` times a kept one again
without rebuilding it (and keeps it). The last line is

    reports: worst <x> ms (target 500)
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
DB_NAME = "suanli_bench_reports"

from bench.billing import LOAD_SQL, machine, model_defaults_in_db  # noqa: E402

JAN_1 = "2025-12-31 16:00+00"  # 2026-01-01 00:00 in the billing zone

SPREAD_SQL = f"""
INSERT INTO providers_provider (code, name, type, contact_name, contact_email, contact_phone, settlement_terms_days,
    is_related_party, notes, created_at, updated_at)
SELECT 'bench-p' || g, 'Bench provider ' || g, 'idc', '', '', '', 30, false, '', now(), now()
  FROM generate_series(1, 4) g;
INSERT INTO providers_site (provider_id, name, city, hub, created_at, updated_at)
SELECT p.id, 'Site ' || h.n, 'City ' || h.n, h.hub, now(), now()
  FROM providers_provider p
 CROSS JOIN (VALUES (1, 'jingjinji'), (2, 'yangtze_delta'), (3, 'greater_bay'), (4, 'chengyu')) AS h(n, hub)
 WHERE p.code LIKE 'bench-p%%';
-- a customer's three servers stay with one provider; its sites in turn
WITH sites AS (
    SELECT s.id, s.provider_id, row_number() OVER (ORDER BY s.provider_id, s.id) - 1 AS k
      FROM providers_site s JOIN providers_provider p ON p.id = s.provider_id WHERE p.code LIKE 'bench-p%%'
)
UPDATE inventory_server v SET provider_id = sites.provider_id, site_id = sites.id
  FROM sites WHERE sites.k = ((v.id - 1) / 3) %% 16;
UPDATE inventory_server SET purchase_cost_amount = 1800000.00, annual_cash_cost_amount = 240000.00
 WHERE id %% 10 = 0;
UPDATE inventory_card SET created_at = timestamptz '2025-12-01 00:00+00';
UPDATE inventory_card SET status = 'retired', updated_at = timestamptz '2026-06-15 00:00+00' WHERE id %% 100 = 7;
UPDATE contracts_contract SET start_at = timestamptz '{JAN_1}';
UPDATE contracts_allocation SET start_at = timestamptz '{JAN_1}';
"""

INVOICES_SQL = """
INSERT INTO billing_invoice (customer_id, currency, period, status, prices_include_tax, net_amount,
    tax_amount, total_amount, voucher_amount, credited_amount, paid_amount, usage_cutoff_at, void_reason,
    early_issue_reason, fapiao, created_at, updated_at)
SELECT c.id, 'CNY', '2026-' || lpad(m::text, 2, '0'), 'draft', true, 0, 0, 0, 0, 0, 0,
       make_timestamptz(2026, m + 1, 1, 3, 0, 0, 'UTC'), '', '', '{}'::jsonb, now(), now()
  FROM customers_customer c, generate_series(1, %(months)s) m;
INSERT INTO billing_invoiceline (invoice_id, position, kind, contract_id, contract_line_id, description,
    tax_classification, quantity, unit, list_unit_price, unit_price, discount_amount, amount, tax_rate, tax_amount,
    net_amount, gross_amount, service_start_at, service_end_at)
SELECT i.id, l.position, CASE l.term WHEN 'hourly' THEN 'usage' ELSE 'recurring' END, k.id, l.id,
       'Bench line ' || l.position, '信息技术服务', 1, 'unit', x.net, x.net, 0, x.net, 0.06,
       round(x.net * 0.06, 2), x.net, x.net + round(x.net * 0.06, 2),
       make_timestamptz(2026, substr(i.period, 6)::int, 1, 0, 0, 0, 'Asia/Shanghai'),
       make_timestamptz(2026, substr(i.period, 6)::int + 1, 1, 0, 0, 0, 'Asia/Shanghai')
  FROM billing_invoice i JOIN contracts_contract k ON k.customer_id = i.customer_id
  JOIN contracts_contractline l ON l.contract_id = k.id
 CROSS JOIN LATERAL (SELECT (1000 * l.position + (i.customer_id %% 97) * 10 + 0.35)::numeric(16, 2) AS net) x
UNION ALL
SELECT i.id, 4, 'minimum_commitment_shortfall', k.id, NULL, 'Shortfall', '信息技术服务', 1, 'unit', 500, 500, 0,
       500.00, 0.06, 30.00, 500.00, 530.00,
       make_timestamptz(2026, substr(i.period, 6)::int, 1, 0, 0, 0, 'Asia/Shanghai'),
       make_timestamptz(2026, substr(i.period, 6)::int + 1, 1, 0, 0, 0, 'Asia/Shanghai')
  FROM billing_invoice i JOIN contracts_contract k ON k.customer_id = i.customer_id
 WHERE i.id %% 10 = 0;
UPDATE billing_invoice i SET net_amount = s.net, tax_amount = s.tax, total_amount = s.net + s.tax
  FROM (SELECT invoice_id, sum(net_amount) AS net, sum(tax_amount) AS tax FROM billing_invoiceline
         GROUP BY invoice_id) s
 WHERE s.invoice_id = i.id;
UPDATE billing_invoice
   SET status = CASE WHEN id %% 3 = 0 THEN 'paid' ELSE 'issued' END,
       number = 'INV-2026-' || lpad(id::text, 7, '0'), issued_at = usage_cutoff_at,
       issued_on = usage_cutoff_at::date, due_on = usage_cutoff_at::date + 30,
       paid_amount = CASE WHEN id %% 3 = 0 THEN total_amount ELSE 0 END,
       paid_at = CASE WHEN id %% 3 = 0 THEN usage_cutoff_at + interval '20 days' END;
"""

SETTLEMENTS_SQL = """
INSERT INTO billing_settlementstatement (provider_id, period, currency, status, cost_amount, revenue_net_amount,
    margin_amount, line_count, warning_count, payment_reference, created_at, updated_at)
SELECT p.id, '2026-' || lpad(m::text, 2, '0'), 'CNY', 'draft', 0, 0, 0, 0, 0, '', now(), now()
  FROM providers_provider p, generate_series(1, %(months)s) m WHERE p.code LIKE 'bench-p%%';
-- the card line's share rides on two allocations (two cards): no single allocation, as settlement writes it
INSERT INTO billing_settlementline (statement_id, position, invoice_line_id, kind, contract_id, contract_line_id,
    allocation_id, supply_agreement_id, gpu_model_id, resource, term, description, quantity, unit, cost_unit_price,
    cost_amount, revenue_net_amount, margin_amount, service_start_at, service_end_at, warning)
SELECT st.id, il.position, il.id, il.kind, il.contract_id, il.contract_line_id,
       CASE WHEN cl.position = 1 THEN NULL ELSE a.id END, NULL, cl.gpu_model_id, cl.resource, cl.term,
       'Bench cost', 1, 'unit', 0, round(il.net_amount * 0.6, 2), il.net_amount,
       il.net_amount - round(il.net_amount * 0.6, 2), il.service_start_at, il.service_end_at, ''
  FROM billing_invoiceline il
  JOIN billing_invoice i ON i.id = il.invoice_id
  JOIN contracts_contractline cl ON cl.id = il.contract_line_id
  JOIN (SELECT DISTINCT ON (line_id) line_id, id, server_id FROM contracts_allocation
         ORDER BY line_id, id) a ON a.line_id = cl.id
  JOIN inventory_server v ON v.id = a.server_id
  JOIN billing_settlementstatement st ON st.provider_id = v.provider_id AND st.period = i.period
 WHERE il.id %% 20 <> 0;
UPDATE billing_settlementstatement st
   SET cost_amount = s.cost, revenue_net_amount = s.revenue, margin_amount = s.revenue - s.cost, line_count = s.n
  FROM (SELECT statement_id, sum(cost_amount) AS cost, sum(revenue_net_amount) AS revenue, count(*) AS n
          FROM billing_settlementline GROUP BY statement_id) s
 WHERE s.statement_id = st.id;
"""

FLOOR_SQL = """
SELECT period, currency, sum(net_amount) FROM billing_invoice
 WHERE status IN ('issued', 'paid') AND period >= %(first)s AND period <= %(last)s
 GROUP BY 1, 2
"""


def admin_url() -> str:
    return os.environ.get("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres")


def scratch_url() -> str:
    return f"{admin_url().rsplit('/', 1)[0]}/{DB_NAME}"


def psql_admin(sql: str) -> None:
    import psycopg

    with psycopg.connect(admin_url(), autocommit=True) as conn:
        conn.execute(sql)


def load(cursor, *, customers: int, months: int) -> None:
    model_defaults_in_db(cursor)
    cursor.execute(LOAD_SQL, {"servers": customers * 3, "customers": customers})
    cursor.execute(SPREAD_SQL, {})
    cursor.execute(INVOICES_SQL, {"months": months})
    cursor.execute("ANALYZE")
    cursor.execute(SETTLEMENTS_SQL, {"months": months})
    # the load's inserts marked every key changed (the revenue facts' triggers); main() rebuilds them


def timed(call, runs: int) -> tuple[float, float, int]:
    """Median and p95 ms of ``runs`` calls (after one warm-up), and the queries of one call."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    call()
    times = []
    queries = 0
    for _ in range(runs):
        with CaptureQueriesContext(connection) as captured:
            start = time.perf_counter()
            call()
            times.append((time.perf_counter() - start) * 1000)
        queries = len(captured)
    times.sort()
    return statistics.median(times), times[min(len(times) - 1, int(len(times) * 0.95))], queries


def page(client, url: str):
    def get():
        response = client.get(url)
        assert response.status_code == 200, (url, response.status_code)
        response.content  # noqa: B018 — rendered in full, as the browser gets it

    return get


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--customers", type=int, default=10_000)
    parser.add_argument(
        "--months", type=int, default=10, help="invoices per customer, January onwards (≤ 11)"
    )
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--keep", action="store_true", help="keep the scratch database")
    parser.add_argument(
        "--reuse", action="store_true", help="time the database a --keep run left, without rebuilding it"
    )
    parser.add_argument("--only", default="", help="time only the lines whose name contains this text")
    parser.add_argument(
        "--jit", action="store_true", help="PostgreSQL's default JIT, not the application's (off)"
    )
    args = parser.parse_args()
    args.keep = args.keep or args.reuse

    env = {**os.environ, "DATABASE_URL": scratch_url(), "DJANGO_SETTINGS_MODULE": "config.settings.test"}
    if not args.jit:
        # the connections the application opens (config/settings/base.py); the test settings'
        # own DATABASES keep PostgreSQL's default
        from config.settings.base import CONNECTION_OPTIONS

        env["PGOPTIONS"] = f"{os.environ.get('PGOPTIONS', '')} {CONNECTION_OPTIONS}".strip()
    print(f"machine: {machine()}")
    print(f"connections: {env.get('PGOPTIONS') or 'PostgreSQL defaults'}")
    started = time.perf_counter()
    if not args.reuse:
        psql_admin(f'DROP DATABASE IF EXISTS "{DB_NAME}" WITH (FORCE)')
        psql_admin(f'CREATE DATABASE "{DB_NAME}"')
    # a reused database gets the migrations added since it was built
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT, env=env, check=True
    )
    os.environ.update(env)
    import django

    django.setup()
    import datetime

    from django.contrib.auth.models import Group
    from django.db import connection
    from django.test import Client
    from django.utils import timezone

    from apps.accounts import roles
    from apps.accounts.models import User
    from apps.core.periods import Period
    from apps.reports import attribution, selectors, utilisation
    from apps.reports.selectors import PeriodRange
    from bench.harness import test_client_environment, web_worker_heap

    test_client_environment()  # docs/scaling.md#the-benchmarks
    migrated = time.perf_counter()
    with connection.cursor() as cursor:
        if not args.reuse:
            load(cursor, customers=args.customers, months=args.months)
        cursor.execute("ANALYZE")
        cursor.execute("SELECT version()")
        pg = cursor.fetchone()[0].split(" on ")[0]
        cursor.execute(
            "SELECT (SELECT count(*) FROM billing_invoice WHERE status IN ('issued', 'paid')),"
            " (SELECT count(*) FROM billing_invoiceline), (SELECT count(*) FROM billing_settlementline),"
            " (SELECT count(*) FROM inventory_card)"
        )
        invoices, lines, settled, cards = cursor.fetchone()
    print(f"database: {pg}")
    from apps.reports import facts

    if not args.reuse:
        refreshed = time.perf_counter()
        rebuilt = facts.facts_rebuild()
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE reports_revenuefact")
        print(
            f"revenue facts rebuilt in {time.perf_counter() - refreshed:.1f} s: {rebuilt['written']} rows"
            " (apps/reports/facts.py; the reports read them)"
        )
    print(
        f"{'reused' if args.reuse else 'built'} in {time.perf_counter() - started:.0f} s"
        f" (load {time.perf_counter() - migrated:.0f} s): "
        f"{invoices} issued invoices, {lines} invoice lines, {settled} settlement lines, {cards} cards"
    )
    first, last = Period(2026, 1), Period(2026, args.months)
    period_range = PeriodRange(first, last)
    now = timezone.now()
    today = datetime.date(2026, 11, 28)

    def floor():
        with connection.cursor() as cursor:
            cursor.execute(FLOOR_SQL, {"first": str(first), "last": str(last)})
            cursor.fetchall()

    calls = {
        "revenue_by_month": lambda: selectors.revenue_by_month(period_range=period_range),
        "revenue_by_customer": lambda: selectors.revenue_by_customer(period_range=period_range),
        "ar_aging": lambda: selectors.ar_aging(today=today),
        "server_payback": lambda: selectors.server_payback(period_range=period_range),
        "provider_p_year_margin": lambda: selectors.provider_p_year_margin(period_range=period_range),
        "unrated_by_provider": lambda: selectors.unrated_by_provider(period_range=period_range),
        "voucher_redemptions": lambda: selectors.voucher_redemptions(period_range=period_range),
        "month_figures": lambda: selectors.month_figures(period=last, today=today),
        **{
            f"revenue_margin by={by}": (
                lambda by=by: attribution.revenue_margin(period_range=period_range, by=by)
            )
            for by in attribution.DIMENSIONS
        },
        "utilisation": lambda: utilisation.utilisation(period_range=period_range, now=now),
    }
    user = User.objects.filter(username="bench-finance").first() or User.objects.create_user(
        username="bench-finance", password="x", is_staff=True
    )
    user.groups.add(Group.objects.get(name=roles.FINANCE))
    client = Client()
    client.force_login(user)
    pages = [
        ("revenue/", ""),
        *(("revenue/", f"by={by}&") for by in ("gpu-model", "provider", "hub")),
        *(("margin/", f"by={by}&") for by in attribution.DIMENSIONS),
        *(
            (path, "")
            for path in (
                "utilisation/",
                "payback/",
                "p-year-margin/",
                "unrated-usage/",
                "voucher-redemptions/",
            )
        ),
    ]
    urls = ["/admin/reports/", "/admin/reports/ar-aging/"]
    urls += [f"/admin/reports/{path}?{query}from={first}&to={last}" for path, query in pages]
    urls += [url + ("&" if "?" in url else "?") + "format=csv" for url in urls[1:]]
    try:
        web_worker_heap()  # as a web worker's heap is once the application is loaded
        floor_median, floor_p95, _ = timed(floor, args.runs)
        print(f"pages: GET /admin/reports…, range = ?from={first}&to={last}")
        print(f"{'what':<58}{'median ms':>10}{'p95 ms':>9}{'floor ms':>10}{'ratio':>8}{'queries':>9}")
        print(
            f"{'floor: sum(net_amount) GROUP BY period, currency':<58}{floor_median:>10.1f}{floor_p95:>9.1f}"
            f"{floor_median:>10.1f}{1:>8.1f}{1:>9}"
        )

        def short(url: str) -> str:
            return (
                url.replace("/admin/reports", "")
                .replace(f"from={first}&to={last}", "range")
                .replace("?range&", "?")
                .replace("?range", "")
                .replace("&range", "")
            )

        worst = (0.0, "")
        for name, call in [*calls.items(), *((f"GET {short(url)}", page(client, url)) for url in urls)]:
            if args.only not in name:
                continue
            median, p95, queries = timed(call, args.runs)
            worst = max(worst, (p95, name))
            print(
                f"{name:<58}{median:>10.1f}{p95:>9.1f}{floor_median:>10.1f}{median / floor_median:>8.1f}{queries:>9}"
            )
        print(f"worst p95: {worst[1]}")
        print(f"reports: worst {worst[0]:.0f} ms (target 500)")
    finally:
        if not args.keep:
            from django.db import connections

            connections.close_all()
            psql_admin(f'DROP DATABASE IF EXISTS "{DB_NAME}" WITH (FORCE)')


if __name__ == "__main__":
    main()
