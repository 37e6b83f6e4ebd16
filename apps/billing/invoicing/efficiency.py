"""Efficiency per contract and month: billed card-hours against what the agent saw the cards do
(docs/hardware-truth.md#sla-credits-and-efficiency).

One SQL statement aggregates everything; Python only turns microseconds and millijoules into
hours and kWh. Per contract:

- billed card-hours: a lease line's (daily, monthly, yearly) allocated card-hours in the month; an
  hourly line's merged usage hours of the source it bills, within its cards' allocations;
- observed busy card-hours: the agent's merged hours on the allocated cards, counting only records
  at or above the line's busy threshold where it has one;
- mean utilisation: the agent's utilisation weighted by each record's hours in the month;
- energy: the agent's energy, prorated by each record's share of time in the month, in kWh.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from decimal import Decimal

from django.conf import settings
from django.db import connection

from apps.core.money import round_places
from apps.core.periods import Period

MICROS_PER_HOUR = Decimal(3_600_000_000)
MJ_PER_KWH = Decimal(3_600_000_000)  # millijoules in a kilowatt-hour

EFFICIENCY_SQL = """
WITH alloc AS (
    SELECT l.contract_id, l.id AS line_id, l.term, l.usage_source, l.observed_busy_threshold_percent AS threshold,
           COALESCE(a.card_id, c.id) AS card_id, a.server_id,
           GREATEST(a.start_at, %(start)s, COALESCE(l.start_at, k.start_at), k.start_at) AS lo,
           LEAST(COALESCE(a.end_at, 'infinity'), %(end)s, COALESCE(l.end_at, 'infinity'),
                 COALESCE(k.end_at, 'infinity')) AS hi
      FROM contracts_allocation a
      JOIN contracts_contractline l ON l.id = a.line_id
      JOIN contracts_contract k ON k.id = l.contract_id
      JOIN inventory_server s ON s.id = a.server_id
      LEFT JOIN inventory_card c ON a.card_id IS NULL AND c.server_id = a.server_id
     WHERE a.firm AND a.start_at < %(end)s AND (a.end_at IS NULL OR a.end_at > %(start)s)
       AND k.status NOT IN ('draft', 'pending_approval')
       AND (%(customer)s::bigint IS NULL OR k.customer_id = %(customer)s)
       AND (%(provider)s::bigint IS NULL OR s.provider_id = %(provider)s)
       AND (%(contracts)s::bigint[] IS NULL OR k.id = ANY(%(contracts)s))
), spans AS (
    SELECT * FROM alloc WHERE hi > lo AND card_id IS NOT NULL
), records AS (
    SELECT sp.contract_id, sp.line_id, sp.card_id, sp.term, sp.usage_source, sp.threshold, u.source,
           u.utilization_percent, u.energy_mj, u.start_at, u.end_at,
           tstzrange(GREATEST(u.start_at, sp.lo), LEAST(u.end_at, sp.hi)) AS part
      FROM spans sp JOIN metering_usagerecord u ON u.card_id = sp.card_id
     WHERE u.voided_at IS NULL AND u.start_at < sp.hi AND u.end_at > sp.lo
       AND u.start_at > %(reach)s AND u.start_at < %(end)s
    UNION ALL
    SELECT sp.contract_id, sp.line_id, sp.card_id, sp.term, sp.usage_source, sp.threshold, u.source,
           u.utilization_percent, u.energy_mj, u.start_at, u.end_at,
           tstzrange(GREATEST(u.start_at, sp.lo), LEAST(u.end_at, sp.hi)) AS part
      FROM spans sp JOIN metering_usagerecord u ON u.server_id = sp.server_id AND u.card_id IS NULL
     WHERE u.voided_at IS NULL AND u.start_at < sp.hi AND u.end_at > sp.lo
       AND u.start_at > %(reach)s AND u.start_at < %(end)s
), leased AS (
    SELECT contract_id, SUM(EXTRACT(epoch FROM hi - lo) * 1000000)::bigint AS micros
      FROM spans WHERE term <> 'hourly' GROUP BY contract_id
), metered AS (
    SELECT contract_id, SUM(
             (SELECT COALESCE(SUM(EXTRACT(epoch FROM upper(x) - lower(x)) * 1000000), 0) FROM unnest(merged) x)
           )::bigint AS micros
      FROM (SELECT contract_id, card_id, range_agg(part) AS merged FROM records
             WHERE term = 'hourly' AND source = usage_source GROUP BY contract_id, line_id, card_id) m
     GROUP BY contract_id
), busy AS (
    SELECT contract_id, SUM(
             (SELECT COALESCE(SUM(EXTRACT(epoch FROM upper(x) - lower(x)) * 1000000), 0) FROM unnest(merged) x)
           )::bigint AS micros
      FROM (SELECT contract_id, card_id, range_agg(part) AS merged FROM records
             WHERE source = 'agent' AND (threshold IS NULL OR utilization_percent >= threshold)
             GROUP BY contract_id, card_id) b
     GROUP BY contract_id
), agent AS (
    SELECT contract_id,
           SUM(utilization_percent * EXTRACT(epoch FROM upper(part) - lower(part)))
             FILTER (WHERE utilization_percent IS NOT NULL) AS util_seconds,
           SUM(EXTRACT(epoch FROM upper(part) - lower(part)))
             FILTER (WHERE utilization_percent IS NOT NULL) AS seconds,
           SUM(energy_mj * EXTRACT(epoch FROM upper(part) - lower(part))
               / NULLIF(EXTRACT(epoch FROM end_at - start_at), 0)) AS energy_mj
      FROM records WHERE source = 'agent' GROUP BY contract_id
)
SELECT k.id, k.number, k.version, cu.code, cu.name,
       COALESCE(leased.micros, 0) + COALESCE(metered.micros, 0),
       COALESCE(busy.micros, 0),
       agent.util_seconds / NULLIF(agent.seconds, 0),
       agent.energy_mj
  FROM (SELECT DISTINCT contract_id FROM spans) ids
  JOIN contracts_contract k ON k.id = ids.contract_id
  JOIN customers_customer cu ON cu.id = k.customer_id
  LEFT JOIN leased ON leased.contract_id = k.id
  LEFT JOIN metered ON metered.contract_id = k.id
  LEFT JOIN busy ON busy.contract_id = k.id
  LEFT JOIN agent ON agent.contract_id = k.id
 ORDER BY cu.code, k.number, k.version
"""

# A record spans at most 31 days (docs/usage-api.md): bounding start_at keeps the index scan short.
RECORD_MAX_SPAN = datetime.timedelta(days=31)


@dataclass(frozen=True, slots=True)
class ContractEfficiency:
    contract_id: int
    contract: str
    customer_code: str
    customer_name: str
    period: str
    billed_card_hours: Decimal
    busy_card_hours: Decimal
    mean_utilisation_percent: Decimal | None
    energy_kwh: Decimal | None

    @property
    def busy_share_percent(self) -> Decimal | None:
        """Observed busy card-hours as a share of billed card-hours."""
        if not self.billed_card_hours:
            return None
        return round_places(self.busy_card_hours / self.billed_card_hours * 100, 1)


def contract_efficiency_list(
    *,
    period: Period,
    customer_id: int | None = None,
    provider_id: int | None = None,
    contract_ids: list[int] | None = None,
) -> list[ContractEfficiency]:
    """Efficiency of every contract with hardware allocated in ``period`` (one query), optionally
    of one customer, of one provider's hardware, or of some contracts."""
    start, end = period.bounds(settings.BILLING_TIME_ZONE)
    with connection.cursor() as cursor:
        cursor.execute(
            EFFICIENCY_SQL,
            {
                "start": start,
                "end": end,
                "reach": start - RECORD_MAX_SPAN,
                "customer": customer_id,
                "provider": provider_id,
                "contracts": contract_ids,
            },
        )
        rows = cursor.fetchall()
    out = []
    for pk, number, version, code, name, billed, busy, util, energy in rows:
        out.append(
            ContractEfficiency(
                contract_id=pk,
                contract=number if version == 1 else f"{number} v{version}",
                customer_code=code,
                customer_name=name,
                period=str(period),
                billed_card_hours=round_places(Decimal(billed) / MICROS_PER_HOUR, 2),
                busy_card_hours=round_places(Decimal(busy) / MICROS_PER_HOUR, 2),
                mean_utilisation_percent=None if util is None else round_places(util, 1),
                energy_kwh=None if energy is None else round_places(Decimal(energy) / MJ_PER_KWH, 3),
            )
        )
    return out
