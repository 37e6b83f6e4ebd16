"""Reads of customers, scoped to who is asking."""

from __future__ import annotations

from django.db.models import QuerySet

from .models import Customer


def customer_list(*, user) -> QuerySet[Customer]:
    """The customers ``user`` may see: staff see all of them (their model permissions decide
    whether they may read at all); anybody else sees only the customers they are a member of.
    """
    queryset = Customer.objects.select_related("account_manager")
    if not user.is_authenticated:
        return queryset.none()
    if user.is_staff:
        return queryset
    return queryset.filter(memberships__user=user).distinct()


def customer_get(*, user, pk) -> Customer | None:
    """One customer ``user`` may see, or None (a foreign id reads as missing, never forbidden)."""
    try:
        return customer_list(user=user).get(pk=pk)
    except (Customer.DoesNotExist, ValueError, TypeError):
        return None
