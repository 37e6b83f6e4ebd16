"""Efficiency in the provider's settlement statement: per contract on the provider's hardware,
billed card-hours against the agent's (docs/hardware-truth.md#sla-credits-and-efficiency)."""

from __future__ import annotations

import datetime

import pytest
from django.urls import reverse

from apps.accounts import roles
from apps.billing.models import SettlementStatement
from apps.contracts import services
from apps.metering.services import usage_ingest
from tests.factories.catalogue import CustomerFactory, ServerFactory
from tests.factories.contracts import NOW, draft, server_line

pytestmark = pytest.mark.django_db

SH = datetime.timezone(datetime.timedelta(hours=8))
KWH = 3_600_000_000  # millijoules


@pytest.fixture
def finance_client(client, make_staff):
    client.force_login(make_staff(roles.FINANCE, username="finance1"))
    return client


def test_statement_shows_each_contract_on_the_providers_hardware(make_staff, finance_client):
    am = make_staff(roles.ACCOUNT_MANAGER, username="am1")
    server = ServerFactory()  # 8 cards leased monthly: 8 × 720 = 5,760 billed card-hours in November
    customer = CustomerFactory(code="lessee")
    contract = services.contract_activate(
        contract=draft(customer, am, [server_line(server)]), actor=am, now=NOW
    )
    start = datetime.datetime(2026, 11, 2, tzinfo=SH)
    end = start + datetime.timedelta(hours=10)
    usage_ingest(
        provider=server.provider,
        server=server,
        source="agent",
        payload_records=[
            {
                "event_id": "agent-1",
                "card": server.cards.get(slot=0).uuid,
                "start": start.isoformat(),
                "end": end.isoformat(),
                "telemetry": {"utilization_percent": 100, "energy_mj": 3 * KWH},
            }
        ],
        received_at=end,
    )
    statement = SettlementStatement.objects.create(provider=server.provider, period="2026-11", currency="CNY")
    body = finance_client.get(
        reverse("admin:billing_settlementstatement_change", args=[statement.pk])
    ).content.decode()
    assert "settlement-efficiency" in body
    row = body.split("settlement-efficiency", 1)[1].split("</tbody>", 1)[0]
    assert contract.number in row and "lessee" in row
    # 10 busy of 5,760 billed = 0.17… → 0.2 %, 100 % utilised while busy, 3 kWh
    for cell in ("5760.00", "10.00", "0.2 %", "100.0 %", "3.000"):
        assert f"<td class='num'>{cell}</td>" in row, cell

    other = SettlementStatement.objects.create(
        provider=ServerFactory().provider, period="2026-11", currency="CNY"
    )
    body = finance_client.get(
        reverse("admin:billing_settlementstatement_change", args=[other.pk])
    ).content.decode()
    assert contract.number not in body and "no hardware allocated" in body
