"""Celery tasks of the billing cycle (docs/operations.md#beat-schedule). Each takes ids, calls a
service, and is safe to repeat.

``acks_late`` + ``reject_on_worker_lost``: a worker killed mid-task leaves the message on the
queue and another worker redoes it; the services are idempotent (draft refresh under advisory
locks and unique constraints), so a redo neither doubles nor loses an invoice.
"""

from __future__ import annotations

import logging

from celery import shared_task
from django.conf import settings
from django.db import OperationalError, transaction
from django.utils import timezone

from apps.billing.invoicing.services import runs
from apps.billing.models import BillingRun, BillingRunStatus
from apps.core.periods import Period

logger = logging.getLogger(__name__)

RETRYABLE = (OperationalError,)
TASK_OPTIONS = {
    "acks_late": True,
    "reject_on_worker_lost": True,
    "autoretry_for": RETRYABLE,
    "retry_backoff": 5,
    "retry_backoff_max": 300,
    "retry_jitter": True,
    "max_retries": 8,
}


@shared_task(name="billing.run_chunk", **TASK_OPTIONS)
def billing_run_chunk_task(run_id: int, customer_ids: list[int]) -> int:
    return len(runs.billing_run_chunk(run_id=run_id, customer_ids=customer_ids))


@shared_task(name=runs.RUN_START_TASK, **TASK_OPTIONS)
def billing_run_start_task(run_id: int) -> int:
    """Count the run's customers and queue one chunk task per slice of them (after commit)."""
    run = BillingRun.objects.get(pk=run_id)
    if run.status not in (BillingRunStatus.QUEUED, BillingRunStatus.RUNNING):
        return 0
    ids = runs.billing_run_start(run=run)
    if not ids:
        runs.billing_run_finish_if_done(run_id=run_id)
        return 0
    slices = list(runs.customer_ids_split(ids=ids))
    for chunk in slices:
        transaction.on_commit(lambda chunk=chunk: billing_run_chunk_task.delay(run_id, chunk))
    return len(slices)


@shared_task(name="billing.run_monthly", **TASK_OPTIONS)
def monthly_billing_task() -> int:
    """On the 1st at 02:00 billing time: bill the month that just closed (once per period)."""
    now = timezone.now()
    period = str(Period.containing(now, settings.BILLING_TIME_ZONE).previous())
    run = runs.billing_run_create_if_absent(period=period, now=now)
    if run is None:  # queued, running or done already (the same job enqueued twice, or a retry)
        logger.info("billing run for %s already queued, running or done", period)
        return 0
    return billing_run_start_task(run.pk)


@shared_task(name="billing.daily_overdue", **TASK_OPTIONS)
def daily_overdue_task() -> int:
    """Every day: e-mail the reminders — invoices due in 7 days, and overdue invoices (once a week
    per invoice) (docs/invoices.md#e-mail). Returns how many e-mails were queued; a rerun queues none."""
    from apps.billing.notices.services import notice_queue_reminders

    return notice_queue_reminders(now=timezone.now())


@shared_task(name="billing.notice_send", **TASK_OPTIONS)
def notice_send_task(notice_id: int) -> bool:
    """Mail one claimed notice; a second delivery sends nothing (docs/invoices.md#e-mail)."""
    from apps.billing.notices.services import notice_send

    return notice_send(notice_id=notice_id, now=timezone.now())


@shared_task(name="billing.monthly_settlements", **TASK_OPTIONS)
def monthly_settlements_task(period: str | None = None) -> int:
    """On the 1st at 04:00: build (or refresh) last month's provider settlement drafts
    (docs/settlements.md#statements).

    Idempotent: confirmed and paid statements are left alone, unchanged drafts are not rewritten.
    Returns the number of statements of the period.
    """
    from apps.billing.settlements.services import settlement_build

    now = timezone.now()
    period = period or str(Period.containing(now, settings.BILLING_TIME_ZONE).previous())
    result = settlement_build(period=period, now=now)
    if result.warnings or result.unattributed:
        logger.warning(
            "settlements %s: %d line(s) without cost, %d unattributed",
            period,
            len(result.warnings),
            len(result.unattributed),
        )
    return len(result.statement_ids)


@shared_task(name="billing.expire_vouchers", **TASK_OPTIONS)
def expire_vouchers_task() -> int:
    """Every day: vouchers past their last day expire; their balance leaves with a ledger entry."""
    from apps.billing.vouchers.services import voucher_expire_due

    return voucher_expire_due(now=timezone.now())
