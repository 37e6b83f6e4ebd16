"""Billing benchmark (not a test): the whole ``run_billing`` of a month against its floor.

    .venv/bin/python bench/billing.py [--customers 10000] [--records 1000000] [--keep]

Builds a scratch PostgreSQL database (``suanli_bench_billing`` on the server of ``BENCH_DATABASE_URL``,
default ``postgres://postgres@127.0.0.1:5432/postgres``), migrates it, and loads with set-based
SQL: N customers × 1 active contract × 3 lines (2 cards hourly, 1 server monthly, 1 server as a
2.496 P yearly line), and R usage records in November 2026 on the hourly cards. It then times the
real billing run (``billing_run_execute``, the code behind ``run_billing``) and, in the same run,
the floor: one SQL query computing the same per-line usage sums over the same rows (range_agg
union per card) plus a bulk insert of the same number of invoice lines. Then it issues every
draft the run made (``invoice_issue_period``, the code behind ``issue_invoices``: gapless numbers,
fapiao snapshot, the freeze, the issue steps of vouchers and customer credit) and prints the run,
the issue and both together. The last line is

    billing: <T> s for <N> customers, floor <F> s, ratio=<T/F>; in <W> processes <P> s, ratio=<P/F>; issue <I> s, run + issue <T+I> s

The run is timed twice: first in as many processes as the machine has cores (``--workers``;
``billing_run_execute(workers=…)``, as a Celery worker with ``-c <cores>`` runs a month's chunks),
then, the drafts deleted, in one process. The last line gives both against the same floor.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DB_NAME = "suanli_bench_billing"


def admin_url() -> str:
    return os.environ.get("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres")


def scratch_url() -> str:
    base = admin_url().rsplit("/", 1)[0]
    return f"{base}/{DB_NAME}"


def psql_admin(sql: str) -> None:
    import psycopg

    with psycopg.connect(admin_url(), autocommit=True) as conn:
        conn.execute(sql)


def machine() -> str:
    cpu = platform.processor() or "unknown cpu"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{os.cpu_count()} cores, {cpu}, Python {platform.python_version()}"


LOAD_SQL = """
INSERT INTO providers_provider (code, name, type, contact_name, contact_email, contact_phone, settlement_terms_days,
    is_related_party, notes, created_at, updated_at)
VALUES ('bench-idc', 'Bench IDC', 'idc', '', '', '', 30, false, '', now(), now());
INSERT INTO providers_site (provider_id, name, city, hub, created_at, updated_at)
SELECT id, 'Bench site', 'Chengdu', 'chengyu', now(), now() FROM providers_provider WHERE code = 'bench-idc';

-- 3 servers per customer: cards (hourly line), a monthly server, a P-unit server
INSERT INTO inventory_server (provider_id, site_id, serial, gpu_model_id, card_count, status, currency, created_at,
    updated_at)
SELECT p.id, s.id, 'B-' || g, m.id, 8, 'available', 'CNY', now(), now()
  FROM generate_series(1, %(servers)s) g, providers_provider p, providers_site s, inventory_gpumodel m
 WHERE p.code = 'bench-idc' AND s.provider_id = p.id AND m.name = 'A100-SXM4-40GB';
INSERT INTO inventory_card (server_id, slot, uuid, status, created_at, updated_at)
SELECT srv.id, slot, 'GPU-' || lpad(to_hex(srv.id), 8, '0') || '-0000-0000-0000-' || lpad(slot::text, 12, '0'),
       'available', now(), now()
  FROM inventory_server srv, generate_series(0, 7) slot;

INSERT INTO customers_customer (code, name, tax_id, billing_address, phone, bank_name, bank_account, billing_email,
    invoice_type, currency, payment_terms_days, language, auto_issue, created_at, updated_at)
SELECT 'bench-' || g, 'Bench customer ' || g, 'B' || lpad(g::text, 17, '0'), '', '', '', '', '', 'vat_special',
       'CNY', 30, 'zh-hans', false, now(), now()
  FROM generate_series(1, %(customers)s) g;

INSERT INTO accounts_user (password, is_superuser, username, first_name, last_name, email, is_staff, is_active,
    date_joined, display_name, phone)
VALUES ('!', true, 'bench', '', '', '', true, true, now(), '', '');

INSERT INTO contracts_contract (number, version, customer_id, account_manager_id, currency, prices_include_tax,
    start_at, minimum_monthly_amount, status, notes, created_at, updated_at, end_reason, activated_at)
SELECT 'C-2026-' || lpad(c.id::text, 6, '0'), 1, c.id, u.id, 'CNY', true, '2026-10-31 16:00+00', NULL, 'active', '',
       now(), now(), '', now()
  FROM customers_customer c, accounts_user u WHERE u.username = 'bench';

INSERT INTO contracts_contractline (contract_id, position, resource, gpu_model_id, quantity, term, list_unit_price,
    term_discount_percent, discount_percent, tax_category_id, yearly_billing, p_basis)
SELECT k.id, pos.n, pos.resource, m.id, pos.qty, pos.term, pos.price, pos.term_disc, pos.disc, t.id,
       'monthly_instalments', 'fp16_dense'
  FROM contracts_contract k
 CROSS JOIN (VALUES (1, 'card', 2::numeric, 'hourly', 22.70, 0, 10),
                    (2, 'server', 1::numeric, 'monthly', 106000.00, 15, 0),
                    (3, 'p_unit', 2.496::numeric, 'yearly', 200000.00, 15, 0))
       AS pos(n, resource, qty, term, price, term_disc, disc)
 CROSS JOIN inventory_gpumodel m CROSS JOIN contracts_taxcategory t
 WHERE m.name = 'A100-SXM4-40GB' AND t.code = 'it_service';

-- customer i takes servers 3i-2 (two cards), 3i-1 (whole), 3i (whole)
WITH ranked AS (
    SELECT srv.id, row_number() OVER (ORDER BY srv.id) AS rn FROM inventory_server srv
), lines AS (
    SELECT l.id AS line_id, l.position, row_number() OVER (PARTITION BY l.position ORDER BY l.contract_id) AS cn
      FROM contracts_contractline l
)
INSERT INTO contracts_allocation (line_id, server_id, card_id, slot, start_at, end_at, firm, created_at)
SELECT lines.line_id, r.id, c.id, c.slot, timestamptz '2026-10-31 16:00+00', NULL::timestamptz, true, now()
  FROM lines JOIN ranked r ON r.rn = 3 * lines.cn - 2
  JOIN inventory_card c ON c.server_id = r.id AND c.slot < 2
 WHERE lines.position = 1
UNION ALL
SELECT lines.line_id, r.id, NULL, NULL, timestamptz '2026-10-31 16:00+00', NULL, true, now()
  FROM lines JOIN ranked r ON r.rn = 3 * lines.cn - 3 + lines.position
 WHERE lines.position IN (2, 3);
"""

USAGE_SQL = """
INSERT INTO metering_usagerecord (provider_id, event_id, content_hash, card_id, server_id, start_at, end_at,
    received_at, void_reason)
SELECT a.provider_id, 'e-' || a.card_id || '-' || g, 'h', a.card_id, NULL,
       timestamptz '2026-10-31 16:00+00' + (g * %(step)s) * interval '1 second',
       timestamptz '2026-10-31 16:00+00' + (g * %(step)s + %(length)s) * interval '1 second',
       timestamptz '2026-11-30 12:00+00', ''
  FROM (SELECT al.card_id, s.provider_id FROM contracts_allocation al JOIN inventory_server s ON s.id = al.server_id
         WHERE al.card_id IS NOT NULL) a,
       generate_series(0, %(per_card)s - 1) g;
"""

FLOOR_QUERY = """
SELECT al.line_id, sum(upper(r) - lower(r)) AS used
  FROM (SELECT card_id, unnest(range_agg(tstzrange(greatest(start_at, %(start)s), least(end_at, %(end)s)))) AS r
          FROM metering_usagerecord
         WHERE start_at < %(end)s AND end_at > %(start)s AND voided_at IS NULL
         GROUP BY card_id) merged
  JOIN contracts_allocation al ON al.card_id = merged.card_id AND al.firm
 GROUP BY al.line_id
"""


def model_defaults_in_db(cursor) -> None:
    """Give every NOT NULL column of the scratch database its model field's default, so the
    set-based SQL of the benches, which names the columns it fills, keeps working when a model
    gains a field (Django keeps defaults in Python, not in the table)."""
    from django.apps import apps
    from django.db import connection
    from django.db.models import NOT_PROVIDED

    for model in apps.get_models():
        if model._meta.proxy or not model._meta.managed:
            continue
        for field in model._meta.concrete_fields:
            if field.null or field.primary_key or field.unique or field.default is NOT_PROVIDED:
                continue
            value = field.get_db_prep_save(field.get_default(), connection)
            cursor.execute(
                f'ALTER TABLE "{model._meta.db_table}" ALTER COLUMN "{field.column}" SET DEFAULT %s', [value]
            )


def load(cursor, *, customers: int, records: int) -> None:
    """The bench's customers, contracts and hardware, and ``records`` usage records in November 2026."""
    cards = customers * 2
    per_card = max(1, records // cards)
    step = (30 * 86400) // per_card
    model_defaults_in_db(cursor)
    cursor.execute(LOAD_SQL, {"servers": customers * 3, "customers": customers})
    cursor.execute(USAGE_SQL, {"per_card": per_card, "step": step, "length": int(step * 0.8)})


def floor_seconds(cursor, start, end, *, tries: int = 3, drafts_only: bool = False) -> tuple[float, int, int]:
    """The floor of a billing run over ``[start, end)``: (best seconds of ``tries``, lines summed,
    invoice lines copied). The usage sums of every hourly line in one SQL query (range_agg union
    per card), plus a bulk insert of as many rows as the run wrote to ``billing_invoiceline`` (with
    ``drafts_only``, the lines of draft invoices: the database also holds issued ones).
    """
    cursor.execute(
        "CREATE TEMP TABLE IF NOT EXISTS floor_lines (LIKE billing_invoiceline INCLUDING DEFAULTS)"
    )
    source = "billing_invoiceline"
    if drafts_only:
        source += " WHERE invoice_id IN (SELECT id FROM billing_invoice WHERE status = 'draft')"
    cursor.execute(f"SELECT count(*) FROM {source}")
    (lines,) = cursor.fetchone()
    floors = []
    for _ in range(tries):  # the best of three: the floor is what the hardware can do at its fastest
        cursor.execute("TRUNCATE floor_lines")
        t0 = time.perf_counter()
        cursor.execute(FLOOR_QUERY, {"start": start, "end": end})
        sums = cursor.fetchall()
        cursor.execute(f"INSERT INTO floor_lines SELECT * FROM {source}")
        floors.append(time.perf_counter() - t0)
    cursor.execute("DROP TABLE floor_lines")
    return min(floors), len(sums), lines


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--customers", type=int, default=10_000)
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--keep", action="store_true", help="keep the scratch database")
    parser.add_argument(
        "--workers", type=int, default=0, help="processes of the parallel run (default: cores)"
    )
    args = parser.parse_args()

    psql_admin(f"DROP DATABASE IF EXISTS {DB_NAME} WITH (FORCE)")
    psql_admin(f"CREATE DATABASE {DB_NAME}")
    env = {**os.environ, "DATABASE_URL": scratch_url(), "DJANGO_SETTINGS_MODULE": "config.settings.local"}
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT, env=env, check=True
    )

    os.environ.update(env)
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    import datetime
    import logging

    logging.disable(logging.WARNING)  # one "notice not sent" line per invoice: bench customers have no e-mail

    from django.db import connection

    from apps.billing.invoicing.services.issuing import invoice_issue_period
    from apps.billing.invoicing.services.runs import billing_run_create, billing_run_execute

    t0 = time.perf_counter()
    with connection.cursor() as cursor:
        load(cursor, customers=args.customers, records=args.records)
        # as autovacuum leaves a loaded table: statistics, visibility map, hint bits set (else the
        # first run to read the records pays for writing them)
        cursor.execute("VACUUM (ANALYZE)")
        cursor.execute("CHECKPOINT")  # the load's pages written out, not under the timed runs
        cursor.execute("SELECT count(*) FROM metering_usagerecord")
        records = cursor.fetchone()[0]
    print(f"machine: {machine()}")
    print(f"loaded {args.customers} customers, {records} usage records in {time.perf_counter() - t0:.1f} s")

    as_of = datetime.datetime(2026, 12, 1, 3, tzinfo=datetime.UTC)
    workers = args.workers or os.cpu_count() or 1
    # with the machine's cores as worker processes (as `celery worker -c <cores>` runs a month),
    # then the drafts deleted and the same month billed again in one process
    parallel_run = billing_run_create(period="2026-11", as_of=as_of, now=as_of)
    t0 = time.perf_counter()
    parallel_run = billing_run_execute(run=parallel_run, workers=workers)
    parallel = time.perf_counter() - t0
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM billing_invoice WHERE status = 'draft'")
        parallel_drafts = cursor.fetchone()[0]
        cursor.execute(
            "DELETE FROM billing_invoiceline WHERE invoice_id IN "
            "(SELECT id FROM billing_invoice WHERE status = 'draft')"
        )
        cursor.execute("DELETE FROM billing_invoice WHERE status = 'draft'")
    # the one-process run starts from the tables as the first run found them, not from 10,000
    # deleted drafts and their lines (VACUUM runs outside a transaction)
    connection.ensure_connection()
    with connection.cursor() as cursor:
        cursor.execute("VACUUM billing_invoice, billing_invoiceline")
    print(
        f"run in {workers} processes: {parallel_run.status}, customers {parallel_run.customers_done}/"
        f"{parallel_run.customers_total}, drafts {parallel_drafts}, errors {len(parallel_run.errors)}, {parallel:.2f} s"
    )
    run = billing_run_create(period="2026-11", as_of=as_of, now=as_of)
    t0 = time.perf_counter()
    run = billing_run_execute(run=run)
    total = time.perf_counter() - t0
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM billing_invoiceline")
        lines = cursor.fetchone()[0]
    print(
        f"run: {run.status}, customers {run.customers_done}/{run.customers_total}, invoices {run.invoices_created}, "
        f"lines {lines}, errors {len(run.errors)}"
    )

    start = datetime.datetime(2026, 10, 31, 16, tzinfo=datetime.UTC)
    end = datetime.datetime(2026, 11, 30, 16, tzinfo=datetime.UTC)
    with connection.cursor() as cursor:
        floor, summed, copied = floor_seconds(cursor, start, end)
    print(f"floor: usage sums for {summed} lines + bulk insert of {copied} invoice lines")

    t0 = time.perf_counter()
    outcome = invoice_issue_period(period="2026-11", now=as_of)
    issue = time.perf_counter() - t0
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*), count(DISTINCT number) FROM billing_invoice WHERE status = 'issued'")
        issued, numbers = cursor.fetchone()
    print(
        f"issue: {len(outcome.issued)} invoices issued ({issued} in the table, {numbers} distinct numbers), "
        f"errors {len(outcome.errors)}, {issue:.2f} s ({issue / max(1, issued) * 1000:.2f} ms per invoice)"
    )
    connection.close()
    if not args.keep:
        psql_admin(f"DROP DATABASE IF EXISTS {DB_NAME} WITH (FORCE)")
    print(
        f"billing: {total:.2f} s for {args.customers} customers, floor {floor:.2f} s, ratio={total / floor:.2f}; "
        f"in {workers} processes {parallel:.2f} s, ratio={parallel / floor:.2f}; "
        f"issue {issue:.2f} s, run + issue {total + issue:.2f} s"
    )


if __name__ == "__main__":
    main()
