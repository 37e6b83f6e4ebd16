"""Reminders: 7 days before the due date, and weekly once overdue; each e-mail leaves after the
reminder run commits, once per event (docs/invoices.md#e-mail)."""

from __future__ import annotations

import datetime
from decimal import Decimal

import pytest
from django.db import transaction

from apps.billing.invoicing.services.issuing import invoice_issue
from apps.billing.invoicing.services.payments import payment_record
from apps.billing.models import Notice
from apps.billing.notices.services import notice_queue_reminders
from tests.billing.notices.conftest import ISSUED_AT, SH

pytestmark = pytest.mark.django_db
OVERDUE_AT = datetime.datetime(2027, 1, 1, 9, tzinfo=SH)


def at(day: datetime.date) -> datetime.datetime:
    return datetime.datetime(day.year, day.month, day.day, 9, tzinfo=SH)


def test_the_due_soon_reminder_goes_exactly_7_days_before_and_once(
    issued, mailoutbox, django_capture_on_commit_callbacks
):
    assert issued.due_on == datetime.date(2026, 12, 31)
    with django_capture_on_commit_callbacks(execute=True):
        assert notice_queue_reminders(now=at(datetime.date(2026, 12, 23))) == 0  # 8 days before
        assert mailoutbox == []
        assert notice_queue_reminders(now=at(datetime.date(2026, 12, 24))) == 1  # 7 days before
        assert notice_queue_reminders(now=at(datetime.date(2026, 12, 24))) == 0  # the task again that day
        assert notice_queue_reminders(now=at(datetime.date(2026, 12, 25))) == 0  # 6 days before
        assert notice_queue_reminders(now=at(datetime.date(2026, 12, 31))) == 0  # due today
    (mail,) = mailoutbox
    assert mail.to == ["ap@example.com"]
    assert mail.subject == f"付款提醒：发票 {issued.number} 将于2026年12月31日到期，应付 ¥144,000.00"
    assert f"http://127.0.0.1:8000/portal/invoices/{issued.pk}/" in mail.body
    notice = Notice.objects.get(kind="due_soon")
    assert (notice.key, notice.status) == ("2026-12-31", "sent")


def test_a_missed_day_still_reminds_before_the_due_date(
    issued, mailoutbox, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        assert notice_queue_reminders(now=at(datetime.date(2026, 12, 26))) == 1  # the 24th was missed
        assert notice_queue_reminders(now=at(datetime.date(2026, 12, 27))) == 0
    assert len(mailoutbox) == 1


def test_short_terms_get_no_reminder_right_after_the_issue_e_mail(
    make_draft, mailoutbox, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        invoice = invoice_issue(invoice=make_draft(payment_terms_days=5), now=ISSUED_AT)
        assert notice_queue_reminders(now=at(datetime.date(2026, 12, 1))) == 0
        assert notice_queue_reminders(now=at(datetime.date(2026, 12, 3))) == 0
    assert [mail.subject.split("：")[0] for mail in mailoutbox] == [f"发票 {invoice.number} 已开具"]


def test_the_overdue_reminder_is_mailed_only_after_commit_and_once(
    issued, mailoutbox, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        assert notice_queue_reminders(now=OVERDUE_AT) == 1
        assert mailoutbox == []  # nothing sent inside the reminder run's transaction
    assert len(callbacks) == 1
    issued.refresh_from_db()
    assert issued.reminder_sent_on == datetime.date(2027, 1, 1)  # shown on the invoice page

    for callback in callbacks:  # the commit
        callback()
    (mail,) = mailoutbox
    assert mail.to == ["ap@example.com"]
    assert mail.subject == f"逾期提醒：发票 {issued.number} 已于2026年12月31日到期，待付 ¥144,000.00"
    assert "现已逾期 1 天" in mail.body

    with django_capture_on_commit_callbacks(execute=True) as again:
        assert notice_queue_reminders(now=OVERDUE_AT) == 0  # same day: no second reminder
    assert again == [] and len(mailoutbox) == 1


def test_overdue_reminders_go_once_a_week_in_english(
    make_draft, mailoutbox, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        invoice = invoice_issue(invoice=make_draft(language="en"), now=ISSUED_AT)
        for day in range(1, 16):  # 1 … 15 January 2027, the task every day
            notice_queue_reminders(now=at(datetime.date(2027, 1, day)))
    overdue = [mail for mail in mailoutbox if mail.subject.startswith("Overdue")]
    assert [mail.subject for mail in overdue] == [
        f"Overdue: invoice {invoice.number} was due on 31 December 2026 (CNY 144,000.00 open)"
    ] * 3
    assert ["1 day overdue" in overdue[0].body, "8 days overdue" in overdue[1].body] == [True, True]
    assert list(Notice.objects.filter(kind="overdue").order_by("key").values_list("key", flat=True)) == [
        "2027-01-01",
        "2027-01-08",
        "2027-01-15",
    ]


def test_a_reminder_rolled_back_sends_nothing(issued, mailoutbox, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        with pytest.raises(RuntimeError), transaction.atomic():
            notice_queue_reminders(now=OVERDUE_AT)
            raise RuntimeError("database went away")
    assert callbacks == [] and mailoutbox == []
    assert not Notice.objects.filter(kind="overdue").exists()
    issued.refresh_from_db()
    assert issued.reminder_sent_on is None


def test_paid_invoices_get_no_reminder(issued, mailoutbox, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        payment_record(invoice=issued, amount=Decimal("144000.00"), method="bank_transfer", now=ISSUED_AT)
    assert len(mailoutbox) == 1  # the receipt
    mailoutbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        assert notice_queue_reminders(now=at(datetime.date(2026, 12, 24))) == 0
        assert notice_queue_reminders(now=OVERDUE_AT) == 0
    assert mailoutbox == []


def test_an_invoice_paid_after_its_reminder_was_queued_is_not_reminded(
    issued, mailoutbox, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        assert notice_queue_reminders(now=OVERDUE_AT) == 1
    with django_capture_on_commit_callbacks(execute=True):
        payment_record(invoice=issued, amount=Decimal("144000.00"), method="bank_transfer", now=OVERDUE_AT)
    mailoutbox.clear()  # the receipt
    callbacks[0]()  # the reminder's send runs after the payment
    assert mailoutbox == []
    notice = Notice.objects.get(kind="overdue")
    assert (notice.status, notice.error) == ("skipped", "Invoice is paid now.")


def test_the_reminder_run_does_not_query_per_invoice(
    make_draft, django_capture_on_commit_callbacks, django_assert_max_num_queries
):
    with django_capture_on_commit_callbacks(execute=True):
        for _ in range(3):
            invoice_issue(invoice=make_draft(), now=ISSUED_AT)
    with django_capture_on_commit_callbacks(execute=False):
        with django_assert_max_num_queries(7):  # the 7th: the webhook endpoints of all their customers
            assert notice_queue_reminders(now=OVERDUE_AT) == 3
