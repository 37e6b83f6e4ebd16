"""Reconciliation's reads: billed hours against the agent's observed hours, per card of a draft's
metered line (docs/hardware-truth.md#reconciliation).

One SQL statement for any number of lines: each line's allocated cards with their allocation
windows clipped to the line's service window, the union of the billed source's records (partner)
and of the agent's records (busy above the line's threshold where it has one) per card with
``range_agg``, and the three pieces of the two multiranges (``*`` and ``-``). Python only turns
seconds into hours and applies the provider's tolerance.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Q, Sum
from django.utils.translation import gettext

from apps.billing.invoicing.inputs import RECORD_MAX_SPAN, id_array
from apps.billing.invoicing.models import (
    Invoice,
    InvoiceLine,
    InvoiceStatus,
    LineKind,
    ReconciliationCard,
    ReconciliationDecision,
    ReconciliationStatus,
)
from apps.core.errors import DomainError, InvalidState
from apps.core.periods import Period

HOUR = Decimal(3600)
HOURS_QUANTUM = Decimal("0.000001")
HUNDRED = Decimal(100)

# Per card: its windows on the line (allocations clipped to the line's service window), the billed
# union (partner records) and the observed union (agent records), both clipped to the windows.
FIGURES_SQL = """
WITH l AS (
    SELECT * FROM unnest(%(line_ids)s::bigint[], %(cline_ids)s::bigint[], %(starts)s::timestamptz[],
                         %(ends)s::timestamptz[], %(cutoffs)s::timestamptz[], %(thresholds)s::numeric[])
           AS l(line_id, cline_id, w_start, w_end, cutoff, threshold)
), a AS (
    SELECT l.line_id, l.cutoff, l.threshold, coalesce(al.card_id, c.id) AS card_id, al.server_id,
           tstzrange(greatest(al.start_at, l.w_start), least(coalesce(al.end_at, l.w_end), l.w_end)) AS win
      FROM l JOIN contracts_allocation al ON al.line_id = l.cline_id AND al.firm
      LEFT JOIN inventory_card c ON al.card_id IS NULL AND c.server_id = al.server_id
     WHERE al.start_at < l.w_end AND (al.end_at IS NULL OR al.end_at > l.w_start)
), evidence AS (
    -- lines with at least one agent record on one of their cards: only those are compared (a
    -- LIMIT 1 probe per card, so a chunk without agents costs one index pass, not a second merge)
    SELECT DISTINCT a.line_id FROM a
     WHERE (SELECT true FROM metering_usagerecord u
             WHERE u.card_id = a.card_id AND u.source = 'agent' AND u.voided_at IS NULL
               AND u.received_at <= a.cutoff AND u.start_at < upper(a.win)
               AND u.start_at > lower(a.win) - %(span)s AND u.end_at > lower(a.win)
             LIMIT 1)
), ae AS (
    SELECT a.* FROM a JOIN evidence USING (line_id)
), records AS (
    SELECT a.line_id, a.card_id, u.source, tstzrange(u.start_at, u.end_at) * a.win AS r
      FROM ae a JOIN metering_usagerecord u ON u.card_id = a.card_id
     WHERE u.voided_at IS NULL AND u.received_at <= a.cutoff
       AND u.start_at < upper(a.win) AND u.start_at > lower(a.win) - %(span)s AND u.end_at > lower(a.win)
       AND (u.source = 'partner' OR a.threshold IS NULL OR u.utilization_percent >= a.threshold)
    UNION ALL
    SELECT a.line_id, a.card_id, u.source, tstzrange(u.start_at, u.end_at) * a.win AS r
      FROM ae a JOIN metering_usagerecord u ON u.server_id = a.server_id
     WHERE u.voided_at IS NULL AND u.received_at <= a.cutoff
       AND u.start_at < upper(a.win) AND u.start_at > lower(a.win) - %(span)s AND u.end_at > lower(a.win)
       AND (u.source = 'partner' OR a.threshold IS NULL OR u.utilization_percent >= a.threshold)
), cards AS (
    SELECT line_id, card_id, range_agg(win) AS win FROM ae GROUP BY line_id, card_id
), unions AS (
    SELECT line_id, card_id,
           coalesce(range_agg(r) FILTER (WHERE source = 'partner'), '{}'::tstzmultirange) AS billed,
           coalesce(range_agg(r) FILTER (WHERE source = 'agent'), '{}'::tstzmultirange) AS observed
      FROM records GROUP BY line_id, card_id
), m AS (
    SELECT c.line_id, c.card_id, c.win,
           coalesce(u.billed, '{}'::tstzmultirange) AS billed,
           coalesce(u.observed, '{}'::tstzmultirange) AS observed
      FROM cards c LEFT JOIN unions u USING (line_id, card_id)
)
SELECT m.line_id, m.card_id, p.reconciliation_tolerance_percent, p.reconciliation_tolerance_hours,
       (SELECT coalesce(sum(extract(epoch FROM upper(x) - lower(x))), 0) FROM unnest(m.win) x),
       (SELECT coalesce(sum(extract(epoch FROM upper(x) - lower(x))), 0) FROM unnest(m.billed) x),
       (SELECT coalesce(sum(extract(epoch FROM upper(x) - lower(x))), 0) FROM unnest(m.observed) x),
       (SELECT coalesce(sum(extract(epoch FROM upper(x) - lower(x))), 0) FROM unnest(m.billed * m.observed) x),
       (SELECT coalesce(sum(extract(epoch FROM upper(x) - lower(x))), 0) FROM unnest(m.billed - m.observed) x),
       (SELECT coalesce(sum(extract(epoch FROM upper(x) - lower(x))), 0) FROM unnest(m.observed - m.billed) x)
  FROM m JOIN inventory_card card ON card.id = m.card_id
  JOIN inventory_server s ON s.id = card.server_id
  JOIN providers_provider p ON p.id = s.provider_id
 ORDER BY m.line_id, m.card_id
"""


def hours(seconds) -> Decimal:
    return (Decimal(seconds) / HOUR).quantize(HOURS_QUANTUM, ROUND_HALF_UP)


def tolerance_hours(
    *, billed: Decimal, percent: Decimal, hours_per_month: Decimal, window_seconds, period_seconds
) -> Decimal:
    """max(percent × billed, hours per card-month × the card's share of the month on the line)."""
    by_percent = billed * percent / HUNDRED
    by_hours = hours_per_month * Decimal(window_seconds) / Decimal(period_seconds)
    return max(by_percent, by_hours).quantize(HOURS_QUANTUM, ROUND_HALF_UP)


@dataclass(frozen=True)
class LineToReconcile:
    invoice_id: int
    line_id: int
    contract_line_id: int
    start: datetime.datetime
    end: datetime.datetime
    cutoff: datetime.datetime
    threshold: Decimal | None
    period_seconds: int


# Any metering-agent record that could be evidence for a line of these periods: the partial index
# of agent records (``usage_agent_card_start``) answers at once, and holds nothing where no agent runs.
AGENT_RECORDS_SQL = """
SELECT EXISTS (
    SELECT 1 FROM metering_usagerecord u
     WHERE u.source = 'agent' AND u.voided_at IS NULL AND u.start_at < %(end)s AND u.start_at > %(reach)s
)
"""


def agent_records_exist(*, invoice_ids: list[int]) -> bool:
    """Whether the agent reported anything in the periods of these invoices (two queries).

    Every line's window lies inside its invoice's period, and evidence is an agent record in a
    window, so without one in any of the periods no line has evidence: reconciliation then skips
    reading the lines and probing each of their cards.
    """
    periods = (
        Invoice.objects.filter(pk__in=id_array(invoice_ids))
        .order_by()
        .values_list("period", flat=True)
        .distinct()
    )
    bounds = [Period.parse(period).bounds(settings.BILLING_TIME_ZONE) for period in periods]
    if not bounds:
        return False
    with connection.cursor() as cursor:
        cursor.execute(
            AGENT_RECORDS_SQL,
            {
                "reach": min(start for start, _ in bounds) - RECORD_MAX_SPAN,
                "end": max(end for _, end in bounds),
            },
        )
        return cursor.fetchone()[0]


def lines_to_reconcile(*, invoice_ids: list[int]) -> list[LineToReconcile]:
    """The metered usage lines of these drafts whose contract line bills the partner's reports."""
    rows = (
        InvoiceLine.objects.filter(
            invoice_id__in=id_array(invoice_ids),
            invoice__status=InvoiceStatus.DRAFT,
            kind=LineKind.USAGE,
            contract_line__term="hourly",
            contract_line__usage_source="partner",
        )
        .order_by("invoice_id", "position")
        .values_list(
            "invoice_id",
            "pk",
            "contract_line_id",
            "service_start_at",
            "service_end_at",
            "invoice__period",
            "invoice__usage_cutoff_at",
            "contract_line__observed_busy_threshold_percent",
        )
    )
    out = []
    periods: dict[str, int] = {}
    for invoice_id, pk, cline_id, start, end, period, cutoff, threshold in rows:
        if period not in periods:
            p_start, p_end = Period.parse(period).bounds(settings.BILLING_TIME_ZONE)
            periods[period] = int((p_end - p_start).total_seconds())
        out.append(LineToReconcile(invoice_id, pk, cline_id, start, end, cutoff, threshold, periods[period]))
    return out


def reconciliation_figures(lines: list[LineToReconcile]) -> list[ReconciliationCard]:
    """Unsaved rows, one per allocated card of each line that has agent evidence (one query).

    A line none of whose cards has an agent record in its window has no evidence: it gets no rows.
    A card the agent saw only idle (below the line's busy threshold) is evidence of no busy hours.
    """
    if not lines:
        return []
    by_id = {line.line_id: line for line in lines}
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL jit = off")
        cursor.execute(
            FIGURES_SQL,
            {
                "line_ids": [line.line_id for line in lines],
                "cline_ids": [line.contract_line_id for line in lines],
                "starts": [line.start for line in lines],
                "ends": [line.end for line in lines],
                "cutoffs": [line.cutoff for line in lines],
                "thresholds": [line.threshold for line in lines],
                "span": RECORD_MAX_SPAN,
            },
        )
        rows = cursor.fetchall()
    out = []
    for line_id, card_id, percent, hours_month, win, billed, observed, matched, bno, onb in rows:
        line = by_id[line_id]
        billed_h, bno_h, onb_h = hours(billed), hours(bno), hours(onb)
        tolerance = tolerance_hours(
            billed=billed_h,
            percent=percent,
            hours_per_month=hours_month,
            window_seconds=win,
            period_seconds=line.period_seconds,
        )
        out.append(
            ReconciliationCard(
                invoice_id=line.invoice_id,
                invoice_line_id=line_id,
                contract_line_id=line.contract_line_id,
                card_id=card_id,
                billed_hours=billed_h,
                observed_hours=hours(observed),
                matched_hours=hours(matched),
                billed_not_observed_hours=bno_h,
                observed_not_billed_hours=onb_h,
                tolerance_hours=tolerance,
                within_tolerance=bno_h + onb_h <= tolerance,
            )
        )
    return out


def reconciliation_cards_of(*, invoice: Invoice) -> list[ReconciliationCard]:
    """The discrepancy table of one invoice, with the card, its server and the line (one query)."""
    return list(
        ReconciliationCard.objects.filter(invoice=invoice)
        .select_related("card__server__provider", "invoice_line", "contract_line")
        .order_by("invoice_line__position", "card__server__serial", "card__slot")
    )


@dataclass(frozen=True)
class ReconciliationRate:
    billed_hours: Decimal
    matched_hours: Decimal

    @property
    def percent(self) -> Decimal | None:
        if not self.billed_hours:
            return None
        return (self.matched_hours * HUNDRED / self.billed_hours).quantize(Decimal("0.01"), ROUND_HALF_UP)


def provider_reconciliation_rate(*, provider_id: int, period: str) -> ReconciliationRate:
    """Matched hours / billed hours of a provider's cards on the period's invoices (not void)."""
    totals = ReconciliationCard.objects.filter(
        ~Q(invoice__status=InvoiceStatus.VOID),
        invoice__period=period,
        card__server__provider_id=provider_id,
    ).aggregate(billed=Sum("billed_hours"), matched=Sum("matched_hours"))
    return ReconciliationRate(totals["billed"] or Decimal(0), totals["matched"] or Decimal(0))


def reconciliation_issue_refusal(invoice: Invoice) -> DomainError | None:
    """Why a draft cannot be issued yet because of its reconciliation, or None."""
    if invoice.reconciliation_status == ReconciliationStatus.FLAGGED:
        return InvalidState(
            gettext(
                "%(invoice)s is flagged by reconciliation: billed hours differ from the hours the agent "
                "observed. Finance decides how to bill it first."
            )
            % {"invoice": invoice},
            code="reconciliation_flagged",
        )
    if (
        invoice.reconciliation_status == ReconciliationStatus.DECIDED
        and invoice.reconciliation_decision == ReconciliationDecision.HOLD
    ):
        return InvalidState(
            gettext("%(invoice)s is held after reconciliation.") % {"invoice": invoice},
            code="reconciliation_hold",
        )
    return None
