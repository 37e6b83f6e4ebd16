"""``{{ charge.unit|unit_label }}``: a rated unit code (``card_hour``, ``p_month``) as people read
it (``card-hour 卡时``, ``P-month P月``)."""

from django import template

from apps.contracts.estimates import UNIT_LABELS

register = template.Library()

_SUFFIX = {"hourly": "hour", "daily": "day", "monthly": "month", "yearly": "year"}
_BY_CODE = {
    f"{'p' if resource == 'p_unit' else resource}_{_SUFFIX[term]}": label
    for (resource, term), label in UNIT_LABELS.items()
}


@register.filter
def unit_label(code: str) -> str:
    return _BY_CODE.get(code, code)
