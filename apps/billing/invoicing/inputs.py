"""Set-based loading of rating inputs for a chunk of customers (a constant number of queries).

Contracts, lines, tiers and allocations come in five plain-row queries; usage comes from one
SQL statement per chunk that expands server records to their cards and merges each card's
intervals with PostgreSQL's ``range_agg`` — the rating engine (``apps/contracts/pricing.py``)
then prices the merged intervals. SQL only reduces data; it never computes a charge.
"""

from __future__ import annotations

import datetime
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal

from django.db import connection, transaction
from django.db.models import F, Q
from django.db.models.expressions import RawSQL

from apps.contracts import pricing
from apps.contracts.models import Allocation, Contract, ContractLine, ContractStatus, LineTier
from apps.inventory.models import Card

BILLABLE_STATUSES = [
    ContractStatus.ACTIVE,
    ContractStatus.SUSPENDED,
    ContractStatus.TERMINATED,
    ContractStatus.EXPIRED,
]


@dataclass(frozen=True, slots=True)
class ContractRow:
    """What billing needs of a contract besides its rating input (read as a plain row)."""

    pk: int
    number: str
    version: int
    customer_id: int
    customer_code: str
    currency: str
    prices_include_tax: bool

    def __str__(self) -> str:
        return self.number if self.version == 1 else f"{self.number} v{self.version}"


@dataclass(frozen=True, slots=True)
class LineRow:
    """What an invoice line's description and fapiao need of a contract line."""

    pk: int
    position: int
    resource: str
    term: str
    gpu_model: str
    term_discount_percent: Decimal
    discount_percent: Decimal
    tax_rate: Decimal
    fapiao_classification: str


@dataclass
class LoadedContract:
    contract: ContractRow
    rating: pricing.ContractInput
    lines: dict[int, LineRow]
    card_ids: set[int]  # cards of hourly lines: the only ones whose usage is billed
    server_ids: set[int]  # their servers (server records count for each of their cards)
    # cards of hourly lines that bill the agent's records, not the partner's
    # (docs/hardware-truth.md#reconciliation)
    agent_card_ids: set[int] = field(default_factory=set)


def array_literal(ids) -> str:
    """``{1,2,3}``: ids as one PostgreSQL array literal, sent as text and cast in SQL
    (``%s::bigint[]``). A chunk sends tens of thousands of ids; quoting one string costs a third
    of adapting a list element by element."""
    return "{" + ",".join(map(str, sorted(ids))) + "}"


def id_array(ids) -> RawSQL:
    """``… IN (SELECT unnest(%s::bigint[]))``: one array parameter instead of thousands of placeholders."""
    return RawSQL("SELECT unnest(%s::bigint[])", [array_literal(ids)])


CONTRACT_FIELDS = (
    "pk",
    "number",
    "version",
    "customer_id",
    "customer__code",
    "currency",
    "prices_include_tax",
    "start_at",
    "end_at",
    "minimum_monthly_amount",
)
LINE_FIELDS = (
    "pk",
    "contract_id",
    "position",
    "resource",
    "term",
    "gpu_model__name",
    "quantity",
    "list_unit_price",
    "term_discount_percent",
    "discount_percent",
    "tax_category__rate",
    "tax_category__fapiao_classification",
    "start_at",
    "end_at",
    "yearly_billing",
    "usage_source",
)


def contracts_for(
    customer_ids: list[int], start: datetime.datetime, end: datetime.datetime
) -> dict[int, list[LoadedContract]]:
    """Contracts of these customers in force at some time in ``[start, end)``, by customer.

    Five queries whatever the chunk holds: contracts, lines, tiers, allocations, cards of allocated
    servers — all read as plain rows (a chunk holds thousands of them).
    """
    contracts = list(
        Contract.objects.filter(
            customer_id__in=id_array(customer_ids), status__in=BILLABLE_STATUSES, start_at__lt=end
        )
        .filter(Q(end_at__isnull=True) | Q(end_at__gt=start))
        .order_by("customer_id", "number", "version")
        .values_list(*CONTRACT_FIELDS)
    )
    contract_ids = [row[0] for row in contracts] or [0]
    lines_by_contract: dict[int, list[tuple]] = defaultdict(list)
    for row in (
        ContractLine.objects.filter(contract_id__in=id_array(contract_ids))
        .order_by("contract_id", "position", "pk")
        .values_list(*LINE_FIELDS)
    ):
        lines_by_contract[row[1]].append(row)
    line_ids = [row[0] for rows in lines_by_contract.values() for row in rows] or [0]
    tiers: dict[int, list[pricing.Tier]] = defaultdict(list)
    for line_id, up_to, price in (
        LineTier.objects.filter(line_id__in=id_array(line_ids))
        .order_by("line_id", F("up_to").asc(nulls_last=True))
        .values_list("line_id", "up_to", "list_unit_price")
    ):
        tiers[line_id].append(pricing.Tier(up_to, price))
    allocations: dict[int, list[tuple]] = defaultdict(list)
    server_ids = set()
    rows = (
        Allocation.objects.filter(line_id__in=id_array(line_ids), firm=True)
        .values_list(
            "line_id", "server_id", "card_id", "start_at", "end_at", "server__gpu_model__fp16_dense_tflops"
        )
        .order_by("line_id", "server_id", "slot")
    )
    for line_id, server_id, card_id, alloc_start, alloc_end, tflops in rows:
        allocations[line_id].append((server_id, card_id, alloc_start, alloc_end, tflops))
        if card_id is None:
            server_ids.add(server_id)
    cards_by_server: dict[int, list[int]] = defaultdict(list)
    for card_id, server_id in (
        Card.objects.filter(server_id__in=id_array(server_ids))
        .values_list("id", "server_id")
        .order_by("server_id", "slot")
    ):
        cards_by_server[server_id].append(card_id)
    by_customer: dict[int, list[LoadedContract]] = defaultdict(list)
    for row in contracts:
        loaded = _to_input(row, lines_by_contract[row[0]], tiers, allocations, cards_by_server)
        by_customer[loaded.contract.customer_id].append(loaded)
    return by_customer


def _to_input(row, line_rows, tiers, allocations, cards_by_server) -> LoadedContract:
    pk, number, version, customer_id, customer_code, currency, include_tax, c_start, c_end, minimum = row
    contract = ContractRow(pk, number, version, customer_id, customer_code, currency, include_tax)
    line_inputs = []
    card_ids: set[int] = set()
    server_ids: set[int] = set()
    agent_card_ids: set[int] = set()
    lines = {}
    for (
        line_id,
        _,
        position,
        resource,
        term,
        model_name,
        quantity,
        list_price,
        term_discount,
        discount,
        rate,
        classification,
        l_start,
        l_end,
        yearly_billing,
        usage_source,
    ) in line_rows:
        lines[line_id] = LineRow(
            line_id, position, resource, term, model_name, term_discount, discount, rate, classification
        )
        allocation_inputs = []
        for server_id, card_id, alloc_start, alloc_end, tflops in allocations.get(line_id, ()):
            if card_id is not None:
                ref = pricing.CardRef(card_id, server_id, tflops)
                allocation_inputs.append(pricing.Allocation.card(ref, alloc_start, alloc_end))
                metered = [card_id]
            else:
                refs = [pricing.CardRef(cid, server_id, tflops) for cid in cards_by_server[server_id]]
                allocation_inputs.append(pricing.Allocation.server(server_id, refs, alloc_start, alloc_end))
                metered = cards_by_server[server_id]
            if term == "hourly":
                card_ids.update(metered)
                server_ids.add(server_id)
                if usage_source == "agent":
                    agent_card_ids.update(metered)
        line_inputs.append(
            pricing.LineInput(
                line_id=line_id,
                resource=resource,
                term=term,
                quantity=quantity,
                list_unit_price=list_price,
                tax_rate=rate,
                term_discount_percent=term_discount,
                discount_percent=discount,
                start=max(l_start or c_start, c_start),
                end=min((e for e in (l_end, c_end) if e is not None), default=None),
                yearly_billing=yearly_billing,
                tiers=tuple(tiers.get(line_id, ())),
                allocations=tuple(allocation_inputs),
            )
        )
    rating = pricing.ContractInput(
        contract_id=pk,
        prices_include_tax=include_tax,
        start=c_start,
        end=c_end,
        minimum_monthly_amount=minimum,
        lines=tuple(line_inputs),
    )
    return LoadedContract(
        contract=contract,
        rating=rating,
        lines=lines,
        card_ids=card_ids,
        server_ids=server_ids,
        agent_card_ids=agent_card_ids,
    )


def summable_cards(
    loaded: list[LoadedContract], start: datetime.datetime, end: datetime.datetime
) -> set[int]:
    """Cards whose usage in ``[start, end)`` the run may read summed up (``merged_usage(summed=…)``).

    A card qualifies when it is allocated once among these contracts, by an hourly card or P-unit
    line, and both the line and the allocation cover the whole window: the engine then adds its
    merged usage up without clipping it (docs/rating.md#usage-summed-up-in-sql). A server line's
    cards are unioned per server, so they never qualify.
    """
    allocated: dict[int, int] = defaultdict(int)
    whole: set[int] = set()
    for contract in loaded:
        for line in contract.rating.lines:
            if line.term != "hourly":
                continue
            line_whole = (
                line.resource != "server"
                and line.start is not None
                and line.start <= start
                and (line.end is None or line.end >= end)
            )
            for allocation in line.allocations:
                covers = (
                    line_whole
                    and allocation.start <= start
                    and (allocation.end is None or allocation.end >= end)
                )
                for card in allocation.cards:
                    allocated[card.card_id] += 1
                    if covers:
                        whole.add(card.card_id)
    return {card_id for card_id in whole if allocated[card_id] == 1}


# A record spans at most 31 days (docs/usage-api.md, record length): one overlapping a window
# starts less than that before it. Bounding ``start_at`` on both sides keeps the scan of the
# (card, start_at) index to the window instead of the card's whole history.
RECORD_MAX_SPAN = datetime.timedelta(days=31)

MERGED_USAGE_SQL = """
WITH cards AS (
    SELECT id AS card_id, server_id FROM inventory_card WHERE server_id = ANY(%(server_ids)s::bigint[])
       AND id = ANY(%(card_ids)s::bigint[])
), records AS (
    SELECT u.card_id, u.start_at, u.end_at
      FROM metering_usagerecord u
     WHERE u.card_id = ANY(%(card_ids)s::bigint[])
       AND u.voided_at IS NULL AND u.received_at <= %(received_to)s AND u.received_at > %(received_from)s
       AND u.start_at < %(end)s AND u.start_at > %(reach)s AND u.end_at > %(start)s AND u.source = %(source)s
    UNION ALL
    SELECT c.card_id, u.start_at, u.end_at
      FROM metering_usagerecord u JOIN cards c ON c.server_id = u.server_id
     WHERE u.server_id = ANY(%(server_ids)s::bigint[])
       AND u.voided_at IS NULL AND u.received_at <= %(received_to)s AND u.received_at > %(received_from)s
       AND u.start_at < %(end)s AND u.start_at > %(reach)s AND u.end_at > %(start)s AND u.source = %(source)s
)
SELECT card_id, summed,
       CASE WHEN summed THEN ARRAY[(extract(epoch FROM lower(merged)) * 1000000)::bigint]
            ELSE ARRAY(SELECT (extract(epoch FROM lower(x)) * 1000000)::bigint FROM unnest(merged) x) END,
       CASE WHEN summed THEN ARRAY[(extract(epoch FROM upper(merged)) * 1000000)::bigint]
            ELSE ARRAY(SELECT (extract(epoch FROM upper(x)) * 1000000)::bigint FROM unnest(merged) x) END,
       CASE WHEN summed
            THEN (extract(epoch FROM (SELECT sum(upper(x) - lower(x)) FROM unnest(merged) x)) * 1000000)::bigint END
  FROM (SELECT card_id, card_id = ANY(%(summed)s::bigint[]) AND NOT isempty(range_agg(r)) AS summed,
               range_agg(r) AS merged
          FROM (SELECT card_id, tstzrange(greatest(start_at, %(start)s), least(end_at, %(end)s)) AS r
                  FROM records) clipped
         GROUP BY card_id) by_card
"""

EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC)


def merged_usage(
    card_ids: set[int],
    server_ids: set[int],
    start: datetime.datetime,
    end: datetime.datetime,
    *,
    received_to: datetime.datetime,
    received_from: datetime.datetime = EPOCH,
    source: str = "partner",
    summed: set[int] | frozenset[int] = frozenset(),
) -> dict[int, list[pricing.CardMicros | pricing.CardTotal]]:
    """Each card's usage in ``[start, end)``, received in ``(received_from, received_to]``, merged.

    ``server_ids`` are the cards' servers: their records count for each of the cards. Only records
    of ``source`` (``partner`` or ``agent``) count. The cards in ``summed`` come summed up
    (``CardTotal``: the microseconds used, first and last instant), the others as intervals
    (``CardMicros``); see docs/rating.md#usage-summed-up-in-sql. One query.
    """
    if not card_ids:
        return {}
    with transaction.atomic(), connection.cursor() as cursor:
        # A chunk aggregates a few hundred thousand intervals: let the grouping stay in memory.
        cursor.execute("SET LOCAL work_mem = '64MB'")
        cursor.execute("SET LOCAL jit = off")  # compiling costs a second a chunk and gains nothing here
        # A chunk reads a fifth of a month's records, spread over a month's four parts: a bitmap of
        # each part's (card, start) index reads them in 12 ms a part; costed by the defaults, the
        # planner scans each part whole instead, or walks the index row by row (3x slower either
        # way). Cached pages cost little more at random than in sequence (docs/scaling.md#measured).
        cursor.execute("SET LOCAL random_page_cost = 1.1")
        cursor.execute("SET LOCAL enable_indexscan = off")
        cursor.execute(
            MERGED_USAGE_SQL,
            {
                "card_ids": array_literal(card_ids),
                "server_ids": array_literal(server_ids),
                "start": start,
                "end": end,
                "reach": start - RECORD_MAX_SPAN,
                "received_to": received_to,
                "received_from": received_from,
                "source": source,
                "summed": array_literal(summed),
            },
        )
        rows = cursor.fetchall()
    # Epoch microseconds, one row per card, rated as they are: no datetime per instant;
    # range_agg's ranges never overlap or touch, so the engine may add their lengths up.
    return {
        card_id: [
            pricing.CardTotal(card_id, los[0], his[0], micros)
            if is_summed
            else pricing.CardMicros(card_id, los, his, disjoint=True)
        ]
        for card_id, is_summed, los, his, micros in rows
    }


# The windows of a screen: thousands of them share a dozen (start, end) pairs and a few cutoffs,
# so each window sends small indexes into those (1-based) rather than three timestamps of its own.
WINDOWS_CTE = """w AS (
    SELECT w.key, s.p_start, s.p_end, c.cutoff, w.grp
      FROM unnest(%(keys)s::int[], %(spans)s::int[], %(cuts)s::int[], %(groups)s::int[]) AS w(key, span, cut, grp)
      JOIN unnest(%(span_starts)s::timestamptz[], %(span_ends)s::timestamptz[]) WITH ORDINALITY
           AS s(p_start, p_end, span) ON s.span = w.span
      JOIN unnest(%(cutoff_values)s::timestamptz[]) WITH ORDINALITY AS c(cutoff, cut) ON c.cut = w.cut
)"""


# A scalar subquery with LIMIT 1 per window row: PostgreSQL probes the card (server) index once
# per row and prunes partitions at run time; an EXISTS could be planned as a hash join that reads
# every stored record of the servers.
LATE_CHECK_SQL = """
WITH {windows}, k AS (
    SELECT w.key, w.p_start, w.p_end, w.cutoff, h.card_id, h.server_id
      FROM w JOIN unnest(%(hardware_groups)s::int[], %(card_ids)s::bigint[], %(server_ids)s::bigint[])
                  AS h(grp, card_id, server_id) ON h.grp = w.grp
)
SELECT key FROM k
 WHERE k.card_id IS NOT NULL AND (
       SELECT true FROM metering_usagerecord u
        WHERE u.card_id = k.card_id AND u.start_at < k.p_end AND u.start_at > k.p_start - %(span)s
          AND u.end_at > k.p_start AND u.voided_at IS NULL
          AND u.received_at > k.cutoff AND u.received_at <= %(as_of)s
        LIMIT 1)
UNION
SELECT key FROM k
 WHERE k.server_id IS NOT NULL AND (
       SELECT true FROM metering_usagerecord u
        WHERE u.server_id = k.server_id AND u.start_at < k.p_end AND u.start_at > k.p_start - %(span)s
          AND u.end_at > k.p_start AND u.voided_at IS NULL
          AND u.received_at > k.cutoff AND u.received_at <= %(as_of)s
        LIMIT 1)
"""


# The screen by arrival, for windows invoiced after they ended (the usual case): each distinct
# window is scanned once for the records that arrived after the earliest cutoff among the chunk's
# customers for it — by the BRIN index on received_at, so only the late arrivals are read, however
# many records the month holds — and those few are matched in Python to the windows' hardware and
# exact cutoffs (docs/rating.md#late-usage). Nothing per window is sent.
# One window's records received after a cutoff; the bounds are constants, so PostgreSQL prunes
# to the window's partitions and, knowing from its statistics that few records arrived that late,
# reads them through the BRIN index.
LATE_ARRIVALS_PART = """
SELECT %(start_{n})s::timestamptz AS p_start, %(end_{n})s::timestamptz AS p_end, u.card_id, u.server_id,
       u.received_at
  FROM metering_usagerecord u
 WHERE u.start_at < %(end_{n})s AND u.start_at > %(reach_{n})s AND u.end_at > %(start_{n})s
   AND u.voided_at IS NULL AND u.received_at > %(cutoff_{n})s AND u.received_at <= %(as_of)s
"""


@dataclass(frozen=True, slots=True)
class LateWindow:
    """Usage of ``card_ids`` / ``server_ids`` in ``[start, end)`` received in ``(cutoff, as_of]``."""

    start: datetime.datetime
    end: datetime.datetime
    cutoff: datetime.datetime
    card_ids: frozenset[int]
    server_ids: frozenset[int]


def windows_with_usage(windows: list[LateWindow], *, as_of: datetime.datetime) -> set[int]:
    """The indexes of ``windows`` that hold at least one record (at most two queries for all of them).

    A cheap screen before :func:`merged_usage`: a chunk asks for each customer and earlier period
    whether anything arrived after that period was invoiced, and almost always nothing did. Windows
    invoiced after they ended are screened by arrival (``late_arrivals``: cost in proportion
    to the late records, not to the customers × months × cards asked about); the rare window
    invoiced before its end (an early issue) by a probe of each of its cards (``LATE_CHECK_SQL``).
    """
    after = [i for i, w in enumerate(windows) if w.cutoff >= w.end]
    early = [i for i, w in enumerate(windows) if w.cutoff < w.end]
    found: set[int] = set()
    if after:
        # each distinct window once, from the earliest cutoff among the customers asking about it
        spans: dict[tuple[datetime.datetime, datetime.datetime], datetime.datetime] = {}
        for i in after:
            w = windows[i]
            span = (w.start, w.end)
            if span not in spans or w.cutoff < spans[span]:
                spans[span] = w.cutoff
        arrivals = late_arrivals(spans, as_of=as_of)
        if arrivals:  # rare: match the few late records to the windows that own their hardware
            by_card: dict[tuple, list[int]] = defaultdict(list)
            by_server: dict[tuple, list[int]] = defaultdict(list)
            for i in after:
                w = windows[i]
                for card_id in w.card_ids:
                    by_card[(w.start, w.end, card_id)].append(i)
                for server_id in w.server_ids:
                    by_server[(w.start, w.end, server_id)].append(i)
            for start, end, card_id, server_id, received_at in arrivals:
                owners = (
                    by_card.get((start, end, card_id), ())
                    if card_id is not None
                    else by_server.get((start, end, server_id), ())
                )
                found.update(i for i in owners if received_at > windows[i].cutoff)
    if early:
        sql = LATE_CHECK_SQL.format(windows=WINDOWS_CTE)
        keys = _windows_query(sql, [windows[i] for i in early], as_of=as_of)
        found |= {early[key] for key in keys}
    return found


def late_arrivals(
    spans: dict[tuple[datetime.datetime, datetime.datetime], datetime.datetime], *, as_of: datetime.datetime
) -> list[tuple]:
    """(start, end, card, server, received at) of each record in a span ``[start, end)`` received
    after the span's cutoff and by ``as_of``; one query for all spans."""
    params: dict[str, object] = {"as_of": as_of}
    for n, ((start, end), cutoff) in enumerate(sorted(spans.items())):
        params |= {
            f"start_{n}": start,
            f"end_{n}": end,
            f"reach_{n}": start - RECORD_MAX_SPAN,
            f"cutoff_{n}": cutoff,
        }
    sql = " UNION ALL ".join(LATE_ARRIVALS_PART.replace("{n}", str(n)) for n in range(len(spans)))
    with transaction.atomic(), connection.cursor() as cursor:
        # a few small scans: compiling them (JIT) or starting parallel workers would cost more
        cursor.execute("SET LOCAL jit = off")
        cursor.execute("SET LOCAL max_parallel_workers_per_gather = 0")
        cursor.execute(sql, params)
        return cursor.fetchall()


def _windows_query(sql: str, windows: list[LateWindow], *, as_of: datetime.datetime) -> set[int]:
    """Run a late-usage screen over ``windows``; the keys (positions in ``windows``) it finds."""
    # windows of one customer share its hardware: send each set once, and the windows by reference
    groups: dict[tuple[frozenset[int], frozenset[int]], int] = {}
    hardware: list[tuple[int, int | None, int | None]] = []  # (group, card, server)
    window_groups = []
    for w in windows:
        group = groups.get((w.card_ids, w.server_ids))
        if group is None:
            group = groups[(w.card_ids, w.server_ids)] = len(groups)
            hardware += [(group, card_id, None) for card_id in sorted(w.card_ids)]
            hardware += [(group, None, server_id) for server_id in sorted(w.server_ids)]
        window_groups.append(group)
    hardware_groups, cards, servers = (
        (list(column) for column in zip(*hardware, strict=True)) if hardware else ([], [], [])
    )
    spans: dict[tuple[datetime.datetime, datetime.datetime], int] = {}
    cutoffs: dict[datetime.datetime, int] = {}
    window_spans = [spans.setdefault((w.start, w.end), len(spans) + 1) for w in windows]
    window_cuts = [cutoffs.setdefault(w.cutoff, len(cutoffs) + 1) for w in windows]
    with transaction.atomic(), connection.cursor() as cursor:
        # thousands of cheap index probes, or a few small scans: compiling them (JIT) or starting
        # parallel workers would cost more than running them
        cursor.execute("SET LOCAL jit = off")
        cursor.execute("SET LOCAL max_parallel_workers_per_gather = 0")
        cursor.execute(
            sql,
            {
                "keys": list(range(len(windows))),
                "spans": window_spans,
                "cuts": window_cuts,
                "span_starts": [start for start, _ in spans],
                "span_ends": [end for _, end in spans],
                "cutoff_values": list(cutoffs),
                "groups": window_groups,
                "hardware_groups": hardware_groups,
                "card_ids": cards,
                "server_ids": servers,
                "span": RECORD_MAX_SPAN,
                "as_of": as_of,
            },
        )
        return {key for (key,) in cursor.fetchall()}
