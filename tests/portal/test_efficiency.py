"""The portal's efficiency page: billed card-hours against the agent's busy card-hours, mean
utilisation and energy per contract and month (docs/hardware-truth.md#sla-credits-and-efficiency)."""

from __future__ import annotations

import datetime
import itertools

import pytest

from apps.metering.services import usage_ingest
from tests.factories.billing_flows import at, card_contract
from tests.factories.catalogue import ServerFactory

pytestmark = pytest.mark.django_db

_ids = itertools.count(1)
KWH = 3_600_000_000  # millijoules


def agent(card, start, end, *, util, kwh):
    """One agent record of ``card`` over ``[start, end)`` at ``util`` % using ``kwh`` (in tenths of a kWh)."""
    usage_ingest(
        provider=card.server.provider,
        server=card.server,
        source="agent",
        payload_records=[
            {
                "event_id": f"agent-{next(_ids)}",
                "card": card.uuid,
                "start": start.isoformat(),
                "end": end.isoformat(),
                "telemetry": {"utilization_percent": util, "energy_mj": kwh * KWH // 10},
            }
        ],
        received_at=end + datetime.timedelta(minutes=1),
    )


def rows(body: str) -> int:
    return body.count('data-testid="efficiency-row"')


def test_billed_busy_utilisation_and_energy_hand_computed(portal_client, world):
    card = world.acme_server.cards.get(slot=0)  # billed 100 h of partner usage in November
    agent(card, at(2), at(3), util=90, kwh=72)  # 24 h busy at 90 %, 7.2 kWh
    agent(card, at(3), at(3, 12), util=30, kwh=12)  # 12 h at 30 %, 1.2 kWh
    agent(card, at(30, 20), at(1, 4, month=12), util=50, kwh=8)  # 4 of its 8 h in November: 0.4 kWh
    body = portal_client.get("/portal/efficiency/?period=2026-11").content.decode()
    assert rows(body) == 1
    assert 'data-testid="billed">100.00<' in body
    assert 'data-testid="busy">40.00<' in body  # 24 + 12 + 4
    assert 'data-testid="share">40.0 %<' in body
    # (90 × 24 + 30 × 12 + 50 × 4) / 40 = 2,720 / 40 = 68.0 %
    assert 'data-testid="utilisation">68.0 %<' in body
    assert 'data-testid="energy">8.800<' in body  # 7.2 + 1.2 + 0.4


def test_busy_threshold_counts_only_busy_records(portal_client, world):
    line = world.acme_contract.lines.get()
    line.observed_busy_threshold_percent = 50
    line.save()
    card = world.acme_server.cards.get(slot=0)
    agent(card, at(2), at(3), util=90, kwh=72)
    agent(card, at(3), at(3, 12), util=30, kwh=12)  # present but under 50 %: not busy
    body = portal_client.get("/portal/efficiency/?period=2026-11").content.decode()
    assert 'data-testid="busy">24.00<' in body
    assert 'data-testid="utilisation">70.0 %<' in body  # (90 × 24 + 30 × 12) / 36


def test_default_month_is_the_last_closed_one_and_others_are_not_shown(portal_client, world):
    body = portal_client.get("/portal/efficiency/").content.decode()
    assert '<option value="2026-11" selected>' in body  # the clock is on 2 December
    assert rows(body) == 1 and world.acme_contract.number in body
    assert world.other_contract.number not in body
    assert 'data-testid="busy">0.00<' in body and 'data-testid="utilisation">—<' in body
    assert rows(portal_client.get("/portal/efficiency/?period=2026-09").content.decode()) == 0


def test_in_chinese(portal_client, world):
    portal_client.post("/i18n/setlang/", {"language": "zh-hans", "next": "/portal/efficiency/"})
    body = portal_client.get("/portal/efficiency/").content.decode()
    assert "能效" in body and "计费卡时" in body and "平均利用率" in body


@pytest.mark.parametrize("count", [1, 10])
def test_constant_queries(portal_client, world, count, django_assert_max_num_queries):
    for _ in range(count):
        server = ServerFactory()
        card_contract(world.acme, world.am, server)
        agent(server.cards.get(slot=0), at(2), at(3), util=80, kwh=10)
    with django_assert_max_num_queries(8):
        body = portal_client.get("/portal/efficiency/?period=2026-11").content.decode()
    assert rows(body) == 1 + count
