"""Platform economics: P-unit capacity, payback and light-asset margin (SPEC §2, §4).

Pure: no Django, no ORM. Inputs are ``Decimal``, ``int`` or ``str`` (floats are refused by
``to_decimal``); results are ``Decimal``. Ratios are kept exact; money per P-year is rounded once,
half up, to fen through ``apps.core.money``.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

from apps.core.money import round_money, to_decimal

Number = Decimal | int | str

TFLOPS_PER_P = Decimal(1000)
MONTHS_PER_YEAR = 12
PAYBACK_MONTHS_QUANT = Decimal("0.1")


def p_units(tflops_per_card: Number, cards: int) -> Decimal:
    """P-unit capacity of ``cards`` identical cards: ``cards × TFLOPS / 1000``, exact.

    ``p_units(312, 8)`` → ``Decimal("2.496")`` (8 × A100); ``p_units("989.4", 8)`` →
    ``Decimal("7.9152")`` (8 × H800). Use dense FP16 TFLOPS unless the contract states another
    basis (SPEC §2).
    """
    tflops = to_decimal(tflops_per_card)
    if isinstance(cards, bool) or not isinstance(cards, int):
        raise TypeError(f"cards must be a whole number, got {cards!r}")
    if tflops <= 0:
        raise ValueError(f"TFLOPS per card must be positive, got {tflops}")
    if cards <= 0:
        raise ValueError(f"card count must be positive, got {cards}")
    return tflops * cards / TFLOPS_PER_P


def payback_years(purchase_cost: Number, annual_cash_cost: Number, annual_revenue: Number) -> Decimal:
    """Years until a platform-owned server earns back its price, exact (not rounded).

    ``purchase_cost / (annual_revenue − annual_cash_cost)``; SPEC §4:
    1,800,000 / (1,576,800 − 240,000) = 1.3465… years. Undefined, so ``ValueError``, when the
    revenue does not exceed the cash cost (the server never pays back).
    """
    cost = to_decimal(purchase_cost)
    cash_cost = to_decimal(annual_cash_cost)
    revenue = to_decimal(annual_revenue)
    if cost < 0:
        raise ValueError(f"purchase cost must not be negative, got {cost}")
    if cash_cost < 0:
        raise ValueError(f"annual cash cost must not be negative, got {cash_cost}")
    if revenue <= cash_cost:
        raise ValueError(
            f"payback is undefined: annual revenue {revenue} does not exceed annual cash cost {cash_cost}"
        )
    return cost / (revenue - cash_cost)


def payback_months(purchase_cost: Number, annual_cash_cost: Number, annual_revenue: Number) -> Decimal:
    """Payback in months for display: ``payback_years × 12`` rounded half up to 0.1 month.

    SPEC §4: 1.3465… years × 12 = 16.158… → ``Decimal("16.2")``. A duration, not money, so it
    is quantised here rather than with ``round_money``. Raises like ``payback_years``.
    """
    months = payback_years(purchase_cost, annual_cash_cost, annual_revenue) * MONTHS_PER_YEAR
    return months.quantize(PAYBACK_MONTHS_QUANT, rounding=ROUND_HALF_UP)


def _positive_p_units(value: Number) -> Decimal:
    p = to_decimal(value)
    if p <= 0:
        raise ValueError(f"P-units must be positive, got {p}")
    return p


def revenue_per_p_year(annual_revenue: Number, p_units: Number) -> Decimal:
    """Annual revenue per P of capacity, rounded to fen.

    SPEC §4: 1,576,800 / 2.496 = 631,730.769… → ``Decimal("631730.77")``. ``ValueError`` when
    ``p_units`` is not positive.
    """
    return round_money(to_decimal(annual_revenue) / _positive_p_units(p_units))


def margin_per_p_year(annual_revenue: Number, p_units: Number, cost_per_p_year: Number) -> Decimal:
    """Light-asset margin per P-year: revenue per P-year − the provider's cost per P-year.

    Computed from the exact revenue per P and rounded once to fen; SPEC §4:
    1,576,800 / 2.496 − 200,000 = ``Decimal("431730.77")``. Negative when the provider costs more
    than the capacity earns. ``ValueError`` when ``p_units`` is not positive.
    """
    exact_revenue = to_decimal(annual_revenue) / _positive_p_units(p_units)
    return round_money(exact_revenue - to_decimal(cost_per_p_year))
