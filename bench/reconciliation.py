"""Reconciliation benchmark (not a test): what comparing billed with observed hours adds to a run.

    .venv/bin/python bench/reconciliation.py [--customers 2000] [--records 200000]

Builds its own scratch database (``suanli_bench_reconciliation``) with ``bench/billing.py``'s world
(N customers, each with 2 hourly cards and two server lines, R partner records in November 2026),
then, in the same run:

1. the floor: the billing run of November without reconciliation;
2. reconciliation of every draft, in the run's chunks, when no card has agent records (every
   draft ``not_needed``: the common case until agents are deployed);
3. the same after an agent record is added for every partner record (every card compared,
   every draft ``matched``).

The last line is

    reconciliation: none <A> s, every card <B> s, run <F> s, ratio none=<A/F> every=<B/F>
"""

from __future__ import annotations

import argparse
import datetime
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

import billing as world  # noqa: E402  (bench/billing.py: the loader and the scratch database helpers)

world.DB_NAME = "suanli_bench_reconciliation"

AGENT_COPY_SQL = """
INSERT INTO metering_usagerecord (provider_id, event_id, content_hash, card_id, server_id, start_at, end_at,
    received_at, void_reason, source)
SELECT provider_id, 'agent-' || event_id, 'h', card_id, NULL, start_at, end_at, received_at, '', 'agent'
  FROM metering_usagerecord WHERE source = 'partner' AND card_id IS NOT NULL
"""


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--customers", type=int, default=2000)
    parser.add_argument("--records", type=int, default=200_000)
    args = parser.parse_args()

    world.psql_admin(f"DROP DATABASE IF EXISTS {world.DB_NAME} WITH (FORCE)")
    world.psql_admin(f"CREATE DATABASE {world.DB_NAME}")
    env = {
        **os.environ,
        "DATABASE_URL": world.scratch_url(),
        "DJANGO_SETTINGS_MODULE": "config.settings.local",
    }
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT, env=env, check=True
    )
    os.environ.update(env)
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    import logging

    logging.disable(logging.WARNING)
    from django.db import connection

    from apps.billing.invoicing.services import runs
    from apps.billing.invoicing.services.reconciliation import invoice_reconcile
    from apps.billing.models import Invoice

    with connection.cursor() as cursor:
        world.load(cursor, customers=args.customers, records=args.records)
        cursor.execute("ANALYZE")
    print(f"machine: {world.machine()}")

    as_of = datetime.datetime(2026, 12, 1, 3, tzinfo=datetime.UTC)
    reconcile, runs.invoice_reconcile = runs.invoice_reconcile, lambda **kwargs: {}
    t0 = time.perf_counter()
    runs.billing_run_execute(run=runs.billing_run_create(period="2026-11", as_of=as_of, now=as_of))
    floor = time.perf_counter() - t0
    runs.invoice_reconcile = reconcile
    ids = sorted(Invoice.objects.filter(period="2026-11", status="draft").values_list("pk", flat=True))

    def reconcile_all() -> tuple[float, dict]:
        t0 = time.perf_counter()
        statuses = {}
        for index in range(0, len(ids), runs.CHUNK_SIZE):
            statuses.update(invoice_reconcile(invoice_ids=ids[index : index + runs.CHUNK_SIZE]))
        return time.perf_counter() - t0, statuses

    none, statuses = reconcile_all()
    print(f"run without reconciliation (floor) {floor:.2f} s for {len(ids)} drafts")
    print(f"no agent records: {none:.2f} s, {len(statuses)} drafts with figures")
    with connection.cursor() as cursor:
        cursor.execute(AGENT_COPY_SQL)
        cursor.execute("ANALYZE metering_usagerecord")
    every, statuses = reconcile_all()
    matched = sum(1 for status in statuses.values() if status == "matched")
    print(f"an agent record for every partner record: {every:.2f} s, {matched}/{len(ids)} drafts matched")
    connection.close()
    world.psql_admin(f"DROP DATABASE IF EXISTS {world.DB_NAME} WITH (FORCE)")
    print(
        f"reconciliation: none {none:.2f} s, every card {every:.2f} s, run {floor:.2f} s, "
        f"ratio none={none / floor:.2f} every={every / floor:.2f}"
    )


if __name__ == "__main__":
    main()
