"""Supplier-side redemption when an invoice is issued, and its reversal when the invoice is voided."""

from __future__ import annotations

import datetime
from decimal import Decimal

from django.db import transaction

from apps.billing.invoicing.models import Invoice, InvoiceStatus, PaymentMethod
from apps.billing.invoicing.services.payments import payment_record
from apps.billing.vouchers.models import LedgerKind, Voucher, VoucherFlow, VoucherLedgerEntry, VoucherStatus
from apps.billing.vouchers.services.eligibility import EligibilityInputs, eligible_lines
from apps.billing.vouchers.services.ledger import (
    customer_vouchers_lock,
    programme_coverage_amount,
    programme_redeemed_in_year,
    voucher_balance_expire,
    voucher_cap_left,
    voucher_ledger_move,
    voucher_paid_out,
)
from apps.core.money import ZERO, decimal_text, round_money

# --- supplier side: redemption at issue -------------------------------------------------------


@transaction.atomic
def voucher_apply_at_issue(*, invoice: Invoice, now: datetime.datetime) -> list[VoucherLedgerEntry]:
    """Pay part of a just-issued invoice with the customer's supplier-side vouchers
    (docs/vouchers.md#supplier-side-flow).

    Each payment is a ``voucher`` payment (``payment_record``: the invoice's voucher amount and
    amount due follow) and a ``redeem`` ledger entry. Called by ``invoice_issue`` in its
    transaction; does nothing for invoices that are not issued.
    """
    invoice = Invoice.objects.select_for_update().get(pk=invoice.pk)
    if invoice.status != InvoiceStatus.ISSUED or invoice.issued_on is None:
        return []
    on = invoice.issued_on
    candidates = Voucher.objects.filter(
        customer_id=invoice.customer_id,
        status=VoucherStatus.ACTIVE,
        valid_to__gte=on,
        programme__flow=VoucherFlow.SUPPLIER_SIDE,
        programme__currency=invoice.currency,
        programme__valid_from__lte=on,
        programme__valid_to__gte=on,
    )
    if not candidates.exists():
        return []
    customer_vouchers_lock(customer_id=invoice.customer_id)
    vouchers = list(
        candidates.select_for_update(of=("self",)).select_related("programme").order_by("pk")
    )  # locked in id order: no deadlock between two issuers
    vouchers.sort(key=lambda v: (v.valid_to, v.pk))  # spent soonest-expiring first
    lines = list(invoice.lines.all())
    inputs = EligibilityInputs.load(lines)
    programmes = {v.programme_id: v.programme for v in vouchers}
    base = {pid: eligible_lines(programme=p, lines=lines, inputs=inputs)[0] for pid, p in programmes.items()}
    share_left = {
        pid: programme_coverage_amount(programme=p, amount=base[pid]) for pid, p in programmes.items()
    }
    year_used = programme_redeemed_in_year(
        customer_id=invoice.customer_id, programme_ids=programmes, year=on.year
    )
    paid_out = voucher_paid_out(voucher_ids=[v.pk for v in vouchers])
    due = invoice.amount_due
    entries = []
    for voucher in vouchers:
        programme = voucher.programme
        limits = [share_left[programme.pk], voucher.balance, due]
        for left in (
            voucher_cap_left(cap=programme.cap_per_customer_year, used=year_used.get(programme.pk, ZERO)),
            voucher_cap_left(cap=programme.cap_per_voucher, used=paid_out.get(voucher.pk, ZERO)),
        ):
            if left is not None:
                limits.append(left)
        amount = min(limits)
        if amount <= 0:
            continue
        payment = payment_record(
            invoice=invoice,
            amount=amount,
            method=PaymentMethod.VOUCHER,
            now=now,
            reference=f"{voucher.number} ({programme.code})",
        )
        entries.append(
            voucher_ledger_move(
                voucher=voucher,
                kind=LedgerKind.REDEEM,
                amount=-amount,
                now=now,
                invoice=invoice,
                payment=payment,
                base_amount=base[programme.pk],
                cap_year=on.year,
                note=f"{decimal_text(programme.coverage_percent)}% of {base[programme.pk]:,.2f} on {invoice.number}",
            )
        )
        due -= amount
        share_left[programme.pk] -= amount
        year_used[programme.pk] = year_used.get(programme.pk, ZERO) + amount
    return entries


@transaction.atomic
def voucher_reverse_for_invoice(
    *, invoice: Invoice, now: datetime.datetime, actor=None, reason: str = ""
) -> list[VoucherLedgerEntry]:
    """Give an invoice's voucher redemptions back to their vouchers (the invoice was voided)."""
    redemptions = list(
        VoucherLedgerEntry.objects.filter(
            invoice=invoice, kind=LedgerKind.REDEEM, reversed_by__isnull=True
        ).order_by("voucher_id", "pk")
    )
    if not redemptions:
        return []
    customer_vouchers_lock(customer_id=invoice.customer_id)
    locked = {
        v.pk: v
        for v in Voucher.objects.select_for_update()
        .filter(pk__in={r.voucher_id for r in redemptions})
        .order_by("pk")
    }
    entries = []
    for redemption in redemptions:
        voucher = locked[redemption.voucher_id]
        entries.append(
            voucher_ledger_move(
                voucher=voucher,
                kind=LedgerKind.REVERSE,
                amount=-redemption.amount,
                now=now,
                actor=actor,
                invoice=invoice,
                reverses=redemption,
                cap_year=redemption.cap_year,
                note=f"invoice {invoice.number} void" + (f": {reason}" if reason else ""),
            )
        )
        if voucher.status == VoucherStatus.EXPIRED:
            voucher_balance_expire(voucher=voucher, now=now, actor=actor, note="returned after expiry")
    return entries


# --- credit notes: the voucher's share goes back ------------------------------------------------


@transaction.atomic
def voucher_return_for_credit_note(
    *, invoice: Invoice, note, now: datetime.datetime, actor=None
) -> list[VoucherLedgerEntry]:
    """A credit note on an invoice a supplier-side voucher partly paid gives the voucher back its
    share: note total × voucher paid ÷ invoice total, rounded once (all that is left when the note
    credits the invoice in full). The share is a ``reverse`` entry (net of it in the redemption
    report and the caps); the invoice's voucher amount drops by it. A voucher that has expired
    expires the returned money at once, so the report still shows it reversed
    (docs/vouchers.md#credit-notes).
    """
    invoice = Invoice.objects.select_for_update().get(pk=invoice.pk)
    if invoice.voucher_amount <= 0 or invoice.total_amount <= 0:
        return []
    redemptions = list(
        VoucherLedgerEntry.objects.filter(
            invoice=invoice, kind=LedgerKind.REDEEM, reversed_by__isnull=True
        ).order_by("voucher_id", "pk")
    )
    if not redemptions:
        return []
    returned: dict[int, Decimal] = {}
    for entry in VoucherLedgerEntry.objects.filter(
        invoice=invoice, kind=LedgerKind.REVERSE, reverses__isnull=True
    ):
        returned[entry.voucher_id] = returned.get(entry.voucher_id, ZERO) + entry.amount
    redeemed = sum((-r.amount for r in redemptions), ZERO)
    if invoice.credited_amount >= invoice.total_amount:
        share = invoice.voucher_amount
    else:
        share = min(invoice.voucher_amount, round_money(note.total_amount * redeemed / invoice.total_amount))
    if share <= 0:
        return []
    customer_vouchers_lock(customer_id=invoice.customer_id)
    locked = {
        v.pk: v
        for v in Voucher.objects.select_for_update()
        .filter(pk__in={r.voucher_id for r in redemptions})
        .order_by("pk")
    }
    entries, left = [], share
    for index, redemption in enumerate(redemptions):
        open_amount = -redemption.amount - returned.get(redemption.voucher_id, ZERO)
        part = left if index == len(redemptions) - 1 else round_money(share * -redemption.amount / redeemed)
        part = min(part, open_amount, left)
        if part <= 0:
            continue
        returned[redemption.voucher_id] = returned.get(redemption.voucher_id, ZERO) + part
        voucher = locked[redemption.voucher_id]
        entries.append(
            voucher_ledger_move(
                voucher=voucher,
                kind=LedgerKind.REVERSE,
                amount=part,
                now=now,
                actor=actor,
                invoice=invoice,
                cap_year=redemption.cap_year,
                base_amount=redemption.base_amount,
                note=f"share of credit note {note.number} on {invoice.number}",
            )
        )
        if voucher.status == VoucherStatus.EXPIRED:
            voucher_balance_expire(voucher=voucher, now=now, actor=actor, note="returned after expiry")
        left -= part
    invoice.voucher_amount -= share - left
    invoice.save(update_fields=["voucher_amount", "updated_at"])
    return entries
