"""Celery tasks of the webhooks (docs/webhooks.md#retries). Each takes ids and is safe to run twice:
the delivery row is locked while it is sent, and a delivered one is never sent again by a task."""

from __future__ import annotations

from celery import shared_task
from django.db import OperationalError
from django.utils import timezone

from apps.webhooks import services

TASK_OPTIONS = {
    "acks_late": True,
    "reject_on_worker_lost": True,
    "autoretry_for": (OperationalError,),
    "retry_backoff": 5,
    "retry_backoff_max": 300,
    "retry_jitter": True,
    "max_retries": 8,
}


@shared_task(name=services.DELIVER_TASK, **TASK_OPTIONS)
def webhook_deliver_task(delivery_id: int) -> bool:
    """Send one delivery if it is pending and due; True when this run made an attempt."""
    return services.webhook_delivery_send(delivery_id=delivery_id, now=timezone.now()) is not None


@shared_task(name="webhooks.deliver_due", **TASK_OPTIONS)
def webhook_deliver_due_task() -> int:
    """Every minute (beat): send the pending deliveries that are due, in case a queued retry was
    lost (a broker restart). Returns how many attempts were made."""
    sent = 0
    for delivery_id in services.webhook_deliveries_due(now=timezone.now()):
        sent += services.webhook_delivery_send(delivery_id=delivery_id, now=timezone.now()) is not None
    return sent
