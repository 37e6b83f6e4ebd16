"""The efficiency report: per contract and month, billed card-hours against the agent's busy
card-hours, mean utilisation and energy; chart, table and CSV (docs/hardware-truth.md#efficiency)."""

from __future__ import annotations

import csv
import datetime
import io

import pytest
import time_machine

from apps.accounts import roles
from apps.contracts import services
from apps.metering.services import usage_ingest
from tests.factories.catalogue import CustomerFactory, ServerFactory
from tests.factories.contracts import NOW, draft, server_line

pytestmark = pytest.mark.django_db

SH = datetime.timezone(datetime.timedelta(hours=8))
KWH = 3_600_000_000  # millijoules
URL = "/admin/reports/efficiency/"


@pytest.fixture
def leased(make_staff):
    """An 8-card server leased monthly from November 1 (5,760 billed card-hours in November) and
    the agent's 10 hours at 100 % and 3 kWh on one of its cards."""
    am = make_staff(roles.ACCOUNT_MANAGER, username="am1")
    server = ServerFactory()
    contract = services.contract_activate(
        contract=draft(CustomerFactory(code="lessee", name="Lessee 有限公司"), am, [server_line(server)]),
        actor=am,
        now=NOW,
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
    return contract


@pytest.fixture
def finance(client, make_staff):
    client.force_login(make_staff(roles.FINANCE, username="finance1"))
    return client


def test_page_and_csv_default_to_the_last_closed_month(leased, client, make_staff):
    with time_machine.travel(datetime.datetime(2026, 12, 5, 10, tzinfo=SH), tick=False):
        client.force_login(make_staff(roles.FINANCE, username="finance1"))
        body = client.get(URL).content.decode()
        response = client.get(URL + "?format=csv")
    assert "Efficiency per contract and month" in body and "<svg" in body
    assert leased.number in body and "lessee Lessee 有限公司" in body
    rows = list(csv.reader(io.StringIO(response.content.decode())))
    assert rows[0][:3] == ["month 月份", "contract 合同", "customer 客户"]
    # 10 of 5,760 card-hours busy (0.17… → 0.2 %), 100 % while busy, 3 kWh
    assert rows[1:] == [
        ["2026-11", leased.number, "lessee Lessee 有限公司", "5760.00", "10.00", "0.2", "100", "3"]
    ]


def test_a_range_gives_a_row_per_month(leased, finance):
    response = finance.get(URL + "?from=2026-10&to=2026-12&format=csv")
    rows = list(csv.reader(io.StringIO(response.content.decode())))[1:]
    # no allocation in October; December 1–31 is 8 × 744 = 5,952 card-hours
    assert [(r[0], r[3], r[4]) for r in rows] == [
        ("2026-11", "5760.00", "10.00"),
        ("2026-12", "5952.00", "0.00"),
    ]


def test_other_staff_are_refused(leased, client, make_staff):
    client.force_login(make_staff(roles.OPERATIONS, username="ops1"))
    assert client.get(URL).status_code == 403
