"""Reads over contracts: visibility by role, the capacity finder."""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from decimal import Decimal

from django.db.models import Count, Exists, OuterRef, Q, QuerySet

from apps.accounts import roles
from apps.core.money import effective_unit_price
from apps.inventory.models import Card, HardwareStatus, Server
from apps.providers.models import SupplyAgreement

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
    """A free card or server the line could take, with the provider's cost and the margin."""

    server: Server
    card: Card | None
    provider_code: str
    site_name: str
    hub: str
    p_units: Decimal
    cost_unit_price: Decimal | None
    net_unit_price: Decimal
    margin_unit: Decimal | None

    @property
    def label(self) -> str:
        return self.card.uuid if self.card else self.server.serial


def _supply_costs(gpu_model_id: int, resource: str, term: str, on: datetime.date) -> dict[int, Decimal]:
    agreements = (
        SupplyAgreement.objects.filter(
            gpu_model_id=gpu_model_id, resource=resource, term=term, valid_from__lte=on
        )
        .filter(Q(valid_to__isnull=True) | Q(valid_to__gte=on))
        .order_by("provider_id", "-valid_from")
    )
    costs: dict[int, Decimal] = {}
    for agreement in agreements:
        costs.setdefault(agreement.provider_id, agreement.cost_unit_price)
    return costs


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
    same resource and term; the margin is per unit, excluding VAT.
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
    costs = _supply_costs(line.gpu_model_id, line.resource, line.term, start_at.date())
    p_per_card = line.gpu_model.p_per_card

    def option(server, card) -> CapacityOption:
        cost = costs.get(server.provider_id)
        p_units = p_per_card if card else p_per_card * server.card_count
        return CapacityOption(
            server=server,
            card=card,
            provider_code=server.provider.code,
            site_name=server.site.name,
            hub=server.site.hub,
            p_units=p_units,
            cost_unit_price=cost,
            net_unit_price=net_price,
            margin_unit=None if cost is None else net_price - cost,
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
    pending = contract_list(user=user).filter(status=ContractStatus.PENDING_APPROVAL, approved_at__isnull=True)
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
