"""The server economics of the reports as plain Decimal math (no ORM): payback of a
platform-owned server and the light-asset margin per P-year (docs/reports.md#payback-per-platform-owned-server)."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from apps.core.money import round_money, round_places

MONTHS_PER_YEAR = Decimal(12)


def annualise(amount: Decimal, months: int) -> Decimal:
    """``amount`` earned over ``months`` months, as a year's worth (exact, not rounded)."""
    if months <= 0:
        raise ValueError("months must be positive")
    return amount * MONTHS_PER_YEAR / Decimal(months)


def payback_months(
    *, purchase_amount: Decimal, annual_revenue: Decimal, annual_cash_cost: Decimal
) -> Decimal | None:
    """purchase / (annual revenue − annual cash cost) × 12, to 0.1 month; None when the server
    earns no more than it costs to run (it never pays back)."""
    yearly = annual_revenue - annual_cash_cost
    if yearly <= 0:
        return None
    return round_places(purchase_amount / yearly * MONTHS_PER_YEAR, 1)


@dataclass(frozen=True)
class PYearMargin:
    revenue_per_p_year: Decimal
    cost_per_p_year: Decimal
    margin_per_p_year: Decimal


def margin_per_p_year(
    *, annual_revenue: Decimal, p_capacity: Decimal, cost_per_p_year: Decimal
) -> PYearMargin:
    """Revenue per P per year (rounded to cents once) − the provider's cost per P-year."""
    if p_capacity <= 0:
        raise ValueError("P capacity must be positive")
    revenue = round_money(annual_revenue / p_capacity)
    cost = round_money(cost_per_p_year)
    return PYearMargin(revenue_per_p_year=revenue, cost_per_p_year=cost, margin_per_p_year=revenue - cost)
