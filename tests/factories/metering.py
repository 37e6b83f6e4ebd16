"""Partner keys, usage payloads and stored usage records for the metering tests."""

from __future__ import annotations

import datetime
from decimal import Decimal
from typing import Any

from apps.metering import services
from apps.metering.models import PartnerAPIKey, UsageRecord

UTC = datetime.UTC
SHANGHAI = datetime.timezone(datetime.timedelta(hours=8))
# The clock of the metering tests: 2026-11-20 10:00 in Shanghai.
NOW = datetime.datetime(2026, 11, 20, 2, 0, tzinfo=UTC)
MINUTE = datetime.timedelta(minutes=1)
HOUR = datetime.timedelta(hours=1)


def partner_key(provider, name: str = "agent") -> tuple[PartnerAPIKey, str]:
    return services.partner_key_create(provider=provider, name=name)


def iso(at: datetime.datetime) -> str:
    return at.isoformat()


def card_record(
    uuid: str,
    start: datetime.datetime,
    end: datetime.datetime | None = None,
    *,
    event_id: str | None = None,
    telemetry: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A record as the agent sends it (event id ``<uuid>:<start>``)."""
    end = end or start + MINUTE
    record: dict[str, Any] = {
        "event_id": event_id or f"{uuid}:{iso(start.astimezone(UTC))}",
        "card": uuid,
        "start": iso(start),
        "end": iso(end),
    }
    if telemetry is not None:
        record["telemetry"] = telemetry
    return record


def server_record(
    serial: str, start: datetime.datetime, end: datetime.datetime, *, event_id: str | None = None
) -> dict[str, Any]:
    return {
        "event_id": event_id or f"{serial}:{iso(start.astimezone(UTC))}",
        "server": serial,
        "start": iso(start),
        "end": iso(end),
    }


def stored_usage(
    *,
    card=None,
    server=None,
    start: datetime.datetime,
    end: datetime.datetime,
    received_at: datetime.datetime = NOW,
    utilization: str | None = None,
    voided: bool = False,
    event_id: str | None = None,
) -> UsageRecord:
    """A stored record, straight into the table (selector tests)."""
    provider = (card.server if card is not None else server).provider
    return UsageRecord.objects.create(
        provider=provider,
        event_id=event_id or f"{card.uuid if card else server.serial}:{start.isoformat()}",
        content_hash="0" * 32,
        card=card,
        server=server,
        start_at=start,
        end_at=end,
        utilization_percent=Decimal(utilization) if utilization is not None else None,
        received_at=received_at,
        voided_at=received_at if voided else None,
    )
