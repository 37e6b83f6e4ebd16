"""Reads of invoices, credit notes, payments and billing runs, scoped to who is asking.

Staff see everything (their model permissions decide whether they may read at all); a customer
portal user sees only the documents of the customers they are a member of, so a foreign id
reads as missing (404), never as forbidden.
"""

from __future__ import annotations

import datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db.models import Count, F, Prefetch, Q, QuerySet, Sum

from apps.accounts.models import CustomerMembership
from apps.billing.invoicing.models import (
    BillingRun,
    BillingRunStatus,
    CreditNote,
    CreditNoteLine,
    Invoice,
    InvoiceLine,
    InvoiceStatus,
)
from apps.core.periods import Period


def billing_today(now: datetime.datetime) -> datetime.date:
    """The calendar date of ``now`` in the billing time zone (due dates are billing-zone dates)."""
    return now.astimezone(ZoneInfo(settings.BILLING_TIME_ZONE)).date()


def _member_customers(user):
    return CustomerMembership.objects.filter(user=user).values("customer_id")


def invoice_lines_queryset() -> QuerySet[InvoiceLine]:
    return InvoiceLine.objects.select_related("contract").order_by("position")


def invoice_list(*, user, with_lines: bool = True) -> QuerySet[Invoice]:
    """Invoices ``user`` may see, with their customer and (by default) their lines prefetched."""
    queryset = Invoice.objects.select_related("customer")
    if with_lines:
        queryset = queryset.prefetch_related(Prefetch("lines", queryset=invoice_lines_queryset()))
    if not user.is_authenticated:
        return queryset.none()
    if user.is_staff:
        return queryset
    return queryset.filter(customer_id__in=_member_customers(user))


def overdue_q(today: datetime.date) -> Q:
    """Issued, not yet paid and past its due date (docs/invoices.md#overdue-and-reminders:
    overdue is derived, not stored)."""
    return Q(status=InvoiceStatus.ISSUED, due_on__lt=today)


def invoices_overdue(*, on: datetime.date) -> QuerySet[Invoice]:
    """Issued, unpaid and past due on ``on``, with their customer (docs/invoices.md#overdue-and-reminders)."""
    return Invoice.objects.filter(overdue_q(on)).select_related("customer").order_by("pk")


def invoices_due_soon(*, on: datetime.date, days: int) -> QuerySet[Invoice]:
    """Issued, unpaid and due within ``days`` after ``on`` (not today), issued more than ``days``
    before their due date — an invoice issued with shorter terms was just mailed in full."""
    return (
        Invoice.objects.filter(
            status=InvoiceStatus.ISSUED,
            due_on__gt=on,
            due_on__lte=on + datetime.timedelta(days=days),
            issued_on__lt=F("due_on") - datetime.timedelta(days=days),
        )
        .select_related("customer")
        .order_by("pk")
    )


def credit_note_list(*, user) -> QuerySet[CreditNote]:
    queryset = CreditNote.objects.select_related("invoice__customer", "issued_by").prefetch_related(
        Prefetch("lines", queryset=CreditNoteLine.objects.order_by("pk"))
    )
    if not user.is_authenticated:
        return queryset.none()
    if user.is_staff:
        return queryset
    return queryset.filter(invoice__customer_id__in=_member_customers(user))


def billing_run_list() -> QuerySet[BillingRun]:
    return BillingRun.objects.select_related("customer", "requested_by")


def invoice_for_pdf(pk: int) -> Invoice:
    """An invoice with everything its PDF prints, in a constant number of queries."""
    return (
        Invoice.objects.select_related("customer")
        .prefetch_related(Prefetch("lines", queryset=invoice_lines_queryset()))
        .get(pk=pk)
    )


def credit_note_for_pdf(pk: int) -> CreditNote:
    return (
        CreditNote.objects.select_related("invoice__customer")
        .prefetch_related(Prefetch("lines", queryset=CreditNoteLine.objects.order_by("pk")))
        .get(pk=pk)
    )


def invoice_amount_due(*, invoice: Invoice) -> Decimal:
    """What the customer still owes: total − voucher − credited − paid, never below zero."""
    return invoice.amount_due


def _totals_by_currency(queryset: QuerySet[Invoice], amount) -> list[dict]:
    return list(
        queryset.order_by()
        .values("currency")
        .annotate(invoices=Count("pk"), amount=Sum(amount))
        .order_by("currency")
    )


def finance_home(*, now: datetime.datetime) -> dict:
    """What finance reviews on ``now``: drafts of the last closed month, overdue invoices (what is
    still owed), and billing runs that finished with errors or failed; totals per currency."""
    today = billing_today(now)
    closed = Period.containing(now, settings.BILLING_TIME_ZONE).previous()
    owed = F("total_amount") - F("voucher_amount") - F("credited_amount") - F("paid_amount")
    return {
        "closed_period": str(closed),
        "drafts": _totals_by_currency(
            Invoice.objects.filter(status=InvoiceStatus.DRAFT, period=str(closed)), F("total_amount")
        ),
        "overdue": _totals_by_currency(Invoice.objects.filter(overdue_q(today)), owed),
        "runs_with_errors": BillingRun.objects.filter(
            status__in=[BillingRunStatus.DONE_WITH_ERRORS, BillingRunStatus.FAILED]
        ).count(),
        "last_run": last_run_changes(period=str(closed)),
    }


def last_run_changes(*, period: str) -> dict | None:
    """What the latest finished run of ``period`` changed in its drafts: counts of new, changed and
    removed drafts and the change of their totals per currency (from ``BillingRun.draft_changes``)."""
    run = (
        BillingRun.objects.filter(period=period, finished_at__isnull=False)
        .only("pk", "finished_at", "draft_changes")
        .order_by("-finished_at", "-pk")
        .first()
    )
    if run is None:
        return None
    new = changed = removed = 0
    delta: dict[str, Decimal] = {}
    for key, change in run.draft_changes.items():
        before, after = change.get("before"), change.get("after")
        if before == after:
            continue
        if before is None:
            new += 1
        elif after is None:
            removed += 1
        else:
            changed += 1
        currency = key.rsplit(" ", 1)[-1]
        delta[currency] = delta.get(currency, Decimal(0)) + Decimal(after or 0) - Decimal(before or 0)
    return {
        "run": run,
        "new": new,
        "changed": changed,
        "removed": removed,
        "delta": dict(sorted(delta.items())),
    }
