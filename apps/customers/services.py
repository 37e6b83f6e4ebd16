"""Writes to customers: validated against the model (tax id check character, uniqueness, limits)
inside a transaction, with the acting user recorded in the history.
"""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils.translation import gettext

from apps.accounts import roles
from apps.core.errors import Conflict, DomainError

from .models import Customer

# Fields a caller may set; ``account_manager`` is a User (or None).
WRITABLE_FIELDS = frozenset(
    {
        "code",
        "name",
        "tax_id",
        "billing_address",
        "phone",
        "bank_name",
        "bank_account",
        "billing_email",
        "invoice_type",
        "currency",
        "payment_terms_days",
        "auto_issue",
        "language",
        "account_manager",
    }
)


def _check_fields(fields: dict) -> None:
    unknown = set(fields) - WRITABLE_FIELDS
    if unknown:
        raise TypeError(f"unexpected customer fields: {', '.join(sorted(unknown))}")


def _validate(customer: Customer) -> None:
    try:
        customer.full_clean()
    except ValidationError as exc:
        fields = exc.message_dict
        field, messages = next(iter(fields.items()))
        raise DomainError(f"{field}: {messages[0]}", code="invalid", fields=fields) from exc


def _save(customer: Customer, *, actor) -> None:
    customer._history_user = actor
    try:
        with transaction.atomic():
            customer.save()
    except IntegrityError as exc:
        constraint = getattr(getattr(exc.__cause__, "diag", None), "constraint_name", "") or ""
        for field, message in (
            ("tax_id", gettext("Another customer took this tax id meanwhile.")),
            ("code", gettext("Another customer took this code meanwhile.")),
        ):
            if field in constraint:
                raise Conflict(message, fields={field: [message]}) from exc
        raise Conflict(
            gettext("The customer conflicts with data written meanwhile; reload and retry.")
        ) from exc


def customer_create(*, actor=None, **fields) -> Customer:
    """Register a customer. The account manager defaults to the acting user when they hold the
    account manager role.
    """
    _check_fields(fields)
    if (
        "account_manager" not in fields
        and actor is not None
        and actor.is_authenticated
        and actor.groups.filter(name=roles.ACCOUNT_MANAGER).exists()
    ):
        fields["account_manager"] = actor
    with transaction.atomic():
        customer = Customer(**fields)
        _validate(customer)
        _save(customer, actor=actor)
    return customer


def customer_update(*, customer: Customer, actor=None, **fields) -> Customer:
    """Change a customer's details. The ``code`` is how other systems refer to the customer and
    does not change.
    """
    _check_fields(fields)
    if "code" in fields and fields["code"] != customer.code:
        message = gettext("The customer code cannot change; other systems refer to the customer by it.")
        raise DomainError(message, code="invalid", fields={"code": [message]})
    with transaction.atomic():
        customer = Customer.objects.select_for_update().get(pk=customer.pk)
        for field, value in fields.items():
            setattr(customer, field, value)
        _validate(customer)
        _save(customer, actor=actor)
    return customer
