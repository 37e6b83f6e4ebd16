"""Reads of customer memberships."""

from __future__ import annotations

from django.db.models import QuerySet

from .models import CustomerMembership


def membership_list(*, customer) -> QuerySet[CustomerMembership]:
    """The customer's portal users with their roles, by name (one query)."""
    return (
        CustomerMembership.objects.filter(customer=customer)
        .select_related("user")
        .order_by("user__display_name", "user__username")
    )
