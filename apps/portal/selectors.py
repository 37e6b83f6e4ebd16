"""Reads only the portal makes: a customer's usage (list, CSV, card-hours per day), what is due,
and the efficiency table. Everything else comes from the domains' own selectors.

**Whose usage.** A customer's usage records are those a firm allocation of one of its contracts
covers (``apps.metering.selectors.covering_allocations``: the rule billing rates by), so a
record on a card the customer held last month is not shown to the customer who holds it now.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from decimal import Decimal
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import connection
from django.db.models import (
    Count,
    DecimalField,
    Exists,
    ExpressionWrapper,
    F,
    OuterRef,
    Prefetch,
    Q,
    QuerySet,
    Sum,
    Value,
)
from django.db.models.expressions import RawSQL
from django.db.models.functions import Coalesce, Greatest

from apps.billing.invoicing.models import Invoice, InvoiceStatus
from apps.billing.invoicing.selectors import overdue_q
from apps.contracts.models import Allocation, Contract, ContractLine
from apps.contracts.selectors import contract_list
from apps.core.money import ZERO, round_hours
from apps.core.periods import Period
from apps.inventory.models import Card, CardIncident, GpuModel, Server
from apps.metering.models import UsageRecord
from apps.metering.selectors import ContractUtilisation, contract_utilisation, covering_allocations

PORTAL_INVOICE_STATUSES = (InvoiceStatus.ISSUED, InvoiceStatus.PAID, InvoiceStatus.VOID)
CHART_DAYS = 90


def _tz() -> str:
    return settings.BILLING_TIME_ZONE


def _zone() -> ZoneInfo:
    return ZoneInfo(_tz())


# -- what is due ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class AmountDue:
    currency: str
    due_amount: Decimal
    overdue_amount: Decimal
    overdue_count: int


def customer_amounts_due(*, customer, today: datetime.date) -> list[AmountDue]:
    """Per currency: the amount due over the customer's issued invoices (total − voucher −
    credited − paid, never below zero per invoice) and the part past its due date. One query."""
    money = DecimalField(max_digits=16, decimal_places=2)
    due = Greatest(
        ExpressionWrapper(
            F("total_amount") - F("voucher_amount") - F("credited_amount") - F("paid_amount"),
            output_field=money,
        ),
        Value(ZERO, output_field=money),
    )
    overdue = overdue_q(today)
    rows = (
        Invoice.objects.filter(customer=customer, status=InvoiceStatus.ISSUED)
        .order_by()
        .values("currency")
        .annotate(
            due_amount=Sum(due),
            overdue_amount=Sum(due, filter=overdue),
            overdue_count=Count("pk", filter=overdue),
        )
        .order_by("currency")
    )
    return [
        AmountDue(r["currency"], r["due_amount"] or ZERO, r["overdue_amount"] or ZERO, r["overdue_count"])
        for r in rows
    ]


# -- usage ---------------------------------------------------------------------------------------
def _period_of_start() -> RawSQL:
    table = UsageRecord._meta.db_table
    return RawSQL(f"to_char(timezone(%s, {table}.start_at), 'YYYY-MM')", [_tz()])


def customer_usage(
    *,
    customer,
    period: Period | None = None,
    contract: Contract | None = None,
    hardware: str = "",
    invoiced: bool | None = None,
) -> QuerySet[UsageRecord]:
    """The customer's usage records (see the module doc), newest first, with their card, server
    and GPU model; optionally overlapping ``period``, covered by ``contract``'s allocations, on a
    card (NVML UUID) or server (serial) whose name contains ``hardware``, and invoiced or not.

    *Invoiced*: an issued or paid invoice of the customer, of the record's period or a later one
    (late usage), has a usage cutoff at or after the record's arrival (docs/rating.md#late-usage).
    """
    allocations = Allocation.objects.filter(line__contract__customer=customer)
    if contract is not None:
        allocations = allocations.filter(line__contract=contract)
    # The customer's hardware as constants first, so the usage table's card and server indexes
    # pick its records; the exact coverage test then runs on those only (docs/scaling.md#pages).
    hardware_rows = Allocation.objects.filter(pk__in=allocations.filter(firm=True).values("pk")).values_list(
        "server_id", "server__cards__id"
    )
    server_ids = sorted({server_id for server_id, _ in hardware_rows})
    card_ids = sorted({card_id for _, card_id in hardware_rows if card_id is not None})
    qs = (
        UsageRecord.objects.filter(voided_at__isnull=True)
        .filter(Q(server_id__in=server_ids) | Q(card_id__in=card_ids))
        .filter(Exists(covering_allocations(allocations)))
    )
    if period is not None:
        start, end = period.bounds(_tz())
        qs = qs.filter(start_at__lt=end, end_at__gt=start)
    if hardware:
        qs = qs.filter(
            Q(card__uuid__icontains=hardware)
            | Q(server__serial__icontains=hardware)
            | Q(card__server__serial__icontains=hardware)
        )
    if invoiced is not None:
        on_invoice = Exists(
            Invoice.objects.filter(
                customer=customer,
                status__in=[InvoiceStatus.ISSUED, InvoiceStatus.PAID],
                usage_cutoff_at__gte=OuterRef("received_at"),
                period__gte=OuterRef("start_period"),
            )
        )
        qs = qs.annotate(start_period=_period_of_start()).filter(on_invoice if invoiced else ~on_invoice)
    return qs.select_related("card__server__gpu_model", "server__gpu_model").order_by("-start_at", "-id")


USAGE_CSV_HEADER = (
    "event_id",
    "hardware",
    "gpu_model",
    "cards",
    "start_at",
    "end_at",
    "card_hours",
    "utilization_percent",
    "received_at",
)


def usage_csv_rows(queryset: QuerySet[UsageRecord], *, chunk_size: int = 2000):
    """The CSV rows of ``queryset`` (header first), read with a server-side cursor in chunks of
    ``chunk_size``: a month of records is never held in memory."""
    yield USAGE_CSV_HEADER
    rows = (
        queryset.select_related(None)
        .values_list(
            "event_id",
            "card__uuid",
            "server__serial",
            "card__server__gpu_model__name",
            "server__gpu_model__name",
            "server__card_count",
            "start_at",
            "end_at",
            "utilization_percent",
            "received_at",
        )
        .iterator(chunk_size=chunk_size)
    )
    for event_id, uuid, serial, card_model, server_model, card_count, start, end, util, received in rows:
        cards = 1 if uuid else card_count
        hours = round_hours(Decimal(int((end - start).total_seconds())) * cards / 3600)
        yield (
            event_id,
            uuid or serial,
            card_model or server_model,
            cards,
            start.isoformat(),
            end.isoformat(),
            hours,
            "" if util is None else util,
            received.isoformat(),
        )


@dataclass(frozen=True)
class DailyCardHours:
    days: list[datetime.date]
    models: list[str]
    hours: dict[tuple[datetime.date, str], Decimal]  # (day, GPU model) → card-hours


_DAILY_SQL = """
WITH records AS (
    SELECT u.start_at, u.end_at, g.name AS model,
           CASE WHEN u.card_id IS NULL THEN s.card_count ELSE 1 END AS cards
      FROM {usage} u
      LEFT JOIN {card} c ON c.id = u.card_id
      JOIN {server} s ON s.id = COALESCE(u.server_id, c.server_id)
      JOIN {gpu} g ON g.id = s.gpu_model_id
     WHERE u.id IN ({covered})
), pieces AS (
    -- each record split at the billing zone's midnights: one row per day it touches
    SELECT d.day::date AS day, r.model, r.cards, r.start_at, r.end_at,
           d.day::timestamp AT TIME ZONE %(tz)s AS day_start,
           (d.day + interval '1 day')::timestamp AT TIME ZONE %(tz)s AS day_end
      FROM records r
     CROSS JOIN LATERAL generate_series(
           (r.start_at AT TIME ZONE %(tz)s)::date,
           ((r.end_at - interval '1 microsecond') AT TIME ZONE %(tz)s)::date,
           interval '1 day') AS d(day)
)
SELECT day, model,
       sum(cards * extract(epoch FROM least(end_at, day_end) - greatest(start_at, day_start))) / 3600
  FROM pieces
 WHERE day BETWEEN %(first)s AND %(last)s
 GROUP BY day, model
 ORDER BY day, model
"""


def customer_daily_card_hours(*, customer, now: datetime.datetime, days: int = CHART_DAYS) -> DailyCardHours:
    """Card-hours per billing-zone day and GPU model over the ``days`` days up to ``now``'s day:
    each record's time split at midnight, a whole-server record counting for each card. One
    SQL statement, aggregated in PostgreSQL."""
    last = now.astimezone(_zone()).date()
    first = last - datetime.timedelta(days=days - 1)
    window_start = datetime.datetime.combine(first, datetime.time(), _zone())
    window_end = datetime.datetime.combine(last + datetime.timedelta(days=1), datetime.time(), _zone())
    covered = customer_usage(customer=customer).filter(start_at__lt=window_end, end_at__gt=window_start)
    covered_sql, covered_params = covered.select_related(None).order_by().values("id").query.sql_with_params()
    # The subquery's own %s placeholders become named ones so the statement takes one dict.
    names = [f"covered_{i}" for i in range(len(covered_params))]
    covered_sql = covered_sql.replace("%%", "%%%%") % tuple(f"%({name})s" for name in names)
    sql = _DAILY_SQL.format(
        usage=UsageRecord._meta.db_table,
        card=Card._meta.db_table,
        server=Server._meta.db_table,
        gpu=GpuModel._meta.db_table,
        covered=covered_sql,
    )
    with connection.cursor() as cursor:
        cursor.execute(
            sql, {"tz": _tz(), "first": first, "last": last, **dict(zip(names, covered_params, strict=True))}
        )
        rows = cursor.fetchall()
    hours = {(day, model): round_hours(Decimal(value)) for day, model, value in rows}
    return DailyCardHours(
        days=[first + datetime.timedelta(days=i) for i in range(days)],
        models=sorted({model for _, model in hours}),
        hours=hours,
    )


# -- efficiency ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class ContractEfficiency:
    contract: Contract
    utilisation: ContractUtilisation

    @property
    def idle_card_hours(self) -> Decimal:
        return max(ZERO, self.utilisation.allocated_card_hours - self.utilisation.used_card_hours)

    @property
    def working_card_hours(self) -> Decimal | None:
        """Used card-hours × the average GPU utilisation: the card time that did work."""
        u = self.utilisation
        if u.utilisation_percent is None:
            return None
        return round_hours(u.used_card_hours * u.utilisation_percent / 100)


def customer_efficiency(*, contracts: QuerySet[Contract], period: Period) -> list[ContractEfficiency]:
    """For each of ``contracts`` in force during ``period``: allocated (paid-for) card-hours,
    used card-hours and the average measured GPU utilisation (``contract_utilisation``, one
    statement per contract)."""
    start, end = period.bounds(_tz())
    in_force = contracts.filter(start_at__lt=end).filter(Q(end_at__isnull=True) | Q(end_at__gt=start))
    return [
        ContractEfficiency(contract, contract_utilisation(contract=contract, period=period))
        for contract in in_force.order_by("number", "version")
    ]


# -- contracts -----------------------------------------------------------------------------------
def portal_contracts(*, user) -> QuerySet[Contract]:
    """The contracts ``user`` may read (``contract_list``: no drafts, no pending approval) with
    their lines, GPU models, tax categories and firm allocations: four queries for any number."""
    lines = ContractLine.objects.select_related("gpu_model", "tax_category").order_by("position", "pk")
    allocations = (
        Allocation.objects.select_related("server", "card").filter(firm=True).order_by("start_at", "pk")
    )
    return (
        contract_list(user=user)
        .prefetch_related(
            Prefetch("lines", queryset=lines), Prefetch("lines__allocations", queryset=allocations)
        )
        .order_by("-start_at", "number", "version")
    )


def customer_incidents(*, customer, now: datetime.datetime) -> QuerySet[CardIncident]:
    """Hardware incidents of the cards the customer held while they held them: a firm allocation
    of one of the customer's contracts covers the card (whole server or that card) at some
    instant of the incident, an ongoing one counting until ``now``
    (docs/hardware-truth.md#sources-and-incidents). Newest first, card and server joined (one
    query per page)."""
    held = Allocation.objects.filter(
        Q(end_at__isnull=True) | Q(end_at__gt=OuterRef("started_at")),
        Q(card__isnull=True) | Q(card_id=OuterRef("card_id")),
        line__contract__customer=customer,
        firm=True,
        server_id=OuterRef("card__server_id"),
        start_at__lt=Coalesce(OuterRef("ended_at"), Value(now)),
    )
    return (
        CardIncident.objects.filter(Exists(held))
        .select_related("card", "card__server", "card__server__gpu_model")
        .order_by("-started_at", "-pk")
    )
