"""The issue e-mail (with the PDF) and payment receipts: after commit, in the customer's language,
once per event (docs/invoices.md#e-mail)."""

from __future__ import annotations

import datetime
import smtplib
from decimal import Decimal

import pytest
from django.core.mail import EmailMultiAlternatives
from django.db import transaction
from django.test import override_settings

from apps.billing.invoicing.services.issuing import invoice_issue
from apps.billing.invoicing.services.payments import payment_record
from apps.billing.models import Notice
from apps.billing.notices.services import notice_queue_at_issue, notice_queue_at_payment, notice_send
from apps.billing.tasks import notice_send_task
from tests.billing.notices.conftest import ISSUED_AT

pytestmark = pytest.mark.django_db
PAID_AT = datetime.datetime(2026, 12, 10, 15, tzinfo=datetime.timezone(datetime.timedelta(hours=8)))


def html_of(message) -> str:
    (html, mimetype) = message.alternatives[0]
    assert mimetype == "text/html"
    return html


def test_issuing_mails_the_invoice_with_its_pdf_in_chinese(
    make_draft, mailoutbox, django_capture_on_commit_callbacks
):
    draft = make_draft(language="zh-hans", billing_email="ap@acme.example.cn")
    with django_capture_on_commit_callbacks(execute=True):
        invoice = invoice_issue(invoice=draft, now=ISSUED_AT)

    assert len(mailoutbox) == 1
    mail = mailoutbox[0]
    assert mail.to == ["ap@acme.example.cn"]
    assert mail.subject == f"发票 {invoice.number} 已开具：应付 ¥144,000.00，2026年12月31日到期"
    assert "应付金额：¥144,000.00" in mail.body and "到期日：2026年12月31日" in mail.body
    assert f"http://127.0.0.1:8000/portal/invoices/{invoice.pk}/" in mail.body
    assert f'href="http://127.0.0.1:8000/portal/invoices/{invoice.pk}/"' in html_of(mail)
    ((filename, content, mimetype),) = mail.attachments
    assert (filename, mimetype) == (f"{invoice.number}.pdf", "application/pdf")
    assert content.startswith(b"%PDF-")

    notice = Notice.objects.get()
    assert (notice.kind, notice.key, notice.status, notice.language) == (
        "issued",
        invoice.number,
        "sent",
        "zh-hans",
    )
    assert notice.recipients == ["ap@acme.example.cn"] and notice.subject == mail.subject


def test_an_english_customer_gets_the_english_e_mail(
    make_draft, mailoutbox, django_capture_on_commit_callbacks
):
    draft = make_draft(language="en")
    with override_settings(PORTAL_BASE_URL="https://billing.suanli.example/"):
        with django_capture_on_commit_callbacks(execute=True):
            invoice = invoice_issue(invoice=draft, now=ISSUED_AT)

    (mail,) = mailoutbox
    assert mail.subject == f"Invoice {invoice.number}: CNY 144,000.00 due on 31 December 2026"
    assert "Amount due: CNY 144,000.00" in mail.body and "Due date: 31 December 2026" in mail.body
    assert f"https://billing.suanli.example/portal/invoices/{invoice.pk}/" in mail.body
    assert "发票" not in mail.body
    assert mail.attachments[0][2] == "application/pdf"


def test_an_issue_rolled_back_sends_nothing(make_draft, mailoutbox, django_capture_on_commit_callbacks):
    draft = make_draft()
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        with pytest.raises(RuntimeError), transaction.atomic():
            invoice_issue(invoice=draft, now=ISSUED_AT)
            raise RuntimeError("the caller failed after issuing")
    assert callbacks == [] and mailoutbox == []
    assert not Notice.objects.exists()
    draft.refresh_from_db()
    assert draft.status == "draft"


def test_the_mail_leaves_only_after_commit(make_draft, mailoutbox, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        invoice_issue(invoice=make_draft(), now=ISSUED_AT)
    assert mailoutbox == [] and len(callbacks) == 1
    assert Notice.objects.get().status == "queued"
    callbacks[0]()  # the commit
    assert len(mailoutbox) == 1 and Notice.objects.get().status == "sent"


def test_a_rerun_sends_nothing_twice(issued, mailoutbox, django_capture_on_commit_callbacks):
    notice = Notice.objects.get(invoice=issued)
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        assert notice_queue_at_issue(invoice=issued, now=ISSUED_AT) is None  # the step run again
    assert callbacks == []
    assert notice_send_task(notice.pk) is False  # the send task delivered twice
    assert notice_send(notice_id=notice.pk, now=ISSUED_AT) is False
    assert mailoutbox == [] and Notice.objects.count() == 1


def test_a_customer_without_billing_e_mail_is_logged_not_mailed(
    make_draft, mailoutbox, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        invoice = invoice_issue(invoice=make_draft(billing_email=""), now=ISSUED_AT)
    assert callbacks == [] and mailoutbox == []
    notice = Notice.objects.get(invoice=invoice)
    assert (notice.status, notice.error) == ("skipped", "No billing e-mail on the customer.")


def test_a_send_that_fails_is_marked_failed_and_not_retried(
    make_draft, mailoutbox, django_capture_on_commit_callbacks, monkeypatch
):
    def refuse(self, fail_silently=False):
        raise smtplib.SMTPRecipientsRefused({"ap@example.com": (550, b"mailbox unavailable")})

    monkeypatch.setattr(EmailMultiAlternatives, "send", refuse)
    with django_capture_on_commit_callbacks(execute=True):
        invoice = invoice_issue(invoice=make_draft(), now=ISSUED_AT)
    notice = Notice.objects.get(invoice=invoice)
    assert notice.status == "failed" and "mailbox unavailable" in notice.error
    assert invoice.status == "issued"  # the invoice stays issued: the mail is not part of it

    monkeypatch.undo()
    assert notice_send(notice_id=notice.pk, now=ISSUED_AT) is False
    assert mailoutbox == []


def test_a_payment_sends_a_receipt_once(issued, mailoutbox, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        part = payment_record(
            invoice=issued,
            amount=Decimal("44000.00"),
            method="bank_transfer",
            reference="BOC-778",
            now=PAID_AT,
        )
    (mail,) = mailoutbox
    assert mail.to == ["ap@example.com"]
    assert mail.subject == f"收款确认：发票 {issued.number} 已收到 ¥44,000.00"
    assert "2026年12月10日收到您通过对公转账支付的 ¥44,000.00" in mail.body
    assert "付款参考：BOC-778" in mail.body
    assert "该发票尚余 ¥100,000.00 待付，到期日2026年12月31日。" in mail.body
    assert mail.attachments == []

    with django_capture_on_commit_callbacks(execute=True):
        payment_record(invoice=issued, amount=Decimal("100000.00"), method="bank_transfer", now=PAID_AT)
    assert len(mailoutbox) == 2
    assert "该发票已全部付清，谢谢！" in mailoutbox[1].body

    with django_capture_on_commit_callbacks(execute=True) as callbacks:  # the step run again
        assert notice_queue_at_payment(invoice=issued, payment=part, now=PAID_AT) is None
    assert callbacks == [] and len(mailoutbox) == 2
    assert list(Notice.objects.filter(kind="receipt").values_list("status", flat=True)) == ["sent", "sent"]


def test_an_english_receipt(make_draft, mailoutbox, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        invoice = invoice_issue(invoice=make_draft(language="en"), now=ISSUED_AT)
    with django_capture_on_commit_callbacks(execute=True):
        payment_record(invoice=invoice, amount=Decimal("144000.00"), method="bank_transfer", now=PAID_AT)
    issue_mail, receipt = mailoutbox
    assert issue_mail.subject.startswith(f"Invoice {invoice.number}: CNY 144,000.00 due on")
    assert receipt.subject == f"Payment received: CNY 144,000.00 for invoice {invoice.number}"
    assert "We received CNY 144,000.00 by bank transfer on 10 December 2026" in receipt.body
    assert "The invoice is now paid in full." in receipt.body


def test_a_payment_rolled_back_sends_no_receipt(issued, mailoutbox, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        with pytest.raises(RuntimeError), transaction.atomic():
            payment_record(invoice=issued, amount=Decimal("10.00"), method="bank_transfer", now=PAID_AT)
            raise RuntimeError("rolled back")
    assert callbacks == [] and mailoutbox == []
    assert not Notice.objects.filter(kind="receipt").exists()


def test_an_invoice_settled_before_its_e_mail_leaves_says_nothing_is_due(
    make_draft, mailoutbox, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):  # one transaction: issued and paid
        invoice = invoice_issue(invoice=make_draft(language="en"), now=ISSUED_AT)
        payment_record(invoice=invoice, amount=Decimal("144000.00"), method="bank_transfer", now=ISSUED_AT)
    issue_mail, receipt = mailoutbox
    assert issue_mail.subject == f"Invoice {invoice.number}: settled in full, nothing to pay"
    assert "Amount due: CNY 0.00" in issue_mail.body and issue_mail.attachments[0][2] == "application/pdf"
    assert "The invoice is now paid in full." in receipt.body


def test_credit_applied_at_issue_is_on_the_issue_e_mail_not_a_receipt(
    issued, mailoutbox, django_capture_on_commit_callbacks
):
    from apps.billing.invoicing.services.runs import billing_run_create, billing_run_execute
    from apps.billing.models import Invoice
    from apps.billing.payments.services.credit import bank_transfer_record

    with django_capture_on_commit_callbacks(execute=True):  # 6,000.00 overpaid: customer credit
        bank_transfer_record(
            invoice=issued,
            amount=Decimal("150000.00"),
            reference="BOC-1",
            received_on=datetime.date(2026, 12, 10),
            actor=None,
            now=PAID_AT,
        )
    assert [mail.subject for mail in mailoutbox] == [f"收款确认：发票 {issued.number} 已收到 ¥144,000.00"]
    mailoutbox.clear()

    january = datetime.datetime(2027, 1, 1, 3, tzinfo=PAID_AT.tzinfo)
    billing_run_execute(
        run=billing_run_create(period="2026-12", customer=issued.customer, as_of=january, now=january)
    )
    with django_capture_on_commit_callbacks(execute=True):
        december = invoice_issue(invoice=Invoice.objects.get(period="2026-12"), now=january)
    (mail,) = mailoutbox  # the issue e-mail only
    assert december.amount_due == Decimal("138000.00")
    assert "余额抵扣：¥6,000.00" in mail.body and "应付金额：¥138,000.00" in mail.body
    assert not Notice.objects.filter(kind="receipt", invoice=december).exists()
