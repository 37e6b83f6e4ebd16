"""Payments against issued invoices (bank transfer, Stripe, voucher, credit) and the paid status."""

from __future__ import annotations

import datetime
from decimal import Decimal

from django.db import transaction
from django.utils.translation import gettext

from apps.billing.invoicing.models import Invoice, InvoiceStatus, Payment, PaymentMethod
from apps.billing.invoicing.services.steps import invoicing_steps_run
from apps.core.errors import DomainError, InvalidState
from apps.core.events import event_publish
from apps.core.money import ZERO, round_money


def invoice_settle_status(*, invoice: Invoice, now: datetime.datetime) -> Invoice:
    """Issued → paid once payments, vouchers and credit notes cover the total (caller holds the lock)."""
    if invoice.status == InvoiceStatus.ISSUED and invoice.amount_due == ZERO:
        invoice.status = InvoiceStatus.PAID
        invoice.paid_at = now
        invoice.save(update_fields=["status", "paid_at", "updated_at"])
        event_publish("invoice.paid", owner=invoice.customer, subject=invoice, now=now)  # docs/webhooks.md
    return invoice


@transaction.atomic
def payment_record(
    *,
    invoice: Invoice,
    amount: Decimal,
    method: str,
    now: datetime.datetime,
    actor=None,
    reference: str = "",
    external_id: str | None = None,
) -> Payment:
    """Record a payment; partial payments are allowed; the invoice is paid when covered."""
    invoice = Invoice.objects.select_for_update().get(pk=invoice.pk)
    if invoice.status not in (InvoiceStatus.ISSUED, InvoiceStatus.PAID):
        raise InvalidState(
            gettext("Invoice %(invoice)s is %(status)s; payments go to issued invoices.")
            % {"invoice": invoice, "status": invoice.status}
        )
    amount = round_money(amount)
    if amount <= 0:
        raise DomainError(
            gettext("A payment must be positive."),
            code="invalid",
            fields={"amount": [gettext("Must be > 0.")]},
        )
    if method not in PaymentMethod.values:
        raise DomainError(
            gettext("Unknown payment method %(method)r.") % {"method": method},
            code="invalid",
            fields={"method": [gettext("Unknown.")]},
        )
    payment = Payment.objects.create(
        invoice=invoice,
        method=method,
        amount=amount,
        currency=invoice.currency,
        reference=reference,
        external_id=external_id,
        received_at=now,
        recorded_by=actor,
    )
    if method == PaymentMethod.VOUCHER:
        invoice.voucher_amount += amount
    else:
        invoice.paid_amount += amount
    invoice.save(update_fields=["voucher_amount", "paid_amount", "updated_at"])
    invoice_settle_status(invoice=invoice, now=now)
    invoicing_steps_run(event="payment", invoice=invoice, payment=payment, now=now)
    return payment
