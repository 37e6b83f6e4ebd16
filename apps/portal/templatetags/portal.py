"""Template filters of the portal: money and quantities formatted for the active language."""

from decimal import Decimal

from django import template
from django.utils import formats

register = template.Library()


@register.filter
def money(value) -> str:
    """``186325`` → ``186,325.00`` (two decimals, grouped as the language groups)."""
    if value is None or value == "":
        return "—"
    return formats.number_format(Decimal(value), 2, use_l10n=True, force_grouping=True)


@register.filter
def qty(value, places: int = 2) -> str:
    """A quantity to ``places`` decimals, grouped; ``—`` for none."""
    if value is None or value == "":
        return "—"
    return formats.number_format(Decimal(value), int(places), use_l10n=True, force_grouping=True)


@register.filter
def percent(value) -> str:
    """A rate (``0.06``) as a percentage (``6%``)."""
    if value is None:
        return "—"
    text = formats.number_format(Decimal(value) * 100, 2, use_l10n=True).rstrip("0").rstrip(".")
    return f"{text}%"


@register.filter
def label(value, group: str) -> str:
    """``{{ invoice.status|label:"status" }}`` → the translated word."""
    from apps.portal.labels import label as portal_label

    return portal_label(group, value)
