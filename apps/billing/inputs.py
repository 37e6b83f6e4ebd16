"""Set-based loading of rating inputs for a chunk of customers (a constant number of queries).

Contracts, lines, tiers and allocations come in a few prefetching queries; usage comes from one
SQL statement per chunk that expands server records to their cards and merges each card's
intervals with PostgreSQL's ``range_agg`` — the rating engine (``apps/contracts/pricing.py``)
then prices the merged intervals. SQL only reduces data; it never computes a charge.
"""

from __future__ import annotations

import datetime
from collections import defaultdict
from dataclasses import dataclass

from django.db import connection
from django.db.models import Prefetch, Q

from apps.contracts import pricing
from apps.contracts.models import Allocation, Contract, ContractLine, ContractStatus
from apps.inventory.models import Card

BILLABLE_STATUSES = [
    ContractStatus.ACTIVE,
    ContractStatus.SUSPENDED,
    ContractStatus.TERMINATED,
    ContractStatus.EXPIRED,
]


@dataclass
class LoadedContract:
    contract: Contract
    rating: pricing.ContractInput
    lines: dict[int, ContractLine]
    card_ids: set[int]


def contracts_for(
    customer_ids: list[int], start: datetime.datetime, end: datetime.datetime
) -> dict[int, list[LoadedContract]]:
    """Contracts of these customers that were in force at some time in ``[start, end)``, by customer."""
    allocations = (
        Allocation.objects.filter(firm=True)
        .select_related("server__gpu_model", "card")
        .prefetch_related(Prefetch("server__cards", queryset=Card.objects.only("id", "server_id")))
    )
    lines = ContractLine.objects.select_related("gpu_model", "tax_category").prefetch_related(
        "tiers", Prefetch("allocations", queryset=allocations)
    )
    contracts = (
        Contract.objects.filter(customer_id__in=customer_ids, status__in=BILLABLE_STATUSES, start_at__lt=end)
        .filter(Q(end_at__isnull=True) | Q(end_at__gt=start))
        .select_related("customer")
        .prefetch_related(Prefetch("lines", queryset=lines))
        .order_by("customer_id", "number", "version")
    )
    by_customer: dict[int, list[LoadedContract]] = defaultdict(list)
    for contract in contracts:
        by_customer[contract.customer_id].append(_to_input(contract))
    return by_customer


def _to_input(contract: Contract) -> LoadedContract:
    line_inputs = []
    card_ids: set[int] = set()
    lines = {}
    for line in contract.lines.all():
        lines[line.pk] = line
        allocations = []
        for a in line.allocations.all():
            server_tflops = a.server.gpu_model.fp16_dense_tflops
            if a.card_id:
                ref = pricing.CardRef(a.card_id, a.server_id, server_tflops)
                allocations.append(pricing.Allocation.card(ref, a.start_at, a.end_at))
                card_ids.add(a.card_id)
            else:
                refs = [pricing.CardRef(c.pk, a.server_id, server_tflops) for c in a.server.cards.all()]
                allocations.append(pricing.Allocation.server(a.server_id, refs, a.start_at, a.end_at))
                card_ids.update(ref.card_id for ref in refs)
        tiers = tuple(pricing.Tier(t.up_to, t.list_unit_price) for t in line.tiers.all())
        line_inputs.append(
            pricing.LineInput(
                line_id=line.pk,
                resource=line.resource,
                term=line.term,
                quantity=line.quantity,
                list_unit_price=line.list_unit_price,
                tax_rate=line.tax_category.rate,
                term_discount_percent=line.term_discount_percent,
                discount_percent=line.discount_percent,
                start=line.start_at,
                end=line.end_at,
                yearly_billing=line.yearly_billing,
                tiers=tiers,
                allocations=tuple(allocations),
            )
        )
    rating = pricing.ContractInput(
        contract_id=contract.pk,
        prices_include_tax=contract.prices_include_tax,
        start=contract.start_at,
        end=contract.end_at,
        minimum_monthly_amount=contract.minimum_monthly_amount,
        lines=tuple(line_inputs),
    )
    return LoadedContract(contract=contract, rating=rating, lines=lines, card_ids=card_ids)


MERGED_USAGE_SQL = """
WITH cards AS (
    SELECT id AS card_id, server_id FROM inventory_card WHERE id = ANY(%(card_ids)s)
), records AS (
    SELECT u.card_id, u.start_at, u.end_at
      FROM metering_usagerecord u
     WHERE u.card_id = ANY(%(card_ids)s)
       AND u.voided_at IS NULL AND u.received_at <= %(received_to)s AND u.received_at > %(received_from)s
       AND u.start_at < %(end)s AND u.end_at > %(start)s
    UNION ALL
    SELECT c.card_id, u.start_at, u.end_at
      FROM metering_usagerecord u JOIN cards c ON c.server_id = u.server_id
     WHERE u.server_id = ANY(%(server_ids)s)
       AND u.voided_at IS NULL AND u.received_at <= %(received_to)s AND u.received_at > %(received_from)s
       AND u.start_at < %(end)s AND u.end_at > %(start)s
)
SELECT card_id, lower(r), upper(r)
  FROM (SELECT card_id, unnest(range_agg(tstzrange(greatest(start_at, %(start)s), least(end_at, %(end)s))))
          AS r FROM records GROUP BY card_id) merged
"""

EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC)


def merged_usage(
    card_ids: set[int],
    start: datetime.datetime,
    end: datetime.datetime,
    *,
    received_to: datetime.datetime,
    received_from: datetime.datetime = EPOCH,
) -> dict[int, list[pricing.UsageRecord]]:
    """Each card's usage in ``[start, end)``, received in ``(received_from, received_to]``, merged.

    Server records count for each card of the server. One query for any number of cards.
    """
    if not card_ids:
        return {}
    ids = sorted(card_ids)
    with connection.cursor() as cursor:
        cursor.execute("SELECT DISTINCT server_id FROM inventory_card WHERE id = ANY(%s)", [ids])
        server_ids = [row[0] for row in cursor.fetchall()]
        cursor.execute(
            MERGED_USAGE_SQL,
            {
                "card_ids": ids,
                "server_ids": server_ids,
                "start": start,
                "end": end,
                "received_to": received_to,
                "received_from": received_from,
            },
        )
        rows = cursor.fetchall()
    usage: dict[int, list[pricing.UsageRecord]] = defaultdict(list)
    for card_id, lo, hi in rows:
        usage[card_id].append(pricing.UsageRecord(lo, hi, card_id=card_id))
    return usage
