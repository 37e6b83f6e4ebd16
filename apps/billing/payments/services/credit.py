"""The customer credit ledger (余额, docs/invoices.md#customer-credit): overpayments in, credit
applied to the next invoices at issue, refunds out, credit notes giving back what was paid.

Every movement locks the customer's row (``FOR NO KEY UPDATE``: new invoices of the customer may
still be written meanwhile) before it reads the balance, and writes one append-only entry whose
``balance_after`` is the new balance; the database refuses a negative balance and an entry that
does not continue the running balance. Lock order everywhere: the invoice, then the customer.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from decimal import Decimal
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import transaction
from django.db.models import Sum
from django.utils.translation import gettext

from apps.billing.invoicing.models import CreditNote, Invoice, InvoiceStatus, Payment, PaymentMethod
from apps.billing.invoicing.selectors import billing_today
from apps.billing.invoicing.services.payments import payment_record
from apps.billing.payments.models import CreditEntry, CreditKind
from apps.core.errors import DomainError, InvalidState
from apps.core.money import ZERO, round_money
from apps.customers.models import Customer


def customer_credit_lock(*, customer_id: int) -> Customer:
    return Customer.objects.select_for_update(no_key=True).get(pk=customer_id)


def credit_balance_of(*, customer_id: int, currency: str) -> Decimal:
    """The running balance: the latest entry's ``balance_after`` (read under the customer's lock)."""
    last = (
        CreditEntry.objects.filter(customer_id=customer_id, currency=currency)
        .order_by("-id")
        .values_list("balance_after", flat=True)
        .first()
    )
    return ZERO if last is None else last


def credit_entry_add(
    *,
    customer_id: int,
    currency: str,
    kind: str,
    amount: Decimal,
    now: datetime.datetime,
    actor=None,
    **refs,
) -> CreditEntry:
    """Write one ledger entry (the caller holds the customer's lock)."""
    balance = credit_balance_of(customer_id=customer_id, currency=currency) + amount
    if balance < 0:  # the CHECK constraint would refuse it too
        raise InvalidState(gettext("The customer's credit would go below zero."), code="credit_insufficient")
    return CreditEntry.objects.create(
        customer_id=customer_id,
        currency=currency,
        kind=kind,
        amount=amount,
        balance_after=balance,
        created_at=now,
        created_by=actor,
        **refs,
    )


@dataclass(frozen=True)
class PaymentTaken:
    payment: Payment | None  # what paid the invoice (None when nothing was due)
    credit: CreditEntry | None  # what exceeded the amount due, now customer credit


def invoice_payment_take(
    *,
    invoice: Invoice,
    amount: Decimal,
    method: str,
    received_at: datetime.datetime,
    actor=None,
    reference: str = "",
    external_id: str | None = None,
) -> PaymentTaken:
    """Money received for a (locked) invoice: the amount due is paid, the rest becomes credit.

    A voided (or paid) invoice has nothing due, so all of it becomes credit.
    """
    due = invoice.amount_due if invoice.status == InvoiceStatus.ISSUED else ZERO
    paid = min(amount, due)
    payment = None
    if paid > 0:
        payment = payment_record(
            invoice=invoice,
            amount=paid,
            method=method,
            now=received_at,
            actor=actor,
            reference=reference,
            external_id=external_id,
        )
    credit = None
    excess = amount - paid
    if excess > 0:
        customer_credit_lock(customer_id=invoice.customer_id)
        credit = credit_entry_add(
            customer_id=invoice.customer_id,
            currency=invoice.currency,
            kind=CreditKind.OVERPAYMENT,
            amount=excess,
            now=received_at,
            actor=actor,
            invoice=invoice,
            payment=payment,
            reference=reference,
            note=f"{excess:,.2f} more than was due on {invoice}",
        )
    return PaymentTaken(payment, credit)


@transaction.atomic
def bank_transfer_record(
    *,
    invoice: Invoice,
    amount: Decimal,
    reference: str,
    received_on: datetime.date | None = None,
    actor,
    now: datetime.datetime,
    received_at: datetime.datetime | None = None,
) -> PaymentTaken:
    """A bank transfer (对公转账) finance saw arrive: partial payments are allowed; what exceeds the
    amount due becomes customer credit (docs/invoices.md#bank-transfers).

    ``received_on`` is the bank's value date (today: received now; earlier: at noon billing
    time; not after today); an API client may give the exact ``received_at`` instead.
    """
    invoice = Invoice.objects.select_for_update().get(pk=invoice.pk)
    if invoice.status not in (InvoiceStatus.ISSUED, InvoiceStatus.PAID):
        raise InvalidState(
            gettext("Invoice %(invoice)s is %(status)s; transfers are recorded against issued invoices.")
            % {"invoice": invoice, "status": invoice.status}
        )
    amount = round_money(amount)
    if amount <= 0:
        raise DomainError(
            gettext("A payment must be positive."),
            code="invalid",
            fields={"amount": [gettext("Must be > 0.")]},
        )
    reference = reference.strip()
    if not reference:
        msg = gettext("The bank reference (transaction number) is required.")
        raise DomainError(msg, code="invalid", fields={"reference": [msg]})
    if received_at is None:
        received_on = received_on or billing_today(now)
        if received_on > billing_today(now):
            msg = gettext("A transfer cannot be received after today (%(today)s).") % {
                "today": billing_today(now)
            }
            raise DomainError(msg, code="invalid", fields={"received_on": [msg]})
        received_at = transfer_received_at(received_on=received_on, now=now)
    return invoice_payment_take(
        invoice=invoice,
        amount=amount,
        method=PaymentMethod.BANK_TRANSFER,
        received_at=received_at,
        actor=actor,
        reference=reference,
    )


def transfer_received_at(*, received_on: datetime.date, now: datetime.datetime) -> datetime.datetime:
    """Today's transfers count as received now; an earlier date at noon billing time."""
    if received_on >= billing_today(now):
        return now
    return datetime.datetime.combine(
        received_on, datetime.time(12), tzinfo=ZoneInfo(settings.BILLING_TIME_ZONE)
    )


@transaction.atomic
def credit_apply_at_issue(*, invoice: Invoice, now: datetime.datetime) -> CreditEntry | None:
    """Pay a just-issued invoice from the customer's credit, after the vouchers paid their share
    (an ``issue`` step registered in ``apps/billing/apps.py``)."""
    invoice = Invoice.objects.select_for_update().get(pk=invoice.pk)
    if invoice.status != InvoiceStatus.ISSUED or invoice.amount_due <= 0:
        return None
    if not CreditEntry.objects.filter(customer_id=invoice.customer_id, currency=invoice.currency).exists():
        return None
    customer_credit_lock(customer_id=invoice.customer_id)
    amount = min(
        credit_balance_of(customer_id=invoice.customer_id, currency=invoice.currency), invoice.amount_due
    )
    if amount <= 0:
        return None
    payment = payment_record(
        invoice=invoice, amount=amount, method=PaymentMethod.CREDIT, now=now, reference="customer credit 余额"
    )
    return credit_entry_add(
        customer_id=invoice.customer_id,
        currency=invoice.currency,
        kind=CreditKind.APPLIED,
        amount=-amount,
        now=now,
        invoice=invoice,
        payment=payment,
        note=f"applied to {invoice.number}",
    )


@transaction.atomic
def credit_refund(
    *,
    customer: Customer,
    amount: Decimal,
    reference: str,
    actor,
    now: datetime.datetime,
    currency: str | None = None,
    note: str = "",
) -> CreditEntry:
    """Pay credit back to the customer (a bank transfer out): recorded, never deleted."""
    amount = round_money(amount)
    if amount <= 0:
        raise DomainError(
            gettext("A refund must be positive."),
            code="invalid",
            fields={"amount": [gettext("Must be > 0.")]},
        )
    reference = reference.strip()
    if not reference:
        msg = gettext("The bank reference (transaction number) of the refund is required.")
        raise DomainError(msg, code="invalid", fields={"reference": [msg]})
    customer = customer_credit_lock(customer_id=customer.pk)
    currency = currency or customer.currency
    balance = credit_balance_of(customer_id=customer.pk, currency=currency)
    if amount > balance:
        msg = gettext(
            "A refund of %(amount)s %(currency)s is more than %(customer)s's credit balance of %(balance)s %(currency)s."
        ) % {
            "amount": f"{amount:,.2f}",
            "currency": currency,
            "customer": customer.code,
            "balance": f"{balance:,.2f}",
        }
        raise DomainError(msg, code="credit_insufficient", fields={"amount": [msg]})
    return credit_entry_add(
        customer_id=customer.pk,
        currency=currency,
        kind=CreditKind.REFUND,
        amount=-amount,
        now=now,
        actor=actor,
        reference=reference,
        note=note or "refund of credit",
    )


@transaction.atomic
def credit_return_for_credit_note(
    *, invoice: Invoice, note: CreditNote, now: datetime.datetime, actor=None
) -> list[CreditEntry]:
    """A credit note gives back what the customer paid for the credited part (a ``credit_note``
    step, after the vouchers took back their share; docs/invoices.md#credit-notes-and-payments).

    The credit share (note × credit paid ÷ total) goes back to the credit ledger; then whatever the
    customer has paid beyond what the invoice still asks of them (cash) becomes credit too. The
    invoice's paid amount is reduced by what was given back, so total − credited = voucher + paid
    stays exact.
    """
    invoice = Invoice.objects.select_for_update().get(pk=invoice.pk)
    if invoice.total_amount <= 0 or invoice.paid_amount <= 0:
        return []
    customer_credit_lock(customer_id=invoice.customer_id)
    entries = []
    credit_payments = list(invoice.payments.filter(method=PaymentMethod.CREDIT).order_by("pk"))
    if credit_payments:
        credit_paid = sum((p.amount for p in credit_payments), ZERO)
        returned = (
            CreditEntry.objects.filter(
                invoice=invoice, kind=CreditKind.CREDIT_NOTE, payment__method=PaymentMethod.CREDIT
            ).aggregate(total=Sum("amount"))["total"]
            or ZERO
        )
        left = credit_paid - returned
        if invoice.credited_amount >= invoice.total_amount:
            share = left  # credited in full: all of it, whatever earlier notes rounded
        else:
            share = min(left, round_money(note.total_amount * credit_paid / invoice.total_amount))
        share = min(share, invoice.paid_amount)
        if share > 0:
            entries.append(_give_back(invoice, note, share, now, actor, "credit share", credit_payments[0]))
    owed = max(ZERO, invoice.total_amount - invoice.credited_amount - invoice.voucher_amount)
    paid_beyond = invoice.paid_amount - owed
    if paid_beyond > 0:
        entries.append(_give_back(invoice, note, paid_beyond, now, actor, "paid share", None))
    return entries


def _give_back(invoice, note, amount, now, actor, label, payment) -> CreditEntry:
    """Move ``amount`` of what the (locked) invoice was paid back to the customer's credit."""
    invoice.paid_amount -= amount
    invoice.save(update_fields=["paid_amount", "updated_at"])
    return credit_entry_add(
        customer_id=invoice.customer_id,
        currency=invoice.currency,
        kind=CreditKind.CREDIT_NOTE,
        amount=amount,
        now=now,
        actor=actor,
        invoice=invoice,
        payment=payment,
        credit_note=note,
        note=f"{label} of {note.number} on {invoice.number}",
    )
