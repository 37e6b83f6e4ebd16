"""SLA credits: a line's card-weighted availability from its cards' incidents, and the credit owed
(docs/hardware-truth.md#sla-credits-and-efficiency).

Availability = 1 − Σ incident card-hours / Σ allocated card-hours, both within the line's active
term in the period: each card counts over its allocation to the line, each card's incidents are
merged (two overlapping incidents are one outage) and clipped to that allocation. With the line's
cards allocated for the whole term this is the contract formula 1 − down / (cards × active hours).

``sla_inputs_load`` reads what a chunk needs in at most five queries (SLA lines, tiers,
allocations, cards of whole-server allocations, incidents); the rest is pure and takes Decimals.
"""

from __future__ import annotations

import datetime
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal

from django.db.models import Q

from apps.billing.invoicing.inputs import id_array
from apps.contracts import pricing
from apps.contracts.models import Allocation, ContractLine, SlaCreditTier
from apps.core.money import ZERO, round_money, round_percent, split_tax
from apps.inventory.models import Card, CardIncident

SLA_CREDIT = "sla_credit"
CREDITED_KINDS = ("usage", "recurring")  # a line's own charges of the period (not late usage)
MICROS_PER_HOUR = 3600 * 1_000_000
DESCRIPTION_LENGTH = 500

Interval = tuple[datetime.datetime, datetime.datetime]


@dataclass(frozen=True, slots=True)
class Tier:
    below_percent: Decimal
    credit_percent: Decimal


@dataclass(frozen=True, slots=True)
class Policy:
    pk: int
    name: str
    target_percent: Decimal
    tiers: tuple[Tier, ...]

    def credit_percent(self, availability_percent: Decimal) -> Decimal | None:
        """The tier with the lowest ``below_percent`` that the (exact) availability is under."""
        if availability_percent >= self.target_percent:
            return None
        under = [t for t in self.tiers if availability_percent < t.below_percent]
        return min(under, key=lambda t: t.below_percent).credit_percent if under else None


@dataclass(frozen=True, slots=True)
class Incident:
    pk: int
    card_id: int
    card_uuid: str
    kind: str
    xid_code: int | None
    started_at: datetime.datetime
    ended_at: datetime.datetime | None
    reported_at: datetime.datetime


@dataclass(frozen=True, slots=True)
class Availability:
    percent: Decimal  # exact
    down_hours: Decimal
    total_hours: Decimal
    card_count: int
    incidents: tuple[Incident, ...]  # those that cost time, by start

    @property
    def percent_text(self) -> str:
        return f"{round_percent(self.percent)}"


@dataclass
class SlaLine:
    """A contract line with an SLA: its policy, active term and cards' allocation intervals."""

    line_id: int
    policy: Policy
    start: datetime.datetime
    end: datetime.datetime | None
    cards: dict[int, list[Interval | tuple[datetime.datetime, datetime.datetime | None]]] = field(
        default_factory=lambda: defaultdict(list)
    )


@dataclass
class SlaInputs:
    lines: dict[int, SlaLine] = field(default_factory=dict)
    incidents: dict[int, list[Incident]] = field(default_factory=lambda: defaultdict(list))

    def availability(
        self, line_id: int, start: datetime.datetime, end: datetime.datetime
    ) -> Availability | None:
        line = self.lines.get(line_id)
        if line is None:
            return None
        lo = max(start, line.start)
        hi = end if line.end is None else min(end, line.end)
        if hi <= lo:
            return None
        cards = {
            card_id: [(max(a, lo), hi if b is None else min(b, hi)) for a, b in spans]
            for card_id, spans in line.cards.items()
        }
        return availability(cards=cards, incidents=self.incidents, end=hi)


def _merge(intervals: list[Interval]) -> list[Interval]:
    out: list[list[datetime.datetime]] = []
    for a, b in sorted(i for i in intervals if i[1] > i[0]):
        if out and a <= out[-1][1]:
            out[-1][1] = max(out[-1][1], b)
        else:
            out.append([a, b])
    return [(a, b) for a, b in out]


def _micros(delta: datetime.timedelta) -> int:
    return (delta.days * 86400 + delta.seconds) * 1_000_000 + delta.microseconds


def availability(
    *, cards: dict[int, list[Interval]], incidents: dict[int, list[Incident]], end: datetime.datetime
) -> Availability | None:
    """Card-weighted availability over the cards' (clipped) allocation intervals; an ongoing
    incident runs to ``end``. ``None`` when no card was allocated in the window."""
    total = down = 0
    hit: dict[int, Incident] = {}
    counted_cards = 0
    for card_id, spans in cards.items():
        allocated = _merge(spans)
        if not allocated:
            continue
        counted_cards += 1
        total += sum(_micros(b - a) for a, b in allocated)
        outages = []
        for incident in incidents.get(card_id, ()):
            i_start, i_end = incident.started_at, incident.ended_at or end
            for a, b in allocated:
                lo, hi = max(a, i_start), min(b, i_end)
                if hi > lo:
                    outages.append((lo, hi))
                    hit[incident.pk] = incident
        down += sum(_micros(b - a) for a, b in _merge(outages))
    if total == 0:
        return None
    return Availability(
        percent=(1 - Decimal(down) / Decimal(total)) * 100,
        down_hours=Decimal(down) / MICROS_PER_HOUR,
        total_hours=Decimal(total) / MICROS_PER_HOUR,
        card_count=counted_cards,
        incidents=tuple(sorted(hit.values(), key=lambda i: (i.started_at, i.card_uuid, i.pk))),
    )


def sla_inputs_load(
    *, line_ids, start: datetime.datetime, end: datetime.datetime, as_of: datetime.datetime
) -> SlaInputs:
    """SLA lines among ``line_ids`` with their cards and the incidents reported by ``as_of`` that
    overlap ``[start, end)``: one query when no line has an SLA, at most five otherwise."""
    inputs = SlaInputs()
    rows = list(
        ContractLine.objects.filter(pk__in=id_array(line_ids or [0]))
        .filter(Q(sla__isnull=False) | Q(contract__price_list__sla__isnull=False))
        .values_list(
            "pk",
            "sla_id",
            "contract__price_list__sla_id",
            "start_at",
            "end_at",
            "contract__start_at",
            "contract__end_at",
        )
    )
    if not rows:
        return inputs
    policy_ids = {own or listed for _, own, listed, *_ in rows}
    policies: dict[int, list] = {}
    tiers: dict[int, list[Tier]] = defaultdict(list)
    for policy_id, name, target, below, credit in SlaCreditTier.objects.filter(
        policy_id__in=policy_ids
    ).values_list("policy_id", "policy__name", "policy__target_percent", "below_percent", "credit_percent"):
        policies[policy_id] = [name, target]
        tiers[policy_id].append(Tier(below, credit))
    for line_id, own, listed, l_start, l_end, c_start, c_end in rows:
        policy_id = own or listed
        if policy_id not in policies:
            continue  # a policy without tiers credits nothing
        name, target = policies[policy_id]
        inputs.lines[line_id] = SlaLine(
            line_id=line_id,
            policy=Policy(policy_id, name, target, tuple(tiers[policy_id])),
            start=max(l_start or c_start, c_start),
            end=min((e for e in (l_end, c_end) if e is not None), default=None),
        )
    if not inputs.lines:
        return inputs
    servers: dict[int, list[tuple]] = defaultdict(list)
    for line_id, card_id, server_id, a_start, a_end in (
        Allocation.objects.filter(line_id__in=id_array(inputs.lines), firm=True, start_at__lt=end)
        .filter(Q(end_at__isnull=True) | Q(end_at__gt=start))
        .values_list("line_id", "card_id", "server_id", "start_at", "end_at")
    ):
        if card_id is not None:
            inputs.lines[line_id].cards[card_id].append((a_start, a_end))
        else:
            servers[server_id].append((line_id, a_start, a_end))
    if servers:
        for card_id, server_id in Card.objects.filter(server_id__in=id_array(servers)).values_list(
            "id", "server_id"
        ):
            for line_id, a_start, a_end in servers[server_id]:
                inputs.lines[line_id].cards[card_id].append((a_start, a_end))
    card_ids = {card_id for line in inputs.lines.values() for card_id in line.cards}
    if card_ids:
        for row in (
            CardIncident.objects.filter(
                card_id__in=id_array(card_ids), started_at__lt=end, reported_at__lte=as_of
            )
            .filter(Q(ended_at__isnull=True) | Q(ended_at__gt=start))
            .order_by("card_id", "started_at", "pk")
            .values_list(
                "pk", "card_id", "card__uuid", "kind", "xid_code", "started_at", "ended_at", "reported_at"
            )
        ):
            inputs.incidents[row[1]].append(Incident(*row))
    return inputs


def credit_amount(*, charged: Decimal, credit_percent: Decimal) -> Decimal:
    """The credit on the line's tax basis, rounded once half up."""
    return round_money(charged * credit_percent / 100)


def _hours_text(value: Decimal) -> str:
    text = f"{round_money(value):f}".rstrip("0").rstrip(".")
    return text or "0"


def _local(value: datetime.datetime, tz) -> str:
    return value.astimezone(tz).strftime("%m-%d %H:%M")


def credit_description(
    *, line_label: str, period: str, policy: Policy, result: Availability, credit_percent: Decimal, tz
) -> str:
    """``服务水平赔付 SLA credit · C-… #1 · 2026-09 · availability 97.92 % < 99.50 % → 25 % · incidents: …``."""
    head = (
        f"服务水平赔付 SLA credit · {line_label} · {period} · availability {result.percent_text} % "
        f"(target {round_percent(policy.target_percent)} %, {result.card_count} cards, "
        f"{_hours_text(result.down_hours)} card-h down) → {round_percent(credit_percent)} % credit · incidents: "
    )
    parts = []
    for incident in result.incidents:
        what = f"xid {incident.xid_code}" if incident.xid_code is not None else incident.kind
        until = _local(incident.ended_at, tz) if incident.ended_at else "ongoing"
        parts.append(f"{incident.card_uuid} {what} {_local(incident.started_at, tz)}–{until}")
    shown = list(parts)
    text = head + "; ".join(shown)
    while len(text) > DESCRIPTION_LENGTH and shown:
        shown.pop()
        text = head + "; ".join([*shown, f"… {len(parts) - len(shown)} more"])
    return text[:DESCRIPTION_LENGTH]


def sla_credit_charge(
    *,
    line_id: int,
    charges: list[pricing.LineCharge],
    credit: Decimal,
    prices_include_tax: bool,
) -> pricing.LineCharge:
    """A negative one-item charge of ``credit`` on the credited charges' tax rate and basis."""
    first = charges[0]
    amount = -credit
    return pricing.LineCharge(
        line_id=line_id,
        kind=SLA_CREDIT,  # type: ignore[arg-type]  (an invoice line kind, not a rating one)
        quantity=Decimal(1),
        exact_quantity=Decimal(1),
        unit="item",
        list_unit_price=amount,
        unit_price=amount,
        list_amount=amount,
        discount_amount=ZERO,
        amount=amount,
        tax=split_tax(amount, first.tax_rate, prices_include_tax=prices_include_tax),
        tax_rate=first.tax_rate,
        service_start=min(c.service_start for c in charges),
        service_end=max(c.service_end for c in charges),
    )


@dataclass(frozen=True, slots=True)
class SlaCredit:
    line_id: int
    charge: pricing.LineCharge
    description: str
    availability: Availability
    credit_percent: Decimal


def sla_credits(
    *,
    sla: SlaInputs,
    contract_label: str,
    positions: dict[int, int],
    charges: list[pricing.LineCharge],
    period: str,
    start: datetime.datetime,
    end: datetime.datetime,
    prices_include_tax: bool,
    tz,
) -> list[SlaCredit]:
    """The ``sla_credit`` charges of one contract's period charges, line by line (none without an
    SLA, an incident or a tier the availability falls under)."""
    by_line: dict[int, list[pricing.LineCharge]] = defaultdict(list)
    for charge in charges:
        if charge.line_id in sla.lines and charge.kind in CREDITED_KINDS:
            by_line[charge.line_id].append(charge)
    out = []
    for line_id, credited in by_line.items():
        charged = sum((c.amount for c in credited), ZERO)
        if charged <= 0:
            continue
        result = sla.availability(line_id, start, end)
        if result is None or not result.incidents:
            continue
        policy = sla.lines[line_id].policy
        percent = policy.credit_percent(result.percent)
        if percent is None:
            continue
        credit = credit_amount(charged=charged, credit_percent=percent)
        if credit <= 0:
            continue
        out.append(
            SlaCredit(
                line_id=line_id,
                charge=sla_credit_charge(
                    line_id=line_id, charges=credited, credit=credit, prices_include_tax=prices_include_tax
                ),
                description=credit_description(
                    line_label=f"{contract_label} #{positions[line_id]}",
                    period=period,
                    policy=policy,
                    result=result,
                    credit_percent=percent,
                    tz=tz,
                ),
                availability=result,
                credit_percent=percent,
            )
        )
    return out
