"""Usage records for billing tests (the ingestion API has its own tests)."""

from __future__ import annotations

import datetime
import itertools

from apps.metering.models import UsageRecord

_ids = itertools.count(1)
RECEIVED = datetime.datetime(2026, 11, 30, 12, 0, tzinfo=datetime.UTC)  # before the runs in tests


def usage(*, card=None, server=None, start, end, received_at=RECEIVED, event_id=None) -> UsageRecord:
    owner = card.server if card is not None else server
    return UsageRecord.objects.create(
        provider_id=owner.provider_id,
        event_id=event_id or f"evt-{next(_ids)}",
        content_hash="test",
        card=card,
        server=server,
        start_at=start,
        end_at=end,
        received_at=received_at,
    )
