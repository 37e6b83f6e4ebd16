"""Demo usage and billing: three months of GPU usage, billing runs, issued invoices, a voucher, a
credit note, payments and one late usage record, all through the real services.

September and October are issued (and mostly paid); November is billed once it has ended (until then
the admin and the portal show its preview). Nothing is dated after now: a step whose date has not
come yet is left for a later run, and usage is reported for the days before today. The ``cd-2026`` supplier-side voucher programme pays 30 % of acme's October
invoice at issue, and acme pays 50,000.00 of the rest by transfer, leaving it overdue under its
15-day terms; two other October invoices are left unpaid. A record for October that arrives on 5 November shows up on November's invoice as
late usage. Every instant is fixed; a step already done is skipped, so a second run changes nothing.
"""

from __future__ import annotations

import datetime
from collections import defaultdict
from decimal import Decimal

from django.utils import timezone

from apps.billing.invoicing.services.issuing import credit_note_create, invoice_issue_period
from apps.billing.invoicing.services.payments import payment_record
from apps.billing.invoicing.services.runs import billing_run_create, billing_run_execute
from apps.billing.models import BillingRun, CreditNote, Invoice, InvoiceStatus, PaymentMethod
from apps.billing.notices.services import notices_held
from apps.billing.vouchers.models import Voucher, VoucherProgramme
from apps.billing.vouchers.services.ledger import voucher_issue, voucher_programme_create
from apps.contracts.models import Allocation, ContractStatus
from apps.customers.models import Customer
from apps.metering.models import UsageRecord
from apps.metering.services import usage_ingest
from apps.providers.models import Provider

from .base import CREATED, UNCHANGED, DemoContext

SHANGHAI = datetime.timezone(datetime.timedelta(hours=8), "Asia/Shanghai")
PERIODS = ["2026-09", "2026-10", "2026-11"]
MONTHS = {"2026-09": (2026, 9, 30), "2026-10": (2026, 10, 31), "2026-11": (2026, 11, 30)}
LATE_EVENT = "demo-late-2026-10-30"


def _at(year, month, day, hour=0, minute=0) -> datetime.datetime:
    return datetime.datetime(year, month, day, hour, minute, tzinfo=SHANGHAI)


def _run_at(period: str) -> datetime.datetime:
    """Billing runs at 03:00 on the 1st of the next month."""
    year, month, _ = MONTHS[period]
    return _at(year + month // 12, month % 12 + 1, 1, 3)


def _issue_at(period: str) -> datetime.datetime:
    return _run_at(period) + datetime.timedelta(days=1, hours=7)


def _today_start() -> datetime.datetime:
    """Midnight of today in the billing time zone: the demo reports usage of the days before it."""
    today = timezone.now().astimezone(SHANGHAI).date()
    return datetime.datetime.combine(today, datetime.time(), SHANGHAI)


def _due(at: datetime.datetime) -> bool:
    """Whether a step dated ``at`` has happened by now (the demo never records a fact after now)."""
    return at <= timezone.now()


def load_usage(ctx: DemoContext) -> None:
    """Daily sessions on every card or server of the hourly demo contracts, through the ingestion service,
    for the days before today (a day's sessions are reported together, by midnight at the latest)."""
    tally = ctx.tally("usage records")
    today_start = _today_start()
    allocations = (
        Allocation.objects.filter(firm=True, line__term="hourly")
        .select_related("card", "server", "line__contract")
        .order_by("line_id", "server__serial", "slot")
    )
    batches: dict[tuple[int, str], list[dict]] = defaultdict(list)
    for allocation in allocations:
        for period in PERIODS:
            year, month, days = MONTHS[period]
            rng = ctx.rng("usage", allocation.pk, period)
            for day in range(1, days + 1):
                start = _at(year, month, day, rng.randint(7, 11), rng.choice([0, 15, 30, 45]))
                end = start + datetime.timedelta(hours=rng.randint(4, 12))
                if start < allocation.start_at or (allocation.end_at and end > allocation.end_at):
                    continue
                if end > today_start:
                    continue
                target = (
                    {"card": allocation.card.uuid}
                    if allocation.card_id
                    else {"server": allocation.server.serial}
                )
                key = allocation.card.uuid if allocation.card_id else allocation.server.serial
                batches[(allocation.server.provider_id, period)].append(
                    {
                        "event_id": f"demo-{key}-{start:%Y%m%d}",
                        **target,
                        "start": start.isoformat(),
                        "end": end.isoformat(),
                        "telemetry": {
                            "utilization_percent": rng.randint(35, 98),
                            "memory_used_bytes": rng.randint(20, 70) * 2**30,
                        },
                    }
                )
    for (provider_id, period), records in sorted(batches.items()):
        received = min(_run_at(period) - datetime.timedelta(hours=2), today_start)
        result = usage_ingest(
            provider=Provider.objects.get(pk=provider_id), payload_records=records, received_at=received
        )
        tally.add(CREATED, result.accepted)
        tally.add(UNCHANGED, result.duplicates)


def _bill(period: str, tally) -> None:
    if not _due(_run_at(period)):
        return  # the month has not been billed yet: the portal and the admin show its preview
    if BillingRun.objects.filter(period=period, customer__isnull=True).exists():
        tally.add(UNCHANGED)
        return
    at = _run_at(period)
    billing_run_execute(run=billing_run_create(period=period, as_of=at, now=at), now=at)
    tally.add(CREATED)


def _late_record(tally) -> None:
    """One October session reported late (5 November): billed on November's invoice as late usage."""
    if not _due(_at(2026, 11, 5, 9)) or UsageRecord.objects.filter(event_id=LATE_EVENT).exists():
        tally.add(UNCHANGED)
        return
    allocation = (
        Allocation.objects.filter(
            firm=True,
            line__term="hourly",
            card__isnull=False,
            line__contract__status=ContractStatus.TERMINATED,
        )
        .select_related("card__server")
        .order_by("pk")
        .first()
    )
    if allocation is None:
        return
    record = {
        "event_id": LATE_EVENT,
        "card": allocation.card.uuid,
        "start": _at(2026, 10, 30, 22).isoformat(),
        "end": _at(2026, 10, 31, 2).isoformat(),
    }
    usage_ingest(
        provider=allocation.card.server.provider, payload_records=[record], received_at=_at(2026, 11, 5, 9)
    )
    tally.add(CREATED)


def _voucher(tally) -> None:
    """Chengdu-style supplier-side programme; acme holds a 50,000 voucher before October is issued."""
    programme = VoucherProgramme.objects.filter(code="cd-2026").first()
    if programme is None:
        programme = voucher_programme_create(
            code="cd-2026",
            name="成都算力券 2026",
            issuer="成都市经济和信息化局 (demo)",
            flow="supplier_side",
            coverage_percent=Decimal("30"),
            cap_per_customer_year=Decimal("2000000.00"),
            valid_from=datetime.date(2026, 1, 1),
            valid_to=datetime.date(2026, 12, 31),
            max_contract_term_days=None,
        )
        tally.add(CREATED)
    acme = Customer.objects.get(code="acme")
    if (
        _due(_at(2026, 10, 20, 10))
        and not Voucher.objects.filter(programme=programme, customer=acme).exists()
    ):
        voucher_issue(
            programme=programme,
            customer=acme,
            amount=Decimal("50000.00"),
            now=_at(2026, 10, 20, 10),
            reference="CD-2026-DEMO-0001",
        )
        tally.add(CREATED)


def _issue(period: str, tally) -> None:
    if not _due(_issue_at(period)):
        return
    drafts = Invoice.objects.filter(period=period, status=InvoiceStatus.DRAFT).count()
    if not drafts:
        tally.add(UNCHANGED)
        return
    invoice_issue_period(period=period, now=_issue_at(period))
    tally.add(CREATED, drafts)


UNPAID = {"xingyao", "zhiyuan"}  # October left open: xingyao's contract is suspended for it
# acme (the portal's demo customer) pays part of October by transfer; the rest is overdue (15-day terms)
PARTLY_PAID = {("2026-10", "acme"): Decimal("50000.00")}


def _payments(tally) -> None:
    """Bank transfers settle September and October, except two October invoices left open."""
    open_invoices = (
        Invoice.objects.filter(period__in=["2026-09", "2026-10"], status=InvoiceStatus.ISSUED)
        .exclude(period="2026-10", customer__code__in=UNPAID)
        .exclude(payments__method=PaymentMethod.BANK_TRANSFER)  # paid in part already: a second run
        .select_related("customer")
        .order_by("period", "number")
    )
    for invoice in open_invoices:
        paid_at = datetime.datetime.combine(
            invoice.issued_on, datetime.time(15), SHANGHAI
        ) + datetime.timedelta(days=12)
        if not _due(paid_at):
            continue
        payment_record(
            invoice=invoice,
            amount=PARTLY_PAID.get((invoice.period, invoice.customer.code), invoice.amount_due),
            method=PaymentMethod.BANK_TRANSFER,
            now=paid_at,
            reference=f"ICBC {invoice.number}",
        )
        tally.add(CREATED)


def _credit_note(tally) -> None:
    invoice = Invoice.objects.filter(period="2026-10", customer__code="qiming").exclude(number=None).first()
    if (
        invoice is None
        or not _due(_at(2026, 11, 10, 11))
        or CreditNote.objects.filter(invoice=invoice).exists()
    ):
        tally.add(UNCHANGED)
        return
    credit_note_create(
        invoice=invoice,
        reason="SLA credit: 4 h outage on 2026-10-12 (服务中断补偿)",
        amount=Decimal("1000.00"),
        now=_at(2026, 11, 10, 11),
    )
    tally.add(CREATED)


def load_billing(ctx: DemoContext) -> None:
    with notices_held(reason="demo history: not mailed"):
        _load_billing(ctx)


def _load_billing(ctx: DemoContext) -> None:
    tally = ctx.tally("billing")
    _bill("2026-09", tally)
    _issue("2026-09", tally)
    _voucher(tally)
    _bill("2026-10", tally)
    _issue("2026-10", tally)
    _credit_note(tally)
    _payments(tally)
    _late_record(tally)
    _bill("2026-11", tally)
