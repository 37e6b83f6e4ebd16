"""Demo users: one staff user per role, and a customer portal user."""

from __future__ import annotations

import functools

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.contrib.auth.models import Group

from apps.accounts.models import CustomerMembership
from apps.customers.models import Customer

from .base import CREATED, DemoContext, sync
from .data import DEMO_PASSWORD, PORTAL_USERS, STAFF_EMAIL_DOMAIN, STAFF_USERS


@functools.cache
def _demo_password_hash(hashers: tuple[str, ...]) -> str:
    """The published demo password, hashed once per process and hasher setting: a hash costs a good
    part of a second by design, and the demo users share the password anyway."""
    return make_password(DEMO_PASSWORD)


def _ensure_user(username: str, **values) -> tuple[object, str]:
    """Create the user with the demo password; an existing user (and its password) is left alone."""
    user, outcome = sync(get_user_model(), {"username": username}, values, update=False)
    if outcome == CREATED:
        user.password = _demo_password_hash(tuple(settings.PASSWORD_HASHERS))
        user.save(update_fields=["password"])
    return user, outcome


def load_staff(ctx: DemoContext) -> None:
    tally = ctx.tally("users")
    groups = {g.name: g for g in Group.objects.filter(name__in={r for u in STAFF_USERS for r in u.roles})}
    for spec in STAFF_USERS:
        user, outcome = _ensure_user(
            spec.username,
            display_name=spec.display_name,
            email=f"{spec.username}@{STAFF_EMAIL_DOMAIN}",
            is_staff=True,
            is_superuser=spec.superuser,
        )
        tally.add(outcome)
        missing = [groups[r] for r in spec.roles if not user.groups.filter(name=r).exists()]
        if missing:
            user.groups.add(*missing)


def load_portal_users(ctx: DemoContext) -> None:
    users, memberships = ctx.tally("users"), ctx.tally("memberships")
    for username, display_name, customer_code, role in PORTAL_USERS:
        customer = Customer.objects.get(code=customer_code)
        user, outcome = _ensure_user(
            username,
            display_name=display_name,
            email=customer.billing_email or f"{username}@{customer_code}.example.cn",
            is_staff=False,
        )
        users.add(outcome)
        _, outcome = sync(
            CustomerMembership, {"user": user, "customer": customer}, {"role": role}, update=False
        )
        memberships.add(outcome)
