"""Helpers shared by the voucher services (not services themselves): the billing time zone and
the error of an invalid field."""

from __future__ import annotations

import datetime
from zoneinfo import ZoneInfo

from django.conf import settings

from apps.core.errors import DomainError


def billing_zone() -> ZoneInfo:
    return ZoneInfo(settings.BILLING_TIME_ZONE)


def local_date(instant: datetime.datetime) -> datetime.date:
    return instant.astimezone(billing_zone()).date()


def invalid(field_name: str, message: str, code: str = "invalid") -> DomainError:
    return DomainError(message, code=code, fields={field_name: [message]})
