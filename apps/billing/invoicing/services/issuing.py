"""Issuing, voiding and crediting invoices. Issued invoices are frozen (a database trigger agrees)."""

from __future__ import annotations

import datetime
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal

from django.conf import settings
from django.db import transaction
from django.db.models import Sum
from django.utils.translation import gettext

from apps.billing.invoicing.models import CreditNote, CreditNoteLine, Invoice, InvoiceLine, InvoiceStatus
from apps.billing.invoicing.reconciliation import reconciliation_issue_refusal
from apps.billing.invoicing.services.steps import invoicing_steps_run
from apps.core.errors import DomainError, InvalidState
from apps.core.money import ZERO, amount_in_words, round_money
from apps.core.numbering import next_number
from apps.core.periods import Period

logger = logging.getLogger(__name__)


def _local_date(now: datetime.datetime) -> datetime.date:
    from zoneinfo import ZoneInfo

    return now.astimezone(ZoneInfo(settings.BILLING_TIME_ZONE)).date()


def fapiao_snapshot(*, invoice: Invoice) -> dict:
    """Seller and buyer data as printed on the fapiao, frozen at issue (docs/invoices.md#fapiao-fields)."""
    customer = invoice.customer
    seller = settings.SELLER
    return {
        "seller": {
            "name": seller["name"],
            "tax_id": seller["tax_id"],
            "address_phone": seller["address"],
            "bank_account": seller["bank"],
        },
        "buyer": {
            "name": customer.name,
            "tax_id": customer.tax_id,
            "address_phone": " ".join(filter(None, [customer.billing_address, customer.phone])),
            "bank_account": " ".join(filter(None, [customer.bank_name, customer.bank_account])),
            "code": customer.code,
        },
        "invoice_type": customer.invoice_type,
        "total_in_words": amount_in_words(invoice.total_amount),
    }


def _locked(invoice: Invoice) -> Invoice:
    return Invoice.objects.select_for_update().select_related("customer").get(pk=invoice.pk)


def period_has_ended(*, period: str, now: datetime.datetime) -> bool:
    """Whether ``now`` is at or past the end of the billing period ``YYYY-MM`` (billing time zone)."""
    _start, end = Period.parse(period).bounds(settings.BILLING_TIME_ZONE)
    return now >= end


def early_issue_refusal(period: str) -> DomainError:
    message = gettext("The period %(period)s has not ended: issuing early needs a reason.") % {
        "period": period
    }
    return DomainError(message, code="period_not_ended", http_status=409, fields={"early_reason": [message]})


@transaction.atomic
def invoice_issue(*, invoice: Invoice, actor=None, now: datetime.datetime, early_reason: str = "") -> Invoice:
    """Draft → issued: gapless number ``INV-YYYY-NNNNNN``, issue and due dates, fapiao snapshot.

    A draft of a period that has not ended at ``now`` is issued only with ``early_reason``
    (提前开具, refused otherwise with ``period_not_ended``); the reason stays on the invoice and
    in the log. After the period's end the reason is not needed and not kept.
    """
    invoice = _locked(invoice)
    if invoice.status != InvoiceStatus.DRAFT:
        raise InvalidState(
            gettext("Invoice %(invoice)s is %(status)s; only drafts can be issued.")
            % {"invoice": invoice, "status": invoice.status}
        )
    early_reason = (early_reason or "").strip()
    early = not period_has_ended(period=invoice.period, now=now)
    if early and not early_reason:
        raise early_issue_refusal(invoice.period)
    if not invoice.lines.exists():
        raise DomainError(gettext("An invoice without lines cannot be issued."), code="empty_invoice")
    refusal = reconciliation_issue_refusal(invoice)  # docs/hardware-truth.md#reconciliation
    if refusal is not None:
        raise refusal
    issued_on = _local_date(now)
    invoice.number = next_number("INV", issued_on.year)
    invoice.status = InvoiceStatus.ISSUED
    invoice.issued_on = issued_on
    invoice.issued_at = now
    invoice.due_on = issued_on + datetime.timedelta(days=invoice.customer.payment_terms_days)
    invoice.fapiao = fapiao_snapshot(invoice=invoice)
    invoice.early_issue_reason = early_reason[:300] if early else ""
    invoice.save()
    if early:
        logger.info(
            "invoice %s of %s issued early by %s: %s", invoice.number, invoice.period, actor, early_reason
        )
    invoicing_steps_run(
        event="issue", invoice=invoice, now=now
    )  # supplier-side vouchers pay their share (docs/vouchers.md)
    invoice.refresh_from_db()
    return invoice


@dataclass
class IssueOutcome:
    issued: list[Invoice] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)  # draft → why it was not issued


def invoice_issue_period(
    *,
    period: str,
    actor=None,
    now: datetime.datetime,
    customer=None,
    progress: Callable[[int, int], None] | None = None,
    early_reason: str = "",
) -> IssueOutcome:
    """Issue every draft of a period (one transaction each: one failure does not block the rest).

    A period that has not ended needs ``early_reason`` (refused as a whole, before any draft).

    ``progress(done, total)`` is called after each draft. Numbers follow customer code order.
    """
    try:
        period = str(Period.parse(period))
    except ValueError as exc:
        raise DomainError(str(exc), code="invalid", fields={"period": [str(exc)]}) from None
    if not period_has_ended(period=period, now=now) and not early_reason.strip():
        raise early_issue_refusal(period)
    drafts = Invoice.objects.filter(period=period, status=InvoiceStatus.DRAFT)
    if customer is not None:
        drafts = drafts.filter(customer=customer)
    drafts = list(drafts.select_related("customer").order_by("customer__code", "currency"))
    outcome = IssueOutcome()
    for done, invoice in enumerate(drafts, start=1):
        try:
            outcome.issued.append(
                invoice_issue(invoice=invoice, actor=actor, now=now, early_reason=early_reason)
            )
        except DomainError as exc:
            outcome.errors[f"{invoice.customer.code} {invoice.currency} {invoice.period}"] = exc.message
        if progress:
            progress(done, len(drafts))
    return outcome


@transaction.atomic
def invoice_void(*, invoice: Invoice, actor=None, reason: str, now: datetime.datetime) -> Invoice:
    """Issued (unpaid, uncredited) → void; the number is kept, the period is free for a new draft."""
    invoice = _locked(invoice)
    if not reason.strip():
        raise DomainError(
            gettext("A reason is required to void an invoice."),
            code="invalid",
            fields={"reason": [gettext("This field is required.")]},
        )
    if invoice.status != InvoiceStatus.ISSUED:
        raise InvalidState(
            gettext("Invoice %(invoice)s is %(status)s; only issued invoices can be voided.")
            % {"invoice": invoice, "status": invoice.status}
        )
    if invoice.paid_amount > 0 or invoice.credited_amount > 0:
        raise InvalidState(
            gettext("Invoice %(invoice)s has payments or credit notes; issue a credit note instead.")
            % {"invoice": invoice}
        )
    invoice.status = InvoiceStatus.VOID
    invoice.voided_at = now
    invoice.void_reason = reason
    invoice.save(update_fields=["status", "voided_at", "void_reason", "updated_at"])
    invoicing_steps_run(event="void", invoice=invoice, now=now, actor=actor, reason=reason)
    return invoice


@dataclass(frozen=True)
class CreditRequest:
    invoice_line: InvoiceLine
    gross_amount: Decimal


@transaction.atomic
def credit_note_create(
    *,
    invoice: Invoice,
    actor=None,
    reason: str,
    now: datetime.datetime,
    amount: Decimal | None = None,
    lines: list[CreditRequest] | None = None,
) -> CreditNote:
    """Credit an issued invoice in full (no amount), by amount (spread over lines), or line by line.

    Each credited line keeps its tax rate; tax is split per line like the invoice's own lines.
    The invoice itself never changes except its credited total (a settlement field).
    """
    invoice = _locked(invoice)
    if invoice.status not in (InvoiceStatus.ISSUED, InvoiceStatus.PAID):
        raise InvalidState(
            gettext("Invoice %(invoice)s is %(status)s; only issued invoices can be credited.")
            % {"invoice": invoice, "status": invoice.status}
        )
    if not reason.strip():
        raise DomainError(
            gettext("A reason is required."),
            code="invalid",
            fields={"reason": [gettext("This field is required.")]},
        )
    invoice_lines = list(invoice.lines.order_by("position"))
    credited = {
        line_id: (gross, tax)
        for line_id, gross, tax in CreditNoteLine.objects.filter(invoice_line__invoice=invoice)
        .values_list("invoice_line_id")
        .annotate(gross=Sum("gross_amount"), tax=Sum("tax_amount"))
    }
    remaining = {
        line.pk: line.gross_amount - credited.get(line.pk, (ZERO, ZERO))[0] for line in invoice_lines
    }
    if lines:
        requests = [(r.invoice_line, round_money(r.gross_amount)) for r in lines]
    else:
        open_total = sum(remaining.values(), ZERO)
        target = open_total if amount is None else round_money(amount)
        if amount is None and open_total <= 0:
            msg = gettext("%(invoice)s is credited in full already; nothing is left to credit.") % {
                "invoice": invoice
            }
            raise DomainError(msg, code="credit_exceeds_invoice", fields={"amount": [msg]})
        if target <= 0:
            raise DomainError(
                gettext("The credit amount must be positive."),
                code="invalid",
                fields={"amount": [gettext("Must be > 0.")]},
            )
        if target > open_total:
            msg = gettext("At most %(amount)s can still be credited on %(invoice)s.") % {
                "amount": open_total,
                "invoice": invoice,
            }
            raise DomainError(msg, code="credit_exceeds_invoice", fields={"amount": [msg]})
        requests = _spread(invoice_lines, remaining, target)
    for line, gross in requests:
        if line.invoice_id != invoice.pk:
            raise DomainError(gettext("A credited line must belong to the invoice."), code="invalid")
        if gross <= 0 or gross > remaining[line.pk]:
            msg = gettext("Line %(position)s: at most %(amount)s can still be credited.") % {
                "position": line.position,
                "amount": remaining[line.pk],
            }
            raise DomainError(msg, code="credit_exceeds_invoice", fields={"lines": [msg]})
    note_lines = []
    for line, gross in requests:
        if gross == remaining[line.pk]:
            # what is left of the line, tax included: a full credit nets the line's tax exactly
            tax = line.tax_amount - credited.get(line.pk, (ZERO, ZERO))[1]
        else:
            tax = round_money(gross * line.tax_rate / (1 + line.tax_rate))
        note_lines.append(
            CreditNoteLine(
                invoice_line=line,
                description=line.description,
                tax_rate=line.tax_rate,
                net_amount=gross - tax,
                tax_amount=tax,
                gross_amount=gross,
            )
        )
    # The note is written with its totals (the database checks they are positive), then its lines.
    note = CreditNote.objects.create(
        invoice=invoice,
        number=next_number("CN", _local_date(now).year),
        reason=reason,
        net_amount=sum((cl.net_amount for cl in note_lines), ZERO),
        tax_amount=sum((cl.tax_amount for cl in note_lines), ZERO),
        total_amount=sum((cl.gross_amount for cl in note_lines), ZERO),
        issued_at=now,
        issued_by=actor,
    )
    for note_line in note_lines:
        note_line.credit_note = note
    CreditNoteLine.objects.bulk_create(note_lines)
    invoice.credited_amount += note.total_amount
    invoice.save(update_fields=["credited_amount", "updated_at"])
    invoicing_steps_run(event="credit_note", invoice=invoice, note=note, now=now, actor=actor)
    invoice.refresh_from_db()  # the steps gave back voucher and paid shares (docs/invoices.md#credit-notes-and-payments)
    from apps.billing.invoicing.services.payments import invoice_settle_status

    invoice_settle_status(invoice=invoice, now=now)
    return note


def _spread(lines: list[InvoiceLine], remaining: dict[int, Decimal], target: Decimal):
    """Spread ``target`` over the lines in proportion to what is still open; the last takes the rest."""
    open_lines = [line for line in lines if remaining[line.pk] > 0]
    open_total = sum((remaining[line.pk] for line in open_lines), ZERO)
    out, left = [], target
    for index, line in enumerate(open_lines):
        share = (
            left if index == len(open_lines) - 1 else round_money(target * remaining[line.pk] / open_total)
        )
        share = min(share, remaining[line.pk], left)
        if share > 0:
            out.append((line, share))
            left -= share
    return out
