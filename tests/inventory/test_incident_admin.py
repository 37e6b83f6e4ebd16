"""Card incidents in the admin (docs/hardware-truth.md#sources-and-incidents): their own changelist
with filters and search, inline on the card, counted and linked on the server."""

from __future__ import annotations

import datetime
import re

import pytest
from django.urls import reverse

from apps.accounts import roles
from apps.inventory.models import CardIncident, IncidentKind
from tests.factories.catalogue import ServerFactory

pytestmark = pytest.mark.django_db

T0 = datetime.datetime(2026, 11, 10, 8, tzinfo=datetime.UTC)
HOUR = datetime.timedelta(hours=1)


@pytest.fixture
def incidents():
    server = ServerFactory(serial="SRV-INC-0001")
    other = ServerFactory(serial="SRV-INC-0002")
    card = server.cards.get(slot=2)
    rows = [
        CardIncident.objects.create(
            card=card,
            kind=IncidentKind.XID,
            xid_code=79,
            detail="fell off the bus",
            started_at=T0,
            ended_at=T0 + 60 * HOUR,
            reported_at=T0,
            source_event_id="a",
        ),
        CardIncident.objects.create(
            card=card,
            kind=IncidentKind.THERMAL_THROTTLE,
            started_at=T0 + 70 * HOUR,
            reported_at=T0,
            source_event_id="b",
        ),
        CardIncident.objects.create(
            card=other.cards.get(slot=0),
            kind=IncidentKind.ECC_DOUBLE_BIT,
            started_at=T0,
            ended_at=T0 + HOUR,
            reported_at=T0,
            source_event_id="c",
        ),
    ]
    return server, card, rows


@pytest.fixture
def ops_client(client, make_staff):
    client.force_login(make_staff(roles.OPERATIONS))
    return client


def kinds(body: str) -> list[str]:
    """The kind column of the changelist's rows."""
    return [text.split(" ")[0] for text in re.findall(r'class="field-kind">([^<]+)<', body)]


def test_the_changelist_lists_filters_and_searches(ops_client, incidents):
    url = reverse("admin:inventory_cardincident_changelist")
    body = ops_client.get(url).content.decode()
    assert sorted(kinds(body)) == ["Double-bit", "Thermal", "Xid"]
    assert '<td class="field-hours">60</td>' in body and '<td class="field-hours">ongoing</td>' in body
    assert kinds(ops_client.get(url, {"ongoing": "yes"}).content.decode()) == ["Thermal"]
    assert kinds(ops_client.get(url, {"kind__exact": "xid"}).content.decode()) == ["Xid"]
    assert kinds(ops_client.get(url, {"q": "SRV-INC-0002"}).content.decode()) == ["Double-bit"]


def test_the_card_shows_its_incidents_inline_and_the_server_links_to_them(ops_client, incidents):
    server, card, _ = incidents
    card_page = ops_client.get(reverse("admin:inventory_card_change", args=[card.pk])).content.decode()
    assert "fell off the bus" in card_page and "Thermal throttling" in card_page
    server_page = ops_client.get(reverse("admin:inventory_server_change", args=[server.pk])).content.decode()
    assert "2 incidents, 1 ongoing" in server_page
    assert f"card__server__id__exact={server.pk}" in server_page


def test_account_managers_read_incidents_but_cannot_change_them(client, make_staff, incidents):
    client.force_login(make_staff(roles.ACCOUNT_MANAGER))
    url = reverse("admin:inventory_cardincident_changelist")
    assert client.get(url).status_code == 200
    _, _, rows = incidents
    response = client.post(reverse("admin:inventory_cardincident_change", args=[rows[0].pk]), {"detail": "x"})
    assert response.status_code == 403
