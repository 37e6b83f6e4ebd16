"""Reads of customer credit (docs/invoices.md#customer-credit); who may read which customer is
``apps.customers.selectors.customer_get``'s rule, applied by the API and portal views."""

from __future__ import annotations

from decimal import Decimal

from django.db.models import OuterRef, QuerySet, Subquery

from apps.billing.payments.models import CreditEntry, StripeEvent
from apps.core.money import ZERO
from apps.customers.models import Customer


def customer_credit_balance(*, customer: Customer, currency: str | None = None) -> Decimal:
    """The customer's credit balance in ``currency`` (default: the customer's own)."""
    last = (
        CreditEntry.objects.filter(customer=customer, currency=currency or customer.currency)
        .order_by("-id")
        .values_list("balance_after", flat=True)
        .first()
    )
    return ZERO if last is None else last


def customer_credit_entries(*, customer: Customer, currency: str | None = None) -> QuerySet[CreditEntry]:
    """The customer's ledger, newest first, with what each entry points to (no N+1)."""
    entries = CreditEntry.objects.filter(customer=customer).select_related(
        "invoice", "payment", "credit_note", "created_by"
    )
    if currency:
        entries = entries.filter(currency=currency)
    return entries.order_by("-id")


def credit_entry_list() -> QuerySet[CreditEntry]:
    return CreditEntry.objects.select_related("customer", "invoice", "payment", "credit_note", "created_by")


def credit_balances() -> QuerySet[Customer]:
    """Customers who ever had credit, each with the latest balance in their own currency."""
    latest = CreditEntry.objects.filter(customer=OuterRef("pk"), currency=OuterRef("currency")).order_by(
        "-id"
    )
    return (
        Customer.objects.filter(credit_entries__isnull=False)
        .distinct()
        .annotate(credit_balance=Subquery(latest.values("balance_after")[:1]))
        .order_by("code")
    )


def stripe_event_list() -> QuerySet[StripeEvent]:
    return StripeEvent.objects.select_related("invoice", "payment")
