"""``GET /api/v1/usage/``: usage records by cursor, filtered, each caller seeing what is theirs
(docs/api.md#usage-reads)."""

from __future__ import annotations

import datetime

import pytest
import time_machine
from django.test import Client
from rest_framework.test import APIClient

from apps.accounts import roles
from apps.contracts import services as contract_services
from tests.api.helpers import assert_error
from tests.factories.catalogue import CustomerFactory, ServerFactory, gpu_model
from tests.factories.contracts import NOW as CONTRACT_NOW
from tests.factories.contracts import card_line, draft
from tests.factories.metering import HOUR, NOW, SHANGHAI, partner_key, stored_usage

pytestmark = pytest.mark.django_db

URL = "/api/v1/usage/"
NOV_10 = datetime.datetime(2026, 11, 10, 9, 0, tzinfo=SHANGHAI)
OCT_10 = datetime.datetime(2026, 10, 10, 9, 0, tzinfo=SHANGHAI)


@pytest.fixture(autouse=True)
def frozen_clock():
    with time_machine.travel(NOW, tick=False):
        yield


@pytest.fixture
def world(make_staff):
    """Provider A's server (acme holds 2 of its cards from November 1) and provider B's server."""
    server_a = ServerFactory(serial="SRV-A-1", gpu_model=gpu_model("A100-SXM4-40GB"))
    server_b = ServerFactory(serial="SRV-B-1", gpu_model=gpu_model("A100-SXM4-40GB"))
    acme = CustomerFactory(code="acme")
    am = make_staff(roles.ACCOUNT_MANAGER, username="am1")
    with time_machine.travel(CONTRACT_NOW, tick=False):
        contract = draft(acme, am, [card_line(server_a, 2)])
        contract_services.contract_activate(contract=contract, actor=am, now=CONTRACT_NOW)
    held, _, _, spare = server_a.cards.order_by("slot")[:4]
    records = {
        "held_nov": stored_usage(card=held, start=NOV_10, end=NOV_10 + HOUR, utilization="87.5"),
        "held_oct": stored_usage(card=held, start=OCT_10, end=OCT_10 + HOUR),  # before the contract
        "held_voided": stored_usage(card=held, start=NOV_10 + HOUR, end=NOV_10 + 2 * HOUR, voided=True),
        "spare_nov": stored_usage(card=spare, start=NOV_10, end=NOV_10 + HOUR),
        "b_server": stored_usage(server=server_b, start=NOV_10, end=NOV_10 + HOUR),
    }
    return {"a": server_a, "b": server_b, "acme": acme, "contract": contract, "held": held, **records}


def _ids(response) -> set[int]:
    assert response.status_code == 200, response.content
    return {row["id"] for row in response.json()["results"]}


def _staff(make_staff) -> APIClient:
    client = APIClient()
    client.force_authenticate(make_staff(roles.FINANCE, username="finance1"))
    return client


def test_a_partner_key_lists_its_own_providers_records_newest_first(world):
    key = partner_key(world["a"].provider)[1]

    response = Client().get(URL, HTTP_AUTHORIZATION=f"Api-Key {key}")

    assert response.status_code == 200, response.content
    rows = response.json()["results"]
    ids = [world[k].pk for k in ("spare_nov", "held_voided", "held_oct", "held_nov")]
    assert [row["id"] for row in rows] == ids
    first = rows[-1]
    assert first["event_id"] == world["held_nov"].event_id
    assert (first["provider"], first["card"], first["server"]) == (
        world["a"].provider.code,
        world["held"].uuid,
        None,
    )
    assert (first["start"], first["end"]) == ("2026-11-10T09:00:00+08:00", "2026-11-10T10:00:00+08:00")
    assert (first["utilization_percent"], first["rated"], first["voided"]) == ("87.5", True, False)
    assert rows[0]["rated"] is False  # the spare card: no allocation covers it
    assert rows[1]["voided"] is True


def test_staff_with_the_metering_permission_read_every_record(world, make_staff):
    assert len(_ids(_staff(make_staff).get(URL))) == 5
    no_role = APIClient()
    no_role.force_authenticate(make_staff(username="nobody"))
    assert_error(no_role.get(URL), 403, "permission_denied")
    assert_error(APIClient().get(URL), 401, "not_authenticated")


def test_a_customer_reads_only_the_records_billed_to_it_without_the_provider(world, portal_client):
    client = portal_client(world["acme"])

    rows = client.get(URL).json()["results"]

    assert [row["id"] for row in rows] == [world["held_voided"].pk, world["held_nov"].pk]
    assert {row["provider"] for row in rows} == {None}
    other = portal_client(CustomerFactory(code="other"), username="other-user")
    assert other.get(URL).json()["results"] == []
    assert_error(client.post(URL, data="{}", content_type="application/json"), 403, "permission_denied")


@pytest.mark.parametrize(
    "query, expected",
    [
        ("period=2026-11", {"held_nov", "held_voided", "spare_nov", "b_server"}),
        ("period=2026-10", {"held_oct"}),
        ("provider={b}", {"b_server"}),
        ("card={held}", {"held_nov", "held_oct", "held_voided"}),
        ("server=SRV-B-1", {"b_server"}),
        ("server=SRV-A-1&voided=false", {"held_nov", "held_oct", "spare_nov"}),
        ("contract={contract}", {"held_nov", "held_voided"}),
        ("rated=true", {"held_nov", "held_voided"}),
        ("rated=false&period=2026-11", {"spare_nov", "b_server"}),
        ("voided=true", {"held_voided"}),
    ],
)
def test_filters(world, make_staff, query, expected):
    query = query.format(
        b=world["b"].provider.code, held=world["held"].uuid.upper(), contract=world["contract"].pk
    )
    assert _ids(_staff(make_staff).get(f"{URL}?{query}")) == {world[k].pk for k in expected}


@pytest.mark.parametrize(
    "query, field",
    [
        ("period=2026-13", "period"),
        ("period=last-month", "period"),
        ("rated=maybe", "rated"),
        ("voided=yes-please", "voided"),
        ("contract=abc", "contract"),
        ("contract=0", "contract"),
    ],
)
def test_junk_filter_values_answer_400(world, make_staff, query, field):
    assert_error(_staff(make_staff).get(f"{URL}?{query}"), 400, "invalid", field)


def test_the_cursor_walks_every_record_once(world, make_staff):
    client = _staff(make_staff)
    seen, url = [], f"{URL}?page_size=2"
    while url:
        body = client.get(url).json()
        seen += [row["id"] for row in body["results"]]
        url = body["next"]
    assert seen == sorted(
        (world[k].pk for k in ("held_nov", "held_oct", "held_voided", "spare_nov", "b_server")), reverse=True
    )
    assert_error(client.get(f"{URL}?cursor=junk"), 404, "not_found")


def test_the_list_takes_the_same_queries_for_3_or_30_records(
    world, make_staff, django_assert_max_num_queries
):
    key = partner_key(world["a"].provider)[1]
    client = Client()
    with django_assert_max_num_queries(3):  # the key, the page (with rated), nothing per row
        assert len(client.get(URL, HTTP_AUTHORIZATION=f"Api-Key {key}").json()["results"]) == 4
    spare = world["a"].cards.order_by("slot")[3]
    for hour in range(30):
        stored_usage(card=spare, start=NOV_10 + (hour + 5) * HOUR, end=NOV_10 + (hour + 6) * HOUR)
    with django_assert_max_num_queries(3):
        assert len(client.get(URL, HTTP_AUTHORIZATION=f"Api-Key {key}").json()["results"]) == 34
    portal = APIClient()
    portal.force_authenticate(_member(world["acme"]))
    with django_assert_max_num_queries(3):  # the membership, the page
        assert len(portal.get(URL).json()["results"]) == 2


def _member(customer):
    from apps.accounts.models import CustomerMembership, User

    user = User.objects.create_user(username="acme-user", password="pw-Secret-123")
    CustomerMembership.objects.create(user=user, customer=customer)
    return user
