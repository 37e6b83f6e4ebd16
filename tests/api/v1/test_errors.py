"""No client input gets a 500: every failure is the JSON error shape ``{code, message, fields}``.

Also: the OpenAPI schema generates without warnings and documents every resource.
"""

from __future__ import annotations

import json

import pytest
from django.core.management import call_command
from django.db import DataError, transaction
from rest_framework.test import APIClient

from apps.api.exceptions import exception_handler
from apps.contracts.models import PriceList
from apps.customers.models import Customer
from apps.inventory.models import Card, Server
from apps.providers.models import Provider, Site
from tests.api.helpers import assert_error
from tests.factories.catalogue import (
    CustomerFactory,
    ProviderFactory,
    ServerFactory,
    SiteFactory,
    card_uuid,
    valid_uscc,
)

pytestmark = pytest.mark.django_db

# Values of the wrong type, shape or size. The first two are wrong for every field of every endpoint.
ALWAYS_WRONG = [[1, 2], {"nested": {"deeper": [None, {"x": []}]}}]
GARBAGE = [
    *ALWAYS_WRONG,
    None,
    True,
    1e308,
    10**30,
    -(10**30),
    "x" * 100_000,
    "\x00",
    "a\x00b",
    "",
    [],
    {},
    "🙂" * 20,
]
BODIES_OF_THE_WRONG_SHAPE = [[], [{"serial": "x"}], "a string", 42, None, True]


@pytest.fixture
def admin_client(make_staff) -> APIClient:
    """A superuser: permissions are never the reason a request fails here."""
    client = APIClient()
    client.force_authenticate(make_staff(superuser=True))
    return client


@pytest.fixture
def world():
    """One of everything, and the write endpoints with a valid payload for each."""
    provider = ProviderFactory(code="bj-idc")
    site = SiteFactory(provider=provider, name="Yizhuang")
    server = ServerFactory(site=site, card_count=8, cards=False)
    customer = CustomerFactory(code="acme")
    price_list = PriceList.objects.get(code="market-reference")
    item = price_list.items.first()
    return {
        ("post", "/api/v1/auth/token/"): {"username": "admin", "password": "pw-Secret-123"},
        ("post", "/api/v1/providers/"): {"code": "new-prov", "name": "New", "type": "idc"},
        ("patch", f"/api/v1/providers/{provider.pk}/"): {"name": "Renamed", "settlement_terms_days": 45},
        ("post", "/api/v1/sites/"): {
            "provider": "bj-idc",
            "name": "Hall 9",
            "city": "Beijing",
            "hub": "jingjinji",
        },
        ("patch", f"/api/v1/sites/{site.pk}/"): {"city": "Langfang", "hub": "jingjinji"},
        ("post", "/api/v1/gpu-models/"): {
            "vendor": "NVIDIA",
            "name": "B300",
            "memory_gb": 288,
            "fp16_dense_tflops": "2500",
            "verified": False,
        },
        ("post", "/api/v1/servers/"): {
            "serial": "SRV-NEW",
            "provider": "bj-idc",
            "site": "Yizhuang",
            "gpu_model": "A100-SXM4-40GB",
            "status": "available",
            "card_count": 2,
            "cards": [{"slot": 0, "uuid": card_uuid(5000)}, {"slot": 1, "uuid": card_uuid(5001)}],
            "purchase_cost_amount": "1800000.00",
        },
        ("patch", f"/api/v1/servers/{server.pk}/"): {"status": "maintenance", "site": "Yizhuang"},
        ("post", f"/api/v1/servers/{server.pk}/cards/"): {"slot": 3, "uuid": card_uuid(6000)},
        ("post", "/api/v1/customers/"): {
            "code": "newco",
            "name": "NewCo",
            "tax_id": valid_uscc(777),
            "invoice_type": "vat_general",
            "currency": "CNY",
            "payment_terms_days": 30,
            "auto_issue": False,
            "billing_email": "ap@newco.example",
        },
        ("patch", f"/api/v1/customers/{customer.pk}/"): {"name": "Acme 2", "payment_terms_days": 60},
        ("post", "/api/v1/price-lists/"): {"code": "pl-new", "name": "New", "valid_from": "2026-01-01"},
        ("patch", f"/api/v1/price-lists/{price_list.pk}/"): {"notes": "n", "valid_to": "2030-01-01"},
        ("post", f"/api/v1/price-lists/{price_list.pk}/items/"): {
            "gpu_model": "H20-96GB",
            "resource": "card",
            "term": "daily",
            "list_unit_price": "100.00",
            "tax_category": "it_service",
        },
        ("patch", f"/api/v1/price-lists/{price_list.pk}/items/{item.pk}/"): {"list_unit_price": "23.00"},
    }


def _send(client: APIClient, method: str, url: str, body) -> object:
    return getattr(client, method)(url, json.dumps(body), content_type="application/json")


def _send_and_undo(client: APIClient, method: str, url: str, body) -> object:
    """Send, then roll back whatever it wrote, so each try starts from the same rows."""
    with transaction.atomic():
        response = _send(client, method, url, body)
        transaction.set_rollback(True)
    return response


def _assert_client_error_or_success(response, field: str | None = None) -> None:
    assert response.status_code < 500, response.content
    if response.status_code >= 400:
        body = response.json()
        assert set(body) == {"code", "message", "fields"}, body
        if field is not None and response.status_code == 400 and body["code"] == "invalid":
            assert field in body["fields"] or "non_field_errors" in body["fields"], body


def _counts() -> tuple:
    return tuple(m.objects.count() for m in (Provider, Site, Server, Card, Customer, PriceList))


def test_every_endpoint_takes_its_valid_payload(admin_client, world):
    """The payloads the garbage is mixed into are good ones (otherwise the test proves nothing)."""
    for (method, url), body in world.items():
        response = _send(admin_client, method, url, body)
        assert response.status_code in (200, 201), (url, response.content)


def test_wrong_types_in_any_field_answer_400_naming_the_field(admin_client, world):
    before = _counts()
    refused = 0
    for (method, url), body in world.items():
        for field in body:
            for garbage in GARBAGE:
                response = _send_and_undo(admin_client, method, url, {**body, field: garbage})
                _assert_client_error_or_success(response, field)
                refused += response.status_code == 400
                if garbage in ALWAYS_WRONG:
                    assert_error(response, 400, "invalid", field)
    # Some garbage is legal (an empty string for an optional text field); most is refused.
    assert refused > 0.8 * sum(len(body) for body in world.values()) * len(GARBAGE)
    assert _counts() == before


@pytest.mark.parametrize("body", BODIES_OF_THE_WRONG_SHAPE)
def test_bodies_that_are_not_objects_answer_400(admin_client, world, body):
    for method, url in world:
        response = _send(admin_client, method, url, body)
        assert_error(response, 400, "invalid")


@pytest.mark.parametrize(
    "raw", ['{"serial": ', "{'single': 'quotes'}", "not json at all", '{"a": NaN}', "\xff\xfe"]
)
def test_malformed_json_answers_malformed_request(admin_client, world, raw):
    for method, url in world:
        response = getattr(admin_client, method)(url, raw, content_type="application/json")
        assert_error(response, 400, "malformed_request")


def test_garbage_in_nested_cards_names_the_card(admin_client, world):
    url = "/api/v1/servers/"
    body = world[("post", url)]
    for cards in (
        [None],
        ["GPU-x"],
        [[{"slot": 0}]],
        [{"slot": [0], "uuid": {"a": 1}}],
        [{"slot": 10**40, "uuid": "GPU-" + "f" * 10_000}],
        [{"slot": -1, "uuid": card_uuid(1)}],
        [{"slot": "0", "uuid": None}],
        "cards",
        {"0": {"slot": 0, "uuid": card_uuid(1)}},
    ):
        response = _send(admin_client, "post", url, {**body, "cards": cards})
        assert_error(response, 400, "invalid", "cards")
    assert not Server.objects.filter(serial="SRV-NEW").exists()


def test_a_huge_batch_of_cards_is_refused(admin_client, world):
    body = world[("post", "/api/v1/servers/")]
    cards = [{"slot": n % 16, "uuid": card_uuid(10_000 + n)} for n in range(2000)]
    assert_error(
        _send(admin_client, "post", "/api/v1/servers/", {**body, "card_count": 16, "cards": cards}),
        400,
        "invalid",
        "cards",
    )


LISTS = [
    "/api/v1/providers/",
    "/api/v1/sites/",
    "/api/v1/gpu-models/",
    "/api/v1/servers/",
    "/api/v1/customers/",
    "/api/v1/price-lists/",
]


@pytest.mark.parametrize("url", LISTS)
@pytest.mark.parametrize(
    "query",
    [
        "?search=%00",
        "?provider=%00",
        "?code=a%00b",
        "?serial=" + "x" * 5000,
        "?page=abc",
        "?page=99999",
        "?page=-1",
        "?ordering=-nope,__class__",
        "?status=%00",
        "?hub=mars",
        "?is_default=maybe",
        "?card=GPU-%00",
        "?name=%ff%fe",
    ],
)
def test_garbage_query_parameters_never_crash(admin_client, world, url, query):
    response = admin_client.get(url + query)
    assert response.status_code in (200, 400, 404), response.content
    if response.status_code != 200:
        assert set(response.json()) == {"code", "message", "fields"}


@pytest.mark.parametrize("pk", ["0", "-1", "abc", "1.5", "99999999999999999999999", "%00"])
@pytest.mark.parametrize(
    "resource", ["providers", "sites", "gpu-models", "servers", "customers", "price-lists"]
)
def test_odd_ids_answer_404_json(admin_client, resource, pk):
    assert_error(admin_client.get(f"/api/v1/{resource}/{pk}/"), 404, "not_found")


def test_put_is_not_offered_and_says_so(admin_client, world):
    provider = Provider.objects.get(code="bj-idc")
    response = admin_client.put(f"/api/v1/providers/{provider.pk}/", {"name": "x"}, format="json")
    assert_error(response, 405, "method_not_allowed")


def test_an_unsupported_media_type_answers_415(admin_client):
    response = admin_client.post("/api/v1/providers/", "code=x", content_type="text/plain")
    assert_error(response, 415, "unsupported_media_type")


def test_a_value_the_database_cannot_store_is_a_400_not_a_500():
    """The safety net behind validation: PostgreSQL refusing a value is the client's data."""
    response = exception_handler(DataError("PostgreSQL text fields cannot contain NUL (0x00) bytes"), {})
    assert response.status_code == 400
    assert response.data["code"] == "invalid"


# OpenAPI


def test_the_schema_generates_without_warnings(tmp_path):
    """drf-spectacular's own check: any warning (an unresolvable type, a clashing name) fails."""
    out = tmp_path / "schema.yaml"
    call_command("spectacular", "--fail-on-warn", "--validate", "--file", str(out))
    assert out.stat().st_size > 0


def test_the_schema_and_the_docs_are_served(api_client):
    response = api_client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    paths = response.json()["paths"]
    for path in (
        "/api/v1/auth/token/",
        "/api/v1/providers/",
        "/api/v1/providers/{id}/",
        "/api/v1/sites/",
        "/api/v1/gpu-models/",
        "/api/v1/servers/",
        "/api/v1/servers/{id}/",
        "/api/v1/servers/{server_pk}/cards/",
        "/api/v1/customers/",
        "/api/v1/customers/{id}/",
        "/api/v1/price-lists/",
        "/api/v1/price-lists/{price_list_pk}/items/",
        "/api/v1/price-lists/{price_list_pk}/items/{id}/",
    ):
        assert path in paths, path
    server_post = paths["/api/v1/servers/"]["post"]
    assert server_post["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "/ServerCreate"
    )
    assert "400" in server_post["responses"]
    assert "put" not in paths["/api/v1/servers/{id}/"]
    assert api_client.get("/api/docs/").status_code == 200


def test_api_docs_load_swagger_ui_from_the_site_itself_not_a_cdn(api_client):
    page = api_client.get("/api/docs/").content.decode()
    assert "drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js" in page
    assert "cdn.jsdelivr.net" not in page
