"""Billing a chunk of customers for a period: rate with the engine, write draft invoices in bulk.

One chunk costs a constant number of queries whatever its customers' lines or usage: contracts and
allocations are prefetched, usage is merged per card in one SQL statement, and the drafts are
written with bulk operations under per-customer advisory locks (taken in id order, so two runs
over the same customers queue instead of deadlocking). Issued invoices are never touched.
"""

from __future__ import annotations

import datetime
import functools
import logging
from collections import defaultdict
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F, Func, JSONField, Min, Value

from apps.billing.invoicing.descriptions import line_description
from apps.billing.invoicing.inputs import (
    LateWindow,
    LoadedContract,
    contracts_for,
    id_array,
    late_arrivals,
    merged_usage,
    summable_cards,
    windows_with_usage,
)
from apps.billing.invoicing.models import BillingRun, Invoice, InvoiceLine, InvoiceStatus
from apps.billing.invoicing.sla import SlaInputs, sla_credits, sla_inputs_load
from apps.contracts import pricing
from apps.core.money import ZERO, round_unit_price
from apps.core.periods import Period
from apps.customers.models import Customer

logger = logging.getLogger(__name__)

LATE_LOOKBACK_MONTHS = 12
ADVISORY_NAMESPACE = 4_200_001  # pg_advisory_xact_lock(namespace, customer_id)


@dataclass
class ChunkResult:
    created: int = 0
    refreshed: int = 0
    unchanged: int = 0
    errors: dict[str, str] = field(default_factory=dict)
    invoice_ids: list[int] = field(default_factory=list)
    # 'customer-code currency' → {"before": total or None, "after": total or None}: the drafts
    # the chunk created (before None), changed or removed (after None); unchanged ones are left out
    changes: dict[str, dict] = field(default_factory=dict)


@dataclass
class PlannedLine:
    contract_id: int
    contract_line_id: int | None
    charge: pricing.LineCharge
    description: str
    tax_classification: str
    prices_include_tax: bool

    def fields(self) -> dict[str, object]:
        """The stored line's values by ``InvoiceLine`` attribute name (all but id, invoice, position)."""
        c = self.charge
        return {
            "kind": c.kind,
            "contract_id": self.contract_id,
            "contract_line_id": self.contract_line_id,
            "description": self.description,
            "tax_classification": self.tax_classification,
            "quantity": round_unit_price(c.quantity),
            "unit": c.unit,
            "list_unit_price": round_unit_price(c.list_unit_price),
            "unit_price": round_unit_price(c.unit_price),
            "discount_amount": c.discount_amount,
            "amount": c.amount,
            "tax_rate": c.tax_rate,
            "tax_amount": c.tax.tax,
            "net_amount": c.tax.net,
            "gross_amount": c.tax.gross,
            "service_start_at": c.service_start,
            "service_end_at": c.service_end,
        }

    def values(self) -> tuple:
        """``fields()`` in ``LINE_VALUE_FIELDS`` order; a model field without a value is a ``KeyError``."""
        fields = self.fields()
        return tuple(fields[name] for name in LINE_VALUE_FIELDS)


def _tz() -> str:
    return settings.BILLING_TIME_ZONE


def _classification(loaded: LoadedContract, charge: pricing.LineCharge) -> str:
    if charge.line_id is not None:
        return loaded.lines[charge.line_id].fapiao_classification
    # the shortfall takes the highest-rate category among the contract's lines
    top = max(loaded.lines.values(), key=lambda line: line.tax_rate)
    return top.fapiao_classification


def invoice_plan(
    *,
    contracts: list[LoadedContract],
    period: Period,
    usage: dict[int, list[pricing.UsageRecord]],
    late: list[tuple[Period, dict[int, list[pricing.UsageRecord]], dict[int, list[pricing.UsageRecord]]]],
    agent_usage: dict[int, list[pricing.UsageRecord]] | None = None,
    sla: SlaInputs | None = None,
) -> dict[str, list[PlannedLine]]:
    """Invoice lines of one customer for ``period`` by currency (pure, apart from reading inputs).

    A card of a line that bills the agent's records takes them from ``agent_usage``; every other
    card its partner records from ``usage`` (docs/hardware-truth.md#reconciliation).
    """
    by_currency: dict[str, list[PlannedLine]] = defaultdict(list)
    bounds = period.bounds(_tz())
    agent_usage = agent_usage or {}
    for loaded in contracts:
        contract = loaded.contract
        records = [
            r
            for card_id in loaded.card_ids
            for r in (agent_usage if card_id in loaded.agent_card_ids else usage).get(card_id, ())
        ]
        charges = pricing.rate_contract(loaded.rating, period, records, tz=_tz())
        for charge in charges.all_lines:
            line = loaded.lines.get(charge.line_id) if charge.line_id else None
            by_currency[contract.currency].append(
                PlannedLine(
                    contract.pk,
                    charge.line_id,
                    charge,
                    line_description(contract, line, charge, str(period)),
                    _classification(loaded, charge),
                    contract.prices_include_tax,
                )
            )
        if sla is not None and sla.lines:
            # SLA credits follow the lines they credit (docs/hardware-truth.md#sla-credits-and-efficiency)
            for credit in sla_credits(
                sla=sla,
                contract_label=str(contract),
                positions={pk: line.position for pk, line in loaded.lines.items()},
                charges=list(charges.lines),
                period=str(period),
                start=bounds[0],
                end=bounds[1],
                prices_include_tax=contract.prices_include_tax,
                tz=ZoneInfo(_tz()),
            ):
                by_currency[contract.currency].append(
                    PlannedLine(
                        contract.pk,
                        credit.line_id,
                        credit.charge,
                        credit.description,
                        loaded.lines[credit.line_id].fapiao_classification,
                        contract.prices_include_tax,
                    )
                )
        # late usage is read from partner records: the agent-billed cards take none
        late_cards = loaded.card_ids - loaded.agent_card_ids
        for late_period, all_usage, billed_usage in late:
            all_records = [r for card_id in late_cards for r in all_usage.get(card_id, ())]
            if not all_records:
                continue
            billed = [r for card_id in late_cards for r in billed_usage.get(card_id, ())]
            for charge in pricing.rate_contract_late_usage(
                loaded.rating, late_period, all_records, billed, tz=_tz()
            ):
                if charge.amount == ZERO and charge.quantity == ZERO:
                    continue
                line = loaded.lines[charge.line_id]
                by_currency[contract.currency].append(
                    PlannedLine(
                        contract.pk,
                        charge.line_id,
                        charge,
                        line_description(contract, line, charge, str(late_period)),
                        _classification(loaded, charge),
                        contract.prices_include_tax,
                    )
                )
    return by_currency


def _late_inputs(customer_ids: list[int], contracts: dict[int, list[LoadedContract]], period: Period, as_of):
    """Per customer: [(earlier period, all usage, already billed usage)] for periods with late records.

    A period's usage is billed up to the latest usage cutoff of the customer's issued invoices from
    that period on; records received after it (and by ``as_of``) are late.
    """
    earliest = period
    for _ in range(LATE_LOOKBACK_MONTHS):
        earliest = earliest.previous()
    issued = Invoice.objects.filter(
        customer_id__in=id_array(customer_ids),
        status__in=[InvoiceStatus.ISSUED, InvoiceStatus.PAID],
        period__gte=str(earliest),
        period__lt=str(period),
        usage_cutoff_at__isnull=False,
    )
    suspects = _late_suspects(issued, contracts, as_of)
    if not suspects:
        return {}
    cutoffs: dict[int, dict[str, datetime.datetime]] = defaultdict(dict)
    for customer_id, invoice_period, cutoff in issued.filter(customer_id__in=id_array(suspects)).values_list(
        "customer_id", "period", "usage_cutoff_at"
    ):
        cutoffs[customer_id][invoice_period] = cutoff
    windows: list[tuple[int, Period, LateWindow]] = []
    periods: dict[str, tuple[Period, datetime.datetime, datetime.datetime]] = {}
    for customer_id, by_period in cutoffs.items():
        card_ids = frozenset(cid for loaded in contracts.get(customer_id, ()) for cid in loaded.card_ids)
        server_ids = frozenset(sid for loaded in contracts.get(customer_id, ()) for sid in loaded.server_ids)
        if not card_ids:
            continue
        latest: dict[str, datetime.datetime] = {}  # the latest cutoff from each period on
        cutoff = None
        for invoiced_period in sorted(by_period, reverse=True):
            cutoff = by_period[invoiced_period] if cutoff is None else max(cutoff, by_period[invoiced_period])
            latest[invoiced_period] = cutoff
        for invoiced_period in sorted(by_period):
            if invoiced_period not in periods:
                p = Period.parse(invoiced_period)
                periods[invoiced_period] = (p, *p.bounds(_tz()))
            p, start, end = periods[invoiced_period]
            windows.append(
                (customer_id, p, LateWindow(start, end, latest[invoiced_period], card_ids, server_ids))
            )
    # One query finds the few (customer, period) pairs with late records; only those are merged.
    with_usage = windows_with_usage([window for _, _, window in windows], as_of=as_of)
    result: dict[int, list] = defaultdict(list)
    for index, (customer_id, p, w) in enumerate(windows):
        if index not in with_usage:
            continue
        late = merged_usage(
            w.card_ids, w.server_ids, w.start, w.end, received_to=as_of, received_from=w.cutoff
        )
        if not late:
            continue
        all_usage = merged_usage(w.card_ids, w.server_ids, w.start, w.end, received_to=as_of)
        billed = merged_usage(w.card_ids, w.server_ids, w.start, w.end, received_to=w.cutoff)
        result[customer_id].append((p, all_usage, billed))
    return result


def _late_suspects(issued, contracts: dict[int, list[LoadedContract]], as_of) -> set[int]:
    """The chunk's customers that may have late usage: a superset, cheap to find, of those the exact
    screen (``windows_with_usage``) would pick; the others have none (docs/rating.md#late-usage).

    One aggregate gives each earlier month's earliest usage cutoff among ``issued``; one arrival scan
    reads the records of those months received after it. Their hardware names the suspects. A month
    some customer invoiced before it ended (an early issue) would make that scan read the rest of
    the month: its early customers are suspects outright, and the scan starts from the others'
    earliest cutoff. Most runs find no late record and skip the per-customer windows altogether.
    """
    firsts = (
        issued.order_by()
        .values("period")
        .annotate(first=Min("usage_cutoff_at"))
        .values_list("period", "first")
    )
    suspects: set[int] = set()
    spans: dict[tuple[datetime.datetime, datetime.datetime], datetime.datetime] = {}
    for text, first in sorted(firsts):
        start, end = Period.parse(text).bounds(_tz())
        if first >= end:
            spans[(start, end)] = first
            continue
        rows = list(issued.filter(period=text).values_list("customer_id", "usage_cutoff_at"))
        suspects |= {customer_id for customer_id, cutoff in rows if cutoff < end}
        after = [cutoff for _, cutoff in rows if cutoff >= end]
        if after:
            spans[(start, end)] = min(after)
    arrivals = late_arrivals(spans, as_of=as_of) if spans else []
    if arrivals:
        by_card: dict[int, set[int]] = defaultdict(set)
        by_server: dict[int, set[int]] = defaultdict(set)
        for customer_id, loaded_list in contracts.items():
            for loaded in loaded_list:
                for card_id in loaded.card_ids:
                    by_card[card_id].add(customer_id)
                for server_id in loaded.server_ids:
                    by_server[server_id].add(customer_id)
        for _, _, card_id, server_id, _ in arrivals:
            suspects |= (
                by_card.get(card_id, set()) if card_id is not None else by_server.get(server_id, set())
            )
    return suspects


def _has_issued_late_periods(customer_ids: list[int], period: Period) -> bool:
    return Invoice.objects.filter(
        customer_id__in=id_array(customer_ids),
        status__in=[InvoiceStatus.ISSUED, InvoiceStatus.PAID],
        period__lt=str(period),
    ).exists()


@dataclass
class ChunkInputs:
    """Everything rating needs for some customers and a period, read in a constant number of queries."""

    contracts: dict[int, list[LoadedContract]]
    usage: dict[int, list[pricing.CardMicros]]
    late: dict[int, list]
    sla: SlaInputs = field(default_factory=SlaInputs)
    agent_usage: dict[int, list[pricing.CardMicros]] = field(default_factory=dict)

    def plan(self, customer_id: int, period: Period) -> dict[str, list[PlannedLine]]:
        return invoice_plan(
            contracts=self.contracts.get(customer_id, []),
            period=period,
            usage=self.usage,
            late=self.late.get(customer_id, []),
            sla=self.sla,
            agent_usage=self.agent_usage,
        )


def billing_inputs_load(*, customer_ids: list[int], period: Period, as_of: datetime.datetime) -> ChunkInputs:
    """Contracts, merged usage received by ``as_of`` and late usage of these customers for ``period``."""
    start, end = period.bounds(_tz())
    contracts = contracts_for(customer_ids, start, end)
    loaded_all = [loaded for loaded_list in contracts.values() for loaded in loaded_list]
    all_cards = {cid for loaded in loaded_all for cid in loaded.card_ids}
    all_servers = {sid for loaded in loaded_all for sid in loaded.server_ids}
    summed = summable_cards(loaded_all, start, end)
    usage = merged_usage(all_cards, all_servers, start, end, received_to=as_of, summed=summed)
    agent_cards = {cid for loaded in loaded_all for cid in loaded.agent_card_ids}
    agent_usage = (
        merged_usage(agent_cards, set(), start, end, received_to=as_of, source="agent", summed=summed)
        if agent_cards
        else {}
    )
    late = (
        _late_inputs(customer_ids, contracts, period, as_of)
        if _has_issued_late_periods(customer_ids, period)
        else {}
    )
    sla = sla_inputs_load(
        line_ids=[line_id for loaded in loaded_all for line_id in loaded.lines],
        start=start,
        end=end,
        as_of=as_of,
    )
    return ChunkInputs(contracts=contracts, usage=usage, late=late, agent_usage=agent_usage, sla=sla)


def invoice_drafts_refresh(
    *, run: BillingRun, customer_ids: list[int], inputs: ChunkInputs | None = None
) -> ChunkResult:
    """Create or refresh the draft invoices of ``customer_ids`` for the run's period.

    ``inputs``: the customers' ``billing_inputs_load`` for the run, when the caller read them ahead.
    """
    period = Period.parse(run.period)
    customer_ids = sorted(customer_ids)
    result = ChunkResult()
    if inputs is None:
        inputs = billing_inputs_load(customer_ids=customer_ids, period=period, as_of=run.as_of)
    contracts = inputs.contracts

    plans: dict[int, dict[str, list[PlannedLine]]] = {}
    codes = {}
    for customer_id in customer_ids:
        loaded_list = contracts.get(customer_id, [])
        if loaded_list:
            codes[customer_id] = loaded_list[0].contract.customer_code
        try:
            plans[customer_id] = inputs.plan(customer_id, period)
        except Exception as exc:  # one customer's bad data must not block the others
            logger.exception("billing %s failed for customer %s", run.period, customer_id)
            result.errors[codes.get(customer_id, str(customer_id))] = f"{type(exc).__name__}: {exc}"
    try:
        _write(run, period, plans, result)
    except Exception:
        # Fall back to one transaction per customer so one failure cannot block the chunk.
        logger.exception("chunk write failed; retrying customer by customer")
        result.created = result.refreshed = result.unchanged = 0
        result.invoice_ids = []
        result.changes = {}
        for customer_id, plan in plans.items():
            try:
                _write(run, period, {customer_id: plan}, result)
            except Exception as exc:
                result.errors[codes.get(customer_id, str(customer_id))] = f"{type(exc).__name__}: {exc}"
    return result


@transaction.atomic
def _write(
    run: BillingRun, period: Period, plans: dict[int, dict[str, list[PlannedLine]]], result: ChunkResult
):
    customer_ids = sorted(plans)
    if not customer_ids:
        return
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_advisory_xact_lock(%s, id::int) FROM unnest(%s::bigint[]) AS id ORDER BY id",
            [ADVISORY_NAMESPACE, customer_ids],
        )
    existing = {
        (inv.customer_id, inv.currency): inv
        for inv in Invoice.objects.select_for_update()
        .filter(customer_id__in=id_array(customer_ids), period=str(period))
        .exclude(status=InvoiceStatus.VOID)
    }
    draft_ids = [inv.pk for inv in existing.values() if inv.status == InvoiceStatus.DRAFT]
    current_lines: dict[int, list[tuple]] = defaultdict(list)
    for line in InvoiceLine.objects.filter(invoice_id__in=id_array(draft_ids)).order_by(
        "invoice_id", "position"
    ):
        current_lines[line.invoice_id].append(_stored_values(line))

    include_tax = {}
    new_invoices: list[tuple[Invoice, list[PlannedLine]]] = []
    refresh: list[tuple[Invoice, list[PlannedLine]]] = []
    to_delete: list[int] = []
    for customer_id in customer_ids:
        plan = plans[customer_id]
        for currency, planned in plan.items():
            invoice = existing.pop((customer_id, currency), None)
            include_tax[(customer_id, currency)] = _include_tax(planned)
            if invoice is None:
                invoice = _new_draft(
                    customer_id=customer_id,
                    currency=currency,
                    period=str(period),
                    billing_run_id=run.pk,
                    usage_cutoff_at=run.as_of,
                )
                new_invoices.append((invoice, planned))
            elif invoice.status != InvoiceStatus.DRAFT:
                result.unchanged += 1
            elif current_lines.get(invoice.pk, []) == [p.values() for p in planned]:
                result.unchanged += 1
                result.invoice_ids.append(invoice.pk)
            else:
                refresh.append((invoice, planned))
    # Drafts with nothing left to bill (a contract ended or was voided) go away.
    to_delete = [
        inv.pk
        for inv in existing.values()
        if inv.status == InvoiceStatus.DRAFT
        and inv.customer_id in plans
        and not plans[inv.customer_id].get(inv.currency)
    ]
    if to_delete:
        Invoice.objects.filter(pk__in=to_delete, status=InvoiceStatus.DRAFT).delete()
    removed = [inv for inv in existing.values() if inv.pk in to_delete]
    before = {(inv.customer_id, inv.currency): inv.total_amount for inv, _ in refresh}

    for invoice, planned in new_invoices + refresh:
        _set_totals(invoice, planned)
        invoice.prices_include_tax = include_tax[(invoice.customer_id, invoice.currency)]
        invoice.billing_run_id = run.pk
        invoice.usage_cutoff_at = run.as_of
    _copy_invoices([inv for inv, _ in new_invoices])
    if refresh:
        InvoiceLine.objects.filter(invoice_id__in=id_array(inv.pk for inv, _ in refresh)).delete()
        Invoice.objects.bulk_update(
            [inv for inv, _ in refresh],
            [
                "net_amount",
                "tax_amount",
                "total_amount",
                "prices_include_tax",
                "billing_run",
                "usage_cutoff_at",
                "updated_at",
            ],
        )
    _copy_lines(
        [
            (invoice.pk, position, p)
            for invoice, planned in new_invoices + refresh
            for position, p in enumerate(planned, start=1)
        ]
    )
    result.created += len(new_invoices)
    result.refreshed += len(refresh)
    result.invoice_ids.extend(inv.pk for inv, _ in new_invoices + refresh)
    result.changes.update(_draft_changes(new_invoices + refresh, removed, before))


def _draft_changes(
    written: list[tuple[Invoice, list[PlannedLine]]], removed: list[Invoice], before: dict
) -> dict[str, dict]:
    """What the run changed per draft: total before (None: new) and after (None: removed)."""
    invoices = [inv for inv, _ in written] + removed
    if not invoices:
        return {}
    codes = dict(
        Customer.objects.filter(pk__in=id_array({inv.customer_id for inv in invoices})).values_list(
            "pk", "code"
        )
    )

    def money(value) -> str | None:
        return None if value is None else str(value)

    changes = {}
    for inv in invoices:
        gone = any(inv is r for r in removed)
        changes[f"{codes[inv.customer_id]} {inv.currency}"] = {
            "before": money(inv.total_amount if gone else before.get((inv.customer_id, inv.currency))),
            "after": money(None if gone else inv.total_amount),
        }
    return changes


def _include_tax(planned: list[PlannedLine]) -> bool:
    # gross == amount exactly when the amount already includes the tax
    return (
        all(p.charge.tax.gross == p.charge.amount for p in planned if p.charge.tax.tax) if planned else True
    )


def _set_totals(invoice: Invoice, planned: list[PlannedLine]) -> None:
    invoice.net_amount = sum((p.charge.tax.net for p in planned), ZERO)
    invoice.tax_amount = sum((p.charge.tax.tax for p in planned), ZERO)
    invoice.total_amount = sum((p.charge.tax.gross for p in planned), ZERO)
    invoice.updated_at = datetime.datetime.now(datetime.UTC)


_INVOICE_CONCRETE = tuple(Invoice._meta.concrete_fields)
_INVOICE_POSITION = {f.attname: index for index, f in enumerate(_INVOICE_CONCRETE)}
# a mutable default (the fapiao snapshot's dict) is made afresh for every draft
_INVOICE_FRESH_DEFAULTS = tuple(index for index, f in enumerate(_INVOICE_CONCRETE) if callable(f.default))


@functools.cache
def _invoice_defaults() -> tuple:
    return tuple(f.get_default() for f in _INVOICE_CONCRETE)


def _new_draft(**values) -> Invoice:
    """``Invoice(**values)``, built positionally from the fields' defaults: Django's fast path (the
    one rows loaded from the database take) at a third of the cost; a chunk makes thousands."""
    row = list(_invoice_defaults())
    for index in _INVOICE_FRESH_DEFAULTS:
        row[index] = _INVOICE_CONCRETE[index].get_default()
    for name, value in values.items():
        row[_INVOICE_POSITION[name]] = value
    return Invoice(*row)


# The COPY column lists come from the models, so a new field is written (or fails loudly) without
# a second list to update. Invoice columns left out are the ones a draft leaves NULL.
_INVOICE_NULL_ON_DRAFT = frozenset(
    {"number", "issued_on", "due_on", "issued_at", "paid_at", "voided_at", "reminder_sent_on"}
)
INVOICE_FIELDS = tuple(
    f for f in Invoice._meta.concrete_fields if not f.primary_key and f.attname not in _INVOICE_NULL_ON_DRAFT
)
INVOICE_COLUMNS = tuple(f.column for f in INVOICE_FIELDS)
# COPY adapts plain values itself (as _copy_lines relies on); only JSON needs the field's preparation
_INVOICE_JSON_FIELDS = frozenset(f.attname for f in INVOICE_FIELDS if f.get_internal_type() == "JSONField")


def _copy_invoices(invoices: list[Invoice]) -> None:
    """Insert new drafts with COPY, their ids drawn from the table's sequence first (one query);
    the bulk path of a chunk.

    The partial unique index on (customer, currency, period) still guards against doubles: the
    caller holds the customers' advisory locks, and a concurrent writer fails the whole chunk.
    """
    if not invoices:
        return
    now = datetime.datetime.now(datetime.UTC)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT nextval(pg_get_serial_sequence('billing_invoice', 'id')) FROM generate_series(1, %s)",
            [len(invoices)],
        )
        for inv, (pk,) in zip(invoices, cursor.fetchall(), strict=True):
            inv.pk, inv.status, inv.created_at, inv.updated_at = pk, InvoiceStatus.DRAFT, now, now
            inv._state.adding = False
        json_fields = [f.attname in _INVOICE_JSON_FIELDS for f in INVOICE_FIELDS]
        with cursor.cursor.copy(
            f"COPY billing_invoice (id, {', '.join(INVOICE_COLUMNS)}) FROM STDIN"
        ) as copy:
            for inv in invoices:
                values = inv.__dict__
                copy.write_row(
                    [
                        inv.pk,
                        *(
                            f.get_db_prep_save(values[f.attname], connection)
                            if is_json
                            else values[f.attname]
                            for f, is_json in zip(INVOICE_FIELDS, json_fields, strict=True)
                        ),
                    ]
                )
        _analyze_if_planned_empty(cursor, "billing_invoice")


def _analyze_if_planned_empty(cursor, table: str) -> None:
    """``ANALYZE`` ``table`` when PostgreSQL's statistics say it is empty (vacuumed or analysed
    while it was), now that rows went in (docs/scaling.md#billing).

    On such a table the planner reads ``WHERE id = $1`` as a sequential scan, and the foreign-key
    checks of the lines — planned once per connection and kept — then scan every draft written so
    far, for every line, as does the next chunk's look-up of its customers' drafts: 10,000
    customers in chunks of 250 took 9.0 s instead of 4.4 s. The statistics of a table that has rows
    are left to autovacuum.
    """
    cursor.execute("SELECT reltuples = 0 FROM pg_class WHERE oid = %s::regclass", [table])
    if cursor.fetchone()[0]:
        cursor.execute(f"ANALYZE {table}")


LINE_FIELDS = tuple(f for f in InvoiceLine._meta.concrete_fields if not f.primary_key)
LINE_COLUMNS = tuple(f.column for f in LINE_FIELDS)
_LINE_ATTNAMES = tuple(f.attname for f in LINE_FIELDS)
# What a refresh compares to tell whether a draft's line changed: all but its invoice and place.
LINE_VALUE_FIELDS = tuple(f.attname for f in LINE_FIELDS if f.attname not in ("invoice_id", "position"))


def _copy_lines(rows: list[tuple[int, int, PlannedLine]]) -> None:
    """Insert invoice lines with PostgreSQL COPY (the bulk path; constraints and triggers still apply)."""
    if not rows:
        return
    with (
        connection.cursor() as cursor,
        cursor.cursor.copy(f"COPY billing_invoiceline ({', '.join(LINE_COLUMNS)}) FROM STDIN") as copy,
    ):
        for invoice_id, position, planned in rows:
            values = planned.fields()
            values["invoice_id"], values["position"] = invoice_id, position
            copy.write_row([values[name] for name in _LINE_ATTNAMES])
    with connection.cursor() as cursor:
        _analyze_if_planned_empty(cursor, "billing_invoiceline")


def _stored_values(line: InvoiceLine) -> tuple:
    return tuple(getattr(line, name) for name in LINE_VALUE_FIELDS)


def billing_run_progress_record(*, run_id: int, result: ChunkResult, customers: int) -> None:
    """Add a chunk's counts, errors and draft changes to its run: one UPDATE of atomic increments and
    JSON merges (``||``), safe with parallel workers; a chunk sends only its own changes."""
    fields = {
        "customers_done": F("customers_done") + customers,
        "invoices_created": F("invoices_created") + result.created,
        "invoices_refreshed": F("invoices_refreshed") + result.refreshed,
        "invoices_unchanged": F("invoices_unchanged") + result.unchanged,
    }
    if result.errors:
        fields["errors"] = _json_merged("errors", result.errors)
    if result.changes:
        fields["draft_changes"] = _json_merged("draft_changes", result.changes)
    BillingRun.objects.filter(pk=run_id).update(**fields)


def _json_merged(name: str, added: dict) -> Func:
    """``name || added`` as SQL: the stored object with ``added``'s keys put in (theirs win)."""
    return Func(
        F(name), Value(added, output_field=JSONField()), arg_joiner=" || ", template="(%(expressions)s)"
    )
