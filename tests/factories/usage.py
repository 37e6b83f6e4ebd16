"""Usage records for billing tests, stored through the real ingestion service (what the API calls)."""

from __future__ import annotations

import datetime
import itertools

from apps.metering.models import UsageRecord
from apps.metering.services import usage_ingest

_ids = itertools.count(1)
REPORTED_AFTER = datetime.timedelta(minutes=1)


def usage(*, card=None, server=None, start, end, received_at=None, event_id=None) -> UsageRecord:
    """One record of a card or a whole server; received at ``received_at`` (default: a minute after its end)."""
    owner = card.server if card is not None else server
    event_id = event_id or f"evt-{next(_ids)}"
    target = {"card": card.uuid} if card is not None else {"server": server.serial}
    usage_ingest(
        provider=owner.provider,
        payload_records=[
            {"event_id": event_id, **target, "start": start.isoformat(), "end": end.isoformat()}
        ],
        received_at=received_at or end + REPORTED_AFTER,
    )
    return UsageRecord.objects.get(provider=owner.provider, event_id=event_id)
