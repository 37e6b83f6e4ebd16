"""Overdue invoices: derived from the due date; reminders by e-mail (the email backend in settings)."""

from __future__ import annotations

import datetime
import logging
from zoneinfo import ZoneInfo

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.db.models import Q, QuerySet

from apps.billing.invoicing.models import Invoice, InvoiceStatus

logger = logging.getLogger(__name__)
REMIND_EVERY_DAYS = 7


def _today(now: datetime.datetime) -> datetime.date:
    return now.astimezone(ZoneInfo(settings.BILLING_TIME_ZONE)).date()


def overdue_invoices(*, on: datetime.date) -> QuerySet[Invoice]:
    """Issued, unpaid and past due on ``on``."""
    return Invoice.objects.filter(status=InvoiceStatus.ISSUED, due_on__lt=on).select_related("customer")


def invoice_send_overdue_reminders(*, now: datetime.datetime) -> int:
    """E-mail each overdue invoice's customer, at most once every 7 days per invoice. Idempotent per day."""
    today = _today(now)
    due = overdue_invoices(on=today).filter(
        Q(reminder_sent_on__isnull=True)
        | Q(reminder_sent_on__lte=today - datetime.timedelta(days=REMIND_EVERY_DAYS))
    )
    sent = 0
    for invoice_id in due.values_list("pk", flat=True):
        with transaction.atomic():
            invoice = (
                Invoice.objects.select_for_update(skip_locked=True)
                .select_related("customer")
                .filter(pk=invoice_id)
                .first()
            )
            if invoice is None or invoice.reminder_sent_on == today:
                continue
            recipient = invoice.customer.billing_email
            if recipient:
                mail = dict(
                    subject=f"付款提醒 Payment reminder: {invoice.number} is overdue",
                    message=(
                        f"{invoice.customer.name}:\n\n"
                        f"发票 {invoice.number}（{invoice.period}）已于 {invoice.due_on} 到期，待付金额 "
                        f"{invoice.amount_due} {invoice.currency}。\n"
                        f"Invoice {invoice.number} ({invoice.period}) was due on {invoice.due_on}; "
                        f"{invoice.amount_due} {invoice.currency} is still open.\n"
                    ),
                    from_email=settings.DEFAULT_FROM_EMAIL,
                    recipient_list=[recipient],
                )
                # after commit, outside the row lock: a rolled-back reminder sends nothing
                transaction.on_commit(lambda mail=mail: send_mail(**mail))
                sent += 1
            else:
                logger.warning(
                    "overdue invoice %s: customer %s has no billing e-mail",
                    invoice.number,
                    invoice.customer.code,
                )
            invoice.reminder_sent_on = today
            invoice.save(update_fields=["reminder_sent_on", "updated_at"])
    return sent
