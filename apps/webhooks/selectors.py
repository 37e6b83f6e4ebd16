"""Reads of the webhooks app, scoped to who is asking (docs/webhooks.md#who-manages-endpoints).

- Superusers, finance and operations: every endpoint and delivery (customers' and providers').
- Account managers: read the endpoints and deliveries of the customers they manage.
- Customer portal users: the endpoints of the customers they are an *admin* member of
  (billing and viewer members see none).
Anybody else: nothing.
"""

from __future__ import annotations

from django.db.models import Q, QuerySet

from apps.accounts import roles
from apps.accounts.models import CustomerMembership, User
from apps.customers.models import Customer

from .models import WebhookDelivery, WebhookEndpoint

_SEE_ALL = {roles.FINANCE, roles.OPERATIONS}


def _owner_q(user, prefix: str = "") -> Q | None:
    """``None``: everything; otherwise the rows ``user`` may see (``Q(pk__in=[])`` for none)."""
    if not (user.is_authenticated and isinstance(user, User)):  # partner API keys reach no endpoint
        return Q(pk__in=[])
    if user.is_superuser:
        return None
    if not user.is_staff:
        admin_of = CustomerMembership.objects.filter(user=user, role=CustomerMembership.Role.ADMIN)
        return Q(**{f"{prefix}customer__in": admin_of.values("customer")})
    group_names = set(user.groups.values_list("name", flat=True))
    if group_names & _SEE_ALL:
        return None
    if roles.ACCOUNT_MANAGER in group_names:
        return Q(**{f"{prefix}customer__account_manager": user})
    return Q(pk__in=[])


def webhook_endpoint_list(*, user) -> QuerySet[WebhookEndpoint]:
    queryset = WebhookEndpoint.objects.select_related("customer", "provider")
    scope = _owner_q(user)
    return queryset if scope is None else queryset.filter(scope)


def webhook_endpoint_get(*, user, pk) -> WebhookEndpoint | None:
    try:
        return webhook_endpoint_list(user=user).get(pk=pk)
    except (WebhookEndpoint.DoesNotExist, ValueError, TypeError):
        return None


def webhook_delivery_list(*, user) -> QuerySet[WebhookDelivery]:
    queryset = WebhookDelivery.objects.select_related("event", "endpoint__customer", "endpoint__provider")
    scope = _owner_q(user, prefix="endpoint__")
    return queryset if scope is None else queryset.filter(scope)


def customer_admin_of(*, user) -> QuerySet[Customer]:
    """The customers whose endpoints a portal user may manage (admin membership)."""
    if not isinstance(user, User):
        return Customer.objects.none()
    return Customer.objects.filter(
        memberships__user=user, memberships__role=CustomerMembership.Role.ADMIN
    ).distinct()
