"""Helpers to draft contracts in tests through the real services."""

from __future__ import annotations

import datetime
from decimal import Decimal

from apps.contracts import services
from apps.contracts.services import AllocationData, LineData
from apps.inventory.models import GpuModel

SHANGHAI = datetime.timezone(datetime.timedelta(hours=8))
NOV_1 = datetime.datetime(2026, 11, 1, tzinfo=SHANGHAI)
NOW = datetime.datetime(2026, 10, 20, 10, 0, tzinfo=SHANGHAI)


def card_line(server, count: int = 2, *, price="22.70", discount="10", term="hourly", **kwargs) -> LineData:
    cards = list(server.cards.order_by("slot")[:count])
    return LineData(
        resource="card",
        gpu_model=server.gpu_model,
        quantity=Decimal(count),
        term=term,
        list_unit_price=Decimal(price),
        discount_percent=Decimal(discount),
        allocations=[AllocationData(card=c) for c in cards],
        **kwargs,
    )


def server_line(server, *, price="144000.00", term="monthly", term_discount=None, **kwargs) -> LineData:
    return LineData(
        resource="server",
        gpu_model=server.gpu_model,
        quantity=Decimal(1),
        term=term,
        list_unit_price=Decimal(price),
        term_discount_percent=Decimal(term_discount) if term_discount is not None else None,
        allocations=[AllocationData(server=server)],
        **kwargs,
    )


def p_line(server, quantity="2.496", *, price="200000.00", term_discount="15", **kwargs) -> LineData:
    return LineData(
        resource="p_unit",
        gpu_model=server.gpu_model,
        quantity=Decimal(quantity),
        term="yearly",
        list_unit_price=Decimal(price),
        term_discount_percent=Decimal(term_discount),
        allocations=[AllocationData(server=server)],
        **kwargs,
    )


def draft(customer, actor, lines, *, start=NOV_1, **kwargs):
    return services.contract_create(actor=actor, customer=customer, start_at=start, lines=lines, **kwargs)


def model(name: str) -> GpuModel:
    return GpuModel.objects.get(name=name)
