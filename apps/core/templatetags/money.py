"""Template filters for numbers people read in the admin: ``{% load money %}``.

``{{ line.quantity|decimal_text }}`` prints ``10`` where ``{{ line.quantity.normalize }}`` prints
``1E+1``; ``{{ rate|percent_text }}`` prints ``30%`` for ``0.30``; ``{{ amount|amount_text }}``
prints ``136,325.00``.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from django import template

from apps.core import money

register = template.Library()

EMPTY = "—"


def _decimal(value) -> Decimal | None:
    if value is None or value == "":
        return None
    try:
        return money.to_decimal(value)
    except (InvalidOperation, TypeError, ValueError):
        return None


@register.filter
def decimal_text(value) -> str:
    """A quantity, price or percentage without scientific notation or trailing zeros; ``—`` for none."""
    number = _decimal(value)
    return EMPTY if number is None else money.decimal_text(number)


@register.filter
def percent_text(value) -> str:
    """A rate (``0.30``) as a percentage (``30%``); ``—`` for none."""
    number = _decimal(value)
    return EMPTY if number is None else f"{money.decimal_text(number * 100)}%"


@register.filter
def amount_text(value) -> str:
    """Money rounded half up to fen and grouped (``136,325.00``); ``—`` for none."""
    number = _decimal(value)
    return EMPTY if number is None else f"{money.round_money(number):,.2f}"
