"""The Celery jobs of the billing cycle, run eagerly with the clock frozen."""

from __future__ import annotations

import datetime
import threading

import pytest
import time_machine
from django.db import connection

from apps.accounts import roles
from apps.billing.models import BillingRun, Invoice
from apps.billing.tasks import daily_overdue_task, monthly_billing_task
from apps.contracts import services
from tests.factories.catalogue import CustomerFactory, ServerFactory
from tests.factories.contracts import NOW, draft, server_line

pytestmark = pytest.mark.django_db
SH = datetime.timezone(datetime.timedelta(hours=8))


@pytest.fixture
def customer(make_staff):
    am = make_staff(roles.ACCOUNT_MANAGER)
    customer = CustomerFactory(billing_email="ap@example.com", payment_terms_days=30)
    services.contract_activate(
        contract=draft(customer, am, [server_line(ServerFactory())]), actor=am, now=NOW
    )
    return customer


def test_the_monthly_job_bills_the_closed_month_once(customer, django_capture_on_commit_callbacks):
    with time_machine.travel(datetime.datetime(2026, 12, 1, 2, 0, tzinfo=SH), tick=False):
        with django_capture_on_commit_callbacks(execute=True):
            monthly_billing_task()
        with django_capture_on_commit_callbacks(execute=True):
            assert monthly_billing_task() == 0
    run = BillingRun.objects.get()
    assert (run.period, run.status, run.invoices_created) == ("2026-11", "done", 1)
    assert Invoice.objects.get(customer=customer).period == "2026-11"


def test_overdue_reminders_go_once_a_week(customer, mailoutbox, django_capture_on_commit_callbacks):
    from apps.billing.invoicing.services.issuing import invoice_issue
    from apps.billing.invoicing.services.runs import billing_run_create, billing_run_execute

    at = datetime.datetime(2026, 12, 1, 3, tzinfo=SH)
    billing_run_execute(run=billing_run_create(period="2026-11", as_of=at, now=at))
    invoice = invoice_issue(invoice=Invoice.objects.get(), now=at)
    assert invoice.due_on == datetime.date(2026, 12, 31)
    with django_capture_on_commit_callbacks(execute=True):
        with time_machine.travel(datetime.datetime(2026, 12, 31, 9, tzinfo=SH), tick=False):
            assert daily_overdue_task() == 0  # due today: not overdue yet
        with time_machine.travel(datetime.datetime(2027, 1, 1, 9, tzinfo=SH), tick=False):
            assert daily_overdue_task() == 1
            assert daily_overdue_task() == 0  # same day: no second mail
        with time_machine.travel(datetime.datetime(2027, 1, 8, 9, tzinfo=SH), tick=False):
            assert daily_overdue_task() == 1
    assert len(mailoutbox) == 2
    assert invoice.number in mailoutbox[0].subject and mailoutbox[0].to == ["ap@example.com"]


def test_the_daily_job_also_reminds_7_days_before_the_due_date(
    customer, mailoutbox, django_capture_on_commit_callbacks
):
    from apps.billing.invoicing.services.issuing import invoice_issue
    from apps.billing.invoicing.services.runs import billing_run_create, billing_run_execute

    at = datetime.datetime(2026, 12, 1, 3, tzinfo=SH)
    billing_run_execute(run=billing_run_create(period="2026-11", as_of=at, now=at))
    with django_capture_on_commit_callbacks(execute=True):
        invoice = invoice_issue(invoice=Invoice.objects.get(), now=at)
        with time_machine.travel(datetime.datetime(2026, 12, 24, 9, tzinfo=SH), tick=False):
            assert daily_overdue_task() == 1
            assert daily_overdue_task() == 0  # same day: no second mail
    issue_mail, reminder = mailoutbox
    assert invoice.number in issue_mail.subject and issue_mail.attachments[0][2] == "application/pdf"
    assert reminder.subject.startswith(f"付款提醒：发票 {invoice.number} 将于2026年12月31日到期")
    assert reminder.to == ["ap@example.com"]


def test_the_monthly_job_does_not_start_a_second_run_while_one_is_queued(customer):
    from apps.billing.invoicing.services.runs import billing_run_create

    queued = billing_run_create(period="2026-11", now=datetime.datetime(2026, 12, 1, 1, tzinfo=SH))
    with time_machine.travel(datetime.datetime(2026, 12, 1, 2, 0, tzinfo=SH), tick=False):
        assert monthly_billing_task() == 0
    assert list(BillingRun.objects.values_list("pk", "status")) == [(queued.pk, "queued")]
    assert not Invoice.objects.exists()


def test_the_monthly_job_runs_again_after_a_failed_run(customer, django_capture_on_commit_callbacks):
    from apps.billing.invoicing.services.runs import billing_run_create

    failed = billing_run_create(period="2026-11", now=datetime.datetime(2026, 12, 1, 1, tzinfo=SH))
    BillingRun.objects.filter(pk=failed.pk).update(status="failed")
    with time_machine.travel(datetime.datetime(2026, 12, 1, 2, 0, tzinfo=SH), tick=False):
        with django_capture_on_commit_callbacks(execute=True):
            monthly_billing_task()
    assert sorted(BillingRun.objects.values_list("status", flat=True)) == ["done", "failed"]


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_the_monthly_job_enqueued_twice_at_once_makes_one_run(customer):
    barrier = threading.Barrier(2)
    results: list[int] = []
    errors: list[Exception] = []

    def worker():
        try:
            barrier.wait(timeout=20)
            results.append(monthly_billing_task())
        except Exception as exc:  # reported below
            errors.append(exc)
        finally:
            connection.close()

    with time_machine.travel(datetime.datetime(2026, 12, 1, 2, 0, tzinfo=SH), tick=False):
        threads = [threading.Thread(target=worker) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
    assert errors == []
    assert sorted(results) == [0, 1]  # one job found the other's run and started nothing
    run = BillingRun.objects.get()
    assert (run.period, run.status, run.invoices_created) == ("2026-11", "done", 1)
    assert Invoice.objects.filter(customer=customer).count() == 1
