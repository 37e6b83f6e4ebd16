"""apps.billing.calculations: SPEC §2/§4 platform economics as tables. No Django."""

from __future__ import annotations

from decimal import Decimal

import pytest

from apps.billing.calculations import (
    margin_per_p_year,
    p_units,
    payback_months,
    payback_years,
    revenue_per_p_year,
)

D = Decimal


@pytest.mark.parametrize(
    ("tflops", "cards", "expected"),
    [
        (312, 8, D("2.496")),  # 8 × A100 (the market's "2.5 P")
        ("989.4", 8, D("7.9152")),  # 8 × H800 / H100
        (D("312"), 1, D("0.312")),
        ("362.05", 8, D("2.8964")),  # 8 × L40S
        ("165.2", 4, D("0.6608")),  # 4 × RTX 4090
        (125, 8, D("1")),  # 8 × V100
    ],
)
def test_p_units_is_exact(tflops, cards, expected):
    result = p_units(tflops, cards)
    assert isinstance(result, Decimal)
    assert result == expected


@pytest.mark.parametrize(
    ("tflops", "cards", "error", "message"),
    [
        (0, 8, ValueError, "TFLOPS per card must be positive"),
        ("-312", 8, ValueError, "TFLOPS per card must be positive"),
        (312, 0, ValueError, "card count must be positive"),
        (312, -1, ValueError, "card count must be positive"),
        (312.0, 8, TypeError, "float"),
        (312, D("8"), TypeError, "whole number"),
        (312, True, TypeError, "whole number"),
    ],
)
def test_p_units_rejects(tflops, cards, error, message):
    with pytest.raises(error, match=message):
        p_units(tflops, cards)


def test_payback_example_from_spec():
    """Purchase 1,800,000, cash cost 240,000 a year, revenue 1,576,800 (SPEC §4)."""
    years = payback_years(D("1800000"), D("240000"), D("1576800"))
    assert years == D("1800000") / D("1336800")
    assert years.quantize(D("0.0001")) == D("1.3465")
    assert payback_months(D("1800000"), D("240000"), D("1576800")) == D("16.2")


@pytest.mark.parametrize(
    ("purchase", "cash_cost", "revenue", "years", "months"),
    [
        ("1800000", "240000", "1576800", D("1800000") / D("1336800"), D("16.2")),
        ("1200000", "0", "1200000", D("1"), D("12.0")),
        ("1000000", "200000", "600000", D("2.5"), D("30.0")),
        ("100", "0", "2400", D("1") / D("24"), D("0.5")),  # exactly 0.5 month
        ("100", "0", "2401", D("100") / D("2401"), D("0.5")),  # 0.4998 rounds half up
        ("0", "0", "100", D("0"), D("0.0")),
    ],
)
def test_payback_table(purchase, cash_cost, revenue, years, months):
    assert payback_years(purchase, cash_cost, revenue) == years
    assert payback_months(purchase, cash_cost, revenue) == months


@pytest.mark.parametrize("func", [payback_years, payback_months])
@pytest.mark.parametrize(
    ("purchase", "cash_cost", "revenue", "message"),
    [
        ("1800000", "240000", "240000", "payback is undefined: annual revenue 240000 does not exceed"),
        ("1800000", "240000", "100000", "payback is undefined"),
        ("1800000", "0", "0", "payback is undefined"),
        ("-1", "0", "100", "purchase cost must not be negative"),
        ("100", "-1", "100", "annual cash cost must not be negative"),
    ],
)
def test_payback_undefined(func, purchase, cash_cost, revenue, message):
    with pytest.raises(ValueError, match=message):
        func(purchase, cash_cost, revenue)


def test_payback_refuses_float():
    with pytest.raises(TypeError, match="float"):
        payback_years(1800000.0, D("240000"), D("1576800"))


@pytest.mark.parametrize(
    ("revenue", "p", "expected"),
    [
        (D("1576800"), D("2.496"), D("631730.77")),  # SPEC §4
        (D("1576800.00"), p_units(312, 8), D("631730.77")),
        (D("1000000"), D("2.5"), D("400000.00")),
        (D("1576800"), D("7.9152"), D("199211.64")),
    ],
)
def test_revenue_per_p_year(revenue, p, expected):
    assert revenue_per_p_year(revenue, p) == expected


@pytest.mark.parametrize(
    ("revenue", "p", "cost", "expected"),
    [
        (D("1576800"), D("2.496"), D("200000"), D("431730.77")),  # SPEC §4 light-asset margin
        (D("1576800"), p_units(312, 8), D("200000.00"), D("431730.77")),
        (D("400000"), D("2.496"), D("200000"), D("-39743.59")),  # provider costs more: a loss
        (D("1000000"), D("2.5"), D("400000"), D("0.00")),
    ],
)
def test_margin_per_p_year(revenue, p, cost, expected):
    assert margin_per_p_year(revenue, p, cost) == expected


def test_margin_is_revenue_per_p_year_less_cost():
    revenue = revenue_per_p_year("1576800", "2.496")
    assert margin_per_p_year("1576800", "2.496", "200000") == revenue - D("200000")


@pytest.mark.parametrize("p", [D("0"), D("-2.496"), "0.000"])
def test_per_p_year_rejects_non_positive_p_units(p):
    with pytest.raises(ValueError, match="P-units must be positive"):
        revenue_per_p_year(D("1576800"), p)
    with pytest.raises(ValueError, match="P-units must be positive"):
        margin_per_p_year(D("1576800"), p, D("200000"))
