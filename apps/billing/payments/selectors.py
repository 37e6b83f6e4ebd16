"""Reads of customer credit, scoped like invoices: staff see every customer, a customer user only
the customers they are a member of (docs/invoices.md#customer-credit)."""

from __future__ import annotations

from decimal import Decimal

from django.db.models import OuterRef, QuerySet, Subquery

from apps.accounts.models import CustomerMembership
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


def customer_for_credit(*, user, pk: int) -> Customer | None:
    """The customer ``user`` may read the credit of (staff: any; customers: their own)."""
    if not user.is_authenticated:
        return None
    customers = Customer.objects.all()
    if not user.is_staff:
        customers = customers.filter(
            pk__in=CustomerMembership.objects.filter(user=user).values("customer_id")
        )
    return customers.filter(pk=pk).first()


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
