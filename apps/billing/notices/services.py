"""Customer e-mails about invoices (docs/invoices.md#e-mail): claimed once, sent after commit.

A notice is *claimed* by inserting its row — ``INSERT … ON CONFLICT DO NOTHING`` under the unique
(kind, invoice, key) — inside the transaction of the event that calls for it (an issue, a payment,
the daily reminder run). Only a claim that inserted a row queues the e-mail, with
``transaction.on_commit``, as the Celery task ``billing.notice_send``: a rolled-back event sends
nothing, and a re-run, a retried task or two workers at once claim nothing the second time.

The task moves the row from ``queued`` to ``sending`` in one UPDATE before it mails, so a task
delivered twice mails once; no row lock is held while the mail server is talked to. A send that
fails is marked ``failed`` with the error (shown in admin) and is not retried: at most once.
"""

from __future__ import annotations

import contextlib
import contextvars
import datetime
import logging
from decimal import Decimal

from celery import current_app
from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.db import connection, transaction
from django.template.loader import render_to_string
from django.utils import translation

from apps.billing.invoicing.models import Invoice, InvoiceStatus, Payment, PaymentMethod
from apps.billing.invoicing.pdf import invoice_pdf
from apps.billing.invoicing.selectors import (
    billing_today,
    invoice_for_pdf,
    invoices_due_soon,
    invoices_overdue,
)
from apps.billing.notices.models import Notice, NoticeKind, NoticeStatus
from apps.core.events import event_publish_many
from apps.customers.models import Customer, Language

logger = logging.getLogger(__name__)

SEND_TASK = "billing.notice_send"  # apps.billing.tasks.notice_send_task, queued by name
DUE_SOON_DAYS = 7  # the reminder before the due date goes this many days before it
OVERDUE_EVERY_DAYS = 7  # an overdue invoice is reminded once in each such week past its due date
CLAIM_BATCH = 1000  # rows per INSERT (PostgreSQL takes at most 65,535 parameters a statement)
NO_RECIPIENT = "No billing e-mail on the customer."

SUBJECTS = {
    (NoticeKind.ISSUED, Language.ZH_HANS): "发票 {number} 已开具：应付 {amount_due}，{due_on}到期",
    (NoticeKind.ISSUED, Language.EN): "Invoice {number}: {amount_due} due on {due_on}",
    # the issue e-mail of an invoice already covered (by vouchers, credit or a payment) when it is sent
    ("settled", Language.ZH_HANS): "发票 {number} 已开具：已全部结清，无需付款",
    ("settled", Language.EN): "Invoice {number}: settled in full, nothing to pay",
    (NoticeKind.DUE_SOON, Language.ZH_HANS): "付款提醒：发票 {number} 将于{due_on}到期，应付 {amount_due}",
    (NoticeKind.DUE_SOON, Language.EN): "Reminder: invoice {number} is due on {due_on} ({amount_due})",
    (NoticeKind.OVERDUE, Language.ZH_HANS): "逾期提醒：发票 {number} 已于{due_on}到期，待付 {amount_due}",
    (NoticeKind.OVERDUE, Language.EN): "Overdue: invoice {number} was due on {due_on} ({amount_due} open)",
    (NoticeKind.RECEIPT, Language.ZH_HANS): "收款确认：发票 {number} 已收到 {payment_amount}",
    (NoticeKind.RECEIPT, Language.EN): "Payment received: {payment_amount} for invoice {number}",
}
SYMBOLS = {"CNY": "¥", "USD": "US$", "HKD": "HK$"}
MONTHS = "January February March April May June July August September October November December".split()
METHODS = {
    PaymentMethod.BANK_TRANSFER: {Language.ZH_HANS: "对公转账", Language.EN: "bank transfer"},
    PaymentMethod.STRIPE: {Language.ZH_HANS: "在线支付（Stripe）", Language.EN: "card payment (Stripe)"},
    PaymentMethod.VOUCHER: {Language.ZH_HANS: "算力券", Language.EN: "compute voucher"},
    PaymentMethod.CREDIT: {Language.ZH_HANS: "账户余额", Language.EN: "account credit"},
}


# -- who, in which language ----------------------------------------------------------------------


def customer_recipients(*, customer: Customer) -> list[str]:
    """The customer's billing contacts: its billing e-mail (the only contact a customer has)."""
    return [customer.billing_email] if customer.billing_email else []


def customer_language(*, customer: Customer) -> str:
    return customer.language if customer.language in Language.values else Language.ZH_HANS


def money_text(*, amount: Decimal, currency: str, language: str) -> str:
    """``¥1,234.50`` in Chinese, ``CNY 1,234.50`` in English (amounts are already rounded)."""
    if language == Language.ZH_HANS:
        return f"{SYMBOLS.get(currency, currency + ' ')}{amount:,.2f}"
    return f"{currency} {amount:,.2f}"


def date_text(*, on: datetime.date, language: str) -> str:
    """``2026年12月31日`` in Chinese, ``31 December 2026`` in English."""
    if language == Language.ZH_HANS:
        return f"{on.year}年{on.month}月{on.day}日"
    return f"{on.day} {MONTHS[on.month - 1]} {on.year}"


def portal_url(*, invoice: Invoice) -> str:
    return f"{settings.PORTAL_BASE_URL.rstrip('/')}/portal/invoices/{invoice.pk}/"


# -- claiming --------------------------------------------------------------------------------------


_held: contextvars.ContextVar[str] = contextvars.ContextVar("notices_held", default="")


@contextlib.contextmanager
def notices_held(*, reason: str):
    """Inside: every notice is recorded as skipped with ``reason`` and never mailed (the demo loads
    months of history; its customers are not written to about it)."""
    token = _held.set(reason)
    try:
        yield
    finally:
        _held.reset(token)


def _notice(*, kind: str, invoice: Invoice, key: str, now: datetime.datetime) -> Notice:
    recipients = customer_recipients(customer=invoice.customer)
    held = _held.get()
    skipped = held or ("" if recipients else NO_RECIPIENT)
    return Notice(
        kind=kind,
        invoice=invoice,
        key=key,
        recipients=recipients,
        language=customer_language(customer=invoice.customer),
        status=NoticeStatus.SKIPPED if skipped else NoticeStatus.QUEUED,
        error=skipped,
        created_at=now,
    )


def _claim(notices: list[Notice]) -> list[Notice]:
    """Insert the notices not claimed before, in one statement a batch; return those inserted.

    The column list comes from the model, so a new field cannot be forgotten here.
    """
    fields = [field for field in Notice._meta.concrete_fields if not field.primary_key]
    quote = connection.ops.quote_name
    columns = ", ".join(quote(field.column) for field in fields)
    row = "(" + ", ".join(["%s"] * len(fields)) + ")"
    (constraint,) = (c.name for c in Notice._meta.constraints if c.name == "notice_once_per_event")
    claimed: list[Notice] = []
    for start in range(0, len(notices), CLAIM_BATCH):
        batch = notices[start : start + CLAIM_BATCH]
        params = [
            field.get_db_prep_save(getattr(notice, field.attname), connection)
            for notice in batch
            for field in fields
        ]
        with connection.cursor() as cursor:
            cursor.execute(
                f"INSERT INTO {quote(Notice._meta.db_table)} ({columns}) "
                f"VALUES {', '.join([row] * len(batch))} "
                f"ON CONFLICT ON CONSTRAINT {quote(constraint)} DO NOTHING "
                "RETURNING id, kind, invoice_id, key",
                params,
            )
            inserted = {(kind, invoice_id, key): pk for pk, kind, invoice_id, key in cursor.fetchall()}
        for notice in batch:
            pk = inserted.get((notice.kind, notice.invoice_id, notice.key))
            if pk is not None:
                notice.pk = pk
                notice._state.adding = False
                claimed.append(notice)
    return claimed


def _claim_and_queue(notices: list[Notice]) -> list[Notice]:
    """Claim inside the caller's transaction; queue each claimed e-mail after it commits."""
    claimed = _claim(notices)
    for notice in claimed:
        if notice.status == NoticeStatus.QUEUED:
            transaction.on_commit(lambda pk=notice.pk: current_app.signature(SEND_TASK, args=(pk,)).delay())
        else:
            logger.warning(
                "%s notice for invoice %s not sent: %s", notice.kind, notice.invoice.number, notice.error
            )
    return [notice for notice in claimed if notice.status == NoticeStatus.QUEUED]


# -- the events ------------------------------------------------------------------------------------


@transaction.atomic
def notice_queue_at_issue(*, invoice: Invoice, now: datetime.datetime) -> Notice | None:
    """Invoicing's ``issue`` step: the invoice with its PDF, once per invoice."""
    queued = _claim_and_queue([_notice(kind=NoticeKind.ISSUED, invoice=invoice, key=invoice.number, now=now)])
    return queued[0] if queued else None


@transaction.atomic
def notice_queue_at_payment(*, invoice: Invoice, payment: Payment, now: datetime.datetime) -> Notice | None:
    """Invoicing's ``payment`` step: a receipt, once per payment. A voucher's share, and customer
    credit applied when the invoice is issued, are on the issue e-mail already: no receipt."""
    if payment.method == PaymentMethod.VOUCHER:
        return None
    if payment.method == PaymentMethod.CREDIT and payment.received_at == invoice.issued_at:
        return None
    queued = _claim_and_queue(
        [_notice(kind=NoticeKind.RECEIPT, invoice=invoice, key=str(payment.pk), now=now)]
    )
    return queued[0] if queued else None


def overdue_week_start(*, due_on: datetime.date, today: datetime.date) -> datetime.date:
    """The first day of the overdue week ``today`` is in: due_on + 1, + 8, + 15 …"""
    weeks = ((today - due_on).days - 1) // OVERDUE_EVERY_DAYS
    return due_on + datetime.timedelta(days=1 + weeks * OVERDUE_EVERY_DAYS)


@transaction.atomic
def notice_queue_reminders(*, now: datetime.datetime) -> int:
    """The daily reminders: invoices due in ``DUE_SOON_DAYS`` days (once per due date) and overdue
    invoices (once per overdue week). Returns how many e-mails were queued; a second run the same
    day queues none."""
    today = billing_today(now)
    notices = [
        _notice(kind=NoticeKind.DUE_SOON, invoice=invoice, key=invoice.due_on.isoformat(), now=now)
        for invoice in invoices_due_soon(on=today, days=DUE_SOON_DAYS)
    ]
    notices += [
        _notice(
            kind=NoticeKind.OVERDUE,
            invoice=invoice,
            key=overdue_week_start(due_on=invoice.due_on, today=today).isoformat(),
            now=now,
        )
        for invoice in invoices_overdue(on=today)
    ]
    queued = _claim_and_queue(notices)
    # Webhooks, once per invoice (docs/webhooks.md): one look-up of endpoints for all of them.
    overdue = [
        (notice.invoice.customer, notice.invoice) for notice in notices if notice.kind == NoticeKind.OVERDUE
    ]
    event_publish_many("invoice.overdue", events=overdue, now=now)
    reminded = [notice.invoice_id for notice in queued if notice.kind == NoticeKind.OVERDUE]
    if reminded:  # the invoice page shows the last overdue reminder
        Invoice.objects.filter(pk__in=reminded).update(reminder_sent_on=today, updated_at=now)
    return len(queued)


# -- sending ---------------------------------------------------------------------------------------


def _context(*, notice: Notice, invoice: Invoice) -> dict:
    language = notice.language
    currency = invoice.currency
    context = {
        "language": language,
        "customer_name": invoice.customer.name,
        "number": invoice.number,
        "period": invoice.period,
        "total": money_text(amount=invoice.total_amount, currency=currency, language=language),
        "amount_due": money_text(amount=invoice.amount_due, currency=currency, language=language),
        "voucher_amount": money_text(amount=invoice.voucher_amount, currency=currency, language=language)
        if invoice.voucher_amount
        else "",
        "due_on": date_text(on=invoice.due_on, language=language),
        "issued_on": date_text(on=invoice.issued_on, language=language),
        "days_overdue": max(0, (billing_today(notice.created_at) - invoice.due_on).days),  # as of the run
        "paid": invoice.status == InvoiceStatus.PAID,
        "portal_url": portal_url(invoice=invoice),
        "seller": settings.SELLER["name"],
    }
    if notice.kind == NoticeKind.ISSUED:
        credit = sum(
            (payment.amount for payment in invoice.payments.all() if payment.method == PaymentMethod.CREDIT),
            Decimal("0.00"),
        )
        context["credit_amount"] = (
            money_text(amount=credit, currency=currency, language=language) if credit else ""
        )
    if notice.kind == NoticeKind.RECEIPT:
        payment = Payment.objects.get(pk=int(notice.key), invoice=invoice)
        context.update(
            payment_amount=money_text(amount=payment.amount, currency=payment.currency, language=language),
            payment_method=METHODS.get(payment.method, {}).get(language, payment.get_method_display()),
            payment_reference=payment.reference,
            received_on=date_text(on=billing_today(payment.received_at), language=language),
        )
    return context


def notice_message(*, notice: Notice) -> EmailMultiAlternatives:
    """The e-mail of a notice, in the customer's language, from ``templates/email/<kind>.<lang>``;
    the issue e-mail carries the invoice PDF."""
    invoice = invoice_for_pdf(notice.invoice_id) if notice.kind == NoticeKind.ISSUED else notice.invoice
    context = _context(notice=notice, invoice=invoice)
    template = f"email/{notice.kind}.{notice.language}"
    with translation.override(notice.language):
        settled = notice.kind == NoticeKind.ISSUED and not invoice.amount_due
        subject = SUBJECTS[("settled" if settled else notice.kind, notice.language)].format(**context)
        text = render_to_string(f"{template}.txt", context)
        html = render_to_string(f"{template}.html", context)
    message = EmailMultiAlternatives(
        subject=subject, body=text, from_email=settings.DEFAULT_FROM_EMAIL, to=list(notice.recipients)
    )
    message.attach_alternative(html, "text/html")
    if notice.kind == NoticeKind.ISSUED:
        message.attach(f"{invoice.number}.pdf", invoice_pdf(invoice), "application/pdf")
    return message


def _finish(*, notice_id: int, **fields) -> None:
    with transaction.atomic():
        Notice.objects.filter(pk=notice_id, status=NoticeStatus.SENDING).update(**fields)


def notice_send(*, notice_id: int, now: datetime.datetime) -> bool:
    """Mail one claimed notice (the task ``billing.notice_send``); True when it was sent now.

    ``queued`` → ``sending`` in one UPDATE first: a second delivery of the task finds nothing to
    send. A reminder whose invoice was paid or voided since it was queued is skipped.
    """
    with transaction.atomic():
        taken = Notice.objects.filter(pk=notice_id, status=NoticeStatus.QUEUED).update(
            status=NoticeStatus.SENDING
        )
    if not taken:
        return False
    notice = Notice.objects.select_related("invoice__customer").get(pk=notice_id)
    reminder = notice.kind in (NoticeKind.DUE_SOON, NoticeKind.OVERDUE)
    if reminder and notice.invoice.status != InvoiceStatus.ISSUED:
        _finish(
            notice_id=notice_id,
            status=NoticeStatus.SKIPPED,
            error=f"Invoice is {notice.invoice.status} now.",
        )
        return False
    message = notice_message(notice=notice)
    try:
        message.send()
    except OSError as exc:  # smtplib's errors are OSErrors: refused, unreachable, timed out
        logger.exception("notice %s for invoice %s not sent", notice.pk, notice.invoice.number)
        _finish(
            notice_id=notice_id,
            status=NoticeStatus.FAILED,
            subject=message.subject[:300],
            error=str(exc)[:500],
        )
        return False
    _finish(notice_id=notice_id, status=NoticeStatus.SENT, subject=message.subject[:300], sent_at=now)
    return True
