"""What each event's ``data`` holds (docs/webhooks.md#events): the changed object as integrators
read it through the API: natural keys, money as strings with two decimals, times ISO 8601 with the
billing zone's offset. Only what the owner may see: a provider's settlement carries its cost, never
the platform's revenue or margin.
"""

from __future__ import annotations

import datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from django.conf import settings
from django.utils.functional import Promise

from apps.core.money import round_money

MAX_REJECTED_ERRORS = 100  # a refused batch of 10,000 bad records reports the first 100


def _time(value: datetime.datetime | None) -> str | None:
    return value.astimezone(ZoneInfo(settings.BILLING_TIME_ZONE)).isoformat() if value else None


def _date(value: datetime.date | None) -> str | None:
    return value.isoformat() if value else None


def _money(value: Decimal) -> str:
    return str(round_money(value))


def _text(value: Any, limit: int = 200) -> Any:
    """A sender's value as JSON the database stores: lone surrogates and NUL escaped, cut at ``limit``."""
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, Promise):  # a lazy translation
        value = str(value)
    text = value if isinstance(value, str) else repr(value)
    return text.encode("utf-8", "backslashreplace").decode("utf-8").replace("\x00", "\\x00")[:limit]


def invoice_data(invoice) -> dict[str, Any]:
    return {
        "object": "invoice",
        "id": invoice.pk,
        "number": invoice.number,
        "customer": invoice.customer.code,
        "period": invoice.period,
        "status": invoice.status,
        "currency": invoice.currency,
        "net_amount": _money(invoice.net_amount),
        "tax_amount": _money(invoice.tax_amount),
        "total_amount": _money(invoice.total_amount),
        "voucher_amount": _money(invoice.voucher_amount),
        "credited_amount": _money(invoice.credited_amount),
        "paid_amount": _money(invoice.paid_amount),
        "amount_due": _money(invoice.amount_due),
        "issued_on": _date(invoice.issued_on),
        "due_on": _date(invoice.due_on),
        "issued_at": _time(invoice.issued_at),
        "paid_at": _time(invoice.paid_at),
    }


def credit_note_data(note) -> dict[str, Any]:
    invoice = note.invoice
    return {
        "object": "credit_note",
        "id": note.pk,
        "number": note.number,
        "invoice": {"id": invoice.pk, "number": invoice.number},
        "customer": invoice.customer.code,
        "currency": invoice.currency,
        "reason": note.reason,
        "net_amount": _money(note.net_amount),
        "tax_amount": _money(note.tax_amount),
        "total_amount": _money(note.total_amount),
        "issued_at": _time(note.issued_at),
    }


def contract_data(contract) -> dict[str, Any]:
    return {
        "object": "contract",
        "id": contract.pk,
        "number": contract.number,
        "version": contract.version,
        "customer": contract.customer.code,
        "status": contract.status,
        "currency": contract.currency,
        "start": _time(contract.start_at),
        "end": _time(contract.end_at),
        "activated_at": _time(contract.activated_at),
    }


def settlement_data(statement) -> dict[str, Any]:
    return {
        "object": "settlement",
        "id": statement.pk,
        "provider": statement.provider.code,
        "period": statement.period,
        "status": statement.status,
        "currency": statement.currency,
        "cost_amount": _money(statement.cost_amount),
        "line_count": statement.line_count,
        "confirmed_at": _time(statement.confirmed_at),
    }


def usage_rejected_data(rejection: dict, provider) -> dict[str, Any]:
    """``rejection``: ``{"records": n, "errors": [{"index", "event_id", "code", "errors"}], "received_at"}``."""
    errors = list(rejection.get("errors") or [])
    return {
        "object": "usage_batch",
        "provider": provider.code,
        "received_at": _time(rejection.get("received_at")),
        "records": rejection.get("records"),
        "stored": 0,
        "error_count": len(errors),
        "errors": [
            {
                "index": _text(entry.get("index")),
                "event_id": _text(entry.get("event_id")),
                "code": _text(entry.get("code")),
                "errors": {
                    _text(field): [_text(message, 500) for message in messages]
                    for field, messages in (entry.get("errors") or {}).items()
                },
            }
            for entry in errors[:MAX_REJECTED_ERRORS]
        ],
    }
