"""The Celery jobs of the billing cycle, run eagerly with the clock frozen."""

from __future__ import annotations

import datetime

import pytest
import time_machine

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


def test_overdue_reminders_go_once_a_week(customer, mailoutbox):
    from apps.billing.services.issuing import invoice_issue
    from apps.billing.services.runs import billing_run_create, billing_run_execute

    at = datetime.datetime(2026, 12, 1, 3, tzinfo=SH)
    billing_run_execute(billing_run_create(period="2026-11", as_of=at, now=at))
    invoice = invoice_issue(invoice=Invoice.objects.get(), now=at)
    assert invoice.due_on == datetime.date(2026, 12, 31)
    with time_machine.travel(datetime.datetime(2026, 12, 31, 9, tzinfo=SH), tick=False):
        assert daily_overdue_task() == 0  # due today: not overdue yet
    with time_machine.travel(datetime.datetime(2027, 1, 1, 9, tzinfo=SH), tick=False):
        assert daily_overdue_task() == 1
        assert daily_overdue_task() == 0  # same day: no second mail
    with time_machine.travel(datetime.datetime(2027, 1, 8, 9, tzinfo=SH), tick=False):
        assert daily_overdue_task() == 1
    assert len(mailoutbox) == 2
    assert invoice.number in mailoutbox[0].subject and mailoutbox[0].to == ["ap@example.com"]
