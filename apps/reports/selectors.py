"""The finance reports as reads (docs/reports.md): SQL aggregation, a constant number of queries
per report whatever the number of invoices, servers or records.

Every report takes a period range ``[first, last]`` of billing months (both included). Amounts
are summed per currency; nothing converts between currencies.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal

from django.conf import settings
from django.db import connections, router
from django.db.models import Count, DecimalField, F, Q, Sum, Value
from django.db.models.functions import Coalesce, Greatest

from apps.billing.models import Invoice, InvoiceLine, InvoiceStatus, SettlementStatement, VoucherLedgerEntry
from apps.billing.vouchers.models import LedgerKind
from apps.contracts.models import Allocation
from apps.core.periods import Period
from apps.core.units import TFLOPS_PER_P
from apps.customers.models import Customer
from apps.inventory.models import HardwareStatus, Server
from apps.metering.selectors import unrated_usage_counts
from apps.reports.economics import annualise, margin_per_p_year, payback_months

ZERO = Decimal("0.00")
MONEY = DecimalField(max_digits=16, decimal_places=2)
# Revenue is what was invoiced: issued invoices, paid ones included; drafts and void ones are not.
BILLED = [InvoiceStatus.ISSUED, InvoiceStatus.PAID]


@dataclass(frozen=True)
class PeriodRange:
    first: Period
    last: Period

    def __post_init__(self) -> None:
        if self.last < self.first:
            raise ValueError("the range ends before it starts")

    @property
    def periods(self) -> list[Period]:
        out, period = [], self.first
        while period <= self.last:
            out.append(period)
            period = period.next()
        return out

    @property
    def months(self) -> int:
        return (self.last.year - self.first.year) * 12 + self.last.month - self.first.month + 1

    @property
    def texts(self) -> list[str]:
        return [str(period) for period in self.periods]

    def bounds(self) -> tuple[datetime.datetime, datetime.datetime]:
        start, _ = self.first.bounds(settings.BILLING_TIME_ZONE)
        _, end = self.last.bounds(settings.BILLING_TIME_ZONE)
        return start, end

    def __str__(self) -> str:
        return f"{self.first} – {self.last}"


def _billed(period_range: PeriodRange):
    return Invoice.objects.filter(
        status__in=BILLED, period__gte=str(period_range.first), period__lte=str(period_range.last)
    )


# -- 1. revenue ---------------------------------------------------------------------------------


def revenue_by_month(*, period_range: PeriodRange) -> list[dict]:
    """``{"period", "currency", "invoices", "net_amount"}`` for every month of the range and every
    currency billed in it (a month without invoices shows 0); one query."""
    sums = {
        (row["period"], row["currency"]): row
        for row in _billed(period_range)
        .order_by()
        .values("period", "currency")
        .annotate(invoices=Count("pk"), net_amount=Sum("net_amount"))
    }
    currencies = sorted({currency for _, currency in sums}) or [settings.DEFAULT_CURRENCY]
    rows = []
    for currency in currencies:
        for period in period_range.texts:
            row = sums.get((period, currency), {})
            rows.append(
                {
                    "period": period,
                    "currency": currency,
                    "invoices": row.get("invoices", 0),
                    "net_amount": row.get("net_amount") or ZERO,
                }
            )
    return rows


def revenue_by_customer(*, period_range: PeriodRange) -> list[dict]:
    """``{"customer_code", "customer_name", "currency", "invoices", "net_amount"}``, largest first;
    one query."""
    return list(
        _billed(period_range)
        .order_by()
        .values("currency", customer_code=F("customer__code"), customer_name=F("customer__name"))
        .annotate(invoices=Count("pk"), net_amount=Sum("net_amount"))
        .order_by("currency", "-net_amount", "customer_code")
    )


# -- 2. AR aging ---------------------------------------------------------------------------------

BUCKETS = [
    ("current", "Current 未到期"),
    ("1-30", "1–30 days 1–30天"),
    ("31-60", "31–60 days 31–60天"),
    ("61-90", "61–90 days 61–90天"),
    ("90+", "Over 90 days 90天以上"),
]


def _amount_due():
    """What the customer still owes, as SQL: total − voucher − credited − paid, never below zero
    (Invoice.amount_due)."""
    return Greatest(
        F("total_amount") - F("voucher_amount") - F("credited_amount") - F("paid_amount"),
        Value(ZERO),
        output_field=MONEY,
    )


# Issued invoices with an amount due, summed per bucket, currency and customer id first (few
# thousand groups of integers, held in memory), then named from the customers: grouping every
# invoice by the customer's code and name would carry those strings through the aggregate.
@contextmanager
def report_cursor() -> Iterator:
    """A cursor where the ORM would read invoices: the replica inside a report view, when one is set
    (docs/scaling.md#read-replicas)."""
    with connections[router.db_for_read(Invoice)].cursor() as cursor:
        yield cursor


AR_AGING_SQL = f"""
SELECT g.bucket, g.currency, c.code, c.name, g.invoices, g.amount
FROM (
    SELECT CASE WHEN i.due_on IS NULL OR i.due_on >= %(today)s THEN 0
                WHEN i.due_on >= %(days_30)s THEN 1
                WHEN i.due_on >= %(days_60)s THEN 2
                WHEN i.due_on >= %(days_90)s THEN 3
                ELSE 4 END AS bucket,
           i.currency, i.customer_id, count(*) AS invoices, sum(d.due) AS amount
    FROM {Invoice._meta.db_table} i
    CROSS JOIN LATERAL (
        SELECT i.total_amount - i.voucher_amount - i.credited_amount - i.paid_amount AS due
    ) d
    WHERE i.status = %(issued)s AND d.due > 0
    GROUP BY 1, 2, 3
) g
JOIN {Customer._meta.db_table} c ON c.id = g.customer_id
ORDER BY g.bucket, g.currency, g.amount DESC, c.code
"""


def ar_aging(*, today: datetime.date) -> list[dict]:
    """Issued, unpaid invoices' amount due (total − voucher − credited − paid) by days past due on
    ``today`` (a billing-zone date): one row per bucket and currency with its customers, largest
    first; one query."""
    with report_cursor() as cursor:
        cursor.execute(
            AR_AGING_SQL,
            {
                "issued": InvoiceStatus.ISSUED.value,
                "today": today,
                **{f"days_{n}": today - datetime.timedelta(days=n) for n in (30, 60, 90)},
            },
        )
        fetched = cursor.fetchall()
    out: dict[tuple[int, str], dict] = {}
    entry, at = None, None
    for bucket, currency, code, name, invoices, amount in fetched:  # in bucket and currency order
        if (bucket, currency) != at:
            at = (bucket, currency)
            key, label = BUCKETS[bucket]
            entry = out[at] = {
                "bucket": key,
                "label": label,
                "currency": currency,
                "invoices": 0,
                "amount": ZERO,
                "customers": [],
            }
        entry["invoices"] += invoices
        entry["amount"] += amount
        entry["customers"].append(
            {"customer_code": code, "customer_name": name, "invoices": invoices, "amount": amount}
        )
    currencies = sorted({currency for _, currency in out}) or [settings.DEFAULT_CURRENCY]
    return [
        out.get(
            (index, currency),
            {
                "bucket": key,
                "label": label,
                "currency": currency,
                "invoices": 0,
                "amount": ZERO,
                "customers": [],
            },
        )
        for currency in currencies
        for index, (key, label) in enumerate(BUCKETS)
    ]


# -- 3. payback of platform-owned servers ------------------------------------------------------


def server_revenue(*, servers, period_range: PeriodRange) -> dict[tuple[int, str], Decimal]:
    """Billed net revenue of ``servers`` (a queryset, read as a subquery) over the range,
    ``{(server_id, currency): amount}``: each invoice line goes to the servers its contract line
    was allocated, in equal shares; two queries."""
    lines = Allocation.objects.filter(server__in=servers.values("pk")).values("line_id")
    servers_of: dict[int, set[int]] = {}
    for line_id, server_id in (
        Allocation.objects.filter(line_id__in=lines).order_by().values_list("line_id", "server_id").distinct()
    ):
        servers_of.setdefault(line_id, set()).add(server_id)
    out: dict[tuple[int, str], Decimal] = {}
    for contract_line_id, currency, net_amount in (
        InvoiceLine.objects.filter(
            contract_line_id__in=lines,
            invoice__status__in=BILLED,
            invoice__period__gte=str(period_range.first),
            invoice__period__lte=str(period_range.last),
        )
        .order_by()
        .values("contract_line_id", currency=F("invoice__currency"))
        .annotate(net_amount=Sum("net_amount"))
        .values_list("contract_line_id", "currency", "net_amount")
    ):
        shared = servers_of.get(contract_line_id, set())
        for server_id in shared:
            key = (server_id, currency)
            out[key] = out.get(key, ZERO) + net_amount / len(shared)
    return out


def server_payback(*, period_range: PeriodRange) -> list[dict]:
    """Platform-owned servers (those with a purchase cost): revenue over the range, annualised,
    their annual cash cost and payback months; three queries (the servers read as plain values:
    thousands of them)."""
    owned = Server.objects.filter(purchase_cost_amount__isnull=False)
    servers = list(
        owned.order_by("serial").values_list(
            "pk",
            "serial",
            "provider__code",
            "gpu_model__name",
            "currency",
            "purchase_cost_amount",
            "annual_cash_cost_amount",
        )
    )
    revenue = server_revenue(servers=owned, period_range=period_range)
    rows = []
    for pk, serial, provider_code, gpu_model, currency, purchase_amount, annual_cash_cost in servers:
        earned = revenue.get((pk, currency), ZERO)
        annual = annualise(earned, period_range.months)
        cash_cost = annual_cash_cost or ZERO
        rows.append(
            {
                "serial": serial,
                "provider_code": provider_code,
                "gpu_model": gpu_model,
                "currency": currency,
                "purchase_amount": purchase_amount,
                "revenue_amount": earned.quantize(Decimal("0.01")),
                "annual_revenue_amount": annual.quantize(Decimal("0.01")),
                "annual_cash_cost_amount": cash_cost,
                "payback_months": payback_months(
                    purchase_amount=purchase_amount, annual_revenue=annual, annual_cash_cost=cash_cost
                ),
            }
        )
    return rows


# -- 4. light-asset margin per P-year ------------------------------------------------------------


def provider_p_year_margin(*, period_range: PeriodRange) -> list[dict]:
    """Per provider and currency, from its settlement statements over the range: customer net
    revenue and provider cost, annualised and divided by the provider's P capacity (its servers
    not retired); two queries."""
    capacity = {
        row["provider_id"]: row["p_capacity"]
        for row in Server.objects.exclude(status=HardwareStatus.RETIRED)
        .order_by()
        .values("provider_id")
        .annotate(p_capacity=Sum(F("gpu_model__fp16_dense_tflops") * F("card_count")) / Value(TFLOPS_PER_P))
    }
    rows = []
    for row in (
        SettlementStatement.objects.filter(
            period__gte=str(period_range.first), period__lte=str(period_range.last)
        )
        .order_by()
        .values(
            "provider_id", "currency", provider_code=F("provider__code"), provider_name=F("provider__name")
        )
        .annotate(revenue=Sum("revenue_net_amount"), cost=Sum("cost_amount"))
        .order_by("provider_code", "currency")
    ):
        p_capacity = capacity.get(row["provider_id"]) or Decimal(0)
        result = None
        if p_capacity > 0:
            result = margin_per_p_year(
                annual_revenue=annualise(row["revenue"], period_range.months),
                p_capacity=p_capacity,
                cost_per_p_year=annualise(row["cost"], period_range.months) / p_capacity,
            )
        rows.append(
            {
                "provider_code": row["provider_code"],
                "provider_name": row["provider_name"],
                "currency": row["currency"],
                "revenue_amount": row["revenue"],
                "cost_amount": row["cost"],
                "p_capacity": p_capacity,
                "revenue_per_p_year": result.revenue_per_p_year if result else None,
                "cost_per_p_year": result.cost_per_p_year if result else None,
                "margin_per_p_year": result.margin_per_p_year if result else None,
            }
        )
    return rows


# -- 5. unrated usage ----------------------------------------------------------------------------


def unrated_by_provider(*, period_range: PeriodRange) -> list[dict]:
    """Usage records no firm allocation covers, per provider, overlapping the range; one query."""
    start, end = period_range.bounds()
    return unrated_usage_counts(start=start, end=end)


# -- 6. voucher redemptions ---------------------------------------------------------------------


def voucher_redemptions(*, period_range: PeriodRange) -> list[dict]:
    """Compute-voucher money per programme in the range, from the append-only voucher ledger:
    redeemed (redemptions, as positive amounts), reversed (redemptions given back when an invoice
    was voided), net = redeemed − reversed, and the number of redemptions; one query."""
    start, end = period_range.bounds()
    redeem, reverse = Q(kind=LedgerKind.REDEEM), Q(kind=LedgerKind.REVERSE)
    rows = (
        VoucherLedgerEntry.objects.filter(
            created_at__gte=start,
            created_at__lt=end,
            kind__in=[
                LedgerKind.REDEEM,
                LedgerKind.REVERSE,
            ],
        )
        .values(
            code=F("voucher__programme__code"),
            name=F("voucher__programme__name"),
            currency=F("voucher__programme__currency"),
        )
        .annotate(
            redeemed=Coalesce(Sum(-F("amount"), filter=redeem), ZERO, output_field=MONEY),
            reversed=Coalesce(Sum("amount", filter=reverse), ZERO, output_field=MONEY),
            redemptions=Count("pk", filter=redeem),
        )
        .order_by("code")
    )
    return [{**row, "net": row["redeemed"] - row["reversed"]} for row in rows]


# -- the landing page ----------------------------------------------------------------------------


def month_figures(*, period: Period, today: datetime.date) -> dict:
    """The key figures of ``period`` (the last closed month) on ``today``: billed net revenue per
    currency, what is receivable and how much of it is overdue, unrated usage records in the
    month; three queries."""
    month = PeriodRange(period, period)
    revenue = list(
        _billed(month)
        .order_by()
        .values("currency")
        .annotate(invoices=Count("pk"), net_amount=Sum("net_amount"))
        .order_by("currency")
    )
    due = _amount_due()
    receivable = list(
        Invoice.objects.filter(status=InvoiceStatus.ISSUED)
        .annotate(due=due)
        .filter(due__gt=0)
        .order_by()
        .values("currency")
        .annotate(
            invoices=Count("pk"),
            amount=Sum("due"),
            overdue_amount=Sum("due", filter=Q(due_on__lt=today), default=ZERO),
        )
        .order_by("currency")
    )
    unrated = sum(row["records"] for row in unrated_by_provider(period_range=month))
    return {"period": str(period), "revenue": revenue, "receivable": receivable, "unrated_records": unrated}
