"""The API's periodic job (docs/operations.md#beat-schedule)."""

from celery import shared_task
from django.db import OperationalError
from django.utils import timezone

from apps.api.idempotency import idempotency_keys_purge


@shared_task(
    name="api.purge_idempotency_keys",
    acks_late=True,
    reject_on_worker_lost=True,
    autoretry_for=(OperationalError,),
    retry_backoff=5,
    max_retries=8,
)
def purge_idempotency_keys_task() -> int:
    """Every hour: idempotency keys older than 24 hours are deleted (safe to run twice)."""
    return idempotency_keys_purge(now=timezone.now())
