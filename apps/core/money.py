"""Money arithmetic: rounding, tax split, Chinese capital numerals (大写).

Pure: no Django, no ORM. Amounts are ``Decimal`` with 2 places (fen); unit prices keep up to 6.
Round once per line with ``ROUND_HALF_UP`` (四舍五入) from exact intermediate values.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

CENT = Decimal("0.01")
UNIT_PRICE_QUANT = Decimal("0.000001")
HOURS_QUANT = Decimal("0.0001")
ZERO = Decimal("0")


def to_decimal(value: Decimal | int | str) -> Decimal:
    """Coerce an int or string to ``Decimal``; floats are refused (they are not exact)."""
    if isinstance(value, float):
        raise TypeError("money must not pass through float; use a string or Decimal")
    if isinstance(value, Decimal):
        return value
    return Decimal(value)


def decimal_text(value: Decimal | int | str) -> str:
    """A quantity, price or percentage as people read it: no scientific notation, no trailing
    zeros (``100``, ``10``, ``2.496``, ``0.5``), where ``str(Decimal("100").normalize())`` says
    ``1E+2``. Every label, message and document shows numbers through this."""
    text = format(to_decimal(value).normalize(), "f")
    return "0" if text == "-0" else text


def round_money(value: Decimal | int | str) -> Decimal:
    """Round an exact value to fen, half up. Idempotent: rounding twice changes nothing."""
    return to_decimal(value).quantize(CENT, rounding=ROUND_HALF_UP)


def round_unit_price(value: Decimal | int | str) -> Decimal:
    """Round a unit price (or a line quantity) to the 6 places invoice lines store, half up."""
    return to_decimal(value).quantize(UNIT_PRICE_QUANT, rounding=ROUND_HALF_UP)


def round_places(value: Decimal | int | str, places: int) -> Decimal:
    """Round to ``places`` decimal places, half up: ``round_places("2.25", 1)`` → ``2.3``."""
    return to_decimal(value).quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)


def round_percent(value: Decimal | int | str, places: int = 2) -> Decimal:
    """A percentage for display or storage, half up (2 places unless told)."""
    return round_places(value, places)


def round_hours(value: Decimal | int | str) -> Decimal:
    """Hours to 4 places (0.36 s), half up."""
    return to_decimal(value).quantize(HOURS_QUANT, rounding=ROUND_HALF_UP)


def percent_to_rate(percent: Decimal | int | str) -> Decimal:
    """``"15"`` → ``Decimal("0.15")``, exact."""
    return to_decimal(percent) / Decimal(100)


def effective_unit_price(
    list_unit_price: Decimal, term_discount_percent: Decimal, discount_percent: Decimal
) -> Decimal:
    """list × (1 − term discount) × (1 − negotiated discount), kept exact
    (docs/rating.md#effective-unit-price)."""
    return (
        to_decimal(list_unit_price)
        * (1 - percent_to_rate(term_discount_percent))
        * (1 - percent_to_rate(discount_percent))
    )


@dataclass(frozen=True, slots=True)
class TaxSplit:
    """One line's money: ``gross = net + tax``; ``amount`` is on the contract's tax basis."""

    amount: Decimal
    net: Decimal
    tax: Decimal
    gross: Decimal


def split_tax(amount: Decimal, rate: Decimal, *, prices_include_tax: bool) -> TaxSplit:
    """Split a rounded line amount into net and tax (docs/invoices.md#tax).

    Tax-inclusive: tax = round(amount × r / (1 + r)), net = amount − tax, gross = amount.
    Tax-exclusive: tax = round(amount × r), net = amount, gross = amount + tax.
    """
    amount = round_money(amount)
    rate = to_decimal(rate)
    if prices_include_tax:
        tax = round_money(amount * rate / (1 + rate))
        return TaxSplit(amount=amount, net=amount - tax, tax=tax, gross=amount)
    tax = round_money(amount * rate)
    return TaxSplit(amount=amount, net=amount, tax=tax, gross=amount + tax)


_DIGITS = "零壹贰叁肆伍陆柒捌玖"
_SMALL_UNITS = ["", "拾", "佰", "仟"]
_BIG_UNITS = ["", "万", "亿", "万亿"]


def _four_digits(group: int) -> str:
    """Capital numerals of 0 < group < 10000, zeros collapsed, no leading 零."""
    out = []
    zero_pending = False
    for pos in range(3, -1, -1):
        digit = (group // 10**pos) % 10
        if digit == 0:
            if out:
                zero_pending = True
            continue
        if zero_pending:
            out.append("零")
            zero_pending = False
        out.append(_DIGITS[digit] + _SMALL_UNITS[pos])
    return "".join(out)


def amount_in_words(amount: Decimal | int | str) -> str:
    """Chinese capital numerals for an amount in yuan, as on a fapiao (价税合计大写).

    ``Decimal("1576800.00")`` → ``"壹佰伍拾柒万陆仟捌佰元整"``;
    ``Decimal("245.16")`` → ``"贰佰肆拾伍元壹角陆分"``; negative amounts get ``"负"``.
    """
    value = round_money(amount)
    prefix = ""
    if value < 0:
        prefix, value = "负", -value
    fen_total = int(value * 100)
    yuan, rest = divmod(fen_total, 100)
    jiao, fen = divmod(rest, 10)
    if yuan >= 10**16:
        raise ValueError("amount too large for capital numerals")

    parts: list[str] = []
    if yuan:
        groups = []
        n = yuan
        while n:
            groups.append(n % 10000)
            n //= 10000
        text = ""
        need_zero = False
        for idx in range(len(groups) - 1, -1, -1):
            group = groups[idx]
            if group == 0:
                need_zero = bool(text)
                continue
            if text and (need_zero or group < 1000):
                text += "零"
            unit = _BIG_UNITS[idx]
            if idx == 3 and groups[2]:
                # 壹万贰仟叁佰肆拾伍亿, not 壹万亿贰仟叁佰肆拾伍亿: the 亿 group carries the 亿.
                unit = "万"
            text += _four_digits(group) + unit
            need_zero = False
        parts.append(text + "元")
    if jiao == 0 and fen == 0:
        return prefix + ("".join(parts) if parts else "零元") + "整"
    if jiao:
        parts.append(_DIGITS[jiao] + "角")
    elif yuan:
        parts.append("零")
    if fen:
        parts.append(_DIGITS[fen] + "分")
    else:
        parts.append("整")
    return prefix + "".join(parts)
