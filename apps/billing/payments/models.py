"""Customer credit and Stripe events (docs/invoices.md#payments-and-customer-credit).

``CreditEntry`` is the customer credit ledger (余额): append-only, signed, with the running
``balance_after`` per (customer, currency). Services lock the customer's row before they read the
balance and write an entry; the database refuses a negative balance (CHECK), any change to an
entry (trigger) and an entry whose ``balance_after`` is not the previous balance plus its amount
(trigger), so the latest ``balance_after`` is the balance and it never goes below zero.

``StripeEvent`` is every webhook event Stripe sent, stored once by its id (a replay changes
nothing); ``session_id`` is set on the one event that paid a Checkout Session and is unique, so a
second event for the same session cannot pay it twice.
"""

from __future__ import annotations

from django.db import models
from django.db.models import Q
from simple_history.models import HistoricalRecords

from apps.billing.invoicing.models import MONEY
from apps.core.choices import Currency


class CreditKind(models.TextChoices):
    OVERPAYMENT = "overpayment", "Overpayment 多付转余额"
    APPLIED = "applied", "Applied to an invoice 抵扣发票"
    REFUND = "refund", "Refund 退款"
    CREDIT_NOTE = "credit_note", "Credit note 红字退回"
    ADJUSTMENT = "adjustment", "Adjustment 调整"


class CreditEntry(models.Model):
    """One movement of a customer's credit (signed: overpayment and credit notes add; applied and
    refunds take). Append-only; ``balance_after`` is the balance once this entry is counted."""

    customer = models.ForeignKey(
        "customers.Customer", on_delete=models.PROTECT, related_name="credit_entries"
    )
    currency = models.CharField(max_length=3, choices=Currency.choices, default=Currency.CNY)
    kind = models.CharField(max_length=20, choices=CreditKind.choices)
    amount = models.DecimalField(**MONEY, help_text="Signed: + adds to the balance, − takes from it.")
    balance_after = models.DecimalField(**MONEY)
    invoice = models.ForeignKey(
        "billing.Invoice", on_delete=models.PROTECT, null=True, blank=True, related_name="credit_entries"
    )
    payment = models.ForeignKey(
        "billing.Payment",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="credit_entries",
        help_text="The payment that overpaid, or the credit payment this entry made.",
    )
    credit_note = models.ForeignKey(
        "billing.CreditNote", on_delete=models.PROTECT, null=True, blank=True, related_name="credit_entries"
    )
    reference = models.CharField(max_length=200, blank=True, help_text="Bank reference or Stripe id.")
    note = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField()
    created_by = models.ForeignKey(
        "accounts.User", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )

    class Meta:
        ordering = ["customer", "currency", "id"]
        verbose_name = "credit entry 余额流水"
        verbose_name_plural = "credit entries 余额流水"
        permissions = [("refund_credit", "Can refund customer credit")]
        indexes = [models.Index(fields=["customer", "currency", "id"], name="creditentry_customer_cur")]
        constraints = [
            models.CheckConstraint(
                condition=Q(balance_after__gte=0), name="creditentry_balance_non_negative"
            ),
            models.CheckConstraint(
                condition=(Q(kind__in=["overpayment", "credit_note"]) & Q(amount__gt=0))
                | (Q(kind__in=["applied", "refund"]) & Q(amount__lt=0))
                | (Q(kind="adjustment") & ~Q(amount=0)),
                name="creditentry_sign_matches_kind",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.customer_id} {self.kind} {self.amount} {self.currency}"


class StripeEvent(models.Model):
    """A webhook event from Stripe, stored once by its id; what it did is in ``outcome``."""

    event_id = models.CharField(max_length=255, unique=True)
    type = models.CharField(max_length=100)
    object_id = models.CharField(max_length=255, blank=True, help_text="The event's object, e.g. cs_…")
    session_id = models.CharField(
        max_length=255,
        null=True,
        blank=True,
        unique=True,
        help_text="Set on the one event that paid this Checkout Session; unique, so a session pays once.",
    )
    invoice = models.ForeignKey(
        "billing.Invoice", on_delete=models.PROTECT, null=True, blank=True, related_name="stripe_events"
    )
    payment = models.ForeignKey(
        "billing.Payment", on_delete=models.PROTECT, null=True, blank=True, related_name="stripe_events"
    )
    processed = models.BooleanField(default=False)
    outcome = models.CharField(max_length=300, blank=True)
    payload = models.JSONField(default=dict)
    received_at = models.DateTimeField()
    history = HistoricalRecords()

    class Meta:
        ordering = ["-received_at", "-id"]
        verbose_name = "Stripe event"
        verbose_name_plural = "Stripe events"

    def __str__(self) -> str:
        return f"{self.event_id} ({self.type})"


__all__ = ["CreditEntry", "CreditKind", "StripeEvent"]
