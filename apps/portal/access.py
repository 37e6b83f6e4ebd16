"""Who may use the portal, and for which customer (docs/portal.md#customers-and-roles).

Every portal view goes through :func:`portal_view`: an anonymous visitor is sent to the portal's
login page; a user without a customer membership gets the "no portal access" page; everyone else
gets ``request.portal`` — their memberships and the *current* one, whose customer id is kept in
the session and checked against the memberships on every request.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from django.contrib.auth.views import redirect_to_login
from django.http import Http404
from django.shortcuts import render
from django.urls import reverse

from apps.accounts.models import CustomerMembership

SESSION_CUSTOMER_KEY = "portal_customer_id"
Role = CustomerMembership.Role
PAYING_ROLES = frozenset({Role.ADMIN, Role.BILLING})
INVITING_ROLES = frozenset({Role.ADMIN})


@dataclass(frozen=True)
class PortalAccess:
    """The signed-in user's memberships and the one the portal is showing."""

    memberships: tuple[CustomerMembership, ...]
    current: CustomerMembership

    @property
    def customer(self):
        return self.current.customer

    @property
    def role(self) -> str:
        return self.current.role

    @property
    def may_pay(self) -> bool:
        return self.current.role in PAYING_ROLES

    @property
    def may_invite(self) -> bool:
        return self.current.role in INVITING_ROLES


def memberships_of(user) -> tuple[CustomerMembership, ...]:
    """The user's memberships with their customers, by customer name (one query)."""
    return tuple(
        CustomerMembership.objects.filter(user=user)
        .select_related("customer")
        .order_by("customer__name", "pk")
    )


def portal_access(request) -> PortalAccess | None:
    """The user's access, the current customer taken from the session (the first membership when
    the session names none or one the user no longer belongs to); ``None`` without memberships."""
    memberships = memberships_of(request.user)
    if not memberships:
        return None
    wanted = request.session.get(SESSION_CUSTOMER_KEY)
    current = next((m for m in memberships if m.customer_id == wanted), memberships[0])
    if wanted != current.customer_id:
        request.session[SESSION_CUSTOMER_KEY] = current.customer_id
    return PortalAccess(memberships=memberships, current=current)


def portal_switch(request, customer_id: int) -> PortalAccess:
    """Make ``customer_id`` the current customer; 404 when the user is not one of its members."""
    access = portal_access(request)
    membership = (
        next((m for m in access.memberships if m.customer_id == customer_id), None) if access else None
    )
    if membership is None:
        raise Http404("No such customer.")
    request.session[SESSION_CUSTOMER_KEY] = customer_id
    request.portal = PortalAccess(memberships=access.memberships, current=membership)
    return request.portal


def portal_view(view=None, *, roles: frozenset[str] | None = None):
    """Decorate a portal view: login required (the portal's login page), a membership required,
    ``request.portal`` set; with ``roles``, other roles get 403."""

    def decorate(func):
        @functools.wraps(func)
        def wrapper(request, *args, **kwargs):
            if not request.user.is_authenticated:
                return redirect_to_login(request.get_full_path(), reverse("portal:login"))
            access = portal_access(request)
            if access is None:
                return render(request, "portal/no_access.html", status=403)
            request.portal = access
            if roles is not None and access.role not in roles:
                return render(request, "portal/forbidden.html", status=403)
            return func(request, *args, **kwargs)

        return wrapper

    return decorate(view) if view is not None else decorate


def follow_customer(request, customer_id: int) -> None:
    """A document of another of the user's customers was opened: show that customer from now on.

    The document was read through a selector scoped to all the user's memberships, so the
    customer is one of theirs; :func:`portal_switch` checks it again all the same.
    """
    if request.portal.customer.pk != customer_id:
        portal_switch(request, customer_id)
