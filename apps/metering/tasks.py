"""Celery tasks of metering (docs/operations.md#beat-schedule)."""

from __future__ import annotations

import logging

from celery import shared_task
from django.db import OperationalError
from django.utils import timezone

from . import partitions

logger = logging.getLogger(__name__)


@shared_task(
    name="metering.ensure_partitions", autoretry_for=(OperationalError,), retry_backoff=60, max_retries=5
)
def ensure_partitions_task() -> list[str]:
    """Daily: the usage table's partitions of this month and the next three, and of any month
    whose records wait in the DEFAULT partition (docs/partitions.md#making-partitions). Idempotent."""
    made = partitions.partitions_ensure(now=timezone.now())
    if made:
        logger.info("usage partitions made: %s", ", ".join(made))
    return made
