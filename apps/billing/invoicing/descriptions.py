"""What each invoice line says: what, which contract and line, which period, how many at what price."""

from __future__ import annotations

import functools
from decimal import Decimal

from apps.contracts import pricing
from apps.core.money import round_unit_price

RESOURCE_LABELS = {"card": "整卡 card", "server": "整机 server", "p_unit": "算力 P-unit"}
TERM_LABELS = {
    "hourly": "按小时 hourly",
    "daily": "按天 daily",
    "monthly": "按月 monthly",
    "yearly": "按年 yearly",
}


@functools.lru_cache(maxsize=4096)  # prices and discounts repeat across a run's lines
def _number(value: Decimal) -> str:
    """``1440`` → ``"1,440"``, ``Decimal("12.500000")`` → ``"12.5"``, never scientific notation.

    Rounded half up to the 6 places an invoice line stores, so the text says what the line holds.
    """
    text = f"{round_unit_price(value):,.6f}".rstrip("0").rstrip(".")
    return text or "0"


def _price(value: Decimal) -> str:
    """Prices keep at least fen: ``22.7`` → ``"22.70"``, ``20.43`` stays, ``1.234567`` stays."""
    text = _number(value)
    whole, _, frac = text.partition(".")
    return f"{whole}.{frac.ljust(2, '0')}"


def line_description(contract, line, charge: pricing.LineCharge, period: str) -> str:
    """``contract`` prints as its number; ``line`` has position, gpu_model, resource, term and discounts."""
    if charge.kind == "minimum_commitment_shortfall":
        return (
            f"保底消费差额 Minimum commitment shortfall · {contract} · {period} · "
            f"minimum {charge.amount:,.2f} not reached"
        )
    head = {
        "usage": "算力服务费 Compute usage",
        "recurring": "算力租赁费 Compute lease",
        "late_usage": f"迟到用量 Late usage for {period}",
    }[charge.kind]
    discount = ""
    if line.term_discount_percent or line.discount_percent:
        parts = []
        if line.term_discount_percent:
            parts.append(f"term −{_number(line.term_discount_percent)}%")
        if line.discount_percent:
            parts.append(f"negotiated −{_number(line.discount_percent)}%")
        discount = f" (list {_price(charge.list_unit_price)}, {', '.join(parts)})"
    return (
        f"{head} · {contract} #{line.position} {line.gpu_model} {RESOURCE_LABELS[line.resource]} "
        f"{TERM_LABELS[line.term]} · {period} · "
        f"{_number(charge.quantity)} {charge.unit} × {_price(charge.unit_price)}"
        f"{discount}"
    )[:500]
