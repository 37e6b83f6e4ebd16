"""Customer-claim programmes: what can be claimed, the claim pack, and recording a filed claim."""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field
from decimal import Decimal

from django.db import transaction
from django.db.models import Prefetch, Sum
from django.utils.translation import gettext

from apps.billing.invoicing.models import CreditNoteLine, Invoice, InvoiceLine, InvoiceStatus
from apps.billing.vouchers.models import (
    LedgerKind,
    Voucher,
    VoucherFlow,
    VoucherLedgerEntry,
    VoucherProgramme,
    VoucherStatus,
)
from apps.billing.vouchers.services._common import invalid, local_date
from apps.billing.vouchers.services.eligibility import EligibilityInputs, line_ineligibility
from apps.billing.vouchers.services.ledger import (
    customer_vouchers_lock,
    programme_coverage_amount,
    programme_redeemed_in_year,
    voucher_cap_left,
    voucher_ledger_move,
    voucher_paid_out,
)
from apps.core.errors import DomainError, InvalidState
from apps.core.money import ZERO, decimal_text
from apps.customers.models import Customer

# --- customer claim ----------------------------------------------------------------------------


@dataclass
class ClaimRow:
    invoice: Invoice
    eligible_amount: Decimal = ZERO  # paid, eligible, net of credit notes (VAT included)
    excluded_amount: Decimal = ZERO
    coverage_amount: Decimal = ZERO  # round(eligible × coverage)
    claim_amount: Decimal = ZERO  # after the caps
    note: str = ""  # why the invoice counts for nothing ("" when it counts)
    excluded_lines: dict[int, str] = field(default_factory=dict)


@dataclass
class ClaimComputation:
    programme: VoucherProgramme
    customer: Customer
    voucher: Voucher | None
    on: datetime.date
    rows: list[ClaimRow]
    coverage_amount: Decimal
    limits: list[tuple[str, Decimal]]  # (label, what it still allows)
    claimable_amount: Decimal

    @property
    def eligible_amount(self) -> Decimal:
        return sum((r.eligible_amount for r in self.rows), ZERO)


def _claim_invoices(customer: Customer, programme: VoucherProgramme, invoices) -> list[Invoice]:
    ids = [inv.pk if isinstance(inv, Invoice) else int(inv) for inv in invoices]
    if not ids:
        raise invalid("invoices", "Name at least one invoice.")
    found = {
        inv.pk: inv
        for inv in Invoice.objects.filter(pk__in=ids, customer=customer)
        .select_related("customer")
        .prefetch_related(Prefetch("lines", queryset=InvoiceLine.objects.select_related("contract")))
    }
    missing = [str(pk) for pk in ids if pk not in found]
    if missing:
        raise DomainError(
            gettext("Unknown invoice(s) for %(customer)s: %(ids)s.")
            % {"customer": customer.code, "ids": ", ".join(missing)},
            code="not_found",
            fields={"invoices": [gettext("Unknown: %(ids)s.") % {"ids": ", ".join(missing)}]},
            http_status=404,
        )
    out = []
    for pk in dict.fromkeys(ids):
        invoice = found[pk]
        if invoice.status not in (InvoiceStatus.ISSUED, InvoiceStatus.PAID):
            raise invalid(
                "invoices", f"Invoice {invoice} is {invoice.status}; only issued invoices can be claimed."
            )
        if invoice.currency != programme.currency:
            raise invalid(
                "invoices",
                f"Invoice {invoice} is in {invoice.currency}, the programme in {programme.currency}.",
            )
        out.append(invoice)
    return out


def claim_compute(
    *,
    customer: Customer,
    programme: VoucherProgramme,
    invoices,
    now: datetime.datetime,
    voucher: Voucher | None = None,
) -> ClaimComputation:
    """What ``customer`` can claim under a ``customer_claim`` programme for ``invoices``.

    Only paid invoices count, each for round(eligible paid amount × coverage); then the caps:
    the voucher's balance (if one is named), the per-voucher cap, the customer's remaining cap
    for the year of ``now``. Invoices already claimed under the programme count for nothing.
    """
    if programme.flow != VoucherFlow.CUSTOMER_CLAIM:
        raise invalid(
            "programme", f"Programme {programme.code} is settled supplier-side at issue; nothing to claim."
        )
    if voucher is not None and (voucher.programme_id != programme.pk or voucher.customer_id != customer.pk):
        raise invalid("voucher", "The voucher belongs to another programme or customer.")
    invoices = _claim_invoices(customer, programme, invoices)
    on = local_date(now)
    lines = [line for inv in invoices for line in inv.lines.all()]
    inputs = EligibilityInputs.load(lines)
    credited = dict(
        CreditNoteLine.objects.filter(invoice_line__in=lines)
        .values("invoice_line_id")
        .annotate(total=Sum("gross_amount"))
        .values_list("invoice_line_id", "total")
    )
    claimed = dict(
        VoucherLedgerEntry.objects.filter(
            invoice__in=invoices,
            kind=LedgerKind.REDEEM,
            voucher__programme=programme,
            reversed_by__isnull=True,
        ).values_list("invoice_id", "voucher__number")
    )
    rows = []
    for invoice in invoices:
        row = ClaimRow(invoice=invoice)
        if invoice.status != InvoiceStatus.PAID:
            row.note = "not paid yet 尚未付清"
        elif invoice.issued_on < programme.valid_from or invoice.issued_on > programme.valid_to:
            row.note = f"issued {invoice.issued_on}, outside the programme 不在项目有效期内"
        elif invoice.pk in claimed:
            row.note = f"already claimed with {claimed[invoice.pk]} 已申领"
        for line in invoice.lines.all():
            open_amount = line.gross_amount - credited.get(line.pk, ZERO)
            reason = line_ineligibility(programme=programme, line=line, inputs=inputs)
            if reason:
                row.excluded_lines[line.pk] = reason
                row.excluded_amount += open_amount
            elif not row.note:
                row.eligible_amount += open_amount
        if not row.note:
            row.coverage_amount = programme_coverage_amount(programme=programme, amount=row.eligible_amount)
        rows.append(row)
    coverage = sum((r.coverage_amount for r in rows), ZERO)
    limits = []
    if programme.cap_per_customer_year is not None:
        used = programme_redeemed_in_year(
            customer_id=customer.pk, programme_ids=[programme.pk], year=on.year
        ).get(programme.pk, ZERO)
        limits.append(
            (
                f"per-customer cap {on.year} 年度上限",
                voucher_cap_left(cap=programme.cap_per_customer_year, used=used),
            )
        )
    if voucher is not None:
        limits.append((f"voucher {voucher.number} balance 余额", voucher.balance))
        if programme.cap_per_voucher is not None:
            used = voucher_paid_out(voucher_ids=[voucher.pk]).get(voucher.pk, ZERO)
            limits.append(
                ("per-voucher cap 单券上限", voucher_cap_left(cap=programme.cap_per_voucher, used=used))
            )
    claimable = min([coverage, *(left for _, left in limits)])
    left = claimable
    for row in rows:
        row.claim_amount = min(row.coverage_amount, left)
        left -= row.claim_amount
    return ClaimComputation(programme, customer, voucher, on, rows, coverage, limits, claimable)


def claim_pack(
    *,
    customer: Customer,
    programme: VoucherProgramme,
    invoices,
    now: datetime.datetime,
    voucher: Voucher | None = None,
) -> bytes:
    """The ZIP the customer files with a ``customer_claim`` programme
    (docs/vouchers.md#claim-pack): the invoices' PDFs, a summary PDF per contract, the usage
    delivery report (CSV) and the claim summary PDF with the claimable amount. Reads only; the
    invoices are unchanged.
    """
    from apps.billing.vouchers.claim_pack import (
        build_claim_pack,  # documents import the invoice PDF, which imports issuing
    )

    return build_claim_pack(
        claim_compute(customer=customer, programme=programme, invoices=invoices, now=now, voucher=voucher)
    )


@transaction.atomic
def voucher_claim_record(
    *, voucher: Voucher, invoices, now: datetime.datetime, actor=None
) -> list[VoucherLedgerEntry]:
    """Record that the customer claimed ``invoices`` with ``voucher``: one ``redeem`` entry per
    invoice for its claim amount. An invoice is claimed at most once per programme."""
    customer_vouchers_lock(customer_id=voucher.customer_id)
    voucher = (
        Voucher.objects.select_for_update(of=("self",))
        .select_related("programme", "customer")
        .get(pk=voucher.pk)
    )
    if voucher.status != VoucherStatus.ACTIVE:
        raise InvalidState(
            gettext("Voucher %(voucher)s is %(status)s.") % {"voucher": voucher, "status": voucher.status}
        )
    if voucher.valid_to < local_date(now):
        raise InvalidState(
            gettext("Voucher %(voucher)s ended on %(date)s.") % {"voucher": voucher, "date": voucher.valid_to}
        )
    claim = claim_compute(
        customer=voucher.customer, programme=voucher.programme, invoices=invoices, now=now, voucher=voucher
    )
    if claim.claimable_amount <= 0:
        raise DomainError(gettext("Nothing is claimable for these invoices."), code="nothing_claimable")
    return [
        voucher_ledger_move(
            voucher=voucher,
            kind=LedgerKind.REDEEM,
            amount=-row.claim_amount,
            now=now,
            actor=actor,
            invoice=row.invoice,
            base_amount=row.eligible_amount,
            cap_year=claim.on.year,
            note=f"claimed {decimal_text(voucher.programme.coverage_percent)}% of {row.eligible_amount:,.2f} on {row.invoice.number}",
        )
        for row in claim.rows
        if row.claim_amount > 0
    ]
