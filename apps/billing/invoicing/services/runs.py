"""Billing runs: create one, execute it in chunks of customers (inline or fanned out by Celery)."""

from __future__ import annotations

import datetime
import logging
import math
import multiprocessing
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor, as_completed
from contextlib import closing

from celery import current_app
from django.conf import settings
from django.db import OperationalError, connection, connections, transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext

from apps.billing.invoicing.inputs import id_array
from apps.billing.invoicing.models import BillingRun, BillingRunStatus, Invoice, InvoiceStatus
from apps.billing.invoicing.reconciliation import reconciliation_issue_refusal
from apps.billing.invoicing.services.invoicing import (
    ChunkInputs,
    ChunkResult,
    billing_inputs_load,
    billing_run_progress_record,
    invoice_drafts_refresh,
)
from apps.billing.invoicing.services.issuing import invoice_issue, period_has_ended
from apps.billing.invoicing.services.reconciliation import invoice_reconcile
from apps.billing.invoicing.services.sla_credits import sla_late_credit_notes
from apps.contracts.models import Contract
from apps.core.errors import DomainError
from apps.core.memory import cycle_collection_paused
from apps.core.periods import Period

logger = logging.getLogger(__name__)

CHUNK_SIZE = 2000
RUN_START_TASK = "billing.run_start"  # apps.billing.tasks.billing_run_start_task, queued by name
ADVISORY_NAMESPACE = 4_200_004  # pg_advisory_xact_lock(namespace, yyyymm of the period)
# A run of the period in one of these states means the period is being billed or has been.
BILLING_OR_BILLED = (
    BillingRunStatus.QUEUED,
    BillingRunStatus.RUNNING,
    BillingRunStatus.DONE,
    BillingRunStatus.DONE_WITH_ERRORS,
)


def billing_run_create(
    *,
    period: str,
    actor=None,
    customer=None,
    as_of: datetime.datetime | None = None,
    now: datetime.datetime | None = None,
) -> BillingRun:
    """Record a run of ``period``; usage received up to ``as_of`` (default now) is billed."""
    try:
        parsed = Period.parse(period)
    except ValueError as exc:
        raise DomainError(str(exc), code="invalid", fields={"period": [str(exc)]}) from None
    now = now or timezone.now()
    start, _ = parsed.bounds(settings.BILLING_TIME_ZONE)
    if start > now:
        msg = gettext("Period %(period)s has not started yet.") % {"period": parsed}
        raise DomainError(msg, code="invalid", fields={"period": [msg]})
    run = BillingRun.objects.create(
        period=str(parsed), customer=customer, requested_by=actor, as_of=as_of or now
    )
    if run.created_at != now:  # a run recorded for another instant (the demo's history, replays)
        BillingRun.objects.filter(pk=run.pk).update(created_at=now)
        run.created_at = now
    return run


def _run_customer_ids(run: BillingRun) -> list[int]:
    """Customers with a contract in force at some time in the run's period."""
    start, end = Period.parse(run.period).bounds(settings.BILLING_TIME_ZONE)
    qs = (
        Contract.objects.filter(start_at__lt=end)
        .filter(Q(end_at__isnull=True) | Q(end_at__gt=start))
        .exclude(status__in=["draft", "pending_approval"])
    )
    if run.customer_id:
        qs = qs.filter(customer_id=run.customer_id)
    return sorted(set(qs.values_list("customer_id", flat=True)))


def customer_ids_split(*, ids: list[int], size: int = CHUNK_SIZE) -> Iterator[list[int]]:
    for index in range(0, len(ids), size):
        yield ids[index : index + size]


def billing_run_start(*, run: BillingRun, now: datetime.datetime | None = None) -> list[int]:
    """Mark the run running and count its customers."""
    ids = _run_customer_ids(run)
    BillingRun.objects.filter(pk=run.pk).update(
        status=BillingRunStatus.RUNNING,
        started_at=now or timezone.now(),
        customers_total=len(ids),
        customers_done=0,
        invoices_created=0,
        invoices_refreshed=0,
        invoices_unchanged=0,
        errors={},
    )
    run.refresh_from_db()
    return ids


def billing_run_chunk(
    *,
    run_id: int,
    customer_ids: list[int],
    now: datetime.datetime | None = None,
    inputs: ChunkInputs | None = None,
) -> list[int]:
    """Bill one chunk, issue the drafts of auto-issue customers, add the chunk's counts to the run.

    Returns the invoices created, refreshed or unchanged. Safe to run twice: a redo finds the
    drafts unchanged and issues whatever the first attempt did not.
    """
    # the run's change list grows with every chunk (one entry a draft): a chunk adds to it in SQL
    # and never reads it
    run = BillingRun.objects.defer("draft_changes").get(pk=run_id)
    with cycle_collection_paused():  # docs/scaling.md#billing
        result = invoice_drafts_refresh(run=run, customer_ids=customer_ids, inputs=inputs)
        # docs/hardware-truth.md#reconciliation
        invoice_reconcile(invoice_ids=result.invoice_ids, changes=result.changes)
    invoice_auto_issue(result=result, now=now or timezone.now())
    # incidents reported after an invoice was issued: credit notes, never a change to the invoice
    _, sla_errors = sla_late_credit_notes(
        customer_ids=customer_ids, period=Period.parse(run.period), as_of=run.as_of, now=now or timezone.now()
    )
    result.errors.update(sla_errors)
    billing_run_progress_record(run_id=run_id, result=result, customers=len(customer_ids))
    billing_run_finish_if_done(run_id=run_id, now=now)
    return result.invoice_ids


def invoice_auto_issue(*, result: ChunkResult, now: datetime.datetime) -> list[Invoice]:
    """Issue the chunk's drafts of customers with ``auto_issue`` on (docs/invoices.md#auto-issue),
    one transaction each.

    A failure is recorded in the run's errors under the customer's code; the draft stays a draft
    and the other customers are issued anyway. Nothing is issued automatically before the period
    has ended (a run of the running month only refreshes drafts; issuing early is a person's
    decision with a reason, see ``invoice_issue``).
    """
    drafts = (
        Invoice.objects.filter(
            pk__in=id_array(result.invoice_ids), status=InvoiceStatus.DRAFT, customer__auto_issue=True
        )
        .select_related("customer")
        .order_by("customer__code", "currency")
    )
    issued = []
    for invoice in drafts:
        if not period_has_ended(period=invoice.period, now=now):
            continue
        refusal = reconciliation_issue_refusal(invoice)
        if refusal is not None:  # flagged or held: left a draft, and said so in the run's errors
            code = invoice.customer.code
            message = f"not issued: {refusal.message}"
            result.errors[code] = f"{result.errors[code]}; {message}" if code in result.errors else message
            continue
        try:
            issued.append(invoice_issue(invoice=invoice, now=now))
        except OperationalError:
            raise  # transient: the task is retried, and the redo issues what is left
        except Exception as exc:  # one customer's failure must not block the others
            logger.exception("auto-issue of %s failed", invoice)
            code = invoice.customer.code
            message = f"auto-issue failed: {type(exc).__name__}: {exc}"
            result.errors[code] = f"{result.errors[code]}; {message}" if code in result.errors else message
    return issued


def billing_run_finish_if_done(*, run_id: int, now: datetime.datetime | None = None) -> None:
    with transaction.atomic():
        run = BillingRun.objects.select_for_update().defer("draft_changes").get(pk=run_id)
        if run.status != BillingRunStatus.RUNNING or run.customers_done < run.customers_total:
            return
        run.status = BillingRunStatus.DONE_WITH_ERRORS if run.errors else BillingRunStatus.DONE
        run.finished_at = now or timezone.now()
        run.save(update_fields=["status", "finished_at"])


def billing_run_execute(
    *,
    run: BillingRun,
    progress: Callable[[int], None] | None = None,
    now: datetime.datetime | None = None,
    workers: int = 1,
) -> BillingRun:
    """Run every chunk from this process (the management command, eager mode, tests).

    With ``workers`` > 1 the chunks run in that many forked processes at once, each on its own
    database connection, as that many Celery worker processes would run them
    (docs/invoices.md#parallel-runs); the data must be committed, so not inside a transaction.
    """
    ids = billing_run_start(run=run, now=now)
    chunks = list(customer_ids_split(ids=ids, size=chunk_size(len(ids), workers=workers)))
    invoice_ids: list[int] = []
    if workers > 1 and len(chunks) > 1:
        if connection.in_atomic_block:
            raise ValueError(
                "a run in several processes reads committed data: start it outside a transaction"
            )
        connections.close_all()  # a forked process must not share its parent's connection
        context = multiprocessing.get_context("fork")
        with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
            futures = {pool.submit(_chunk_in_process, run.pk, chunk, now): len(chunk) for chunk in chunks}
            for future in as_completed(futures):
                invoice_ids += future.result()
                if progress:
                    progress(futures[future])
    else:
        with closing(_inputs_read_ahead(run, chunks)) as chunks_with_inputs:
            for chunk, inputs in chunks_with_inputs:
                invoice_ids += billing_run_chunk(run_id=run.pk, customer_ids=chunk, now=now, inputs=inputs)
                if progress:
                    progress(len(chunk))
    if not ids:
        billing_run_finish_if_done(run_id=run.pk, now=now)
    run.refresh_from_db()
    run.invoice_ids = invoice_ids
    return run


def _inputs_read_ahead(
    run: BillingRun, chunks: list[list[int]]
) -> Iterator[tuple[list[int], ChunkInputs | None]]:
    """Each chunk with its inputs, the next chunk's read on a second connection meanwhile.

    A chunk's time is about a third SQL (its usage merged, its contracts read) and two thirds
    Python (rating, writing). Reading chunk k+1 while chunk k is rated keeps PostgreSQL busy while
    the process computes (docs/scaling.md#billing). The inputs are what the chunk would read for
    itself: they depend only on its own customers, whose drafts no other chunk writes. Inside a
    transaction a second connection would not see the caller's rows, so each chunk reads its own
    (``None``). The cyclic collector stays paused across the chunks: the thread's reads fall
    between the chunks' own pauses.
    """
    if connection.in_atomic_block or len(chunks) < 2:
        for chunk in chunks:
            yield chunk, None
        return
    period = Period.parse(run.period)

    def read(customer_ids: list[int]) -> ChunkInputs:
        return billing_inputs_load(customer_ids=sorted(customer_ids), period=period, as_of=run.as_of)

    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="billing-read-ahead") as pool:
        try:
            with cycle_collection_paused():
                ahead = pool.submit(read, chunks[0])
                for index, chunk in enumerate(chunks):
                    inputs = ahead.result()
                    if index + 1 < len(chunks):
                        ahead = pool.submit(read, chunks[index + 1])
                    yield chunk, inputs
        finally:
            pool.submit(connections.close_all).result()  # the thread's own connection


def chunk_size(customers: int, *, workers: int = 1) -> int:
    """At most ``CHUNK_SIZE`` customers a chunk; with several workers, as many chunks as keep every
    worker busy to the end (a multiple of ``workers``, of even size)."""
    if workers <= 1 or customers <= 1:
        return CHUNK_SIZE
    count = math.ceil(math.ceil(customers / CHUNK_SIZE) / workers) * workers
    return max(1, math.ceil(customers / count))


def _chunk_in_process(run_id: int, customer_ids: list[int], now: datetime.datetime | None) -> list[int]:
    try:
        return billing_run_chunk(run_id=run_id, customer_ids=customer_ids, now=now)
    finally:
        connections.close_all()


def _run_start_enqueue(run_id: int) -> None:
    """Queue the run's start task once the transaction commits (by name: services import no tasks)."""
    transaction.on_commit(lambda: current_app.signature(RUN_START_TASK, args=(run_id,)).delay())


def billing_run_request(*, period: str, customer=None, actor=None) -> BillingRun:
    """Create a run and queue it after commit (admin, API); returns it as it stands afterwards.

    With an eager broker (``make run``, a request outside any transaction) the run has finished
    by the time this returns; with a real broker it is queued.
    """
    with transaction.atomic():
        run = billing_run_create(period=period, customer=customer, actor=actor)
        _run_start_enqueue(run.pk)
    run.refresh_from_db()
    return run


def billing_run_create_if_absent(*, period: str, now: datetime.datetime) -> BillingRun | None:
    """Record the all-customer run of ``period`` unless one is queued, running or done (the monthly job).

    Under a transaction-level advisory lock on the period, so two callers at once make one run;
    a failed run does not count, so the period can be billed again.
    """
    parsed = Period.parse(period)
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT pg_advisory_xact_lock(%s, %s)", [ADVISORY_NAMESPACE, parsed.year * 100 + parsed.month]
            )
        if BillingRun.objects.filter(
            period=str(parsed), customer__isnull=True, status__in=BILLING_OR_BILLED
        ).exists():
            return None
        return billing_run_create(period=str(parsed), now=now)
