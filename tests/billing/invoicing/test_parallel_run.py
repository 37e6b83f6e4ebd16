"""A billing run in several processes at once (``run_billing --workers``): the same drafts as one
process, every chunk counted once (docs/invoices.md#parallel-runs)."""

from __future__ import annotations

import datetime
import threading
from decimal import Decimal
from io import StringIO

import pytest
import time_machine
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection, transaction

from apps.accounts import roles
from apps.billing.invoicing.services import runs
from apps.billing.models import BillingRun, Invoice
from apps.contracts import services
from tests.factories.catalogue import CustomerFactory, ServerFactory
from tests.factories.contracts import NOW, card_line, draft
from tests.factories.usage import usage

# the processes read committed data: no test transaction around them
pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)

SH = datetime.timezone(datetime.timedelta(hours=8))
AS_OF = datetime.datetime(2026, 12, 1, 3, tzinfo=SH)


def h(day, hour=0):
    return datetime.datetime(2026, 11, day, hour, tzinfo=SH)


@pytest.fixture
def customers(make_staff):
    """Five customers on a 10.00/hour card; customer n used it n + 1 hours in November."""
    am = make_staff(roles.ACCOUNT_MANAGER, username="am1")
    for n in range(5):
        customer, server = CustomerFactory(code=f"c{n}"), ServerFactory()
        contract = draft(customer, am, [card_line(server, 1, price="10.00", discount="0")], start=h(1))
        services.contract_activate(contract=contract, actor=am, now=NOW)
        usage(card=server.cards.get(slot=0), start=h(3), end=h(3, n + 1))


def bill(*args: str) -> BillingRun:
    with time_machine.travel(AS_OF, tick=False):
        call_command("run_billing", "--period", "2026-11", "--no-progress", *args, stdout=StringIO())
    return BillingRun.objects.latest("pk")


def test_two_processes_bill_what_one_would(customers, monkeypatch):
    monkeypatch.setattr(runs, "CHUNK_SIZE", 2)
    assert runs.chunk_size(5, workers=2) == 2  # 3 chunks of at most 2: both processes get work

    run = bill("--workers", "2")

    assert (run.status, run.customers_total, run.customers_done) == ("done", 5, 5)
    assert (run.invoices_created, run.invoices_refreshed, run.invoices_unchanged) == (5, 0, 0)
    totals = dict(Invoice.objects.filter(period="2026-11").values_list("customer__code", "total_amount"))
    assert totals == {f"c{n}": Decimal(10 * (n + 1)).quantize(Decimal("0.01")) for n in range(5)}
    # every chunk's changes merged into the run, none lost to another process's write
    assert sorted(run.draft_changes) == [f"c{n} CNY" for n in range(5)]
    assert run.draft_changes["c4 CNY"] == {"before": None, "after": "50.00"}

    # one process over the same data finds nothing to change
    again = bill()
    assert (again.invoices_created, again.invoices_refreshed, again.invoices_unchanged) == (0, 0, 5)


def test_a_run_in_processes_refuses_uncommitted_data_and_bad_worker_counts(customers):
    run = runs.billing_run_create(period="2026-11", as_of=AS_OF, now=AS_OF)
    with transaction.atomic(), pytest.raises(ValueError, match="outside a transaction"):
        runs.billing_run_execute(run=run, workers=2, now=AS_OF)
    with pytest.raises(CommandError, match="at least 1"):
        bill("--workers", "0")


def test_one_process_reads_the_next_chunk_ahead_and_bills_the_same(customers, monkeypatch):
    monkeypatch.setattr(runs, "CHUNK_SIZE", 2)
    readers = []
    real_load = runs.billing_inputs_load

    def spied(**kwargs):
        readers.append((threading.current_thread().name, kwargs["customer_ids"]))
        return real_load(**kwargs)

    monkeypatch.setattr(runs, "billing_inputs_load", spied)

    run = bill()

    assert (run.status, run.customers_done, run.invoices_created) == ("done", 5, 5)
    totals = dict(Invoice.objects.filter(period="2026-11").values_list("customer__code", "total_amount"))
    assert totals == {f"c{n}": Decimal(10 * (n + 1)).quantize(Decimal("0.01")) for n in range(5)}
    # the 3 chunks' inputs were all read on the read-ahead thread, each chunk once, in order
    assert [name.startswith("billing-read-ahead") for name, _ in readers] == [True, True, True]
    assert [len(ids) for _, ids in readers] == [2, 2, 1]
    # the thread is gone and its connection closed: only this test's connection is left
    assert not [t for t in threading.enumerate() if t.name.startswith("billing-read-ahead")]
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()")
        assert cursor.fetchone()[0] == 1


def test_inside_a_transaction_each_chunk_reads_its_own_inputs(customers, monkeypatch):
    monkeypatch.setattr(runs, "CHUNK_SIZE", 2)
    passed = []
    real_chunk = runs.billing_run_chunk
    monkeypatch.setattr(
        runs, "billing_run_chunk", lambda **kw: passed.append(kw["inputs"]) or real_chunk(**kw)
    )
    run = runs.billing_run_create(period="2026-11", as_of=AS_OF, now=AS_OF)
    with transaction.atomic():
        run = runs.billing_run_execute(run=run, now=AS_OF)
        assert run.invoices_created == 5
    assert passed == [None, None, None]  # a second connection would not see uncommitted rows


def test_a_run_on_tables_analysed_while_empty_leaves_their_statistics_counting_its_rows(customers):
    # as after a VACUUM of emptied tables: the planner would read every id look-up as a scan
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE billing_invoice, billing_invoiceline")
        cursor.execute(
            "SELECT relname, reltuples FROM pg_class WHERE relname IN ('billing_invoice', 'billing_invoiceline')"
        )
        assert dict(cursor.fetchall()) == {"billing_invoice": 0, "billing_invoiceline": 0}

    run = bill()

    assert run.invoices_created == 5
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT relname, reltuples FROM pg_class WHERE relname IN ('billing_invoice', 'billing_invoiceline')"
        )
        assert dict(cursor.fetchall()) == {"billing_invoice": 5, "billing_invoiceline": 5}
