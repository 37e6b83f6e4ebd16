"""Validation rules of a contract line, shared by the services and the admin forms (no ORM)."""

from __future__ import annotations

from decimal import Decimal

QUANTITY_PLACES = 6
UPFRONT = "upfront"


def line_problems(data, *, contract_start, contract_end) -> dict[str, list[str]]:
    """Field errors of one line (nothing is saved while any exist)."""
    errors: dict[str, list[str]] = {}
    quantity = data.quantity
    if quantity is None or quantity <= 0:
        errors["quantity"] = ["Quantity must be greater than zero."]
    elif -quantity.as_tuple().exponent > QUANTITY_PLACES and quantity != quantity.quantize(Decimal("1e-6")):
        errors["quantity"] = ["Quantity may have at most 6 decimal places."]
    elif data.resource in ("card", "server") and quantity != quantity.to_integral_value():
        errors["quantity"] = [f"A {data.resource} quantity must be a whole number."]
    for name in ("term_discount_percent", "discount_percent"):
        value = getattr(data, name)
        if value is not None and not (Decimal(0) <= value < Decimal(100)):
            errors[name] = ["Discount must be at least 0 and below 100."]
    if data.list_unit_price is not None and data.list_unit_price < 0:
        errors["list_unit_price"] = ["List unit price must not be negative."]
    start = data.start_at or contract_start
    end = data.end_at or contract_end
    if end is not None and start is not None and end <= start:
        errors["end"] = ["End must be after start."]
    if data.start_at and contract_start and data.start_at < contract_start:
        errors["start"] = ["A line cannot start before its contract."]
    if data.yearly_billing == UPFRONT and data.term != "yearly":
        errors["yearly_billing"] = ["Upfront billing applies to yearly lines only."]
    return errors
