"""Enumerations shared across apps. API values are the English codes; labels are bilingual."""

from django.db import models


class ResourceKind(models.TextChoices):
    CARD = "card", "Card 整卡"
    SERVER = "server", "Server 整机"
    P_UNIT = "p_unit", "P-unit 算力规模"


class LeaseTerm(models.TextChoices):
    HOURLY = "hourly", "Hourly 按小时"
    DAILY = "daily", "Daily 按天"
    MONTHLY = "monthly", "Monthly 按月"
    YEARLY = "yearly", "Yearly 按年"


class Currency(models.TextChoices):
    CNY = "CNY", "CNY 人民币"
    USD = "USD", "USD 美元"
    HKD = "HKD", "HKD 港币"


# Unit code of a price per (resource, term), e.g. ("card", "hourly") → "card_hour".
UNIT_BY_RESOURCE_TERM = {
    (resource, term): f"{resource}_{suffix}"
    for resource in ("card", "server", "p")
    for term, suffix in (("hourly", "hour"), ("daily", "day"), ("monthly", "month"), ("yearly", "year"))
}


def unit_code(resource: str, term: str) -> str:
    return UNIT_BY_RESOURCE_TERM[("p" if resource == "p_unit" else resource, term)]
