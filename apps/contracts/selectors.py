"""Reads over contracts: visibility by role, the capacity finder."""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from decimal import Decimal

from django.db.models import Count, Exists, OuterRef, Q, QuerySet

from apps.accounts import roles
from apps.core.money import effective_unit_price
from apps.inventory.models import Card, HardwareStatus, Server
from apps.providers.models import HubRegion, SupplyAgreement

from .models import Allocation, Contract, ContractLine, ContractStatus
from .quotes import contract_quote

FAR_FUTURE = datetime.datetime(9999, 1, 1, tzinfo=datetime.UTC)


def contract_list(*, user) -> QuerySet[Contract]:
    """Contracts ``user`` may see: account managers their own; finance and managers all.

    A customer portal user (not staff) sees the contracts of the customers they are a member of,
    once they are out of internal drafting (not draft, not pending approval).
    """
    qs = Contract.objects.select_related("customer", "account_manager", "approved_by")
    if not user.is_authenticated:
        return qs.none()
    if user.is_superuser:
        return qs
    if not user.is_staff:
        return qs.filter(customer__memberships__user=user).exclude(
            status__in=[ContractStatus.DRAFT, ContractStatus.PENDING_APPROVAL]
        )
    group_names = set(user.groups.values_list("name", flat=True))
    if group_names & {roles.SALES_MANAGER, roles.FINANCE, roles.OPERATIONS}:
        return qs
    if roles.ACCOUNT_MANAGER in group_names:
        return qs.filter(account_manager=user)
    return qs.none()


def _overlapping(start_at, end_at) -> Q:
    return Q(start_at__lt=end_at or FAR_FUTURE) & (Q(end_at__isnull=True) | Q(end_at__gt=start_at))


@dataclass(frozen=True)
class CapacityOption:
    """A free card or server the line could take, with the provider's cost and the margin.

    ``units`` is how much of the line the option covers (1 card, 1 server, or the server's P
    units for a P-unit line); cost and margin are per line unit, excluding VAT. ``cost_source``
    says where the cost comes from: ``"p_unit"``/``"card"``/``"server"`` (the provider's supply
    agreement of that resource for the line's model and term) or ``None`` (no supply price).
    A P-unit cost from a card or server agreement is derived: cost per card ÷ P per card, or cost
    per server ÷ P per server.
    """

    server: Server
    card: Card | None
    provider_code: str
    provider_name: str
    site_name: str
    hub: str
    hub_name: str
    p_units: Decimal
    units: Decimal
    cost_unit_price: Decimal | None
    net_unit_price: Decimal
    margin_unit: Decimal | None
    cost_source: str | None = None
    line_resource: str = "p_unit"

    @property
    def label(self) -> str:
        return self.card.uuid if self.card else self.server.serial

    @property
    def cost_derived(self) -> bool:
        """A P-unit cost worked out from the provider's card or server agreement (a card or
        server line's cost comes from its own resource's agreement: not derived)."""
        return self.line_resource == "p_unit" and self.cost_source in ("card", "server")

    @property
    def cost_amount(self) -> Decimal | None:
        return None if self.cost_unit_price is None else self.cost_unit_price * self.units

    @property
    def margin_amount(self) -> Decimal | None:
        return None if self.margin_unit is None else self.margin_unit * self.units

    @property
    def net_amount(self) -> Decimal:
        return self.net_unit_price * self.units


@dataclass(frozen=True)
class CapacityTotals:
    """Sums over finder rows, per period unit of the line's term, excluding VAT. Rows without a
    supply price count in ``units`` and ``net_amount`` but not in cost or margin: ``unpriced`` of
    ``count`` rows are left out of those two sums (never a blank total)."""

    count: int
    unpriced: int
    units: Decimal
    p_units: Decimal
    net_amount: Decimal
    cost_amount: Decimal
    margin_amount: Decimal

    @property
    def priced(self) -> int:
        return self.count - self.unpriced


def capacity_totals(options: list[CapacityOption]) -> CapacityTotals:
    priced = [o for o in options if o.cost_unit_price is not None]
    return CapacityTotals(
        count=len(options),
        unpriced=len(options) - len(priced),
        units=sum((o.units for o in options), Decimal(0)),
        p_units=sum((o.p_units for o in options), Decimal(0)),
        net_amount=sum((o.net_amount for o in options), Decimal(0)),
        cost_amount=sum((o.cost_amount for o in priced), Decimal(0)),
        margin_amount=sum((o.margin_amount for o in priced), Decimal(0)),
    )


def _supply_costs(gpu_model_id: int, term: str, on: datetime.date) -> dict[tuple[int, str], Decimal]:
    """The cost per unit of every provider's agreement for the model and term valid ``on``, keyed
    by (provider id, resource); the latest agreement wins."""
    agreements = (
        SupplyAgreement.objects.filter(gpu_model_id=gpu_model_id, term=term, valid_from__lte=on)
        .filter(Q(valid_to__isnull=True) | Q(valid_to__gte=on))
        .order_by("provider_id", "resource", "-valid_from")
    )
    costs: dict[tuple[int, str], Decimal] = {}
    for agreement in agreements:
        costs.setdefault((agreement.provider_id, agreement.resource), agreement.cost_unit_price)
    return costs


def _unit_cost(
    costs: dict[tuple[int, str], Decimal], *, resource: str, server: Server, p_per_card: Decimal
) -> tuple[Decimal | None, str | None]:
    """A provider's cost per line unit and where it comes from. For P units without a p_unit
    agreement: the server agreement ÷ the server's P, else the card agreement ÷ P per card."""
    direct = costs.get((server.provider_id, resource))
    if direct is not None or resource != "p_unit" or not p_per_card:
        return direct, (resource if direct is not None else None)
    per_server = costs.get((server.provider_id, "server"))
    if per_server is not None:
        return per_server / (p_per_card * server.card_count), "server"
    per_card = costs.get((server.provider_id, "card"))
    if per_card is not None:
        return per_card / p_per_card, "card"
    return None, None


def capacity_find(
    *,
    line: ContractLine,
    start_at: datetime.datetime | None = None,
    end_at: datetime.datetime | None = None,
    hubs: list[str] | None = None,
    site_ids: list[int] | None = None,
    limit: int = 200,
) -> list[CapacityOption]:
    """Free hardware of the line's GPU model over the interval (no firm allocation overlaps it).

    Card lines get free cards; server and P-unit lines get wholly free servers. Ordered by margin
    (best first), then hub and serial. Costs come from each provider's supply agreement for the
    same resource and term (for P units without one: derived from its server or card agreement,
    see ``_unit_cost``); the margin is per unit, excluding VAT.
    """
    contract = line.contract
    start_at = start_at or line.start_at or contract.start_at
    end_at = end_at or line.end_at or contract.end_at
    # Busy: firmly allocated to any contract, or already held (even tentatively) by this contract.
    held = Q(firm=True) | Q(line__contract=contract)
    busy = Allocation.objects.filter(_overlapping(start_at, end_at), held, server=OuterRef("pk"))
    servers = Server.objects.filter(gpu_model=line.gpu_model).exclude(
        status__in=[HardwareStatus.MAINTENANCE, HardwareStatus.RETIRED]
    )
    if hubs:
        servers = servers.filter(site__hub__in=hubs)
    if site_ids:
        servers = servers.filter(site_id__in=site_ids)

    unit_price = effective_unit_price(line.list_unit_price, line.term_discount_percent, line.discount_percent)
    net_price = unit_price / (1 + line.tax_category.rate) if contract.prices_include_tax else unit_price
    costs = _supply_costs(line.gpu_model_id, line.term, start_at.date())
    p_per_card = line.gpu_model.p_per_card
    hub_names = dict(HubRegion.choices)

    def option(server, card) -> CapacityOption:
        cost, source = _unit_cost(costs, resource=line.resource, server=server, p_per_card=p_per_card)
        p_units = p_per_card if card else p_per_card * server.card_count
        return CapacityOption(
            server=server,
            card=card,
            provider_code=server.provider.code,
            provider_name=server.provider.name,
            site_name=server.site.name,
            hub=server.site.hub,
            hub_name=hub_names.get(server.site.hub, server.site.hub),
            p_units=p_units,
            units=p_units if line.resource == "p_unit" else Decimal(1),
            cost_unit_price=cost,
            net_unit_price=net_price,
            margin_unit=None if cost is None else net_price - cost,
            cost_source=source,
            line_resource=line.resource,
        )

    if line.resource == "card":
        busy_card = Allocation.objects.filter(
            _overlapping(start_at, end_at), held, server=OuterRef("server_id")
        ).filter(Q(slot=OuterRef("slot")) | Q(slot__isnull=True))
        cards = (
            Card.objects.filter(server__in=servers)
            .exclude(status__in=[HardwareStatus.MAINTENANCE, HardwareStatus.RETIRED])
            .filter(~Exists(busy_card))
            .select_related("server__provider", "server__site", "server__gpu_model")
            .order_by("server__site__hub", "server__serial", "slot")[: limit * 4]
        )
        options = [option(card.server, card) for card in cards]
    else:
        free = servers.filter(~Exists(busy)).select_related("provider", "site", "gpu_model")
        options = [option(server, None) for server in free.order_by("site__hub", "serial")[: limit * 4]]
    options.sort(key=lambda o: (o.margin_unit is None, -(o.margin_unit or Decimal(0))))
    return options[:limit]


APPROVAL_QUEUE_LIMIT = 10


def approval_queue(*, user, limit: int = APPROVAL_QUEUE_LIMIT) -> dict:
    """Contracts waiting for a sales manager, oldest submission first, with the largest discount,
    the monthly value and margin of the quote; at most ``limit`` rows are priced (a constant
    number of queries per page), ``total`` counts them all."""
    pending = contract_list(user=user).filter(
        status=ContractStatus.PENDING_APPROVAL, approved_at__isnull=True
    )
    total = pending.count()
    rows = []
    for contract in pending.order_by("submitted_at", "pk").prefetch_related("lines")[:limit]:
        quote = contract_quote(contract=contract)
        discount = max((line.combined_discount_percent for line in contract.lines.all()), default=Decimal(0))
        rows.append(
            {
                "contract": contract,
                "discount_percent": discount.quantize(Decimal("0.01")),
                "value_amount": quote.net_amount,
                "margin_amount": quote.margin_amount,
            }
        )
    return {"rows": rows, "total": total}


ENDING_SOON_DAYS = 60


def account_manager_home(*, user, now: datetime.datetime) -> dict:
    """An account manager's own contracts, counted in one query: drafts, waiting for approval,
    approved and waiting for activation, active and ending within ``ENDING_SOON_DAYS`` of ``now``."""
    ending_before = now + datetime.timedelta(days=ENDING_SOON_DAYS)
    pending = Q(status=ContractStatus.PENDING_APPROVAL)
    return Contract.objects.filter(account_manager=user).aggregate(
        drafts=Count("pk", filter=Q(status=ContractStatus.DRAFT)),
        awaiting_approval=Count("pk", filter=pending & Q(approved_at__isnull=True)),
        awaiting_activation=Count("pk", filter=pending & Q(approved_at__isnull=False)),
        ending_soon=Count(
            "pk", filter=Q(status=ContractStatus.ACTIVE, end_at__gt=now, end_at__lte=ending_before)
        ),
    ) | {"ending_before": ending_before}
