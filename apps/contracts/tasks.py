"""Contract jobs of the daily cycle."""

from celery import shared_task
from django.db import OperationalError
from django.utils import timezone

from . import services


@shared_task(
    name="contracts.expire_due",
    acks_late=True,
    reject_on_worker_lost=True,
    autoretry_for=(OperationalError,),
    retry_backoff=5,
    max_retries=8,
)
def expire_due_contracts_task() -> int:
    """Every day: contracts whose end has passed become expired."""
    return services.contract_expire_due(now=timezone.now())
