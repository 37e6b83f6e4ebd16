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
    """Contracts of these customers in force at some time in ``[start, end)``, by customer.

    Contracts and lines are model instances (descriptions need them); allocations and the cards of
    allocated servers are read as plain rows: a chunk holds thousands of them.
    """
    lines = ContractLine.objects.select_related("gpu_model", "tax_category").prefetch_related("tiers")
    contracts = list(
        Contract.objects.filter(customer_id__in=customer_ids, status__in=BILLABLE_STATUSES, start_at__lt=end)
        .filter(Q(end_at__isnull=True) | Q(end_at__gt=start))
        .select_related("customer")
        .prefetch_related(Prefetch("lines", queryset=lines))
        .order_by("customer_id", "number", "version")
    )
    line_ids = [line.pk for c in contracts for line in c.lines.all()]
    allocations: dict[int, list[tuple]] = defaultdict(list)
    server_ids = set()
    rows = (
        Allocation.objects.filter(line_id__in=line_ids, firm=True)
        .values_list(
            "line_id", "server_id", "card_id", "start_at", "end_at", "server__gpu_model__fp16_dense_tflops"
        )
        .order_by("line_id", "server_id", "slot")
    )
    for line_id, server_id, card_id, alloc_start, alloc_end, tflops in rows:
        allocations[line_id].append((server_id, card_id, alloc_start, alloc_end, tflops))
        if card_id is None:
            server_ids.add(server_id)
    # Always one query, so the count does not depend on the kinds of allocation.
    cards_by_server: dict[int, list[int]] = defaultdict(list)
    for card_id, server_id in (
        Card.objects.filter(server_id__in=sorted(server_ids) or [0])
        .values_list("id", "server_id")
        .order_by("server_id", "slot")
    ):
        cards_by_server[server_id].append(card_id)
    by_customer: dict[int, list[LoadedContract]] = defaultdict(list)
    for contract in contracts:
        by_customer[contract.customer_id].append(_to_input(contract, allocations, cards_by_server))
    return by_customer


def _to_input(contract: Contract, allocations, cards_by_server) -> LoadedContract:
    line_inputs = []
    card_ids: set[int] = set()
    lines = {}
    for line in contract.lines.all():
        lines[line.pk] = line
        allocation_inputs = []
        for server_id, card_id, alloc_start, alloc_end, tflops in allocations.get(line.pk, ()):
            if card_id is not None:
                ref = pricing.CardRef(card_id, server_id, tflops)
                allocation_inputs.append(pricing.Allocation.card(ref, alloc_start, alloc_end))
                card_ids.add(card_id)
            else:
                refs = [pricing.CardRef(cid, server_id, tflops) for cid in cards_by_server[server_id]]
                allocation_inputs.append(pricing.Allocation.server(server_id, refs, alloc_start, alloc_end))
                card_ids.update(cards_by_server[server_id])
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
                allocations=tuple(allocation_inputs),
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
SELECT card_id,
       (extract(epoch FROM lower(r)) * 1000000)::bigint,
       (extract(epoch FROM upper(r)) * 1000000)::bigint
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
        # epoch microseconds: exact, and far cheaper to read than timestamps
        start_at = EPOCH + datetime.timedelta(microseconds=lo)
        end_at = EPOCH + datetime.timedelta(microseconds=hi)
        usage[card_id].append(pricing.UsageRecord(start_at, end_at, card_id=card_id))
    return usage
