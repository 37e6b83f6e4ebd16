"""Overdue reminders: the e-mail leaves after the reminder's transaction commits, once per reminder."""

from __future__ import annotations

import datetime

import pytest

from apps.accounts import roles
from apps.billing.invoicing.services.issuing import invoice_issue
from apps.billing.invoicing.services.reminders import invoice_send_overdue_reminders
from apps.billing.invoicing.services.runs import billing_run_create, billing_run_execute
from apps.billing.models import Invoice
from apps.contracts import services
from tests.factories.catalogue import CustomerFactory, ServerFactory
from tests.factories.contracts import NOW, draft, server_line

pytestmark = pytest.mark.django_db
SH = datetime.timezone(datetime.timedelta(hours=8))
ISSUED_AT = datetime.datetime(2026, 12, 1, 3, tzinfo=SH)
OVERDUE_AT = datetime.datetime(2027, 1, 1, 9, tzinfo=SH)


@pytest.fixture
def overdue(make_staff) -> Invoice:
    am = make_staff(roles.ACCOUNT_MANAGER)
    customer = CustomerFactory(billing_email="ap@example.com", payment_terms_days=30)
    services.contract_activate(
        contract=draft(customer, am, [server_line(ServerFactory())]), actor=am, now=NOW
    )
    billing_run_execute(run=billing_run_create(period="2026-11", as_of=ISSUED_AT, now=ISSUED_AT))
    return invoice_issue(invoice=Invoice.objects.get(), now=ISSUED_AT)


def test_the_reminder_is_mailed_only_after_commit_and_once(
    overdue, mailoutbox, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        assert invoice_send_overdue_reminders(now=OVERDUE_AT) == 1
        assert mailoutbox == []  # nothing sent while the invoice row is locked
    assert len(callbacks) == 1
    overdue.refresh_from_db()
    assert overdue.reminder_sent_on == datetime.date(2027, 1, 1)

    for callback in callbacks:  # the commit
        callback()
    assert len(mailoutbox) == 1
    assert overdue.number in mailoutbox[0].subject and mailoutbox[0].to == ["ap@example.com"]

    with django_capture_on_commit_callbacks(execute=True) as again:
        assert invoice_send_overdue_reminders(now=OVERDUE_AT) == 0  # same day: no second reminder
    assert again == [] and len(mailoutbox) == 1


def test_a_reminder_rolled_back_sends_nothing(
    overdue, mailoutbox, django_capture_on_commit_callbacks, monkeypatch
):
    def fail_save(self, *args, **kwargs):
        raise RuntimeError("database went away")

    monkeypatch.setattr(Invoice, "save", fail_save)
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        with pytest.raises(RuntimeError):
            invoice_send_overdue_reminders(now=OVERDUE_AT)
    assert callbacks == [] and mailoutbox == []
