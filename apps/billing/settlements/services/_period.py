"""The period argument of the settlement services, parsed (a helper, not a service)."""

from __future__ import annotations

from apps.core.errors import DomainError
from apps.core.periods import Period


def parse_period(period: str) -> Period:
    try:
        return Period.parse(period)
    except ValueError as exc:
        raise DomainError(str(exc), code="invalid", fields={"period": [str(exc)]}) from None
