"""Payback and margin per P-year as plain Decimal math: the SPEC §4 worked examples."""

from decimal import Decimal

import pytest

from apps.reports.economics import annualise, margin_per_p_year, payback_months


def test_payback_of_the_market_server_is_16_2_months():
    # 1,800,000 / (1,576,800 − 240,000) = 1.3465 years = 16.2 months
    assert payback_months(
        purchase_amount=Decimal("1800000"),
        annual_revenue=Decimal("1576800.00"),
        annual_cash_cost=Decimal("240000"),
    ) == Decimal("16.2")


@pytest.mark.parametrize("revenue", ["240000", "100000", "0"])
def test_a_server_earning_no_more_than_it_costs_never_pays_back(revenue):
    assert (
        payback_months(
            purchase_amount=Decimal("1800000"),
            annual_revenue=Decimal(revenue),
            annual_cash_cost=Decimal("240000"),
        )
        is None
    )


def test_light_asset_margin_per_p_year_is_431730_77():
    result = margin_per_p_year(
        annual_revenue=Decimal("1576800.00"), p_capacity=Decimal("2.496"), cost_per_p_year=Decimal("200000")
    )
    assert result.revenue_per_p_year == Decimal("631730.77")
    assert result.cost_per_p_year == Decimal("200000.00")
    assert result.margin_per_p_year == Decimal("431730.77")


def test_annualise_scales_the_months_to_a_year_exactly():
    assert annualise(Decimal("943.40"), 1) == Decimal("11320.80")
    assert annualise(Decimal("300.00"), 3) == Decimal("1200.00")
    with pytest.raises(ValueError):
        annualise(Decimal("1"), 0)
