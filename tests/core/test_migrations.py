"""The models and the migrations agree, so a database made by an earlier release migrates forward.

Moving billing's models into its three peers (invoicing, vouchers, settlements) kept every table,
column and constraint: ``makemigrations --check`` finds nothing to write, and a database migrated
before the move has nothing left to apply.
"""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command
from django.db import connection
from django.db.migrations.executor import MigrationExecutor


@pytest.mark.django_db
def test_the_models_need_no_migration_that_is_not_written():
    out = StringIO()
    try:
        call_command("makemigrations", "--check", "--dry-run", stdout=out, stderr=StringIO())
    except SystemExit as exc:  # --check exits 1 when a migration is missing
        pytest.fail(f"models and migrations disagree (exit {exc.code}):\n{out.getvalue()}")
    assert "No changes detected" in out.getvalue()


@pytest.mark.django_db
def test_a_migrated_database_has_nothing_left_to_apply():
    executor = MigrationExecutor(connection)
    plan = executor.migration_plan(executor.loader.graph.leaf_nodes())
    assert plan == []


@pytest.mark.django_db
def test_billing_tables_keep_their_names():
    tables = set(connection.introspection.table_names())
    assert {
        "billing_invoice",
        "billing_invoiceline",
        "billing_creditnote",
        "billing_payment",
        "billing_billingrun",
        "billing_voucher",
        "billing_voucherledgerentry",
        "billing_voucherprogramme",
        "billing_settlementstatement",
        "billing_settlementline",
    } <= tables
