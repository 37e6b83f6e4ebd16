"""The redemption report a programme's issuer is sent (supplier side) or its claims (customer claim)."""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from decimal import Decimal

from django.db.models import Count, Sum

from apps.billing.vouchers.models import LedgerKind, VoucherLedgerEntry, VoucherProgramme
from apps.billing.vouchers.services._common import billing_zone, invalid, local_date
from apps.core.money import ZERO
from apps.core.periods import Period

# --- redemption report ------------------------------------------------------------------------


@dataclass(frozen=True)
class RedemptionRow:
    on: datetime.date
    kind: str
    voucher: str
    customer_code: str
    customer_name: str
    customer_tax_id: str
    invoice: str
    invoice_total: Decimal | None
    base_amount: Decimal | None
    amount: Decimal  # positive: paid by the programme; reversals negative


@dataclass(frozen=True)
class RedemptionCustomer:
    code: str
    name: str
    tax_id: str
    count: int
    amount: Decimal


@dataclass(frozen=True)
class RedemptionReport:
    programme: VoucherProgramme
    start: datetime.date
    end: datetime.date  # inclusive
    rows: list[RedemptionRow]
    customers: list[RedemptionCustomer]
    total_amount: Decimal

    @property
    def label(self) -> str:
        return f"{self.start} – {self.end}"


def report_range(
    *, period: str | None = None, date_from: datetime.date | None = None, date_to: datetime.date | None = None
) -> tuple[datetime.date, datetime.date]:
    """A report's inclusive date range from a period ``YYYY-MM`` or from two dates."""
    if period:
        try:
            p = Period.parse(period)
        except ValueError as exc:
            raise invalid("period", str(exc)) from None
        return p.first_day, p.next().first_day - datetime.timedelta(days=1)
    if date_from is None or date_to is None:
        raise invalid("period", "Give a period (YYYY-MM) or both date_from and date_to.")
    if date_to < date_from:
        raise invalid("date_to", "date_to must not be before date_from.")
    return date_from, date_to


def voucher_redemption_report(
    *,
    programme: VoucherProgramme,
    period: str | None = None,
    date_from: datetime.date | None = None,
    date_to: datetime.date | None = None,
) -> RedemptionReport:
    """What the programme owes the platform (supplier side) or paid customers (claims) in a
    period: every redemption and reversal, per customer and in total (SQL sums; three queries)."""
    start, end = report_range(period=period, date_from=date_from, date_to=date_to)
    zone = billing_zone()
    lo = datetime.datetime.combine(start, datetime.time(), zone)
    hi = datetime.datetime.combine(end + datetime.timedelta(days=1), datetime.time(), zone)
    entries = VoucherLedgerEntry.objects.filter(
        voucher__programme=programme,
        kind__in=[LedgerKind.REDEEM, LedgerKind.REVERSE],
        created_at__gte=lo,
        created_at__lt=hi,
    )
    rows = [
        RedemptionRow(
            on=local_date(e.created_at),
            kind=e.kind,
            voucher=e.voucher.number,
            customer_code=e.voucher.customer.code,
            customer_name=e.voucher.customer.name,
            customer_tax_id=e.voucher.customer.tax_id,
            invoice=(e.invoice.number or "") if e.invoice_id else "",
            invoice_total=e.invoice.total_amount if e.invoice_id else None,
            base_amount=e.base_amount,
            amount=ZERO - e.amount,
        )
        for e in entries.select_related("voucher__customer", "invoice").order_by("created_at", "pk")
    ]
    customers = [
        RedemptionCustomer(
            r["voucher__customer__code"],
            r["voucher__customer__name"],
            r["voucher__customer__tax_id"],
            r["count"],
            ZERO - r["total"],
        )
        for r in entries.values(
            "voucher__customer__code", "voucher__customer__name", "voucher__customer__tax_id"
        )
        .annotate(total=Sum("amount"), count=Count("id"))
        .order_by("voucher__customer__code")
    ]
    total = ZERO - (entries.aggregate(total=Sum("amount"))["total"] or ZERO)
    return RedemptionReport(programme, start, end, rows, customers, total)
