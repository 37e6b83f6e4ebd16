"""``/api/v1/servers/`` and ``/servers/{id}/cards/``: registering hardware by natural keys, all or nothing."""

from __future__ import annotations

import pytest
from django.db.models import QuerySet

from apps.accounts import roles
from apps.api.v1.serializers.inventory import ServerSerializer
from apps.inventory import services
from apps.inventory.models import Card, Server
from tests.api.helpers import assert_error
from tests.factories.catalogue import (
    CustomerFactory,
    ProviderFactory,
    ServerFactory,
    SiteFactory,
    card_uuid,
    gpu_model,
)

pytestmark = pytest.mark.django_db

URL = "/api/v1/servers/"


@pytest.fixture
def site():
    return SiteFactory(provider=ProviderFactory(code="bj-idc"), name="Beijing Yizhuang", hub="jingjinji")


def payload(**overrides) -> dict:
    body = {
        "serial": "SRV-BJ-0001",
        "provider": "bj-idc",
        "site": "Beijing Yizhuang",
        "gpu_model": "A100-SXM4-40GB",
        "cards": [{"slot": slot, "uuid": card_uuid(9000 + slot)} for slot in range(8)],
    }
    body.update(overrides)
    return body


def test_operations_registers_a_server_with_its_cards(operations_client, site):
    response = operations_client.post(URL, payload(), format="json")

    assert response.status_code == 201, response.content
    body = response.json()
    assert body["serial"] == "SRV-BJ-0001"
    assert body["provider"] == "bj-idc"
    assert body["site"] == "Beijing Yizhuang"
    assert body["hub"] == "jingjinji"
    assert body["gpu_model"] == "A100-SXM4-40GB"
    assert body["status"] == "available"
    assert body["card_count"] == 8
    assert body["p_capacity"] == "2.496"  # 8 × 312 TFLOPS / 1000, exact (docs/rating.md#p-units)
    assert [card["slot"] for card in body["cards"]] == list(range(8))
    assert body["cards"][3]["uuid"] == card_uuid(9003)
    assert body["cards"][3]["status"] == "available"
    server = Server.objects.get(serial="SRV-BJ-0001")
    assert server.site == site and server.cards.count() == 8
    # The acting user is on the audit trail of the server and of every card.
    assert server.history.get().history_user.username == "operations"
    assert Card.history.filter(server_id=server.pk, history_user__username="operations").count() == 8


def test_p_capacity_is_exact_for_h800():
    """8 × H800 = 7.9152 P (989.4 TFLOPS each), not rounded."""
    server = ServerFactory(gpu_model=gpu_model("H800-SXM5-80GB"))

    assert ServerSerializer(server).data["p_capacity"] == "7.9152"


@pytest.mark.parametrize(
    ("cards", "card_count", "expected_count"),
    [([], None, 8), ([{"slot": 0, "uuid": card_uuid(1)}], None, 1), ([], 4, 4)],
)
def test_card_count_defaults_to_the_cards_given_or_eight(
    operations_client, site, cards, card_count, expected_count
):
    body = payload(cards=cards)
    if card_count is not None:
        body["card_count"] = card_count
    response = operations_client.post(URL, body, format="json")

    assert response.status_code == 201, response.content
    assert response.json()["card_count"] == expected_count
    assert Card.objects.count() == len(cards)


def test_card_uuids_are_stored_in_lower_case_as_nvml_reports_them(operations_client, site):
    uuid = "GPU-" + card_uuid(77)[4:].upper()
    response = operations_client.post(URL, payload(cards=[{"slot": 0, "uuid": uuid}]), format="json")

    assert response.status_code == 201, response.content
    assert Card.objects.get().uuid == card_uuid(77)


@pytest.mark.parametrize(
    ("bad_card", "field"),
    [
        ({"slot": 7, "uuid": "not-a-uuid"}, "uuid"),
        ({"slot": 7, "uuid": "GPU-1234"}, "uuid"),
        ({"slot": 7, "uuid": card_uuid(9000)}, "uuid"),  # same UUID as slot 0
        ({"slot": 0, "uuid": card_uuid(1)}, "slot"),  # slot 0 twice
        ({"slot": 7, "uuid": card_uuid(1), "status": "allocated"}, "status"),
    ],
)
def test_one_bad_card_writes_nothing(operations_client, site, bad_card, field):
    cards = [{"slot": slot, "uuid": card_uuid(9000 + slot)} for slot in range(7)] + [bad_card]
    response = operations_client.post(URL, payload(cards=cards), format="json")

    body = assert_error(response, 400, "invalid", "cards")
    # Errors are keyed by the index of the card, as DRF reports nested lists; good cards are absent.
    assert list(body["fields"]["cards"]) == ["7"]
    assert field in body["fields"]["cards"]["7"]
    assert Server.objects.count() == 0
    assert Card.objects.count() == 0


def test_slot_outside_the_card_count_is_refused(operations_client, site):
    response = operations_client.post(
        URL, payload(card_count=4, cards=[{"slot": 4, "uuid": card_uuid(1)}]), format="json"
    )

    body = assert_error(response, 400, "invalid", "cards")
    assert "slots 0–3" in body["fields"]["cards"]["0"]["slot"][0]
    assert Server.objects.count() == 0


def test_more_cards_than_the_card_count_are_refused(operations_client, site):
    response = operations_client.post(URL, payload(card_count=2), format="json")

    body = assert_error(response, 400, "invalid", "cards")
    assert "8 cards given" in body["message"]
    assert Server.objects.count() == 0


def test_a_card_uuid_of_another_server_is_refused(operations_client, site):
    other = ServerFactory()
    taken = other.cards.get(slot=5).uuid
    cards = [{"slot": 0, "uuid": card_uuid(1)}, {"slot": 1, "uuid": taken}]
    response = operations_client.post(URL, payload(cards=cards), format="json")

    body = assert_error(response, 400, "invalid", "cards")
    assert body["fields"]["cards"]["1"]["uuid"] == [f"A card with UUID {taken} already exists."]
    assert Server.objects.count() == 1 and Card.objects.count() == 8


def test_a_taken_serial_is_refused_naming_the_serial(operations_client, site):
    ServerFactory(serial="SRV-BJ-0001")
    response = operations_client.post(URL, payload(), format="json")

    assert_error(response, 400, "invalid", "serial")
    assert Server.objects.count() == 1 and Card.objects.count() == 8


@pytest.mark.parametrize(
    ("override", "field", "message"),
    [
        ({"provider": "nope"}, "provider", "Unknown provider 'nope'."),
        ({"gpu_model": "B200"}, "gpu_model", "Unknown GPU model 'B200'."),
        (
            {"site": "Nowhere"},
            "site",
            "Unknown site 'Nowhere' for provider 'bj-idc': it is not one of its sites.",
        ),
        ({"status": "allocated"}, "status", None),
        ({"status": "broken"}, "status", None),
        ({"card_count": 17}, "card_count", None),
    ],
)
def test_bad_natural_keys_and_values_name_the_field(operations_client, site, override, field, message):
    response = operations_client.post(URL, payload(**override), format="json")

    body = assert_error(response, 400, "invalid", field)
    if message:
        assert body["fields"][field] == [message]
    assert Server.objects.count() == 0


def test_a_site_of_another_provider_is_refused(operations_client, site):
    SiteFactory(name="Shanghai Lingang")
    response = operations_client.post(URL, payload(site="Shanghai Lingang"), format="json")

    body = assert_error(response, 400, "invalid", "site")
    assert "another provider" in body["fields"]["site"][0]


def test_a_lost_race_on_a_card_uuid_answers_409_and_writes_nothing(operations_client, site, monkeypatch):
    """Another request registered the UUID between our check and our insert: the database
    constraint has the last word, the server row already inserted is rolled back."""
    other = ServerFactory()
    taken = other.cards.get(slot=0).uuid
    monkeypatch.setattr(services, "_card_errors", lambda specs, **kwargs: [{} for _ in specs])

    response = operations_client.post(URL, payload(cards=[{"slot": 0, "uuid": taken}]), format="json")

    assert_error(response, 409, "conflict", "cards")
    assert Server.objects.count() == 1 and Card.objects.count() == 8


def test_a_lost_race_on_the_serial_answers_409_naming_it(operations_client, site, monkeypatch):
    """Both existence checks said the serial was free; the unique constraint says otherwise."""
    ServerFactory(serial="SRV-BJ-0001")
    monkeypatch.setattr(QuerySet, "exists", lambda self: False)

    response = operations_client.post(URL, payload(), format="json")

    assert_error(response, 409, "conflict", "serial")
    assert Server.objects.count() == 1 and Card.objects.count() == 8


def test_service_accepts_natural_keys_and_checks_the_site_belongs_to_the_provider(site):
    foreign = SiteFactory()
    with pytest.raises(services.DomainError) as excinfo:
        services.server_create(provider="bj-idc", site=foreign, serial="S-1", gpu_model="A100-SXM4-40GB")
    assert "site" in excinfo.value.fields

    server = services.server_create(
        provider="bj-idc", site="Beijing Yizhuang", serial="S-1", gpu_model="A100-SXM4-40GB", card_count=2
    )
    assert server.card_count == 2 and server.cards.count() == 0


# Reading


def test_list_is_paginated_and_has_no_n_plus_one(operations_client, django_assert_max_num_queries):
    site = SiteFactory()
    for _ in range(2):
        ServerFactory(site=site)
    with django_assert_max_num_queries(5):
        small = operations_client.get(URL)
    for _ in range(18):
        ServerFactory(site=site)
    with django_assert_max_num_queries(5):
        large = operations_client.get(URL)

    assert small.json()["count"] == 2
    assert large.json()["count"] == 20
    assert len(large.json()["results"]) == 20
    assert all(len(server["cards"]) == 8 for server in large.json()["results"])


def test_list_filters_by_natural_keys(operations_client):
    a100 = ServerFactory(
        site=SiteFactory(provider=ProviderFactory(code="bj-idc"), name="Yizhuang", hub="jingjinji")
    )
    h800 = ServerFactory(
        site=SiteFactory(provider=ProviderFactory(code="gz-idc"), name="Gui'an", hub="guizhou"),
        gpu_model=gpu_model("H800-SXM5-80GB"),
        status="maintenance",
    )

    def serials(query: str) -> list[str]:
        response = operations_client.get(URL + query)
        assert response.status_code == 200, response.content
        return [server["serial"] for server in response.json()["results"]]

    assert serials("?provider=bj-idc") == [a100.serial]
    assert serials("?site=Gui'an") == [h800.serial]
    assert serials("?hub=guizhou") == [h800.serial]
    assert serials("?gpu_model=A100-SXM4-40GB") == [a100.serial]
    assert serials("?status=maintenance") == [h800.serial]
    assert serials(f"?serial={a100.serial}") == [a100.serial]
    assert serials(f"?card={h800.cards.first().uuid}") == [h800.serial]
    assert serials("?search=gz-idc") == [h800.serial]
    assert serials("?provider=nobody") == []


def test_an_unknown_choice_in_a_filter_answers_400(operations_client):
    assert_error(operations_client.get(URL + "?status=exploded"), 400, "invalid", "status")


@pytest.mark.parametrize("pk", ["999999", "abc", "99999999999999999999999"])
def test_a_missing_server_answers_404_json(operations_client, pk):
    assert_error(operations_client.get(f"{URL}{pk}/"), 404, "not_found")


# Permissions


@pytest.mark.parametrize("role", [roles.FINANCE, roles.ACCOUNT_MANAGER, roles.SALES_MANAGER])
def test_other_roles_read_but_do_not_register_servers(client_as, site, role):
    client = client_as(role)
    assert client.get(URL).status_code == 200
    assert_error(client.post(URL, payload(), format="json"), 403, "permission_denied")
    assert Server.objects.count() == 0


def test_customer_users_and_anonymous_callers_see_no_hardware(api_client, portal_client):
    server = ServerFactory()
    client = portal_client(CustomerFactory())
    assert_error(client.get(URL), 403, "permission_denied")
    assert_error(client.get(f"{URL}{server.pk}/"), 403, "permission_denied")
    assert_error(client.get(f"{URL}{server.pk}/cards/"), 403, "permission_denied")
    assert_error(api_client.get(URL), 401, "not_authenticated")


# Updating


def test_operations_moves_a_server_to_maintenance_and_another_site(operations_client):
    server = ServerFactory()
    other_site = SiteFactory(provider=server.provider, name="Hall B")

    response = operations_client.patch(
        f"{URL}{server.pk}/", {"status": "maintenance", "site": "Hall B"}, format="json"
    )

    assert response.status_code == 200, response.content
    assert response.json()["status"] == "maintenance"
    assert response.json()["site"] == "Hall B"
    server.refresh_from_db()
    assert server.status == "maintenance" and server.site == other_site


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"serial": "NEW"}, "serial"),
        ({"gpu_model": "H800-SXM5-80GB"}, "gpu_model"),
        ({"cards": []}, "cards"),
        ({"status": "allocated"}, "status"),
        ({"site": "Somewhere else"}, "site"),
        ({"purchase_cost_amount": "-1"}, "purchase_cost_amount"),
    ],
)
def test_identity_and_invalid_changes_are_refused_naming_the_field(operations_client, change, field):
    server = ServerFactory(status="available")
    response = operations_client.patch(f"{URL}{server.pk}/", change, format="json")

    assert_error(response, 400, "invalid", field)
    server.refresh_from_db()
    assert server.status == "available"


def test_an_allocated_server_cannot_be_moved_to_maintenance_here(operations_client):
    server = ServerFactory(status="allocated")
    response = operations_client.patch(f"{URL}{server.pk}/", {"status": "maintenance"}, format="json")

    assert_error(response, 409, "invalid_state", "status")


def test_servers_are_retired_not_deleted(operations_client):
    server = ServerFactory()
    assert_error(operations_client.delete(f"{URL}{server.pk}/"), 405, "method_not_allowed")
    assert_error(
        operations_client.put(f"{URL}{server.pk}/", payload(), format="json"), 405, "method_not_allowed"
    )


# Nested cards


def test_cards_of_a_server_are_listed_by_slot(operations_client, django_assert_max_num_queries):
    server = ServerFactory()
    with django_assert_max_num_queries(5):
        response = operations_client.get(f"{URL}{server.pk}/cards/")

    assert response.status_code == 200
    assert [card["slot"] for card in response.json()] == list(range(8))


def test_a_card_goes_into_a_free_slot(operations_client):
    server = ServerFactory(card_count=8, cards=False)
    url = f"{URL}{server.pk}/cards/"

    created = operations_client.post(url, {"slot": 2, "uuid": card_uuid(42)}, format="json")
    assert created.status_code == 201, created.content
    assert created.json()["uuid"] == card_uuid(42)

    assert_error(
        operations_client.post(url, {"slot": 2, "uuid": card_uuid(43)}, format="json"), 400, "invalid", "slot"
    )
    assert_error(
        operations_client.post(url, {"slot": 3, "uuid": card_uuid(42)}, format="json"), 400, "invalid", "uuid"
    )
    assert_error(
        operations_client.post(url, {"slot": 8, "uuid": card_uuid(44)}, format="json"), 400, "invalid", "slot"
    )
    assert server.cards.count() == 1


@pytest.mark.parametrize("pk", ["999999", "abc", "99999999999999999999999"])
def test_cards_of_a_missing_server_answer_404(operations_client, pk):
    assert_error(operations_client.get(f"{URL}{pk}/cards/"), 404, "not_found")
    assert_error(
        operations_client.post(f"{URL}{pk}/cards/", {"slot": 0, "uuid": card_uuid(1)}, format="json"),
        404,
        "not_found",
    )


def test_adding_cards_needs_the_card_permission(client_as):
    server = ServerFactory(cards=False)
    client = client_as(roles.FINANCE)
    assert client.get(f"{URL}{server.pk}/cards/").status_code == 200
    response = client.post(f"{URL}{server.pk}/cards/", {"slot": 0, "uuid": card_uuid(1)}, format="json")
    assert_error(response, 403, "permission_denied")
    assert Card.objects.count() == 0
