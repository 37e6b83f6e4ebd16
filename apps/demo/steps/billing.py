"""Demo usage and billing: a year of GPU usage, billing runs, issued invoices, vouchers, a credit note,
payments, provider settlements and one late usage record, all through the real services.

The months count from the current one (dates.py): the eleven closed months before it are billed at
03:00 on the 1st of the next month and issued on the 2nd; the current month is left unbilled (the
admin and the portal show its preview). Customers pay by transfer, most within their terms, some
late; a few invoices stay unpaid, so receivables age into every bucket: hongtu's last two months
(its contract ended), one of guanlan's, and, of the last closed month, acme's (overdue),
xingyao's and zhiyuan's (not yet due). Providers are settled every month: the statement is built
on the 5th, confirmed on the 6th and paid after the provider's settlement terms. The platform's
two own A100 servers run round the clock by the hour until the current month. A little usage
arrives for cards no contract holds (unrated usage).

The story of the last three months stays as the tests tell it (on their clock: September, October,
November 2026): the ``cd-YYYY`` supplier-side voucher programme pays 30 % of acme's October invoice
at issue (other customers' vouchers paid parts of earlier months), acme pays 50,000.00 of the rest
by transfer, leaving it overdue under its 15-day terms; qiming gets a credit note on the 10th; a
record for October that arrives on 5 November shows up on November's invoice as late usage.

Nothing is dated after now: a step whose date has not come yet is left for a later run, and usage is
reported for the days before today. A step already done is skipped, so a second run changes nothing.
"""

from __future__ import annotations

import datetime
from collections import defaultdict
from decimal import Decimal

from django.contrib.auth import get_user_model

from apps.billing.invoicing.services.issuing import credit_note_create, invoice_issue_period
from apps.billing.invoicing.services.payments import payment_record
from apps.billing.invoicing.services.runs import billing_run_create, billing_run_execute
from apps.billing.models import BillingRun, CreditNote, Invoice, InvoiceStatus, PaymentMethod
from apps.billing.notices.services import notices_held
from apps.billing.settlements.models import SettlementStatement, SettlementStatus
from apps.billing.settlements.services.statements import (
    settlement_build,
    settlement_confirm,
    settlement_mark_paid,
)
from apps.billing.vouchers.models import Voucher, VoucherProgramme
from apps.billing.vouchers.services.ledger import voucher_issue, voucher_programme_create
from apps.contracts.models import Allocation, ContractStatus
from apps.customers.models import Customer
from apps.inventory.models import HardwareStatus, Server
from apps.metering.models import UsageRecord
from apps.metering.services import usage_ingest
from apps.providers.models import Provider

from . import dates
from .base import CREATED, UNCHANGED, DemoContext
from .data import A100_40

# Contracts whose server runs round the clock (the platform's own servers, billed by the hour).
ROUND_THE_CLOCK = ("demo:moyan-servers-hourly\n",)
# Usage no contract covers: a provider's burn-in runs on a free server's cards (unrated usage).
UNRATED = {"provider": "yunqiong-cloud", "gpu_model": A100_40, "months": (-8, -5, -2), "cards": 2}
FINANCE = "finance1"


def _run_at(period: str) -> datetime.datetime:
    """Billing runs at 03:00 on the 1st of the next month."""
    return dates.at(dates.offset_of(period) + 1, 1, 3)


def _issue_at(period: str) -> datetime.datetime:
    return _run_at(period) + datetime.timedelta(days=1, hours=7)


def _late_start() -> datetime.datetime:
    """The late record's session: 22:00 two days before the current month, for four hours."""
    return dates.at(0) - datetime.timedelta(hours=26)


def late_event() -> str:
    return f"demo-late-{_late_start():%Y-%m-%d}"


def _session(
    rng, month_start: datetime.datetime, day: int, round_the_clock: bool
) -> tuple[datetime.datetime, datetime.datetime]:
    day_start = month_start + datetime.timedelta(days=day - 1)
    if round_the_clock:  # all day, now and then a few hours down for maintenance
        hours = 24 if rng.random() < 0.9 else rng.randint(18, 22)
        return day_start, day_start + datetime.timedelta(hours=hours)
    start = day_start + datetime.timedelta(hours=rng.randint(7, 11), minutes=rng.choice([0, 15, 30, 45]))
    return start, start + datetime.timedelta(hours=rng.randint(4, 12))


def load_usage(ctx: DemoContext) -> None:
    """Daily sessions on every card or server of the hourly demo contracts, through the ingestion service,
    for the days before today (a day's sessions are reported together, by midnight at the latest)."""
    tally = ctx.tally("usage records")
    today_start = dates.today_start()
    allocations = (
        Allocation.objects.filter(firm=True, line__term="hourly")
        .select_related("card", "server", "line__contract")
        .order_by("line_id", "server__serial", "slot")
    )
    batches: dict[tuple[int, str], list[dict]] = defaultdict(list)
    months = [(dates.month(o), dates.at(o), dates.at(o + 1), dates.days_in(o)) for o in range(dates.FIRST, 1)]
    for allocation in allocations:
        round_the_clock = allocation.line.contract.notes.startswith(ROUND_THE_CLOCK)
        for period, month_start, month_end, days in months:
            if allocation.start_at >= month_end or (allocation.end_at and allocation.end_at <= month_start):
                continue  # not held this month
            rng = ctx.rng("usage", allocation.pk, period)
            for day in range(1, days + 1):
                start, end = _session(rng, month_start, day, round_the_clock)
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
    _unrated(ctx, batches)
    providers = Provider.objects.in_bulk({provider_id for provider_id, _ in batches})
    for (provider_id, period), records in sorted(batches.items()):
        received = min(_run_at(period) - datetime.timedelta(hours=2), today_start)
        result = usage_ingest(provider=providers[provider_id], payload_records=records, received_at=received)
        tally.add(CREATED, result.accepted)
        tally.add(UNCHANGED, result.duplicates)


def _unrated(ctx: DemoContext, batches: dict[tuple[int, str], list[dict]]) -> None:
    """A provider's burn-in runs on two cards of a server no contract has held: usage nobody is billed for."""
    server = (
        Server.objects.filter(
            provider__code=UNRATED["provider"],
            gpu_model__name=UNRATED["gpu_model"],
            status=HardwareStatus.AVAILABLE,
            allocations__isnull=True,
        )
        .order_by("-serial")
        .prefetch_related("cards")
        .first()
    )
    if server is None:
        return
    cards = sorted(server.cards.all(), key=lambda c: c.slot)[: UNRATED["cards"]]
    for offset in UNRATED["months"]:
        rng = ctx.rng("unrated", offset)
        for card in cards:
            start = dates.at(offset, rng.randint(3, 20), 14)
            batches[(server.provider_id, dates.month(offset))].append(
                {
                    "event_id": f"demo-burn-in-{card.uuid}-{start:%Y%m%d}",
                    "card": card.uuid,
                    "start": start.isoformat(),
                    "end": (start + datetime.timedelta(hours=rng.randint(2, 6))).isoformat(),
                }
            )


def _bill(period: str, tally) -> None:
    if not dates.due(_run_at(period)):
        return  # the month has not been billed yet: the portal and the admin show its preview
    if BillingRun.objects.filter(period=period, customer__isnull=True).exists():
        tally.add(UNCHANGED)
        return
    at = _run_at(period)
    billing_run_execute(run=billing_run_create(period=period, as_of=at, now=at), now=at)
    tally.add(CREATED)


def _late_record(tally) -> None:
    """A session of the last closed month reported late (the 5th): billed on the current month's
    invoice as late usage."""
    received = dates.at(0, 5, 9)
    if not dates.due(received) or UsageRecord.objects.filter(event_id=late_event()).exists():
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
    start = _late_start()
    record = {
        "event_id": late_event(),
        "card": allocation.card.uuid,
        "start": start.isoformat(),
        "end": (start + datetime.timedelta(hours=4)).isoformat(),
    }
    usage_ingest(provider=allocation.card.server.provider, payload_records=[record], received_at=received)
    tally.add(CREATED)


# Vouchers of the Chengdu-style programme: (customer, month offset, day, amount). Each pays 30 % of
# the customer's invoices issued after it until its balance is spent; acme's pays part of October.
VOUCHERS = [
    ("jinghong", -8, 10, Decimal("40000.00")),
    ("yanshu", -6, 5, Decimal("60000.00")),
    ("shenlan", -3, 10, Decimal("20000.00")),
    ("acme", -1, 20, Decimal("50000.00")),
]


def _programme(tally) -> VoucherProgramme:
    """The supplier-side programme of the current month's year (``cd-2026`` on the tests' clock)."""
    year = dates.period(0).year
    programme = VoucherProgramme.objects.filter(code=f"cd-{year}").first()
    if programme is None:
        programme = voucher_programme_create(
            code=f"cd-{year}",
            name=f"成都算力券 {year}",
            issuer="成都市经济和信息化局 (demo)",
            flow="supplier_side",
            coverage_percent=Decimal("30"),
            cap_per_customer_year=Decimal("2000000.00"),
            valid_from=datetime.date(year, 1, 1),
            valid_to=datetime.date(year, 12, 31),
            max_contract_term_days=None,
        )
        tally.add(CREATED)
    return programme


def _vouchers(programme: VoucherProgramme, until: datetime.datetime, tally) -> None:
    """Grant the vouchers dated up to ``until`` (within the programme's year) that are not there yet."""
    held = set(Voucher.objects.filter(programme=programme).values_list("customer__code", flat=True))
    for code, offset, day, amount in VOUCHERS:
        at = dates.at(offset, day, 10)
        if code in held or at > until or not dates.due(at) or at.date() < programme.valid_from:
            continue
        voucher_issue(
            programme=programme,
            customer=Customer.objects.get(code=code),
            amount=amount,
            now=at,
            reference=f"CD-{programme.valid_from.year}-DEMO-{code.upper()}",
        )
        held.add(code)
        tally.add(CREATED)


def _issue(period: str, tally) -> None:
    if not dates.due(_issue_at(period)):
        return
    drafts = Invoice.objects.filter(period=period, status=InvoiceStatus.DRAFT).count()
    if not drafts:
        tally.add(UNCHANGED)
        return
    invoice_issue_period(period=period, now=_issue_at(period))
    tally.add(CREATED, drafts)


# The last closed month: xingyao (its contract is suspended for it) and zhiyuan leave it open, acme
# (the portal's demo customer) pays part of it by transfer; the rest is overdue (15-day terms).
UNPAID_LAST_MONTH = {"xingyao", "zhiyuan"}
PARTLY_PAID_LAST_MONTH = {"acme": Decimal("50000.00")}
# Earlier months left unpaid: (customer, month offset). hongtu stopped paying before its contract
# ended; guanlan disputes one month. They age into the 31–60, 61–90 and over-90-day buckets.
UNPAID_EARLIER = {("hongtu", -4), ("hongtu", -3), ("guanlan", -6)}
LATE_PAYERS_PERCENT = 20  # of the other invoices of the earlier months, paid after their due date


def _paid_at(invoice: Invoice, offset: int, ctx: DemoContext) -> datetime.datetime:
    issued = datetime.datetime.combine(invoice.issued_on, datetime.time(15), dates.SHANGHAI)
    if offset >= -2:  # the story's months: paid twelve days after issue
        return issued + datetime.timedelta(days=12)
    rng = ctx.rng("payment", invoice.customer.code, invoice.period)
    if rng.randrange(100) < LATE_PAYERS_PERCENT:
        due = datetime.datetime.combine(invoice.due_on, datetime.time(15), dates.SHANGHAI)
        return due + datetime.timedelta(days=rng.randint(3, 25))
    terms = invoice.customer.payment_terms_days
    return issued + datetime.timedelta(days=rng.randint(min(5, terms - 1), terms - 1))


def _payments(ctx: DemoContext, tally) -> None:
    """Bank transfers settle the issued invoices of the closed months, except those left open."""
    open_invoices = (
        Invoice.objects.filter(status=InvoiceStatus.ISSUED, period__in=dates.history()[:-1])
        .exclude(payments__method=PaymentMethod.BANK_TRANSFER)  # paid in part already: a second run
        .select_related("customer")
        .order_by("period", "number")
    )
    for invoice in open_invoices:
        code, offset = invoice.customer.code, dates.offset_of(invoice.period)
        if (code, offset) in UNPAID_EARLIER or (offset == -1 and code in UNPAID_LAST_MONTH):
            continue
        paid_at = _paid_at(invoice, offset, ctx)
        if not dates.due(paid_at):
            continue
        amount = PARTLY_PAID_LAST_MONTH.get(code) if offset == -1 else None
        payment_record(
            invoice=invoice,
            amount=amount or invoice.amount_due,
            method=PaymentMethod.BANK_TRANSFER,
            now=paid_at,
            reference=f"ICBC {invoice.number}",
        )
        tally.add(CREATED)


def _credit_note(tally) -> None:
    invoice = (
        Invoice.objects.filter(period=dates.month(-1), customer__code="qiming").exclude(number=None).first()
    )
    at = dates.at(0, 10, 11)
    if invoice is None or not dates.due(at) or CreditNote.objects.filter(invoice=invoice).exists():
        tally.add(UNCHANGED)
        return
    outage = dates.at(-1, 12)
    credit_note_create(
        invoice=invoice,
        reason=f"SLA credit: 4 h outage on {outage:%Y-%m-%d} (服务中断补偿)",
        amount=Decimal("1000.00"),
        now=at,
    )
    tally.add(CREATED)


def _settle(period: str, finance, tally) -> None:
    """The month's provider statements: built on the 5th of the next month (once its invoices are
    issued), confirmed on the 6th, paid after each provider's settlement terms."""
    offset = dates.offset_of(period)
    built, confirmed = dates.at(offset + 1, 5, 10), dates.at(offset + 1, 6, 10)
    if not dates.due(built) or Invoice.objects.filter(period=period, status=InvoiceStatus.DRAFT).exists():
        return
    statements = SettlementStatement.objects.filter(period=period)
    if not statements.exists():
        settlement_build(period=period, now=built, actor=finance)
        tally.add(CREATED)
    for statement in statements.select_related("provider").order_by("provider__code"):
        terms = statement.provider.settlement_terms_days
        if (
            statement.status == SettlementStatus.DRAFT
            and statement.warning_count == 0
            and dates.due(confirmed)
        ):
            statement = settlement_confirm(statement=statement, actor=finance, now=confirmed)
        paid = confirmed + datetime.timedelta(days=terms)
        if statement.status == SettlementStatus.CONFIRMED and dates.due(paid):
            settlement_mark_paid(
                statement=statement, actor=finance, now=paid, reference=f"ICBC settlement {period}"
            )


def load_billing(ctx: DemoContext) -> None:
    with notices_held(reason="demo history: not mailed"):
        _load_billing(ctx)


def _load_billing(ctx: DemoContext) -> None:
    tally = ctx.tally("billing")
    programme = _programme(tally)
    for period in dates.history()[:-1]:
        _vouchers(programme, _issue_at(period), tally)
        _bill(period, tally)
        _issue(period, tally)
    _vouchers(programme, dates.at(1), tally)
    _credit_note(tally)
    _payments(ctx, tally)
    finance = get_user_model().objects.get(username=FINANCE)
    for period in dates.history()[:-1]:
        _settle(period, finance, tally)
    _late_record(tally)
    _bill(dates.month(0), tally)
