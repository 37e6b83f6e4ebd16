"""Demo of hardware truth (docs/hardware-truth.md): the metering agent's second source, a flagged
draft, a card incident and the SLA credit it earns, all through the real services.

- shenlan's four RTX 4090 cards (by the hour): the agent on their host reports each partner
  session of the current month 10 % shorter than the provider's scheduler did, so the current
  month's draft bills 10 % more hours than the cards were seen working and is flagged for
  finance (a preview run of the current month as of midnight today).
- jinghong's two RTX 4090 servers (by the month) get the "Dedicated 99.5 %" SLA; two of their
  sixteen cards fell off the bus (Xid 79) for 60 hours from 08:00 on the 1st of the current month.
  Their current-month draft carries the ``sla_credit`` line: availability 1 − 120 / (16 × the
  month's hours), under 99 % in a 30- or 31-day month → 25 % of the lease.

Nothing is dated after now: before the incident has ended (the first days of a month) the step
leaves it, its credit and the drafts for a later load. A second load the same day changes nothing
(incidents and agent records are keyed by event id; a preview run is made once per day).
"""

from __future__ import annotations

import datetime
from decimal import Decimal

from django.contrib.auth import get_user_model

from apps.billing.invoicing.services.runs import billing_run_create, billing_run_execute
from apps.billing.models import BillingRun
from apps.contracts.models import Contract, SlaCreditTier, SlaPolicy
from apps.contracts.services import line_sla_set
from apps.inventory.models import CardIncident
from apps.inventory.services import card_incidents_report
from apps.metering.models import UsageRecord
from apps.metering.services import usage_ingest

from . import dates
from .base import CREATED, UNCHANGED, DemoContext, sync

FLAGGED = "demo:shenlan-cards-hourly\n"  # the provider over-reports its hours
SLA_CONTRACT = "demo:jinghong-servers-monthly\n"
SLA_POLICY = "Dedicated 99.5 % 独享 99.5%"
SLA_TIERS = (
    (Decimal("99.50"), Decimal("10")),
    (Decimal("99.00"), Decimal("25")),
    (Decimal("95.00"), Decimal("50")),
)
AGENT_SHARE = Decimal("0.9")  # the agent sees 90 % of each session the scheduler reported
INCIDENT_HOURS = 60
ACCOUNT_MANAGER = "am1"


def _contract(marker: str) -> Contract | None:
    return Contract.objects.filter(notes__startswith=marker).order_by("-version").first()


def _sla_policy(tally) -> SlaPolicy:
    policy, outcome = sync(SlaPolicy, {"name": SLA_POLICY}, {"target_percent": Decimal("99.50")})
    tally.add(outcome)
    for below, credit in SLA_TIERS:
        _, outcome = sync(
            SlaCreditTier, {"policy": policy, "below_percent": below}, {"credit_percent": credit}
        )
        tally.add(outcome)
    return policy


def _incident_window() -> tuple[datetime.datetime, datetime.datetime]:
    start = dates.at(0, 1, 8)
    return start, start + datetime.timedelta(hours=INCIDENT_HOURS)


def _incidents(contract: Contract, tally) -> None:
    """Xid 79 on the first two cards of the contract's first server, reported when they recovered."""
    start, end = _incident_window()
    if not dates.due(end):
        return
    allocation = (
        contract.lines.first().allocations.select_related("server").order_by("server__serial").first()
    )
    server = allocation.server
    event = f"demo-xid79-{start:%Y-%m}"
    cards = list(server.cards.order_by("slot")[:2])
    if CardIncident.objects.filter(card__in=cards, source_event_id=event).count() == len(cards):
        tally.add(UNCHANGED, len(cards))
        return
    card_incidents_report(
        server=server,
        incidents=[
            {
                "event_id": event,
                "card": card.uuid,
                "kind": "fell_off_bus",
                "xid_code": 79,
                "detail": "GPU has fallen off the bus (Xid 79) GPU 掉卡",
                "start": start,
                "end": end,
            }
            for card in cards
        ],
        now=end + datetime.timedelta(minutes=5),
    )
    tally.add(CREATED, len(cards))


def _agent_records(contract: Contract, tally) -> None:
    """The agent's view of each partner session of the current month on the contract's cards: the
    same start, 10 % shorter (so the provider's scheduler over-reports by about 11 %)."""
    month_start = dates.at(0)
    cards = [a.card for a in contract.lines.first().allocations.select_related("card__server") if a.card_id]
    partner = (
        UsageRecord.objects.filter(
            card__in=cards, source="partner", start_at__gte=month_start, voided_at=None
        )
        .select_related("card__server")
        .order_by("start_at", "card_id")
    )
    known = set(
        UsageRecord.objects.filter(card__in=cards, source="agent", start_at__gte=month_start).values_list(
            "event_id", flat=True
        )
    )
    by_server: dict[int, list[dict]] = {}
    servers = {}
    latest: dict[int, datetime.datetime] = {}
    for record in partner:
        event = f"agent-{record.event_id}"
        if event in known:
            tally.add(UNCHANGED)
            continue
        seconds = int((record.end_at - record.start_at) // datetime.timedelta(seconds=1) * AGENT_SHARE)
        end = record.start_at + datetime.timedelta(seconds=seconds)
        server = record.card.server
        servers[server.pk] = server
        by_server.setdefault(server.pk, []).append(
            {
                "event_id": event,
                "card": record.card.uuid,
                "start": record.start_at.isoformat(),
                "end": end.isoformat(),
                "telemetry": {"utilization_percent": 85, "energy_mj": seconds * 300_000},  # 300 W
            }
        )
        latest[server.pk] = max(latest.get(server.pk, end), end)
    for server_id, records in by_server.items():
        server = servers[server_id]
        usage_ingest(
            provider=server.provider,
            server=server,
            source="agent",
            payload_records=records,
            received_at=min(latest[server_id] + datetime.timedelta(minutes=5), dates.today_start()),
        )
        tally.add(CREATED, len(records))


def _preview_run(contract: Contract, tally) -> None:
    """Bill the customer's current month as of midnight today, once a day: its draft (never issued
    before the month ends) is reconciled and carries any SLA credit."""
    period, as_of = dates.month(0), dates.today_start()
    if (
        as_of <= dates.at(0)
        or BillingRun.objects.filter(period=period, customer=contract.customer, as_of=as_of).exists()
    ):
        tally.add(UNCHANGED)
        return
    billing_run_execute(
        run=billing_run_create(period=period, customer=contract.customer, as_of=as_of, now=as_of), now=as_of
    )
    tally.add(CREATED)


def load_hardware_truth(ctx: DemoContext) -> None:
    tally = ctx.tally("hardware truth")
    policy = _sla_policy(tally)
    flagged, leased = _contract(FLAGGED), _contract(SLA_CONTRACT)
    if leased is not None:
        line = leased.lines.first()
        if line.sla_id != policy.pk:
            line_sla_set(
                line=line,
                sla=policy,
                actor=get_user_model().objects.get(username=ACCOUNT_MANAGER),
                reason="Dedicated-server SLA",
            )
            tally.add(CREATED)
        _incidents(leased, tally)
        if dates.due(_incident_window()[1]):
            _preview_run(leased, tally)
    if flagged is not None:
        _agent_records(flagged, tally)
        _preview_run(flagged, tally)
