"""apps.core.money: docs/rating.md worked examples as tables, and hypothesis properties. No Django."""

from __future__ import annotations

import functools
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from apps.core import money
from apps.core.money import (
    amount_in_words,
    effective_unit_price,
    percent_to_rate,
    round_money,
    round_unit_price,
    split_tax,
    to_decimal,
)

D = Decimal
PROPERTY = settings(max_examples=300, deadline=None)
VAT_RATES = [D("0.06"), D("0.13"), D("0.09"), D("0")]
CAPITAL_CHARS = set("零壹贰叁肆伍陆柒捌玖拾佰仟万亿元角分整负")


# --- floats are refused ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "call",
    [
        lambda: to_decimal(1.23),
        lambda: round_money(245.16),
        lambda: round_unit_price(22.7),
        lambda: percent_to_rate(15.0),
        lambda: split_tax(D("245.16"), 0.06, prices_include_tax=True),
        lambda: split_tax(245.16, D("0.06"), prices_include_tax=True),
        lambda: effective_unit_price(22.70, D("0"), D("10")),
        lambda: amount_in_words(0.1),
    ],
)
def test_float_is_refused(call):
    with pytest.raises(TypeError, match="float"):
        call()


@pytest.mark.parametrize(
    ("value", "expected"),
    [(D("1.23"), D("1.23")), ("22.70", D("22.70")), (7, D("7"))],
)
def test_to_decimal_accepts_decimal_str_int(value, expected):
    result = to_decimal(value)
    assert isinstance(result, Decimal)
    assert result == expected


# --- rounding --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("245.16", "245.16"),
        ("2.675", "2.68"),  # half up; through float 2.675 would become 2.67
        ("2.665", "2.67"),  # half up, not banker's (2.66)
        ("0.005", "0.01"),
        ("0.0049999", "0.00"),
        ("-2.675", "-2.68"),  # ROUND_HALF_UP rounds halves away from zero
        ("631730.769230769", "631730.77"),
        ("35416.666666667", "35416.67"),
        (5, "5.00"),
    ],
)
def test_round_money(value, expected):
    assert str(round_money(value)) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("20.43", "20.430000"),
        ("20.4300004", "20.430000"),
        ("0.0000005", "0.000001"),
        ("14166.6666666667", "14166.666667"),
    ],
)
def test_round_unit_price(value, expected):
    assert str(round_unit_price(value)) == expected


# --- effective unit price and the worked examples (docs/rating.md) ---------------------------


@pytest.mark.parametrize(
    ("list_price", "term_percent", "negotiated_percent", "expected"),
    [
        (D("22.70"), D("0"), D("10"), D("20.43")),  # metered, negotiated 10 %
        (D("144000.00"), D("15"), D("0"), D("122400.00")),  # yearly term 8.5折
        (D("200000"), D("15"), D("0"), D("170000")),  # P-year list, term 15 %
        (D("100"), D("15"), D("10"), D("76.5")),  # discounts compound: 100 × 0.85 × 0.9
        (D("180.00"), D("0"), D("0"), D("180.00")),
    ],
)
def test_effective_unit_price_is_exact(list_price, term_percent, negotiated_percent, expected):
    assert effective_unit_price(list_price, term_percent, negotiated_percent) == expected


@pytest.mark.parametrize(("percent", "rate"), [("15", D("0.15")), (10, D("0.1")), ("8.5", D("0.085"))])
def test_percent_to_rate(percent, rate):
    assert percent_to_rate(percent) == rate


def test_metered_card_hours_example():
    """12 card-hours at list 22.70, negotiated 10 %, prices include 6 % VAT (docs/rating.md)."""
    unit = effective_unit_price(D("22.70"), D("0"), D("10"))
    amount = round_money(D("12") * unit)
    split = split_tax(amount, D("0.06"), prices_include_tax=True)
    assert (split.amount, split.tax, split.net, split.gross) == (
        D("245.16"),
        D("13.88"),
        D("231.28"),
        D("245.16"),
    )
    assert amount_in_words(split.gross) == "贰佰肆拾伍元壹角陆分"


def test_monthly_server_with_yearly_term_discount_example():
    """8-card A100-80G, monthly list 144,000.00, yearly term 15 % → 122,400.00 (docs/rating.md)."""
    assert round_money(effective_unit_price(D("144000.00"), D("15"), D("0"))) == D("122400.00")


def test_p_unit_yearly_monthly_instalment_example():
    """2.5 P × 200,000 per P-year × 0.85 / 12 = 35,416.67 for a full month (docs/rating.md)."""
    unit = effective_unit_price(D("200000"), D("15"), D("0"))
    assert round_money(D("2.5") * unit / 12) == D("35416.67")


def test_light_asset_margin_example():
    """1,576,800 / 2.496 = 631,730.77 per P-year; less 200,000 cost = 431,730.77 (docs/rating.md)."""
    revenue_per_p = round_money(D("1576800") / D("2.496"))
    assert revenue_per_p == D("631730.77")
    assert revenue_per_p - D("200000") == D("431730.77")
    assert round_money(D("1576800") / D("2.496") - D("200000")) == D("431730.77")


# --- tax split (docs/invoices.md#tax) ---------------------------------------------------------


@pytest.mark.parametrize(
    ("amount", "rate", "include", "tax", "net", "gross"),
    [
        # tax-inclusive (含税价): tax = round(amount × r / (1 + r)), net = amount − tax
        ("245.16", "0.06", True, "13.88", "231.28", "245.16"),
        ("113.00", "0.13", True, "13.00", "100.00", "113.00"),
        ("106.00", "0.06", True, "6.00", "100.00", "106.00"),
        ("122400.00", "0.13", True, "14081.42", "108318.58", "122400.00"),
        ("100.00", "0", True, "0.00", "100.00", "100.00"),
        # tax-exclusive: tax = round(amount × r), gross = amount + tax
        ("122400.00", "0.13", False, "15912.00", "122400.00", "138312.00"),  # equipment_lease
        ("1576800.00", "0.13", False, "204984.00", "1576800.00", "1781784.00"),
        ("245.16", "0.06", False, "14.71", "245.16", "259.87"),
        ("0.50", "0.13", False, "0.07", "0.50", "0.57"),  # 0.065 rounds half up
        ("35416.67", "0.09", False, "3187.50", "35416.67", "38604.17"),
    ],
)
def test_split_tax(amount, rate, include, tax, net, gross):
    split = split_tax(D(amount), D(rate), prices_include_tax=include)
    assert split.amount == D(amount)
    assert (str(split.tax), str(split.net), str(split.gross)) == (tax, net, gross)


def test_split_tax_rounds_the_line_amount_first():
    split = split_tax(D("245.155"), D("0.06"), prices_include_tax=True)
    assert (split.amount, split.tax, split.net) == (D("245.16"), D("13.88"), D("231.28"))


# --- capital numerals (大写) -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("amount", "words"),
    [
        # docs/rating.md figures
        ("1576800.00", "壹佰伍拾柒万陆仟捌佰元整"),
        ("245.16", "贰佰肆拾伍元壹角陆分"),
        ("13.88", "壹拾叁元捌角捌分"),
        ("231.28", "贰佰叁拾壹元贰角捌分"),
        ("122400.00", "壹拾贰万贰仟肆佰元整"),
        ("35416.67", "叁万伍仟肆佰壹拾陆元陆角柒分"),
        ("631730.77", "陆拾叁万壹仟柒佰叁拾元柒角柒分"),
        ("431730.77", "肆拾叁万壹仟柒佰叁拾元柒角柒分"),
        # zeros: one 零 for a run of zeros inside the number, none at the end of a section
        ("10001", "壹万零壹元整"),
        ("100100", "壹拾万零壹佰元整"),
        ("1010", "壹仟零壹拾元整"),
        ("6007.14", "陆仟零柒元壹角肆分"),
        ("1409.50", "壹仟肆佰零玖元伍角整"),
        ("1020304.05", "壹佰零贰万零叁佰零肆元零伍分"),
        ("100000", "壹拾万元整"),
        ("100000000", "壹亿元整"),
        ("100010000", "壹亿零壹万元整"),
        ("1000000001.01", "壹拾亿零壹元零壹分"),
        ("12345678901.23", "壹佰贰拾叁亿肆仟伍佰陆拾柒万捌仟玖佰零壹元贰角叁分"),
        # 万位 zero with 千位 non-zero, 元位 zero with 角 non-zero: 零 may be omitted (PBOC rule)
        ("1680.32", "壹仟陆佰捌拾元叁角贰分"),
        ("107000.53", "壹拾万柒仟元伍角叁分"),
        # 零 between 元 and 分 when 角 is 0
        ("1.05", "壹元零伍分"),
        ("325.04", "叁佰贰拾伍元零肆分"),
        # tens always carry 壹 on a fapiao
        ("10", "壹拾元整"),
        ("20.00", "贰拾元整"),
        ("10.10", "壹拾元壹角整"),
        # below one yuan
        ("0.05", "伍分"),
        ("0.50", "伍角整"),
        ("0.10", "壹角整"),
        ("0.01", "壹分"),
        ("0", "零元整"),
        ("0.00", "零元整"),
        ("-0.001", "零元整"),  # rounds to zero: no 负
        # rounded half up before conversion
        ("2.675", "贰元陆角捌分"),
        # negative (credit notes)
        ("-245.16", "负贰佰肆拾伍元壹角陆分"),
        ("-1576800", "负壹佰伍拾柒万陆仟捌佰元整"),
        # 万亿 and above
        ("1000000000000", "壹万亿元整"),
        ("1000000000001", "壹万亿零壹元整"),
        ("1234500000000", "壹万贰仟叁佰肆拾伍亿元整"),
        ("1000100000000", "壹万零壹亿元整"),
        ("9999999999999999.99", "玖仟玖佰玖拾玖万玖仟玖佰玖拾玖亿玖仟玖佰玖拾玖万玖仟玖佰玖拾玖元玖角玖分"),
    ],
)
def test_amount_in_words(amount, words):
    assert amount_in_words(D(amount)) == words


def test_amount_in_words_accepts_int_and_str():
    assert amount_in_words(1576800) == amount_in_words("1576800.00") == "壹佰伍拾柒万陆仟捌佰元整"


def test_amount_in_words_refuses_amounts_beyond_wan_yi():
    with pytest.raises(ValueError, match="too large"):
        amount_in_words(D("10000000000000000"))


# --- hypothesis properties -------------------------------------------------------------------

_UNITS = {"拾": 10, "佰": 100, "仟": 1000}
_DIGIT_VALUES = {ch: i for i, ch in enumerate("零壹贰叁肆伍陆柒捌玖")}


def _parse_words(words: str) -> Decimal:
    """Read capital numerals back into a Decimal (a test oracle independent of the formatter)."""
    sign = 1
    if words.startswith("负"):
        sign, words = -1, words[1:]
    integer_text, _, fraction_text = words.rpartition("元")
    total = section = number = 0
    for ch in integer_text:
        if ch in _DIGIT_VALUES:
            number = _DIGIT_VALUES[ch]
        elif ch in _UNITS:
            section += number * _UNITS[ch]
            number = 0
        elif ch == "万":
            total += (section + number) * 10_000
            section = number = 0
        elif ch == "亿":
            total = (total + section + number) * 100_000_000
            section = number = 0
        else:
            raise AssertionError(f"unexpected {ch!r} in {words!r}")
    yuan = total + section + number
    fen = 0
    pending = 0
    for ch in fraction_text:
        if ch in _DIGIT_VALUES:
            pending = _DIGIT_VALUES[ch]
        elif ch == "角":
            fen += pending * 10
            pending = 0
        elif ch == "分":
            fen += pending
            pending = 0
        elif ch != "整":
            raise AssertionError(f"unexpected {ch!r} in {words!r}")
    return sign * (Decimal(yuan) + Decimal(fen) / 100)


money_amounts = st.decimals(
    min_value=D("-1000000000000"),
    max_value=D("1000000000000"),
    places=2,
    allow_nan=False,
    allow_infinity=False,
)


@PROPERTY
@given(
    st.decimals(min_value=D("-1e13"), max_value=D("1e13"), places=6, allow_nan=False, allow_infinity=False)
)
def test_rounding_twice_changes_nothing(value):
    once = round_money(value)
    assert round_money(once) == once
    assert abs(once - value) <= D("0.005")
    unit = round_unit_price(value)
    assert round_unit_price(unit) == unit


@PROPERTY
@given(money_amounts, st.sampled_from(VAT_RATES))
def test_tax_inclusive_tax_plus_net_is_amount(amount, rate):
    split = split_tax(amount, rate, prices_include_tax=True)
    assert split.tax + split.net == split.amount == split.gross == amount
    assert split.tax == round_money(amount * rate / (1 + rate))
    assert abs(split.tax - amount * rate / (1 + rate)) <= D("0.005")


@PROPERTY
@given(money_amounts, st.sampled_from(VAT_RATES))
def test_tax_exclusive_gross_is_amount_plus_tax(amount, rate):
    split = split_tax(amount, rate, prices_include_tax=False)
    assert split.net == split.amount == amount
    assert split.gross == amount + split.tax
    assert split.tax == round_money(amount * rate)


@PROPERTY
@given(money_amounts)
def test_amount_in_words_is_well_formed_and_reads_back(amount):
    words = amount_in_words(amount)
    assert words
    assert set(words) <= CAPITAL_CHARS
    assert _parse_words(words) == amount
    cents = int(abs(amount) * 100)
    yuan, jiao, fen = cents // 100, cents // 10 % 10, cents % 10
    assert words.startswith("负") == (amount < 0)
    assert words.endswith("整") == (fen == 0)
    assert words.count("整") <= 1
    assert words.endswith("元整") == (jiao == 0 and fen == 0)
    assert "零零" not in words
    for unit in "拾佰仟万亿元角分整":
        assert "零" + unit not in words or words == "零元整"
    assert words.lstrip("负").startswith("零") == (yuan == 0 and jiao == 0 and fen == 0)
    if yuan and not jiao and fen:
        assert "元零" in words
    assert words.count("亿") <= 1


@PROPERTY
@given(st.integers(min_value=1, max_value=10**16 - 1))
def test_amount_in_words_reads_back_up_to_wan_yi(yuan):
    words = amount_in_words(yuan)
    assert _parse_words(words) == yuan
    assert words.count("亿") <= 1
    assert "零零" not in words


@pytest.mark.parametrize(
    ("helper", "value", "expected"),
    [
        (money.round_unit_price, "0.5000005", Decimal("0.500001")),
        (money.round_percent, "12.345", Decimal("12.35")),
        (functools.partial(money.round_percent, places=1), "16.25", Decimal("16.3")),
        (money.round_hours, "0.00005", Decimal("0.0001")),
        (functools.partial(money.round_places, places=1), "0.25", Decimal("0.3")),
        (functools.partial(money.round_places, places=0), "2.5", Decimal("3")),
    ],
)
def test_named_rounding_helpers_round_half_up(helper, value, expected):
    """Half-even (Python's default) would give 0.500000, 12.34, 16.2, 0.0000 (4 places), 0.2 and 2."""
    assert helper(Decimal(value)) == expected


# --- numbers as people read them ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (D("100"), "100"),  # str(D("100").normalize()) is "1E+2": the quote PDF printed "1E+2%"
        (D("100.00"), "100"),
        (D("10"), "10"),
        (D("10.000"), "10"),
        (D("2.496"), "2.496"),
        (D("2.4960"), "2.496"),
        (D("0.50"), "0.5"),
        (D("0.000"), "0"),
        (D("-0.00"), "0"),
        (D("1200000"), "1200000"),
        (15, "15"),
        ("12.30", "12.3"),
    ],
)
def test_decimal_text_never_uses_scientific_notation(value, text):
    assert money.decimal_text(value) == text


@PROPERTY
@given(st.decimals(allow_nan=False, allow_infinity=False, min_value=-(10**12), max_value=10**12, places=6))
def test_decimal_text_reads_back_to_the_same_number(value):
    text = money.decimal_text(value)
    assert "E" not in text and D(text) == value
    assert not ("." in text and text.endswith("0"))
