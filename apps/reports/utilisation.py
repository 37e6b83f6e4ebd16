"""Utilisation and idle capacity per provider and site, as one SQL aggregation over tstzrange
arithmetic (docs/reports.md#utilisation-and-idle-capacity).

available card-hours: each card's life (from its creation to the first recorded retirement of the
card or of its server) within the range, the range cut at *now*; allocated card-hours: the part of
that life under a firm allocation (of the card, or of its whole server); idle = available −
allocated, also as P-hours (× the model's dense FP16 P per card). Idle cards now: cards in service
(neither they nor their server retired) that no firm allocation holds at *now*.
"""

from __future__ import annotations

import datetime
from decimal import Decimal

from apps.contracts.models import Allocation
from apps.core.money import round_hours, round_percent
from apps.core.units import TFLOPS_PER_P
from apps.inventory.models import Card, GpuModel, HardwareStatus, Server
from apps.providers.models import HubRegion, Provider, Site
from apps.reports.selectors import PeriodRange, report_cursor

T = {
    "card": Card._meta.db_table,
    "hcard": Card.history.model._meta.db_table,
    "server": Server._meta.db_table,
    "hserver": Server.history.model._meta.db_table,
    "model": GpuModel._meta.db_table,
    "allocation": Allocation._meta.db_table,
    "site": Site._meta.db_table,
    "provider": Provider._meta.db_table,
}

HOURS = "coalesce(extract(epoch FROM upper({r}) - lower({r})) / 3600, 0)"
RETIRED_SERVER_AT = "coalesce(rs.at, CASE WHEN v.status = %(retired)s THEN v.updated_at END)"


def _life(cards: str, extra: str = "") -> str:
    """SQL: the rows of ``cards`` (``server_id``, ``created_at``, ``in_service`` and ``retired_at``
    of the card itself, ``n`` cards) with their site, P per card, whether they are in service (the
    card and its server), and ``span``: their life ``[created_at, retired)`` within the range,
    retired being the first recorded retirement of the card or of its server."""
    return f"""
    SELECT k.n, k.server_id, k.created_at, v.site_id, g.fp16_dense_tflops / %(tflops_per_p)s AS p_per_card,
           (k.in_service AND v.status <> %(retired)s) AS in_service,
           tstzrange(k.created_at, CASE WHEN e.retired_at < k.created_at THEN k.created_at
                                        ELSE e.retired_at END, '[)')
           * tstzrange(%(start)s, %(end)s, '[)') AS span{extra}
    FROM {cards} k
    JOIN {T["server"]} v ON v.id = k.server_id
    JOIN {T["model"]} g ON g.id = v.gpu_model_id
    LEFT JOIN retired_server rs ON rs.id = v.id
    CROSS JOIN LATERAL (SELECT LEAST(k.retired_at, {RETIRED_SERVER_AT}) AS retired_at) e"""


# A card's own state: in service (neither it nor, below, its server retired) and its first recorded
# retirement (the row's last change when it is retired with no history of it).
CARD_STATE = """c.server_id, c.created_at, c.status <> %(retired)s AS in_service,
           coalesce(rc.at, CASE WHEN c.status = %(retired)s THEN c.updated_at END) AS retired_at"""

QUERY = f"""
WITH retired_card AS (
    SELECT id, min(history_date) AS at FROM {T["hcard"]} WHERE status = %(retired)s GROUP BY id
), retired_server AS (
    SELECT id, min(history_date) AS at FROM {T["hserver"]} WHERE status = %(retired)s GROUP BY id
), cards AS (
    -- the cards of a server that share one life (created together, retired together or not at
    -- all) as one row of n cards: the range arithmetic below runs per server, not per card
    SELECT {CARD_STATE}, count(*)::integer AS n
    FROM {T["card"]} c LEFT JOIN retired_card rc ON rc.id = c.id
    GROUP BY 1, 2, 3, 4
), own AS (
    -- each card's own firm allocations, one card at a time
    SELECT {CARD_STATE}, 1 AS n, tstzrange(a.start_at, a.end_at, '[)') AS held
    FROM {T["allocation"]} a
    JOIN {T["card"]} c ON c.id = a.card_id
    LEFT JOIN retired_card rc ON rc.id = c.id
    WHERE a.firm
), life AS MATERIALIZED ({_life("cards", ", k.in_service AS card_in_service, k.retired_at AS card_retired_at")}
), held AS (
    -- the cards' firm allocations: their whole server's, and their own (firm ones never overlap)
    SELECT l.site_id, l.p_per_card, l.in_service, l.created_at, l.n, l.span,
           tstzrange(a.start_at, a.end_at, '[)') AS held
    FROM life l JOIN {T["allocation"]} a ON a.server_id = l.server_id AND a.card_id IS NULL AND a.firm
    UNION ALL
    -- a card's own ones: with the row of cards it belongs to (the same server and state)
    SELECT l.site_id, l.p_per_card, l.in_service, l.created_at, o.n, l.span, o.held
    FROM own o
    JOIN life l ON l.server_id = o.server_id AND l.created_at = o.created_at
               AND l.card_in_service = o.in_service
               AND coalesce(l.card_retired_at, '-infinity') = coalesce(o.retired_at, '-infinity')
), available AS (
    SELECT site_id, coalesce(sum(n) FILTER (WHERE NOT isempty(span)), 0) AS cards,
           sum(n * hours) AS hours, sum(n * hours * p_per_card) AS p_hours,
           coalesce(sum(n) FILTER (WHERE in_service AND created_at <= %(now)s), 0) AS in_service_now
    FROM (
        -- rows of like cards summed first: the hours are computed once per distinct life
        SELECT site_id, p_per_card, in_service, created_at, span, sum(n) AS n, {HOURS.format(r="span")} AS hours
        FROM life GROUP BY 1, 2, 3, 4, 5
    ) l
    GROUP BY site_id
), allocated AS (
    SELECT site_id, sum(n * hours) AS hours, sum(n * hours * p_per_card) AS p_hours,
           coalesce(sum(n) FILTER (WHERE in_service AND created_at <= %(now)s AND held @> %(now)s::timestamptz), 0)
           AS held_now
    FROM (
        SELECT site_id, p_per_card, in_service, created_at, held, sum(n) AS n, {HOURS.format(r="span * held")} AS hours
        FROM held GROUP BY 1, 2, 3, 4, 5, span
    ) h
    GROUP BY site_id
)
SELECT pr.code, pr.name, s.name, s.hub, av.cards, av.hours, coalesce(al.hours, 0),
       av.p_hours - coalesce(al.p_hours, 0), av.in_service_now - coalesce(al.held_now, 0)
FROM available av
JOIN {T["site"]} s ON s.id = av.site_id
JOIN {T["provider"]} pr ON pr.id = s.provider_id
LEFT JOIN allocated al ON al.site_id = av.site_id
ORDER BY pr.code, s.name
"""


def _percent(part: Decimal, whole: Decimal) -> Decimal | None:
    return round_percent(part * 100 / whole, places=1) if whole else None


def utilisation(*, period_range: PeriodRange, now: datetime.datetime) -> list[dict]:
    """Per provider, its sites then a provider row (``site`` empty): cards counted in the range,
    available / allocated / idle card-hours, utilisation %, idle P-hours and idle cards now. The
    range ends at ``now`` when now is earlier. One query."""
    start, end = period_range.bounds()
    end = max(start, min(end, now))
    with report_cursor() as cursor:
        cursor.execute(
            QUERY,
            {
                "retired": HardwareStatus.RETIRED.value,
                "tflops_per_p": TFLOPS_PER_P,
                "start": start,
                "end": end,
                "now": now,
            },
        )
        fetched = cursor.fetchall()
    hubs = dict(HubRegion.choices)
    providers: dict[str, dict] = {}
    for code, name, site, hub, cards, available, allocated, idle_p, idle_now in fetched:
        row = _row(cards, available, allocated, idle_p, idle_now)
        row.update(provider_code=code, provider_name=name, site=site, hub=hubs.get(hub, hub))
        total = providers.setdefault(code, {"name": name, "sites": []})
        total["sites"].append(row)
    out = []
    for code, provider in providers.items():  # its sites, then the provider's row
        out.extend(provider["sites"])
        total = _sum(provider["sites"])
        total.update(provider_code=code, provider_name=provider["name"], site="", hub="")
        out.append(total)
    return out


def _row(cards, available, allocated, idle_p, idle_now) -> dict:
    available, allocated = round_hours(available or 0), round_hours(allocated or 0)
    return {
        "cards": cards,
        "available_hours": available,
        "allocated_hours": allocated,
        "idle_hours": available - allocated,
        "utilisation_percent": _percent(allocated, available),
        "idle_p_hours": round_hours(idle_p or 0),
        "idle_cards_now": idle_now,
    }


def _sum(rows: list[dict]) -> dict:
    return _row(
        sum(r["cards"] for r in rows),
        sum((r["available_hours"] for r in rows), Decimal(0)),
        sum((r["allocated_hours"] for r in rows), Decimal(0)),
        sum((r["idle_p_hours"] for r in rows), Decimal(0)),
        sum(r["idle_cards_now"] for r in rows),
    )


def utilisation_total(rows: list[dict]) -> dict:
    """All providers together, from the provider rows of ``utilisation``."""
    return _sum([r for r in rows if not r["site"]])
