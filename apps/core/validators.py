"""Validators for Chinese business identifiers and hardware ids."""

from __future__ import annotations

import re

from django.core.exceptions import ValidationError
from django.utils.translation import gettext, gettext_lazy

# GB 32100-2015 unified social credit code (统一社会信用代码).
USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
USCC_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
_USCC_RE = re.compile(r"^[0-9A-HJ-NPQRTUWXY]{2}\d{6}[0-9A-HJ-NPQRTUWXY]{10}$")


def uscc_check_character(first17: str) -> str:
    """The 18th character of a unified social credit code, from its first 17."""
    total = sum(USCC_ALPHABET.index(ch) * w for ch, w in zip(first17, USCC_WEIGHTS, strict=True))
    return USCC_ALPHABET[(31 - total % 31) % 31]


def uscc_problem(code: str) -> str | None:
    """Why ``code`` is not a valid unified social credit code, or None when it is."""
    if len(code) != 18:
        return gettext("must be 18 characters, got %(length)s") % {"length": len(code)}
    if not _USCC_RE.match(code):
        return gettext(
            "may contain only digits and capital letters except I, O, Z, S, V (region code in places 3–8 is digits)"
        )
    expected = uscc_check_character(code[:17])
    if code[17] != expected:
        return gettext("check character is wrong: expected %(expected)s, got %(got)s") % {
            "expected": expected,
            "got": code[17],
        }
    return None


def validate_uscc(value: str) -> None:
    problem = uscc_problem(value or "")
    if problem:
        raise ValidationError(
            gettext_lazy("Invalid unified social credit code: %(problem)s."),
            code="invalid_tax_id",
            params={"problem": problem},
        )


_NVML_UUID_RE = re.compile(
    r"^GPU-[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
)


def validate_nvml_uuid(value: str) -> None:
    if not _NVML_UUID_RE.match(value or ""):
        raise ValidationError(
            gettext_lazy("Card UUID must be an NVML UUID like GPU-xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx."),
            code="invalid_uuid",
        )
