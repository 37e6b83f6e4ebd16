"""SLA credits owed after issue: an incident reported once its invoice was issued becomes a credit
note on the next billing run, once (docs/hardware-truth.md#sla-credits-and-efficiency).

An issued invoice never changes. For each issued line of a contract line with an SLA whose
period has an incident reported after the invoice was issued, the run computes the credit owed
now (all incidents reported by the run's ``as_of``) and subtracts what was already given: the
invoice's own ``sla_credit`` line and earlier SLA credit notes (``SlaCreditNote``). Only a
positive rest is credited, so a rerun finds nothing left and credits nothing twice.
"""

from __future__ import annotations

import datetime
import logging
from collections import defaultdict
from dataclasses import dataclass
from decimal import Decimal

from django.conf import settings
from django.db import transaction
from django.db.models import Q, Sum

from apps.billing.invoicing.inputs import id_array
from apps.billing.invoicing.models import (
    Invoice,
    InvoiceLine,
    InvoiceStatus,
    LineKind,
    SlaCreditNote,
)
from apps.billing.invoicing.services.issuing import CreditRequest, credit_note_create
from apps.billing.invoicing.sla import CREDITED_KINDS, credit_amount, sla_inputs_load
from apps.contracts.models import ContractLine
from apps.core.money import ZERO, round_percent, round_places, split_tax
from apps.core.periods import Period

logger = logging.getLogger(__name__)

LOOKBACK_MONTHS = 12
REASON_LENGTH = 300


@dataclass
class _Issued:
    invoice_id: int
    period: str
    issued_at: datetime.datetime
    prices_include_tax: bool
    contract_line_id: int
    charged: Decimal
    lines: list[tuple[int, Decimal]]  # (invoice line id, gross)


def _candidates(customer_ids: list[int], period: Period) -> list[_Issued]:
    earliest = period
    for _ in range(LOOKBACK_MONTHS):
        earliest = earliest.previous()
    # the customers' lines with an SLA first (few), then their issued lines by the (line, kind) index
    sla_lines = list(
        ContractLine.objects.filter(contract__customer_id__in=id_array(customer_ids))
        .filter(Q(sla__isnull=False) | Q(contract__price_list__sla__isnull=False))
        .values_list("pk", flat=True)
    )
    if not sla_lines:
        return []
    found: dict[tuple[int, int], _Issued] = {}
    for line_id, invoice_id, inv_period, issued_at, include_tax, cline_id, amount, gross in (
        InvoiceLine.objects.filter(
            contract_line_id__in=id_array(sla_lines),
            kind__in=CREDITED_KINDS,
            invoice__status__in=[InvoiceStatus.ISSUED, InvoiceStatus.PAID],
            invoice__period__gte=str(earliest),
            invoice__period__lte=str(period),
        )
        .order_by("invoice_id", "position")
        .values_list(
            "pk",
            "invoice_id",
            "invoice__period",
            "invoice__issued_at",
            "invoice__prices_include_tax",
            "contract_line_id",
            "amount",
            "gross_amount",
        )
    ):
        key = (invoice_id, cline_id)
        if key not in found:
            found[key] = _Issued(invoice_id, inv_period, issued_at, include_tax, cline_id, ZERO, [])
        found[key].charged += amount
        found[key].lines.append((line_id, gross))
    return list(found.values())


def _already_credited(invoice_id: int, contract_line_id: int) -> Decimal:
    """What the invoice's own SLA line and earlier SLA credit notes gave, on the line's tax basis."""
    on_invoice = (
        InvoiceLine.objects.filter(
            invoice_id=invoice_id, contract_line_id=contract_line_id, kind=LineKind.SLA_CREDIT
        ).aggregate(total=Sum("amount"))["total"]
        or ZERO
    )
    noted = (
        SlaCreditNote.objects.filter(invoice_id=invoice_id, contract_line_id=contract_line_id).aggregate(
            total=Sum("amount")
        )["total"]
        or ZERO
    )
    return -on_invoice + noted


def sla_late_credit_notes(
    *, customer_ids: list[int], period: Period, as_of: datetime.datetime, now: datetime.datetime, actor=None
) -> tuple[list[SlaCreditNote], dict[str, str]]:
    """Credit notes for SLA credits that incidents reported after issue added to issued invoices of
    these customers, ``period`` and the twelve months before. Returns the notes and, by invoice,
    what could not be credited."""
    candidates = _candidates(customer_ids, period)
    if not candidates:
        return [], {}
    by_period: dict[str, list[_Issued]] = defaultdict(list)
    for issued in candidates:
        by_period[issued.period].append(issued)
    notes, errors = [], {}
    tz = settings.BILLING_TIME_ZONE
    for invoice_period, issued_list in sorted(by_period.items()):
        start, end = Period.parse(invoice_period).bounds(tz)
        inputs = sla_inputs_load(
            line_ids={i.contract_line_id for i in issued_list}, start=start, end=end, as_of=as_of
        )
        for issued in issued_list:
            result = inputs.availability(issued.contract_line_id, start, end)
            if result is None or not any(i.reported_at > issued.issued_at for i in result.incidents):
                continue
            policy = inputs.lines[issued.contract_line_id].policy
            percent = policy.credit_percent(result.percent)
            if percent is None or issued.charged <= 0:
                continue
            owed = credit_amount(charged=issued.charged, credit_percent=percent)
            try:
                note = _credit(issued, owed=owed, percent=percent, result=result, now=now, actor=actor)
            except Exception as exc:  # one invoice's refusal must not block the others
                logger.exception("SLA credit note for invoice %s failed", issued.invoice_id)
                errors[str(issued.invoice_id)] = f"SLA credit note failed: {type(exc).__name__}: {exc}"
                continue
            if note is not None:
                notes.append(note)
    return notes, errors


@transaction.atomic
def _credit(issued: _Issued, *, owed: Decimal, percent: Decimal, result, now, actor) -> SlaCreditNote | None:
    invoice = Invoice.objects.select_for_update().get(pk=issued.invoice_id)
    rest = owed - _already_credited(issued.invoice_id, issued.contract_line_id)
    if rest <= 0:
        return None
    lines = {line.pk: line for line in InvoiceLine.objects.filter(pk__in=[pk for pk, _ in issued.lines])}
    target = lines[issued.lines[0][0]]
    gross = split_tax(rest, target.tax_rate, prices_include_tax=invoice.prices_include_tax).gross
    incidents = ", ".join(
        f"{i.card_uuid} {f'xid {i.xid_code}' if i.xid_code is not None else i.kind}" for i in result.incidents
    )
    reason = (
        f"SLA credit 服务水平赔付 {invoice.period}: availability {round_percent(result.percent)} %, "
        f"{round_percent(percent)} % of the line's charge, incidents reported after issue: {incidents}"
    )[:REASON_LENGTH]
    note = credit_note_create(
        invoice=invoice, actor=actor, reason=reason, now=now, lines=[CreditRequest(target, gross)]
    )
    return SlaCreditNote.objects.create(
        credit_note=note,
        invoice=invoice,
        contract_line_id=issued.contract_line_id,
        availability_percent=round_places(result.percent, 4),
        credit_percent=percent,
        amount=rest,
    )
