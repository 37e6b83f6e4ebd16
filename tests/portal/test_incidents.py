"""The portal's hardware incidents page: incidents of the customer's allocated cards, while
allocated (docs/hardware-truth.md#sources-and-incidents)."""

from __future__ import annotations

import datetime
import itertools

import pytest
from django.utils import timezone

from apps.contracts.models import Allocation
from apps.inventory.models import CardIncident, IncidentKind

pytestmark = pytest.mark.django_db

HOUR = datetime.timedelta(hours=1)
_ids = itertools.count(1)


def incident(card, start, end=None, *, kind=IncidentKind.XID, xid_code=79, detail="") -> CardIncident:
    return CardIncident.objects.create(
        card=card,
        kind=kind,
        xid_code=xid_code if kind == IncidentKind.XID else None,
        detail=detail,
        started_at=start,
        ended_at=end,
        reported_at=end or start,
        source_event_id=f"e-{next(_ids)}",
    )


@pytest.fixture
def held(world):
    """Acme's allocation: its card and when it began."""
    allocation = Allocation.objects.get(line__contract=world.acme_contract)
    card = allocation.card or allocation.server.cards.get(slot=0)
    return allocation, card


def test_incidents_of_held_cards_while_held_are_shown_others_not(portal_client, world, held):
    allocation, card = held
    during = allocation.start_at + 24 * HOUR
    shown = incident(card, during, during + 6 * HOUR, detail="GPU has fallen off the bus")
    ongoing = incident(card, timezone.now() - 2 * HOUR, kind=IncidentKind.THERMAL_THROTTLE)
    incident(card, allocation.start_at - 10 * HOUR, allocation.start_at - 5 * HOUR)  # before it was held
    incident(world.other_server.cards.get(slot=0), during, during + HOUR)  # another customer's card
    if allocation.card is not None:
        neighbour = allocation.server.cards.exclude(pk=card.pk).first()
        incident(neighbour, during, during + HOUR)  # same server, a card Acme does not hold
    body = portal_client.get("/portal/incidents/").content.decode()
    assert body.count('data-testid="incident-row"') == 2
    assert "2 incidents" in body
    assert 'data-kind="xid"' in body and "Xid error (Xid 79)" in body and "GPU has fallen off the bus" in body
    assert 'data-kind="thermal_throttle"' in body and "Thermal throttling" in body
    assert body.count('data-testid="ongoing"') == 1
    assert '<td class="num" data-testid="incident-hours">6.00</td>' in body
    assert '<td class="num" data-testid="incident-hours">2.00</td>' in body  # ongoing: until now
    assert shown.card.uuid in body and ongoing.card.server.serial in body


def test_the_other_customer_does_not_see_acmes_incidents(client, world, held):
    allocation, card = held
    incident(card, allocation.start_at + HOUR, allocation.start_at + 2 * HOUR)
    client.force_login(world.outsider)
    body = client.get("/portal/incidents/").content.decode()
    assert 'data-testid="incident-row"' not in body and 'data-testid="no-incidents"' in body


def test_the_page_is_in_the_navigation_and_in_chinese(portal_client, world, held):
    allocation, card = held
    incident(
        card, allocation.start_at + HOUR, allocation.start_at + 3 * HOUR, kind=IncidentKind.ECC_DOUBLE_BIT
    )
    assert 'data-testid="nav-incidents"' in portal_client.get("/portal/").content.decode()
    portal_client.post("/i18n/setlang/", {"language": "zh-hans", "next": "/portal/incidents/"})
    body = portal_client.get("/portal/incidents/").content.decode()
    assert "硬件故障" in body and "双比特 ECC 错误" in body and "1 条故障" in body


@pytest.mark.parametrize("count", [2, 20])
def test_the_list_runs_a_constant_number_of_queries(
    portal_client, world, held, count, django_assert_max_num_queries
):
    allocation, card = held
    for n in range(count):
        start = allocation.start_at + (n + 1) * HOUR
        incident(card, start, start + HOUR / 2)
    with django_assert_max_num_queries(8):
        body = portal_client.get("/portal/incidents/").content.decode()
    assert body.count('data-testid="incident-row"') == count
