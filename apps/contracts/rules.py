"""Validation rules of a contract line, shared by the services and the admin forms (no ORM)."""

from __future__ import annotations

from decimal import Decimal

from django.utils.translation import gettext

QUANTITY_PLACES = 6
UPFRONT = "upfront"


def line_problems(data, *, contract_start, contract_end) -> dict[str, list[str]]:
    """Field errors of one line (nothing is saved while any exist)."""
    errors: dict[str, list[str]] = {}
    quantity = data.quantity
    if quantity is None or quantity <= 0:
        errors["quantity"] = [gettext("Quantity must be greater than zero.")]
    elif -quantity.as_tuple().exponent > QUANTITY_PLACES and quantity != quantity.quantize(Decimal("1e-6")):
        errors["quantity"] = [gettext("Quantity may have at most 6 decimal places.")]
    elif data.resource in ("card", "server") and quantity != quantity.to_integral_value():
        errors["quantity"] = [
            gettext("A %(resource)s quantity must be a whole number.") % {"resource": data.resource}
        ]
    for name in ("term_discount_percent", "discount_percent"):
        value = getattr(data, name)
        if value is not None and not (Decimal(0) <= value < Decimal(100)):
            errors[name] = [gettext("Discount must be at least 0 and below 100.")]
    if data.list_unit_price is not None and data.list_unit_price < 0:
        errors["list_unit_price"] = [gettext("List unit price must not be negative.")]
    start = data.start_at or contract_start
    end = data.end_at or contract_end
    if end is not None and start is not None and end <= start:
        errors["end"] = [gettext("End must be after start.")]
    if data.start_at and contract_start and data.start_at < contract_start:
        errors["start"] = [gettext("A line cannot start before its contract.")]
    if data.yearly_billing == UPFRONT and data.term != "yearly":
        errors["yearly_billing"] = [gettext("Upfront billing applies to yearly lines only.")]
    return errors
