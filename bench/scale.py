"""Scale benchmark (not a test): Suanli with 10,000 customers, 100,000 invoices and 10M usage records.

    .venv/bin/python bench/scale.py [--records 10000000] [--customers 10000] [--requests 50] [--keep]

Builds a scratch PostgreSQL database (``suanli_bench_scale`` on the server of ``BENCH_DATABASE_URL``,
default ``postgres://postgres@127.0.0.1:5432/postgres``), migrates it and fills it with set-based
SQL (bench/billing.py's customers, contracts and hardware: per customer one contract with an hourly
2-card line, a monthly server and a yearly P-unit server):

* 100,000 issued invoices with 3 lines each: every customer, January to October 2026;
* usage over 12 months (December 2025 to November 2026) on the hourly cards: a backdrop of
  ``--backdrop`` records over December to October (received before each month's invoice, so
  billing's late-usage check reads them and finds nothing to add), one heavy customer
  (``bench-1``, the portal's customer) with ``--heavy`` records in October 2026, and November 2026
  — the month billed — first with ``--records``/10 records, then topped up to ``--records``.

After each bulk load the tables are vacuumed (``VACUUM (ANALYZE)``), as autovacuum keeps a
table that grew over a month; otherwise autovacuum would be working through ten million
just-loaded rows while the billing runs and pages are timed. Then a ``CHECKPOINT`` writes the
load's pages out, as a server that has run a while has: otherwise the checkpoint the load's
gigabytes of WAL set off spreads its writes over the next minutes, under whatever is timed then
(ingestion at the full table once ran at 0.73 of its empty-table COPY floor that way).

Then it measures, each against a floor taken in the same run:

1. ingestion through the real API (``POST /api/v1/usage/`` with a partner key, Django's test
   client, batches of 500 new records) at an empty usage table and with every record stored;
   the floor of each round is COPY of the same rows, 500 per transaction, into the usage table as
   it stands then (its indexes and triggers). The empty table is measured once at the start and
   again at the end, on a copy of the database made before any usage was loaded
   (``CREATE DATABASE … TEMPLATE``), in five pairs of rounds, one at each table (which goes first
   alternates), so that the machine's speed, which drifts by a quarter over minutes, weighs on
   both alike — *flatness* = the median pair's API rate at the full table ÷ at the empty one;
2. the billing run of November 2026 (``billing_run_execute``) with ``--records``/10 and with
   ``--records`` records in the month, each against bench/billing.py's floor (one SQL query of the
   same per-line usage sums plus a bulk insert of the same invoice lines), each size billed twice:
   in as many processes as the machine has cores (as a Celery worker with ``-c <cores>`` runs a
   month's chunks), then in one — *growth* = the second size's time ÷ the first's, in one process;
3. server time of the admin's invoice and usage changelists (a superuser), the portal's invoice
   list, usage list and dashboard (the heavy customer's user) and the API's invoice and usage
   lists (a staff token): median and p95 over ``--requests`` requests, SQL queries per request;
   the floor is the portal's login page (middleware and a template, no data);
4. the portal's usage CSV of the heavy customer's October (``--heavy`` records): streamed, rows
   counted, the process's peak resident memory above where it started (sampled every 10 ms).

Last line::

    scale: worst p95 <x> ms, billing growth <g>x, ingest flatness <f>
"""

from __future__ import annotations

import argparse
import datetime
import os
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
DB_NAME = "suanli_bench_scale"
EMPTY_DB_NAME = "suanli_bench_scale_empty"  # ingestion's empty table, alternating with the full one
INGEST_PAIRS = 5
INGEST_BATCH = 500
HEAVY = "bench-1"

from bench.billing import LOAD_SQL, floor_seconds, machine, model_defaults_in_db  # noqa: E402


def admin_url() -> str:
    return os.environ.get("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres")


def scratch_url() -> str:
    return f"{admin_url().rsplit('/', 1)[0]}/{DB_NAME}"


def psql_admin(sql: str) -> None:
    import psycopg

    with psycopg.connect(admin_url(), autocommit=True) as conn:
        conn.execute(sql)


# a stored record with its share of indexes, the event table and WAL (measured: ~0.45 KB)
BYTES_PER_RECORD = 600


def disk_free() -> int | None:
    """Free bytes where PostgreSQL keeps its data, when that is this machine (else None)."""
    import shutil

    import psycopg

    with psycopg.connect(admin_url(), autocommit=True) as conn:
        (directory,) = conn.execute("SHOW data_directory").fetchone()
    try:
        return shutil.disk_usage(directory).free
    except OSError:
        return None


def utc(*args) -> datetime.datetime:
    return datetime.datetime(*args, tzinfo=datetime.UTC)


# Billing months in Asia/Shanghai: month m of 2026 starts at 16:00 UTC on the day before the 1st.
def month_start(year: int, month: int) -> datetime.datetime:
    return utc(year, month, 1) - datetime.timedelta(hours=8)


INVOICES_SQL = """
-- January to October 2026: one invoice per customer and month with its three lines, written as drafts
-- and then issued (lines of an issued invoice are frozen by trigger)
INSERT INTO billing_invoice (customer_id, currency, period, status, prices_include_tax, net_amount,
    tax_amount, total_amount, voucher_amount, credited_amount, paid_amount, usage_cutoff_at, void_reason,
    early_issue_reason, fapiao, created_at, updated_at)
SELECT c.id, 'CNY', '2026-' || lpad(m::text, 2, '0'), 'draft', true, 150000.00, 9000.00, 159000.00, 0, 0, 0,
       make_timestamptz(2026, m + 1, 1, 3, 0, 0, 'UTC'), '', '', '{}'::jsonb, now(), now()
  FROM customers_customer c, generate_series(1, 10) m;
INSERT INTO billing_invoiceline (invoice_id, position, kind, contract_id, contract_line_id, description,
    tax_classification, quantity, unit, list_unit_price, unit_price, discount_amount, amount, tax_rate, tax_amount,
    net_amount, gross_amount, service_start_at, service_end_at)
SELECT i.id, l.position, CASE l.term WHEN 'hourly' THEN 'usage' ELSE 'recurring' END, k.id, l.id,
       'Bench line ' || l.position, '信息技术服务', 1, 'unit', 50000, 50000, 0, 53000.00, 0.06, 3000.00, 50000.00,
       53000.00, make_timestamptz(2026, substr(i.period, 6)::int, 1, 0, 0, 0, 'Asia/Shanghai'),
       make_timestamptz(2026, substr(i.period, 6)::int + 1, 1, 0, 0, 0, 'Asia/Shanghai')
  FROM billing_invoice i JOIN contracts_contract k ON k.customer_id = i.customer_id
  JOIN contracts_contractline l ON l.contract_id = k.id;
UPDATE billing_invoice
   SET status = 'issued', number = 'INV-2026-' || lpad(id::text, 7, '0'), issued_at = usage_cutoff_at,
       issued_on = usage_cutoff_at::date, due_on = usage_cutoff_at::date + 30;
"""

# Records on the hourly cards (of every customer, or of one): ``per_card`` per card from ``start``,
# one every ``step`` seconds and ``length`` seconds long, received at ``received``.
USAGE_SQL = """
INSERT INTO metering_usagerecord (provider_id, event_id, content_hash, card_id, server_id, start_at, end_at,
    received_at, void_reason)
SELECT a.provider_id, %(prefix)s || a.card_id || '-' || g, 'h', a.card_id, NULL,
       %(start)s::timestamptz + (g * %(step)s) * interval '1 second',
       %(start)s::timestamptz + (g * %(step)s + %(length)s) * interval '1 second',
       %(received)s, ''
  FROM (SELECT al.card_id, s.provider_id
          FROM contracts_allocation al JOIN inventory_server s ON s.id = al.server_id
          JOIN contracts_contractline l ON l.id = al.line_id JOIN contracts_contract k ON k.id = l.contract_id
          JOIN customers_customer c ON c.id = k.customer_id
         WHERE al.card_id IS NOT NULL AND (%(customer)s::text IS NULL OR c.code = %(customer)s)) a,
       generate_series(0, %(per_card)s - 1) g
"""


def add_usage(cursor, *, prefix, start, seconds, per_card, received, customer=None) -> None:
    step = max(1, seconds // per_card)
    cursor.execute(
        USAGE_SQL,
        {
            "prefix": prefix,
            "start": start,
            "step": step,
            "length": max(1, int(step * 0.8)),
            "per_card": per_card,
            "received": received,
            "customer": customer,
        },
    )


def count(cursor, sql: str, params=None) -> int:
    cursor.execute(sql, params)
    return cursor.fetchone()[0]


def db_size(cursor) -> str:
    cursor.execute("SELECT pg_size_pretty(pg_database_size(current_database()))")
    return cursor.fetchone()[0]


# -- ingestion -----------------------------------------------------------------------------------
def ingest(phase: str, key: str, uuids: list[str], batches: int, rounds: int = 3) -> tuple[float, float, int]:
    """Post ``batches`` batches of new records through the API in ``rounds`` rounds, each followed
    by its COPY floor (the same rows, renamed, 500 per transaction, into the usage table as it
    stands). Returns the best round's API rate, the best round's COPY rate (records per second:
    the fastest the machine did, as other work on it comes and goes) and the records posted."""
    import json

    from django.test import Client
    from django.utils import timezone

    client = Client()
    newest = timezone.now().replace(second=0, microsecond=0) - datetime.timedelta(minutes=10)
    headers = {"HTTP_AUTHORIZATION": f"Api-Key {key}"}
    n = 0

    def body(prefix: str) -> str:
        nonlocal n
        records = []
        for _ in range(INGEST_BATCH):
            start = newest - datetime.timedelta(minutes=n // len(uuids))
            records.append(
                {
                    "event_id": f"{prefix}-{n}",
                    "card": uuids[n % len(uuids)],
                    "start": start.isoformat(),
                    "end": (start + datetime.timedelta(seconds=50)).isoformat(),
                    "telemetry": {"utilization_percent": n % 101},
                }
            )
            n += 1
        return json.dumps(records)

    def post(payload: str) -> None:
        response = client.post("/api/v1/usage/", payload, content_type="application/json", **headers)
        answer = response.json()
        if response.status_code != 201 or answer.get("accepted") != INGEST_BATCH:
            raise SystemExit(f"ingest {phase}: HTTP {response.status_code} {str(answer)[:300]}")

    post(body(f"ing-{phase}-warm"))  # untimed: imports, the key look-up, the connection
    api_rates, copy_rates, posted = [], [], 0
    for r in range(rounds):
        prefix = f"ing-{phase}-{r}"
        bodies = [body(prefix) for _ in range(max(1, batches // rounds))]
        after = max_usage_id()
        t0 = time.perf_counter()
        for payload in bodies:
            post(payload)
        api_rates.append(len(bodies) * INGEST_BATCH / (time.perf_counter() - t0))
        posted += len(bodies) * INGEST_BATCH
        copy_rates.append(copy_floor(f"{prefix}-", after))
    return max(api_rates), max(copy_rates), posted


@contextmanager
def database(name: str) -> Iterator[None]:
    """Point Django's default connection at database ``name`` for the block."""
    from django.db import connections

    wrapper = connections["default"]
    before = wrapper.settings_dict["NAME"]
    wrapper.close()
    wrapper.settings_dict["NAME"] = name
    try:
        yield
    finally:
        wrapper.close()
        wrapper.settings_dict["NAME"] = before


def max_usage_id() -> int:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT coalesce(max(id), 0) FROM metering_usagerecord")
        return cursor.fetchone()[0]


def copy_floor(prefix: str, after: int) -> float:
    """COPY the rows stored after id ``after`` whose event id starts with ``prefix`` (renamed) into
    the usage table, 500 per transaction; records per second. The copies are deleted afterwards."""
    from django.db import connection

    from apps.metering.models import UsageRecord

    fields = [f for f in UsageRecord._meta.concrete_fields if not f.primary_key]
    columns = [f.column for f in fields]
    select = ", ".join("'floor-' || event_id" if c == "event_id" else c for c in columns)
    raw = connection.connection  # psycopg connection, outside Django's transaction management
    data = bytearray()
    with raw.cursor() as cur:
        cur.execute("SELECT coalesce(max(id), 0) FROM metering_usagerecord")
        (before,) = cur.fetchone()
        with cur.copy(
            f"COPY (SELECT {select} FROM metering_usagerecord WHERE id > %s AND event_id LIKE %s ORDER BY id) "
            "TO STDOUT",
            [after, f"{prefix}%"],
        ) as copy:
            for chunk in copy:
                data += chunk
    raw.commit()
    lines = bytes(data).splitlines(keepends=True)
    t0 = time.perf_counter()
    for i in range(0, len(lines), INGEST_BATCH):
        with (
            raw.cursor() as cur,
            cur.copy(f"COPY metering_usagerecord ({', '.join(columns)}) FROM STDIN") as copy,
        ):
            copy.write(b"".join(lines[i : i + INGEST_BATCH]))
        raw.commit()
    elapsed = time.perf_counter() - t0
    with raw.cursor() as cur:
        cur.execute("DELETE FROM metering_usagerecord WHERE id > %s AND event_id LIKE 'floor-%%'", [before])
    raw.commit()
    return len(lines) / elapsed


# -- billing -------------------------------------------------------------------------------------
def bill(label: str) -> tuple[float, float, float]:
    """Bill November 2026 for every customer, first in as many processes as the machine has cores
    (as a Celery worker with ``-c <cores>`` runs a month's chunks), then in one; (seconds in one
    process, seconds in several, floor seconds). Drafts are removed after each."""
    from django.db import connection

    from apps.billing.invoicing.services.runs import billing_run_create, billing_run_execute

    as_of = utc(2026, 12, 1, 3)
    workers = os.cpu_count() or 1
    timings = {}
    for processes in (workers, 1):
        run = billing_run_create(period="2026-11", as_of=as_of, now=as_of)
        t0 = time.perf_counter()
        run = billing_run_execute(run=run, workers=processes)
        timings[processes] = time.perf_counter() - t0
        if processes == 1:
            with connection.cursor() as cursor:
                floor, summed, copied = floor_seconds(
                    cursor, month_start(2026, 11), month_start(2026, 12), drafts_only=True
                )
        with connection.cursor() as cursor:
            cursor.execute(
                "DELETE FROM billing_invoiceline WHERE invoice_id IN "
                "(SELECT id FROM billing_invoice WHERE status = 'draft')"
            )
            cursor.execute("DELETE FROM billing_invoice WHERE status = 'draft'")
        print(
            f"billing {label} in {processes} process(es): {run.status}, customers {run.customers_done}/"
            f"{run.customers_total}, invoices {run.invoices_created}, errors {len(run.errors)}: "
            f"{timings[processes]:.2f} s",
            flush=True,
        )
    seconds, parallel = timings[1], timings[workers]
    print(
        f"billing {label}: floor (sums of {summed} lines + {copied} invoice lines) {floor:.2f} s; ratio "
        f"{seconds / floor:.2f} in one process, {parallel / floor:.2f} in {workers}",
        flush=True,
    )
    return seconds, parallel, floor


def timed(client, url: str, requests: int, headers=None) -> tuple[float, float, int, int]:
    """Median and p95 ms, fewest and most SQL queries of ``requests`` GETs (after one warm-up)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    headers = headers or {}
    client.get(url, **headers)
    times, queries = [], []
    for _ in range(requests):
        with CaptureQueriesContext(connection) as captured:
            t0 = time.perf_counter()
            response = client.get(url, **headers)
            if getattr(response, "streaming", False):
                b"".join(response.streaming_content)
            times.append((time.perf_counter() - t0) * 1000)
        if response.status_code != 200:
            raise SystemExit(f"{url}: HTTP {response.status_code}")
        queries.append(len(captured))
    times.sort()
    return statistics.median(times), times[max(0, round(len(times) * 0.95) - 1)], min(queries), max(queries)


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def export(client, url: str) -> tuple[int, float, float, float, bool]:
    """(CSV rows, seconds, peak RSS growth in MB, peak RSS in MB, streamed) of one download of ``url``."""
    start_rss = rss_bytes()
    peak = [start_rss]
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], rss_bytes())
            time.sleep(0.01)

    sampler = threading.Thread(target=sample)
    sampler.start()
    t0 = time.perf_counter()
    response = client.get(url)
    rows = 0
    for chunk in response.streaming_content:
        rows += chunk.count(b"\n")
    seconds = time.perf_counter() - t0
    done.set()
    sampler.join()
    return rows - 1, seconds, (peak[0] - start_rss) / 1e6, peak[0] / 1e6, response.streaming


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=10_000_000, help="usage records in the billed month")
    parser.add_argument("--backdrop", type=int, default=1_000_000, help="records over December–October")
    parser.add_argument("--heavy", type=int, default=1_000_000, help="the heavy customer's October records")
    parser.add_argument("--customers", type=int, default=10_000)
    parser.add_argument("--requests", type=int, default=50)
    parser.add_argument("--ingest-batches", type=int, default=60, help="API batches of 500 per phase")
    parser.add_argument(
        "--keep", action="store_true", help="keep the scratch database (and its empty-usage copy)"
    )
    args = parser.parse_args()

    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "DATABASE_URL": scratch_url(),
        "PORTAL_DASHBOARD_CACHE_SECONDS": "300",  # as in production
    }
    print(f"machine: {machine()}", flush=True)
    need = (args.records + args.backdrop + args.heavy) * BYTES_PER_RECORD
    free = disk_free()
    if free is not None:
        print(f"disk: {free / 1e9:.0f} GB free, ~{need / 1e9:.0f} GB needed", flush=True)
        if need > free * 0.8:
            raise SystemExit(f"not enough disk for {args.records:,} records: lower --records")
    started = time.perf_counter()
    psql_admin(f'DROP DATABASE IF EXISTS "{DB_NAME}" WITH (FORCE)')
    psql_admin(f'CREATE DATABASE "{DB_NAME}"')
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT, env=env, check=True
    )
    os.environ.update(env)
    import logging

    import django

    django.setup()
    logging.disable(logging.WARNING)
    from bench.harness import test_client_environment, web_worker_heap

    test_client_environment()  # docs/scaling.md#the-benchmarks
    from django.db import connection, transaction
    from django.test import Client
    from django.utils import timezone
    from rest_framework.authtoken.models import Token

    from apps.accounts.models import CustomerMembership, User
    from apps.core.periods import Period
    from apps.customers.models import Customer
    from apps.metering.models import PartnerAPIKey
    from apps.metering.partitions import ensure_partitions
    from apps.providers.models import Provider

    customers = args.customers
    try:
        with connection.cursor() as cursor:
            model_defaults_in_db(cursor)
            cursor.execute(LOAD_SQL, {"servers": customers * 3, "customers": customers})
            # contracts in force since December 2025, so the whole year's usage is the customers'
            cursor.execute("UPDATE contracts_contract SET start_at = %s", [month_start(2025, 12)])
            cursor.execute("UPDATE contracts_allocation SET start_at = %s", [month_start(2025, 12)])
            cursor.execute(INVOICES_SQL, {"customers": customers})
            # after each bulk load the tables are vacuumed, as autovacuum keeps a table that grew
            # over a month: measured otherwise, autovacuum works through the bulk load meanwhile
            cursor.execute("VACUUM (ANALYZE)")
            cursor.execute("CHECKPOINT")
            invoices = count(cursor, "SELECT count(*) FROM billing_invoice")
            # the monthly servers' cards: ingestion goes there, so it adds nothing to billed usage
            cursor.execute(
                "SELECT c.uuid FROM inventory_card c JOIN contracts_allocation al ON al.server_id = c.server_id "
                "JOIN contracts_contractline l ON l.id = al.line_id WHERE l.term = 'monthly' ORDER BY c.id "
                "LIMIT 8000"
            )
            uuids = [row[0] for row in cursor.fetchall()]
        print(
            f"loaded {customers} customers, {invoices} issued invoices with 3 lines each in "
            f"{time.perf_counter() - started:.0f} s",
            flush=True,
        )
        _, key = PartnerAPIKey.objects.create_key(
            name="bench", provider=Provider.objects.get(code="bench-idc")
        )
        staff = User.objects.get(username="bench")
        token = Token.objects.create(user=staff).key
        portal_user = User.objects.create_user("bench-portal", password="suanli-bench")
        CustomerMembership.objects.create(
            user=portal_user, customer=Customer.objects.get(code=HEAVY), role="admin"
        )

        # the empty usage table, kept for ingestion's alternating rounds at the end
        from django.db import connections

        connections.close_all()
        psql_admin(f'DROP DATABASE IF EXISTS "{EMPTY_DB_NAME}" WITH (FORCE)')
        psql_admin(f'CREATE DATABASE "{EMPTY_DB_NAME}" TEMPLATE "{DB_NAME}"')

        # 1. ingestion at an empty usage table
        api_empty, floor_empty, sent = ingest("empty", key, uuids, args.ingest_batches)
        print(
            f"ingest at empty: {sent} records via API at {api_empty:.0f}/s; COPY floor {floor_empty:.0f}/s, "
            f"ratio={api_empty / floor_empty:.2f}",
            flush=True,
        )

        # 2. usage over 12 months; November first with a tenth of --records. The months' partitions
        # are made first, as the daily task keeps them in production (docs/partitions.md).
        t0 = time.perf_counter()
        cards = customers * 2
        with transaction.atomic(), connection.cursor() as cursor:
            ensure_partitions(cursor, now=timezone.now(), since=Period(2025, 12))
        with connection.cursor() as cursor:
            cursor.execute("SET work_mem = '256MB'")  # the event trigger sorts each fill's new ids
            months = [(2025, 12)] + [(2026, m) for m in range(1, 11)]
            per_month = max(1, args.backdrop // (cards * len(months)))
            for year, month in months:
                nxt = (year + 1, 1) if month == 12 else (year, month + 1)
                add_usage(
                    cursor,
                    prefix=f"b{year}{month:02d}-",
                    start=month_start(year, month),
                    seconds=int((month_start(*nxt) - month_start(year, month)).total_seconds()),
                    per_card=per_month,
                    received=month_start(
                        *nxt
                    ),  # before the month's invoice (cut off at 03:00 UTC on the 1st)
                )
            add_usage(
                cursor,
                prefix="heavy-",
                start=month_start(2026, 10),
                seconds=31 * 86400,
                per_card=args.heavy // 2,
                received=month_start(2026, 11),
                customer=HEAVY,
            )
            add_usage(
                cursor,
                prefix="n1-",
                start=month_start(2026, 11),
                seconds=30 * 86400,
                per_card=max(1, args.records // 10 // cards),
                received=utc(2026, 11, 30, 12),
            )
            cursor.execute("VACUUM (ANALYZE)")
            cursor.execute("CHECKPOINT")
            total = count(cursor, "SELECT count(*) FROM metering_usagerecord")
            print(
                f"usage: {total} records ({per_month * cards * len(months)} backdrop, {args.heavy} heavy, "
                f"{args.records // 10} in November) in {time.perf_counter() - t0:.0f} s; database {db_size(cursor)}",
                flush=True,
            )

        # 3. billing at a tenth and at all of --records in the month
        small, small_parallel, small_floor = bill(f"at {args.records // 10:,} records")
        t0 = time.perf_counter()
        with connection.cursor() as cursor:
            add_usage(
                cursor,
                prefix="n2-",
                start=month_start(2026, 11) + datetime.timedelta(seconds=7),
                seconds=30 * 86400,
                per_card=max(1, (args.records - args.records // 10) // cards),
                received=utc(2026, 11, 30, 12),
            )
            cursor.execute("VACUUM (ANALYZE)")
            cursor.execute("CHECKPOINT")
            total = count(cursor, "SELECT count(*) FROM metering_usagerecord")
            in_month = count(
                cursor,
                "SELECT count(*) FROM metering_usagerecord WHERE start_at >= %s AND start_at < %s",
                [month_start(2026, 11), month_start(2026, 12)],
            )
            print(
                f"usage: {total} records, {in_month} in November, in {time.perf_counter() - t0:.0f} s more; "
                f"database {db_size(cursor)}",
                flush=True,
            )
        large, large_parallel, large_floor = bill(f"at {in_month:,} records")
        growth = large / small

        # 4. ingestion with every record stored, in pairs of rounds with the empty table's (which
        # goes first alternates), so a drift of the machine's speed weighs on both alike
        full_rounds, empty_rounds = [], []
        per_round = max(1, args.ingest_batches // INGEST_PAIRS)
        for r in range(INGEST_PAIRS):
            for side in ("full", "empty") if r % 2 == 0 else ("empty", "full"):
                if side == "full":
                    full_rounds.append(ingest(f"full-{r}", key, uuids, per_round, rounds=1))
                else:
                    with database(EMPTY_DB_NAME):
                        empty_rounds.append(ingest(f"empty-{r}", key, uuids, per_round, rounds=1))
        pair_ratios = [full[0] / empty[0] for full, empty in zip(full_rounds, empty_rounds, strict=True)]
        floor_ratios = [full[1] / empty[1] for full, empty in zip(full_rounds, empty_rounds, strict=True)]
        api_full, floor_full = (statistics.median(x[i] for x in full_rounds) for i in (0, 1))
        api_empty, floor_empty = (statistics.median(x[i] for x in empty_rounds) for i in (0, 1))
        sent = sum(n for _, _, n in full_rounds)
        flatness = statistics.median(pair_ratios)
        print(
            f"ingest at {total:,}: {sent} records via API at {api_full:.0f}/s (median of {INGEST_PAIRS} rounds); "
            f"COPY floor {floor_full:.0f}/s, ratio={api_full / floor_full:.2f}; at empty, in rounds paired with "
            f"them: {api_empty:.0f}/s, COPY floor {floor_empty:.0f}/s; full ÷ empty per pair "
            f"{' '.join(f'{x:.2f}' for x in pair_ratios)} (COPY floor {' '.join(f'{x:.2f}' for x in floor_ratios)}); "
            f"flatness {flatness:.2f} (median pair; of the COPY floor {statistics.median(floor_ratios):.2f})",
            flush=True,
        )

        # 5. pages, timed in a heap frozen as a web worker's is (bench/harness.py)
        web_worker_heap()
        admin = Client()
        admin.force_login(staff)
        portal = Client()
        portal.force_login(portal_user)
        api = Client()
        api_headers = {"HTTP_AUTHORIZATION": f"Token {token}"}
        pages = [
            ("admin invoices", admin, "/admin/billing/invoice/", None),
            ("admin usage", admin, "/admin/metering/usagerecord/", None),
            ("portal invoices", portal, "/portal/invoices/", None),
            ("portal usage", portal, "/portal/usage/", None),
            ("portal dashboard", portal, "/portal/", None),
            ("api invoices", api, "/api/v1/invoices/", api_headers),
            ("api usage", api, "/api/v1/usage/", api_headers),
        ]
        # the floor of a page: the portal's login page (middleware and a template, no data)
        floor_median, floor_p95, _, _ = timed(Client(), "/portal/login/", args.requests)
        print(f"{'page':<18}{'median ms':>10}{'p95 ms':>9}{'queries':>9}{'p95/floor':>11}")
        print(f"{'floor (login)':<18}{floor_median:>10.1f}{floor_p95:>9.1f}{0:>9}{1:>11.1f}")
        worst = 0.0
        for name, client, url, headers in pages:
            median, p95, fewest, most = timed(client, url, args.requests, headers)
            worst = max(worst, p95)
            queries = str(most) if fewest == most else f"{fewest}-{most}"
            print(f"{name:<18}{median:>10.1f}{p95:>9.1f}{queries:>9}{p95 / floor_p95:>11.1f}", flush=True)

        # 6. the CSV export of the heavy customer's October
        rows, seconds, growth_mb, peak_mb, streamed = export(portal, "/portal/usage.csv?period=2026-10")
        print(
            f"export: portal usage CSV of {HEAVY} 2026-10: {rows} rows in {seconds:.1f} s, "
            f"{'streamed' if streamed else 'NOT streamed'}, peak memory +{growth_mb:.0f} MB "
            f"(the whole bench process at most {peak_mb:.0f} MB resident)",
            flush=True,
        )
        with connection.cursor() as cursor:
            print(f"database {db_size(cursor)}; built and measured in {time.perf_counter() - started:.0f} s")
        print(
            f"billing: growth {growth:.2f}x ({large_parallel / small_parallel:.2f}x in {os.cpu_count()} processes); "
            f"floor ratio {small / small_floor:.2f} and {large / large_floor:.2f} in one process, "
            f"{small_parallel / small_floor:.2f} and {large_parallel / large_floor:.2f} in {os.cpu_count()}"
        )
        print(
            f"scale: worst p95 {worst:.0f} ms, billing growth {growth:.2f}x, ingest flatness {flatness:.2f}"
        )
    finally:
        if not args.keep:
            from django.db import connections

            connections.close_all()
            psql_admin(f'DROP DATABASE IF EXISTS "{DB_NAME}" WITH (FORCE)')
            psql_admin(f'DROP DATABASE IF EXISTS "{EMPTY_DB_NAME}" WITH (FORCE)')


if __name__ == "__main__":
    main()
