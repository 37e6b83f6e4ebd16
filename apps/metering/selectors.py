"""Reads of usage: hardware lookups for ingestion, rated/unrated (docs/rating.md#unrated-usage), invoiced
and late usage (docs/rating.md#late-usage), and the telemetry of a contract (the portal's efficiency view).

**Coverage.** A firm allocation *covers* a usage record when it overlaps the record's interval
on the record's hardware: for a card record, an allocation of that card or of its whole server;
for a server record, an allocation of that server whole or of any of its cards (a server record
counts for each of its cards). A record is **rated** when at least one firm allocation covers it
(even partly: time outside every allocation is simply not billed) and **unrated** when none does.
Voided records are neither: they are out of billing.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from decimal import Decimal

from django.conf import settings
from django.db import connection
from django.db.models import Count, Exists, F, OuterRef, Q, QuerySet
from django.db.models.functions import Coalesce

from apps.billing.models import Invoice, InvoiceStatus
from apps.contracts.models import Allocation
from apps.core.money import round_hours, round_percent
from apps.core.periods import Period, periods_between
from apps.inventory.models import Card

from .models import UsageRecord

LATE_LOOKBACK_MONTHS = (
    12  # billing looks back as far for late usage (apps.billing.invoicing.services.invoicing)
)


def _tz() -> str:
    return settings.BILLING_TIME_ZONE


# -- ingestion lookups ---------------------------------------------------------------------------
_CARDS_SQL = """
SELECT c.uuid, c.id, s.provider_id
  FROM inventory_card c JOIN inventory_server s ON s.id = c.server_id
 WHERE c.uuid = ANY(%s::text[]) AND s.provider_id = %s
"""
_SERVERS_SQL = (
    "SELECT serial, id, provider_id FROM inventory_server WHERE serial = ANY(%s::text[]) AND provider_id = %s"
)
# The event ids of every month are in ``metering_usageevent`` (docs/partitions.md#idempotency).
# One probe of its unique index per event id, in index order, whatever the table's statistics say
# (``event_id = ANY(…)`` picks a scan of all the provider's rows when they are stale or many).
_STORED_HASHES_SQL = """
SELECT e.id, u.content_hash
  FROM (SELECT id FROM unnest(%s::text[]) AS id ORDER BY id COLLATE "C") AS e
  JOIN LATERAL (SELECT content_hash FROM metering_usageevent
                 WHERE provider_id = %s AND event_id = e.id
                OFFSET 0) AS u ON true
"""


def text_array(values: list[str]) -> str:
    """A PostgreSQL ``text[]`` literal (much faster than adapting a long list element by element)."""
    if not values:
        return "{}"
    quoted = []
    for value in values:
        if "\\" in value or '"' in value:
            value = value.replace("\\", "\\\\").replace('"', '\\"')
        quoted.append(value)
    return '{"' + '","'.join(quoted) + '"}'


def usage_hardware_index(
    *, provider_id: int, card_uuids: list[str], serials: list[str]
) -> tuple[dict[str, tuple[int, int]], dict[str, tuple[int, int]]]:
    """The provider's own cards and servers named in a batch: ``uuid → (card id, provider id)``
    and ``serial → (server id, provider id)``; one query each (none when nothing is named)."""
    cards: dict[str, tuple[int, int]] = {}
    servers: dict[str, tuple[int, int]] = {}
    with connection.cursor() as cursor:
        if card_uuids:
            cursor.execute(_CARDS_SQL, [text_array(card_uuids), provider_id])
            cards = {uuid: (card_id, owner) for uuid, card_id, owner in cursor.fetchall()}
        if serials:
            cursor.execute(_SERVERS_SQL, [text_array(serials), provider_id])
            servers = {serial: (server_id, owner) for serial, server_id, owner in cursor.fetchall()}
    return cards, servers


def server_card_ids(server) -> set[int]:
    """The ids of the server's cards (an agent key reports these only)."""
    return set(Card.objects.filter(server=server).values_list("pk", flat=True))


def usage_stored_hashes(*, provider_id: int, event_ids: list[str]) -> dict[str, str]:
    """``event id → content hash`` of the provider's stored records among ``event_ids``."""
    if not event_ids:
        return {}
    with connection.cursor() as cursor:
        cursor.execute(_STORED_HASHES_SQL, [text_array(event_ids), provider_id])
        return dict(cursor.fetchall())


# -- coverage ------------------------------------------------------------------------------------
def covering_allocations(allocations: QuerySet | None = None) -> QuerySet:
    """Firm allocations covering the outer ``UsageRecord`` (for ``Exists``; see the module doc).

    Every allocation has its server set (for a card, the card's server), so the hardware test is:
    same server, and the allocation is whole-server, or the record is a server record, or the cards
    match.
    """
    allocations = Allocation.objects.all() if allocations is None else allocations
    return allocations.filter(
        Q(end_at__isnull=True) | Q(end_at__gt=OuterRef("start_at")),
        Q(card_id__isnull=True) | Q(card_id=Coalesce(OuterRef("card_id"), F("card_id"))),
        firm=True,
        server_id=Coalesce(OuterRef("server_id"), OuterRef("card__server_id")),
        start_at__lt=OuterRef("end_at"),
    )


def rated_usage_condition() -> Exists:
    """``Exists`` that is true for rated records: ``qs.filter(rated_usage_condition())``; negate
    it (``~``) for unrated ones."""
    return Exists(covering_allocations())


def usage_overlapping(queryset: QuerySet, start: datetime.datetime, end: datetime.datetime) -> QuerySet:
    return queryset.filter(start_at__lt=end, end_at__gt=start)


def unrated_usage(
    *,
    provider=None,
    start: datetime.datetime | None = None,
    end: datetime.datetime | None = None,
) -> QuerySet:
    """Records (not voided) that no firm allocation covers, newest first; optionally of one
    provider and overlapping ``[start, end)``."""
    qs = UsageRecord.objects.filter(voided_at__isnull=True)
    if provider is not None:
        qs = qs.filter(provider=provider)
    if start is not None:
        qs = qs.filter(end_at__gt=start)
    if end is not None:
        qs = qs.filter(start_at__lt=end)
    return qs.filter(~rated_usage_condition()).select_related("provider", "card", "server")


def unrated_usage_counts(
    *, start: datetime.datetime | None = None, end: datetime.datetime | None = None
) -> list[dict]:
    """Per provider with unrated usage: ``{"provider_id", "provider_code", "records"}``, by code."""
    return list(
        unrated_usage(start=start, end=end)
        .order_by()
        .values("provider_id", provider_code=F("provider__code"))
        .annotate(records=Count("id"))
        .order_by("provider_code")
    )


def unrated_usage_customers(*, contracts: QuerySet) -> list[dict]:
    """Customers of ``contracts`` with unrated usage on hardware those contracts were ever allocated
    (usage outside every firm allocation: before, after or between them), ``{"customer_id",
    "customer_code", "customer_name", "records"}`` by code; two queries whatever the numbers."""
    servers: dict[int, set] = {}
    customers: dict[int, tuple[str, str]] = {}
    for server_id, customer_id, code, name in (
        Allocation.objects.filter(line__contract__in=contracts)
        .values_list(
            "server_id",
            "line__contract__customer_id",
            "line__contract__customer__code",
            "line__contract__customer__name",
        )
        .distinct()
    ):
        servers.setdefault(server_id, set()).add(customer_id)
        customers[customer_id] = (code, name)
    if not servers:
        return []
    per_server = (
        unrated_usage()
        .annotate(hardware_server_id=Coalesce("server_id", "card__server_id"))
        .filter(hardware_server_id__in=list(servers))
        .order_by()
        .values("hardware_server_id")
        .annotate(records=Count("id"))
    )
    records: dict[int, int] = {}
    for row in per_server:
        for customer_id in servers[row["hardware_server_id"]]:
            records[customer_id] = records.get(customer_id, 0) + row["records"]
    rows = [
        {
            "customer_id": pk,
            "customer_code": customers[pk][0],
            "customer_name": customers[pk][1],
            "records": n,
        }
        for pk, n in records.items()
    ]
    return sorted(rows, key=lambda row: row["customer_code"])


# -- invoiced and late usage ---------------------------------------------------------------------
def _record_periods(record: UsageRecord) -> list[str]:
    return [str(p) for p in periods_between(record.start_at, record.end_at, _tz())]


def usage_invoice_covering(*, record: UsageRecord) -> Invoice | None:
    """An issued (or paid) invoice that billed ``record``, if any.

    A record is on an invoice when the invoice's customer held a firm allocation covering it, the
    invoice's period overlaps the record, and the invoice's usage cutoff is at or after the
    record's arrival (usage received up to the cutoff is on the invoice).
    """
    # The coverage rule of covering_allocations(), for one known record.
    customers = Allocation.objects.filter(
        Q(end_at__isnull=True) | Q(end_at__gt=record.start_at),
        firm=True,
        server_id=record.server_id or record.card.server_id,
        start_at__lt=record.end_at,
    )
    if record.card_id is not None:
        customers = customers.filter(Q(card_id__isnull=True) | Q(card_id=record.card_id))
    return (
        Invoice.objects.filter(
            status__in=[InvoiceStatus.ISSUED, InvoiceStatus.PAID],
            usage_cutoff_at__gte=record.received_at,
            period__in=_record_periods(record),
            customer_id__in=customers.values("line__contract__customer_id"),
        )
        .order_by("period")
        .first()
    )


def late_usage(
    *, customer, as_of: datetime.datetime, lookback_months: int = LATE_LOOKBACK_MONTHS
) -> QuerySet:
    """Usage of ``customer``'s hardware that arrived after its period was invoiced: pending for the
    next billing run, which bills it as "late usage for YYYY-MM" (docs/rating.md#late-usage).

    For each period P (within ``lookback_months`` before ``as_of``'s period) with an issued or paid
    invoice of the customer, usage of P is billed up to the latest usage cutoff of the customer's
    issued invoices from P on (a later invoice may already have billed it as late usage); records
    overlapping P, received after that cutoff and by ``as_of``, not voided, on hardware the
    customer held (a covering firm allocation of one of its contracts) are late.
    """
    current = Period.containing(as_of, _tz())
    earliest = current
    for _ in range(lookback_months):
        earliest = earliest.previous()
    cutoffs = dict(
        Invoice.objects.filter(
            customer=customer,
            status__in=[InvoiceStatus.ISSUED, InvoiceStatus.PAID],
            usage_cutoff_at__isnull=False,
            period__gte=str(earliest),
            period__lt=str(current),
        ).values_list("period", "usage_cutoff_at")
    )
    windows = Q()
    for period in cutoffs:
        cutoff = max(c for p, c in cutoffs.items() if p >= period)
        start, end = Period.parse(period).bounds(_tz())
        windows |= Q(start_at__lt=end, end_at__gt=start, received_at__gt=cutoff)
    if not cutoffs:
        return UsageRecord.objects.none()
    held = covering_allocations(Allocation.objects.filter(line__contract__customer=customer))
    return (
        UsageRecord.objects.filter(windows, voided_at__isnull=True, received_at__lte=as_of)
        .filter(Exists(held))
        .select_related("provider", "card", "server")
        .order_by("start_at", "id")
    )


# -- telemetry -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class ContractUtilisation:
    """Allocated vs used card time of a contract in a period, and the average GPU utilisation."""

    contract_id: int
    period: str
    allocated_card_seconds: int
    used_card_seconds: int
    utilisation_percent: Decimal | None  # time-weighted mean over records with telemetry

    @property
    def allocated_card_hours(self) -> Decimal:
        return round_hours(Decimal(self.allocated_card_seconds) / 3600)

    @property
    def used_card_hours(self) -> Decimal:
        return round_hours(Decimal(self.used_card_seconds) / 3600)

    @property
    def usage_percent(self) -> Decimal | None:
        """Used / allocated card time, in %."""
        if not self.allocated_card_seconds:
            return None
        return round_percent(Decimal(100 * self.used_card_seconds) / self.allocated_card_seconds)


_UTILISATION_SQL = """
WITH allocated AS (
    SELECT COALESCE(a.card_id, c.id) AS card_id,
           tstzrange(a.start_at, a.end_at, '[)') * tstzrange(%(start)s, %(end)s, '[)') AS r
      FROM contracts_allocation a
      JOIN contracts_contractline l ON l.id = a.line_id
      LEFT JOIN inventory_card c ON a.card_id IS NULL AND c.server_id = a.server_id
     WHERE l.contract_id = %(contract)s AND a.firm
       AND a.start_at < %(end)s AND (a.end_at IS NULL OR a.end_at > %(start)s)
), cards AS (
    SELECT al.card_id, c.server_id, range_agg(al.r) AS held
      FROM allocated al JOIN inventory_card c ON c.id = al.card_id
     WHERE al.card_id IS NOT NULL
     GROUP BY al.card_id, c.server_id
), records AS (
    SELECT k.card_id, multirange(tstzrange(u.start_at, u.end_at, '[)')) * k.held AS m, u.utilization_percent
      FROM cards k JOIN metering_usagerecord u ON u.card_id = k.card_id
     WHERE u.voided_at IS NULL AND u.start_at < %(end)s AND u.end_at > %(start)s
    UNION ALL
    SELECT k.card_id, multirange(tstzrange(u.start_at, u.end_at, '[)')) * k.held, u.utilization_percent
      FROM cards k JOIN metering_usagerecord u ON u.server_id = k.server_id
     WHERE u.voided_at IS NULL AND u.start_at < %(end)s AND u.end_at > %(start)s
), weighted AS (
    SELECT r.card_id, r.m, r.utilization_percent,
           (SELECT COALESCE(sum(extract(epoch FROM upper(x) - lower(x))), 0) FROM unnest(r.m) x) AS seconds
      FROM records r
), used AS (
    SELECT card_id, range_agg(m) AS m FROM weighted GROUP BY card_id
)
SELECT
    (SELECT COALESCE(sum(extract(epoch FROM upper(x) - lower(x))), 0)
       FROM cards, unnest(cards.held) x),
    (SELECT COALESCE(sum(extract(epoch FROM upper(x) - lower(x))), 0)
       FROM used, unnest(used.m) x),
    (SELECT sum(utilization_percent * seconds) / NULLIF(sum(seconds), 0)
       FROM weighted WHERE utilization_percent IS NOT NULL)
"""


def contract_utilisation(*, contract, period: Period | str) -> ContractUtilisation:
    """Allocated card-hours of ``contract``'s firm allocations clipped to ``period`` (whole-server
    allocations count each card), used card-hours (the union of usage on those cards within the
    allocations, server records counting for each card; voided records left out), and the
    time-weighted average ``utilization_percent`` of the records (weights: each record's time
    within the allocations; records without telemetry left out). One SQL statement.
    """
    period = Period.parse(period) if isinstance(period, str) else period
    start, end = period.bounds(_tz())
    with connection.cursor() as cursor:
        cursor.execute(_UTILISATION_SQL, {"contract": contract.pk, "start": start, "end": end})
        allocated, used, average = cursor.fetchone()
    return ContractUtilisation(
        contract_id=contract.pk,
        period=str(period),
        allocated_card_seconds=round(allocated),
        used_card_seconds=round(used),
        utilisation_percent=None if average is None else round_percent(Decimal(average)),
    )
