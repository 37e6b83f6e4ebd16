"""Races and crashes: gapless numbers under concurrent issue, concurrent runs, a worker killed mid-run.

The threaded tests commit for real (``transaction=True``); ``serialized_rollback`` restores the
migrated reference data (GPU catalogue, tax categories, role groups) after the flush.
"""

from __future__ import annotations

import threading
from decimal import Decimal

import pytest
from django.db import connection, transaction
from django.db.models import Count

from apps.accounts import roles
from apps.billing.invoicing.services import invoicing, runs, steps
from apps.billing.invoicing.services.issuing import invoice_issue
from apps.billing.invoicing.services.runs import billing_run_chunk, billing_run_create, billing_run_execute
from apps.billing.models import BillingRun, Invoice, InvoiceLine
from apps.core.errors import DomainError
from apps.core.models import NumberSeries
from tests.factories.catalogue import CustomerFactory, ServerFactory
from tests.factories.contracts import server_line
from tests.factories.invoices import AS_OF, ISSUED_AT, active, bill, metered_invoice

REAL = pytest.mark.django_db(transaction=True, serialized_rollback=True)


def _customers(am, count: int) -> list:
    customers = []
    for index in range(count):
        customer = CustomerFactory(code=f"c{index:02d}")
        active(customer, am, [server_line(ServerFactory(), price="30000.00", term_discount="0")])
        customers.append(customer)
    return customers


def _in_threads(target, args_list) -> list[Exception]:
    barrier = threading.Barrier(len(args_list))
    errors: list[Exception] = []

    def run(*args):
        try:
            barrier.wait(timeout=20)
            target(*args)
        except Exception as exc:  # reported by the test
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=args) for args in args_list]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(thread.is_alive() for thread in threads)
    return errors


@REAL
def test_ten_concurrent_issues_take_numbers_1_to_10_without_gaps_or_duplicates(make_staff):
    am = make_staff(roles.ACCOUNT_MANAGER, username="am-c")
    _customers(am, 10)
    bill()
    drafts = list(Invoice.objects.order_by("pk"))
    assert len(drafts) == 10

    errors = _in_threads(
        lambda invoice: invoice_issue(invoice=invoice, now=ISSUED_AT), [(d,) for d in drafts]
    )

    assert errors == []
    numbers = sorted(Invoice.objects.values_list("number", flat=True))
    assert numbers == [f"INV-2026-{n:06d}" for n in range(1, 11)]
    assert NumberSeries.objects.get(prefix="INV", year=2026).last_value == 10


@pytest.mark.django_db
def test_a_rolled_back_issue_gives_its_number_back(make_staff, monkeypatch):
    am = make_staff(roles.ACCOUNT_MANAGER, username="am1")
    first, second = metered_invoice(am), metered_invoice(am)

    def broken(*, invoice, now):  # fails after the number is taken and the invoice saved
        raise DomainError("voucher ledger unavailable")

    monkeypatch.setitem(steps._STEPS, "issue", [broken])
    with pytest.raises(DomainError):
        invoice_issue(invoice=first, now=ISSUED_AT)
    first.refresh_from_db()
    assert (first.status, first.number) == ("draft", None)
    assert not NumberSeries.objects.filter(prefix="INV", year=2026, last_value__gt=0).exists()
    monkeypatch.undo()
    assert invoice_issue(invoice=second, now=ISSUED_AT).number == "INV-2026-000001"
    assert invoice_issue(invoice=first, now=ISSUED_AT).number == "INV-2026-000002"


@REAL
def test_two_runs_of_a_period_at_once_make_one_invoice_per_customer(make_staff):
    am = make_staff(roles.ACCOUNT_MANAGER, username="am-c")
    customers = _customers(am, 6)
    first = billing_run_create(period="2026-11", as_of=AS_OF, now=AS_OF)
    second = billing_run_create(period="2026-11", as_of=AS_OF, now=AS_OF)

    errors = _in_threads(lambda run: billing_run_execute(run=run, now=AS_OF), [(first,), (second,)])

    assert errors == []
    per_customer = dict(Invoice.objects.values_list("customer_id").annotate(n=Count("pk")))
    assert per_customer == {c.pk: 1 for c in customers}
    assert set(
        InvoiceLine.objects.values_list("invoice_id").annotate(n=Count("pk")).values_list("n", flat=True)
    ) == {1}
    assert set(Invoice.objects.values_list("total_amount", flat=True)) == {Decimal("30000.00")}
    done = list(
        BillingRun.objects.values_list("status", "customers_done", "invoices_created", "invoices_unchanged")
    )
    assert {status for status, *_ in done} == {"done"} and all(d[1] == 6 for d in done)
    assert sum(created for *_, created, _ in done) == 6  # each invoice was created once …
    assert sum(created + unchanged for *_, created, unchanged in done) == 12  # … and found by the other run


class WorkerKilled(BaseException):
    """Not an ``Exception``: nothing in the services catches it, as with a killed process."""


@REAL
def test_a_worker_killed_mid_chunk_loses_nothing_and_a_rerun_doubles_nothing(make_staff, monkeypatch):
    am = make_staff(roles.ACCOUNT_MANAGER, username="am-c")
    customers = _customers(am, 5)
    monkeypatch.setattr(runs, "CHUNK_SIZE", 2)  # chunks of two customers
    real_write = invoicing._write
    calls = []

    def killed_in_second_chunk(run, period, plans, result):
        calls.append(sorted(plans))
        if len(calls) != 2:
            return real_write(run, period, plans, result)
        with transaction.atomic():
            real_write(run, period, plans, result)  # the chunk's drafts are written …
            assert Invoice.objects.filter(customer_id__in=plans).count() == 2
            raise WorkerKilled  # … and the worker dies before its transaction commits

    monkeypatch.setattr(invoicing, "_write", killed_in_second_chunk)
    run = billing_run_create(period="2026-11", as_of=AS_OF, now=AS_OF)
    with pytest.raises(WorkerKilled):
        billing_run_execute(run=run, now=AS_OF)

    # the first chunk is committed, the second rolled back whole, the third never ran
    billed = set(Invoice.objects.values_list("customer__code", flat=True))
    assert billed == {"c00", "c01"}
    run.refresh_from_db()
    assert (run.status, run.customers_done, run.customers_total, run.invoices_created) == ("running", 2, 5, 2)

    # the broker redelivers the unacknowledged chunks (acks_late) to another worker
    monkeypatch.setattr(invoicing, "_write", real_write)
    ids = [c.pk for c in customers]
    billing_run_chunk(run_id=run.pk, customer_ids=ids[2:4], now=AS_OF)
    billing_run_chunk(run_id=run.pk, customer_ids=ids[4:], now=AS_OF)
    run.refresh_from_db()
    assert (run.status, run.customers_done, run.invoices_created) == ("done", 5, 5)

    # and re-running the whole period changes nothing
    rerun = bill()
    assert (rerun.status, rerun.invoices_created, rerun.invoices_unchanged) == ("done", 0, 5)
    per_customer = dict(Invoice.objects.values_list("customer__code").annotate(n=Count("pk")))
    assert per_customer == {f"c{i:02d}": 1 for i in range(5)}
    assert InvoiceLine.objects.count() == 5
