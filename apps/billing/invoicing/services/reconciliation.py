"""Reconciliation before issue: figures per draft, the flag, and finance's decision
(docs/hardware-truth.md#reconciliation).

A billing run reconciles each chunk's drafts right after writing them. A draft outside its
providers' tolerance is ``flagged``: nobody can issue it until finance decides — bill as reported,
bill the observed hours (the line re-rated by the rating engine with the agent's intervals), or
hold. A decision holds over later runs while the figures it was made on stay the same.
"""

from __future__ import annotations

import datetime
import functools
from collections import defaultdict

from django.conf import settings
from django.db import connection, transaction
from django.utils.translation import gettext

from apps.billing.invoicing.inputs import EPOCH, RECORD_MAX_SPAN, id_array
from apps.billing.invoicing.models import (
    Invoice,
    InvoiceLine,
    InvoiceStatus,
    ReconciliationCard,
    ReconciliationDecision,
    ReconciliationStatus,
)
from apps.billing.invoicing.reconciliation import (
    agent_records_exist,
    lines_to_reconcile,
    reconciliation_figures,
)
from apps.billing.invoicing.services.invoicing import _copy_lines, _set_totals, billing_inputs_load
from apps.contracts import pricing
from apps.core.errors import DomainError, InvalidState
from apps.core.periods import Period

FIGURES = (
    "billed_hours",
    "observed_hours",
    "matched_hours",
    "billed_not_observed_hours",
    "observed_not_billed_hours",
)
TOTALS = ["net_amount", "tax_amount", "total_amount"]
DECISION_FIELDS = [
    "reconciliation_status",
    "reconciliation_decision",
    "reconciliation_decided_by",
    "reconciliation_decided_at",
]


def _key(row: ReconciliationCard) -> tuple:
    return (row.contract_line_id, row.card_id, *(getattr(row, name) for name in FIGURES))


def invoice_reconcile(*, invoice_ids: list[int], changes: dict[str, dict] | None = None) -> dict[int, str]:
    """Recompute the discrepancy rows of these drafts and set their status (constant queries).

    ``not_needed`` when no line has agent evidence, ``matched`` when every card is within its
    provider's tolerance, else ``flagged`` — unless finance decided on exactly these figures, in
    which case the decision stands (and an ``observed`` decision is applied again to the lines a
    refresh just rewrote). Returns the new status by invoice id of the drafts that have or had
    figures (the others stay ``not_needed``).

    ``changes``: the run's draft changes ('customer currency' → before/after totals), corrected
    for the drafts whose observed rating was applied again (a refresh that changed nothing in the
    end is not a change).
    """
    if not invoice_ids:
        return {}
    with_evidence = agent_records_exist(invoice_ids=invoice_ids)
    fresh = reconciliation_figures(lines_to_reconcile(invoice_ids=invoice_ids) if with_evidence else [])
    by_invoice: dict[int, list[ReconciliationCard]] = defaultdict(list)
    for row in fresh:
        by_invoice[row.invoice_id].append(row)
    # Only drafts with figures now or a status from before need a look: without agents, none do.
    relevant = set(by_invoice) | set(
        Invoice.objects.filter(pk__in=id_array(invoice_ids), status=InvoiceStatus.DRAFT)
        .exclude(reconciliation_status=ReconciliationStatus.NOT_NEEDED)
        .values_list("pk", flat=True)
    )
    if not relevant:
        return {}
    reapply: list[Invoice] = []
    with transaction.atomic():
        drafts = list(
            Invoice.objects.select_for_update(of=("self",))
            .select_related("customer")
            .filter(pk__in=id_array(relevant), status=InvoiceStatus.DRAFT)
            .order_by("pk")
        )
        old: dict[int, set[tuple]] = defaultdict(set)
        for row in ReconciliationCard.objects.filter(invoice_id__in=id_array(inv.pk for inv in drafts)):
            old[row.invoice_id].add(_key(row))
        changed = []
        for invoice in drafts:
            rows = by_invoice.get(invoice.pk, [])
            before = tuple(getattr(invoice, name) for name in DECISION_FIELDS[:2])
            if not rows:
                status = ReconciliationStatus.NOT_NEEDED
            elif all(row.within_tolerance for row in rows):
                status = ReconciliationStatus.MATCHED
            elif (
                invoice.reconciliation_status == ReconciliationStatus.DECIDED
                and {_key(row) for row in rows} == old[invoice.pk]
            ):
                status = ReconciliationStatus.DECIDED
                if invoice.reconciliation_decision == ReconciliationDecision.OBSERVED:
                    reapply.append(invoice)
            else:
                status = ReconciliationStatus.FLAGGED
            if status != ReconciliationStatus.DECIDED:
                invoice.reconciliation_decision = ReconciliationDecision.NONE
                invoice.reconciliation_decided_by = None
                invoice.reconciliation_decided_at = None
            invoice.reconciliation_status = status
            if before != (status, invoice.reconciliation_decision):
                changed.append(invoice)
        ReconciliationCard.objects.filter(invoice_id__in=id_array(inv.pk for inv in drafts)).delete()
        draft_ids = {inv.pk for inv in drafts}
        _copy_rows([row for row in fresh if row.invoice_id in draft_ids])
        if changed:
            Invoice.objects.bulk_update(changed, DECISION_FIELDS)
        for invoice in reapply:
            _rerate(invoice, observed=True)
            Invoice.objects.filter(pk=invoice.pk).update(
                **{name: getattr(invoice, name) for name in TOTALS}, updated_at=invoice.updated_at
            )
            change = (changes or {}).get(f"{invoice.customer.code} {invoice.currency}")
            if change is not None:
                change["after"] = str(invoice.total_amount)
                if change["before"] == change["after"]:
                    del changes[f"{invoice.customer.code} {invoice.currency}"]
    return {inv.pk: inv.reconciliation_status for inv in drafts}


# COPY columns from the model, so a new field is written (or fails loudly) without a second list.
_ROW_FIELDS = tuple(f for f in ReconciliationCard._meta.concrete_fields if not f.primary_key)


def _copy_rows(rows: list[ReconciliationCard]) -> None:
    """Insert the rows with COPY (thousands per chunk where agents report every card)."""
    if not rows:
        return
    columns = ", ".join(f.column for f in _ROW_FIELDS)
    with (
        connection.cursor() as cursor,
        cursor.cursor.copy(f"COPY billing_reconciliationcard ({columns}) FROM STDIN") as copy,
    ):
        for row in rows:
            copy.write_row([getattr(row, f.attname) for f in _ROW_FIELDS])


@transaction.atomic
def invoice_reconciliation_decide(
    *, invoice: Invoice, decision: str, actor, now: datetime.datetime
) -> Invoice:
    """Finance's choice for a flagged draft: ``as_reported``, ``observed`` or ``hold``.

    ``observed`` re-rates the draft with the agent's intervals in place of the reported ones for
    the reconciled lines' cards; going back to ``as_reported`` or ``hold`` rates it as reported.
    The decision, who and when are kept on the invoice (and so in the audit trail).
    """
    if actor is None or not actor.has_perm("billing.decide_reconciliation"):
        raise DomainError(
            gettext("Only finance decides how a flagged draft is billed."),
            code="permission_denied",
            http_status=403,
        )
    if decision not in (
        ReconciliationDecision.AS_REPORTED,
        ReconciliationDecision.OBSERVED,
        ReconciliationDecision.HOLD,
    ):
        raise DomainError(gettext("Unknown decision %(decision)r.") % {"decision": decision}, code="invalid")
    invoice = Invoice.objects.select_for_update().get(pk=invoice.pk)
    if invoice.status != InvoiceStatus.DRAFT or invoice.reconciliation_status not in (
        ReconciliationStatus.FLAGGED,
        ReconciliationStatus.DECIDED,
    ):
        raise InvalidState(
            gettext("%(invoice)s has no reconciliation to decide (it is %(status)s, %(reconciliation)s).")
            % {
                "invoice": invoice,
                "status": invoice.status,
                "reconciliation": invoice.reconciliation_status,
            },
            code="invalid_state",
        )
    was_observed = invoice.reconciliation_decision == ReconciliationDecision.OBSERVED
    if decision == ReconciliationDecision.OBSERVED:
        _rerate(invoice, observed=True)
    elif was_observed:
        _rerate(invoice, observed=False)
    invoice.reconciliation_status = ReconciliationStatus.DECIDED
    invoice.reconciliation_decision = decision
    invoice.reconciliation_decided_by = actor
    invoice.reconciliation_decided_at = now
    invoice._change_reason = f"reconciliation: {decision}"
    invoice.save(update_fields=[*DECISION_FIELDS, *TOTALS, "updated_at"])
    return invoice


OBSERVED_SQL = """
WITH c AS (
    SELECT * FROM unnest(%(card_ids)s::bigint[], %(thresholds)s::numeric[]) AS c(card_id, threshold)
)
SELECT card_id,
       ARRAY(SELECT (extract(epoch FROM lower(x)) * 1000000)::bigint FROM unnest(merged) x),
       ARRAY(SELECT (extract(epoch FROM upper(x)) * 1000000)::bigint FROM unnest(merged) x)
  FROM (SELECT c.card_id, range_agg(tstzrange(greatest(u.start_at, %(start)s), least(u.end_at, %(end)s))) AS merged
          FROM c JOIN metering_usagerecord u ON u.card_id = c.card_id
         WHERE u.source = 'agent' AND u.voided_at IS NULL AND u.received_at <= %(received_to)s
           AND u.start_at < %(end)s AND u.start_at > %(reach)s AND u.end_at > %(start)s
           AND (c.threshold IS NULL OR u.utilization_percent >= c.threshold)
         GROUP BY c.card_id) by_card
"""


def observed_usage(
    thresholds: dict[int, object],
    start: datetime.datetime,
    end: datetime.datetime,
    *,
    received_to: datetime.datetime,
) -> dict[int, list[pricing.CardUsage]]:
    """The agent's intervals of each card (busy above its threshold when it has one), merged."""
    if not thresholds:
        return {}
    cards = sorted(thresholds)
    with connection.cursor() as cursor:
        cursor.execute(
            OBSERVED_SQL,
            {
                "card_ids": cards,
                "thresholds": [thresholds[card] for card in cards],
                "start": start,
                "end": end,
                "reach": start - RECORD_MAX_SPAN,
                "received_to": received_to,
            },
        )
        rows = cursor.fetchall()
    micros = functools.partial(datetime.timedelta, 0, 0)
    usage: dict[int, list[pricing.CardUsage]] = {card: [] for card in cards}
    for card_id, los, his in rows:
        intervals = tuple((EPOCH + micros(lo), EPOCH + micros(hi)) for lo, hi in zip(los, his, strict=True))
        usage[card_id] = [pricing.CardUsage(card_id, intervals)]
    return usage


def _rerate(invoice: Invoice, *, observed: bool) -> None:
    """Rewrite the draft's lines through the billing run's own rating code.

    With ``observed``, the reconciled lines' cards are rated from the agent's intervals; without,
    from the records the contract line bills (as a billing run would).
    """
    period = Period.parse(invoice.period)
    inputs = billing_inputs_load(
        customer_ids=[invoice.customer_id], period=period, as_of=invoice.usage_cutoff_at
    )
    rows = list(
        ReconciliationCard.objects.filter(invoice=invoice).values_list(
            "card_id", "contract_line__observed_busy_threshold_percent"
        )
    )
    if observed:
        start, end = period.bounds(settings.BILLING_TIME_ZONE)
        inputs.usage.update(observed_usage(dict(rows), start, end, received_to=invoice.usage_cutoff_at))
    planned = inputs.plan(invoice.customer_id, period).get(invoice.currency, [])
    InvoiceLine.objects.filter(invoice=invoice).delete()
    _copy_lines([(invoice.pk, position, p) for position, p in enumerate(planned, start=1)])
    usage_lines = dict(
        InvoiceLine.objects.filter(invoice=invoice, kind="usage").values_list("contract_line_id", "pk")
    )
    for contract_line_id, line_id in usage_lines.items():
        ReconciliationCard.objects.filter(invoice=invoice, contract_line_id=contract_line_id).update(
            invoice_line_id=line_id
        )
    _set_totals(invoice, planned)  # the caller saves them
