"""A demo database made by an earlier release migrates forward with nothing lost.

``tests/fixtures/demo-e0fe7b7.pgdump`` is ``pg_dump -Fc`` of a database that commit e0fe7b7 (the
release before billing became three peers, docs/architecture.md#billings-peers) migrated and
filled with ``loaddemo``. The test restores it into a scratch database, runs today's ``migrate``
on it, and compares every table's row count and the invoice totals before and after — the totals
also read through today's models, in a separate process, as the product would.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import psycopg
import pytest
from django.conf import settings

ROOT = Path(__file__).resolve().parents[2]
DUMP = ROOT / "tests" / "fixtures" / "demo-e0fe7b7.pgdump"

INVOICE_TOTALS = (
    "SELECT count(*), sum(net_amount), sum(tax_amount), sum(total_amount), sum(voucher_amount),"
    " sum(credited_amount), sum(paid_amount) FROM billing_invoice"
)

ORM_TOTALS = """
import json
from django.db.models import Count, Sum
from apps.billing.models import Invoice, InvoiceLine, Voucher, SettlementStatement
totals = Invoice.objects.aggregate(
    n=Count("pk"), net=Sum("net_amount"), tax=Sum("tax_amount"), total=Sum("total_amount"),
    voucher=Sum("voucher_amount"), credited=Sum("credited_amount"), paid=Sum("paid_amount"),
)
totals["lines"] = InvoiceLine.objects.count()
totals["vouchers"] = Voucher.objects.count()
totals["statements"] = SettlementStatement.objects.count()
print(json.dumps({k: str(v) for k, v in totals.items()}))
"""


def _server() -> dict:
    db = settings.DATABASES["default"]
    return {"host": db["HOST"] or "127.0.0.1", "port": str(db["PORT"] or 5432), "user": db["USER"]}


def _admin_connection():
    server = _server()
    return psycopg.connect(
        host=server["host"], port=server["port"], user=server["user"], dbname="postgres", autocommit=True
    )


@pytest.fixture
def old_demo_database():
    name = f"suanli_forward_{uuid.uuid4().hex[:8]}"
    server = _server()
    with _admin_connection() as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        subprocess.run(
            [
                "pg_restore",
                "--no-owner",
                "-h",
                server["host"],
                "-p",
                server["port"],
                "-U",
                server["user"],
                "-d",
                name,
                str(DUMP),
            ],
            check=True,
            capture_output=True,
        )
        yield name
    finally:
        with _admin_connection() as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _snapshot(name: str) -> tuple[dict[str, int], tuple]:
    server = _server()
    with psycopg.connect(host=server["host"], port=server["port"], user=server["user"], dbname=name) as conn:
        tables = [
            row[0]
            for row in conn.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename"
            )
        ]
        counts = {t: conn.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0] for t in tables}
        totals = conn.execute(INVOICE_TOTALS).fetchone()
    return counts, totals


def _manage(name: str, *args: str) -> str:
    server = _server()
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "DATABASE_URL": f"postgres://{server['user']}@{server['host']}:{server['port']}/{name}",
    }
    done = subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def test_the_previous_releases_demo_database_migrates_forward_with_nothing_lost(old_demo_database):
    counts_before, totals_before = _snapshot(old_demo_database)
    assert counts_before["billing_invoice"] > 0 and counts_before["billing_voucher"] > 0

    _manage(old_demo_database, "migrate", "--noinput")

    counts_after, totals_after = _snapshot(old_demo_database)
    lost = {t: (n, counts_after.get(t)) for t, n in counts_before.items() if counts_after.get(t) != n}
    # Django's registries may only grow: a release adds migrations, and new models bring their
    # content types and permissions (granted to the roles by sync_roles), and new periodic jobs
    # their beat-schedule rows (docs/operations.md#beat-schedule); nothing else changes.
    growing = (
        "django_migrations",
        "django_content_type",
        "auth_permission",
        "auth_group_permissions",
        "django_celery_beat_periodictask",
        "django_celery_beat_crontabschedule",
        "django_celery_beat_intervalschedule",
        "django_celery_beat_periodictasks",
    )
    for table in growing:
        lost.pop(table, None)
        assert counts_after[table] >= counts_before[table], table
    assert lost == {}
    assert totals_after == totals_before

    through_models = json.loads(
        _manage(old_demo_database, "shell", "-v", "0", "-c", ORM_TOTALS).splitlines()[-1]
    )
    n, net, tax, total, voucher, credited, paid = totals_before
    assert through_models == {
        "n": str(n),
        "net": str(net),
        "tax": str(tax),
        "total": str(total),
        "voucher": str(voucher),
        "credited": str(credited),
        "paid": str(paid),
        "lines": str(counts_before["billing_invoiceline"]),
        "vouchers": str(counts_before["billing_voucher"]),
        "statements": str(counts_before["billing_settlementstatement"]),
    }
