"""The demo's usage once the daily partition task ran: nothing left in the DEFAULT partition
(docs/partitions.md#making-partitions), one event id per record."""

from __future__ import annotations

from django.db import connection
from django.utils import timezone

from apps.metering import partitions
from apps.metering.models import UsageEvent, UsageRecord


def _rows(table: str) -> int:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT count(*) FROM {table}")
        return cursor.fetchone()[0]


def test_the_demo_leaves_nothing_in_the_default_partition_once_partitions_are_ensured(demo):
    records = UsageRecord.objects.count()
    partitions.partitions_ensure(now=timezone.now())

    assert _rows(partitions.DEFAULT_PARTITION) == 0
    assert UsageRecord.objects.count() == UsageEvent.objects.count() == records > 0
    months = {info.period for info in partitions.partitions_list() if info.rows}
    assert None not in months and len(months) >= 2
