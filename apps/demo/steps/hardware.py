"""Demo providers, sites, servers with their cards, and supply agreements."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from decimal import Decimal
from itertools import groupby

from simple_history.utils import bulk_create_with_history

from apps.core.money import round_money
from apps.inventory.models import Card, GpuModel, HardwareStatus, Server
from apps.providers.models import Provider, Site, SupplyAgreement

from .base import CREATED, UNCHANGED, DemoContext, sync
from .data import (
    CARD_FAULT_RATE,
    CARDS_PER_SERVER,
    PLATFORM_ANNUAL_CASH_COST,
    PLATFORM_OWNED,
    PLATFORM_PURCHASE_COST,
    PROVIDERS,
    SERVER_MAINTENANCE_RATE,
    SERVER_RETIRED_RATE,
    SUPPLY_COSTS,
    SUPPLY_EXTRA_BY_PROVIDER,
    SUPPLY_TERMS_BY_PROVIDER_TYPE,
    SUPPLY_VALID_FROM,
    ProviderSpec,
)

# Card UUIDs are uuid5 of "serial/slot" in this namespace: the same server always gets the same cards.
CARD_UUID_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_DNS, "cards.suanli.example")


def card_uuid(serial: str, slot: int) -> str:
    """A deterministic NVML-style UUID: ``GPU-`` + lowercase 8-4-4-4-12 hex."""
    return f"GPU-{uuid.uuid5(CARD_UUID_NAMESPACE, f'{serial}/{slot}')}"


@dataclass(frozen=True)
class PlannedServer:
    provider_code: str
    site_name: str
    serial: str
    gpu_model: str
    status: str
    card_statuses: tuple[str, ...]
    purchase_cost_amount: Decimal | None = None
    annual_cash_cost_amount: Decimal | None = None


def server_plan(ctx: DemoContext) -> list[PlannedServer]:
    """Every demo server, in a fixed order, from the data and the seed alone (no database)."""
    rng = ctx.rng("servers")
    plan = []
    for provider in PROVIDERS:
        for site in provider.sites:
            number = 0
            for model_name, count in site.fleet:
                for _ in range(count):
                    number += 1
                    serial = f"SRV-{site.serial_prefix}-{number:04d}"
                    owned = (
                        provider.code == PLATFORM_OWNED["provider"]
                        and site.serial_prefix == PLATFORM_OWNED["serial_prefix"]
                        and model_name == PLATFORM_OWNED["gpu_model"]
                        and number <= PLATFORM_OWNED["count"]
                    )
                    draw = rng.random()
                    if owned or draw >= SERVER_MAINTENANCE_RATE + SERVER_RETIRED_RATE:
                        status = HardwareStatus.AVAILABLE
                    elif draw < SERVER_MAINTENANCE_RATE:
                        status = HardwareStatus.MAINTENANCE
                    else:
                        status = HardwareStatus.RETIRED
                    card_statuses = tuple(
                        status
                        if status != HardwareStatus.AVAILABLE
                        else (
                            HardwareStatus.MAINTENANCE
                            if rng.random() < CARD_FAULT_RATE
                            else HardwareStatus.AVAILABLE
                        )
                        for _ in range(CARDS_PER_SERVER)
                    )
                    plan.append(
                        PlannedServer(
                            provider_code=provider.code,
                            site_name=site.name,
                            serial=serial,
                            gpu_model=model_name,
                            status=status,
                            card_statuses=card_statuses,
                            purchase_cost_amount=PLATFORM_PURCHASE_COST if owned else None,
                            annual_cash_cost_amount=PLATFORM_ANNUAL_CASH_COST if owned else None,
                        )
                    )
    return plan


def load_providers(ctx: DemoContext) -> None:
    providers, sites = ctx.tally("providers"), ctx.tally("sites")
    for spec in PROVIDERS:
        provider, outcome = sync(
            Provider,
            {"code": spec.code},
            {
                "name": spec.name,
                "type": spec.type,
                "contact_name": spec.contact_name,
                "contact_email": f"settlement@{spec.code}.example.cn",
                "contact_phone": spec.contact_phone,
                "settlement_terms_days": spec.settlement_terms_days,
                "is_related_party": spec.is_related_party,
                "notes": spec.notes,
            },
        )
        providers.add(outcome)
        for site in spec.sites:
            _, outcome = sync(
                Site, {"provider": provider, "name": site.name}, {"city": site.city, "hub": site.hub}
            )
            sites.add(outcome)


def load_servers(ctx: DemoContext) -> None:
    """Create the servers and cards that are missing; existing ones (and their status) stay as they are."""
    plan = server_plan(ctx)
    sites = {(s.provider.code, s.name): s for s in Site.objects.select_related("provider")}
    models = {m.name: m for m in GpuModel.objects.all()}
    existing = set(
        Server.objects.filter(serial__in=[p.serial for p in plan]).values_list("serial", flat=True)
    )

    servers = ctx.tally("servers")
    with ctx.progress(total=len(plan), desc="servers", unit="server") as bar:
        for (provider_code, site_name), group in groupby(plan, key=lambda p: (p.provider_code, p.site_name)):
            batch = list(group)
            site = sites[(provider_code, site_name)]
            new = [
                Server(
                    provider=site.provider,
                    site=site,
                    serial=p.serial,
                    gpu_model=models[p.gpu_model],
                    card_count=len(p.card_statuses),
                    status=p.status,
                    purchase_cost_amount=p.purchase_cost_amount,
                    annual_cash_cost_amount=p.annual_cash_cost_amount,
                )
                for p in batch
                if p.serial not in existing
            ]
            if new:
                bulk_create_with_history(new, Server, default_change_reason="loaddemo")
            servers.add(CREATED, len(new))
            servers.add(UNCHANGED, len(batch) - len(new))
            bar.update(len(batch))

    _load_cards(ctx, plan)


def _load_cards(ctx: DemoContext, plan: list[PlannedServer]) -> None:
    server_ids = dict(Server.objects.filter(serial__in=[p.serial for p in plan]).values_list("serial", "id"))
    taken_slots = set(Card.objects.filter(server_id__in=server_ids.values()).values_list("server_id", "slot"))
    wanted = {
        card_uuid(p.serial, slot): (server_ids[p.serial], slot, status)
        for p in plan
        for slot, status in enumerate(p.card_statuses)
    }
    taken_uuids = set(Card.objects.filter(uuid__in=wanted).values_list("uuid", flat=True))
    new = [
        Card(server_id=server_id, slot=slot, uuid=uuid_, status=status)
        for uuid_, (server_id, slot, status) in wanted.items()
        if uuid_ not in taken_uuids and (server_id, slot) not in taken_slots
    ]
    if new:
        bulk_create_with_history(new, Card, batch_size=1000, default_change_reason="loaddemo")
    cards = ctx.tally("cards")
    cards.add(CREATED, len(new))
    cards.add(UNCHANGED, len(wanted) - len(new))


def supply_costs(spec: ProviderSpec) -> dict[tuple[str, str, str], Decimal]:
    """(GPU model, resource, term) → the cost price this provider charges the platform."""
    models = sorted({name for site in spec.sites for name, _ in site.fleet})
    costs = {}
    for model_name in models:
        for resource, term in SUPPLY_TERMS_BY_PROVIDER_TYPE[spec.type]:
            base = SUPPLY_COSTS[model_name].get((resource, term))
            if base is not None:
                costs[(model_name, resource, term)] = round_money(base * spec.cost_factor)
    for model_name, resource, term in SUPPLY_EXTRA_BY_PROVIDER.get(spec.code, ()):
        if model_name in models:
            costs[(model_name, resource, term)] = round_money(
                SUPPLY_COSTS[model_name][(resource, term)] * spec.cost_factor
            )
    return costs


def load_supply_agreements(ctx: DemoContext) -> None:
    tally = ctx.tally("supply agreements")
    models = {m.name: m for m in GpuModel.objects.all()}
    for spec in PROVIDERS:
        provider = Provider.objects.get(code=spec.code)
        for (model_name, resource, term), cost in supply_costs(spec).items():
            _, outcome = sync(
                SupplyAgreement,
                {
                    "provider": provider,
                    "gpu_model": models[model_name],
                    "resource": resource,
                    "term": term,
                    "valid_from": SUPPLY_VALID_FROM,
                },
                {"cost_unit_price": cost, "currency": "CNY", "valid_to": None},
            )
            tally.add(outcome)
