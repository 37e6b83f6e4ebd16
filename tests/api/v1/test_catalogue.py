"""Providers, sites, GPU models and price lists: the catalogue behind servers and contracts."""

from __future__ import annotations

import pytest

from apps.accounts import roles
from apps.contracts.models import PriceList, PriceListItem
from apps.inventory.models import GpuModel
from apps.providers.models import Provider, Site
from tests.api.helpers import assert_error
from tests.factories.catalogue import ProviderFactory, ServerFactory, SiteFactory

pytestmark = pytest.mark.django_db


# Providers


def test_operations_registers_a_provider(operations_client):
    response = operations_client.post(
        "/api/v1/providers/",
        {"code": "bj-idc", "name": "Beijing IDC", "type": "idc", "contact_email": "ops@bj-idc.example"},
        format="json",
    )

    assert response.status_code == 201, response.content
    assert response.json()["code"] == "bj-idc"
    assert response.json()["settlement_terms_days"] == 30
    assert Provider.objects.get(code="bj-idc").type == "idc"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"code": "taken", "name": "X", "type": "idc"}, "code"),
        ({"code": "new", "name": "X", "type": "bakery"}, "type"),
        ({"code": "has space", "name": "X", "type": "idc"}, "code"),
        ({"code": "new", "type": "idc"}, "name"),
    ],
)
def test_bad_provider_payloads_name_the_field(operations_client, body, field):
    ProviderFactory(code="taken")
    assert_error(operations_client.post("/api/v1/providers/", body, format="json"), 400, "invalid", field)
    assert Provider.objects.count() == 1


def test_a_provider_code_does_not_change(operations_client):
    provider = ProviderFactory(code="bj-idc")
    url = f"/api/v1/providers/{provider.pk}/"
    assert_error(operations_client.patch(url, {"code": "other"}, format="json"), 400, "invalid", "code")
    response = operations_client.patch(url, {"name": "Beijing IDC 2"}, format="json")
    assert response.status_code == 200 and response.json()["name"] == "Beijing IDC 2"


def test_a_provider_with_hardware_cannot_be_deleted(operations_client):
    server = ServerFactory()
    empty = ProviderFactory()

    body = assert_error(operations_client.delete(f"/api/v1/providers/{server.provider.pk}/"), 409, "conflict")
    assert "still refer" in body["message"]
    assert operations_client.delete(f"/api/v1/providers/{empty.pk}/").status_code == 204
    assert Provider.objects.count() == 1


def test_providers_filter_by_type_and_code(client_as):
    ProviderFactory(code="ct", type="telecom_operator")
    ProviderFactory(code="idc1", type="idc")
    client = client_as(roles.FINANCE)
    assert [p["code"] for p in client.get("/api/v1/providers/?type=idc").json()["results"]] == ["idc1"]
    assert [p["code"] for p in client.get("/api/v1/providers/?code=ct").json()["results"]] == ["ct"]
    assert_error(
        client.post("/api/v1/providers/", {"code": "x", "name": "X", "type": "idc"}, format="json"),
        403,
        "permission_denied",
    )


# Sites


def test_a_site_is_registered_under_a_provider_code(operations_client):
    ProviderFactory(code="bj-idc")
    response = operations_client.post(
        "/api/v1/sites/",
        {"provider": "bj-idc", "name": "Beijing Yizhuang", "city": "Beijing", "hub": "jingjinji"},
        format="json",
    )

    assert response.status_code == 201, response.content
    assert response.json()["provider"] == "bj-idc"
    assert Site.objects.get().provider.code == "bj-idc"


def test_site_names_are_unique_per_provider_only(operations_client):
    SiteFactory(provider=ProviderFactory(code="a"), name="Hall 1")
    ProviderFactory(code="b")
    body = {"name": "Hall 1", "city": "Beijing", "hub": "jingjinji"}

    clash = operations_client.post("/api/v1/sites/", {**body, "provider": "a"}, format="json")
    assert assert_error(clash, 400, "invalid", "name")["fields"]["name"] == [
        "Provider 'a' already has a site named 'Hall 1'."
    ]
    assert (
        operations_client.post("/api/v1/sites/", {**body, "provider": "b"}, format="json").status_code == 201
    )
    assert Site.objects.count() == 2


@pytest.mark.parametrize(
    ("override", "field", "message"),
    [
        ({"provider": "ghost"}, "provider", "Unknown provider 'ghost'."),
        ({"provider": 42}, "provider", "Expected the provider's code as a string."),
        ({"hub": "mars"}, "hub", None),
    ],
)
def test_bad_site_payloads_name_the_field(operations_client, override, field, message):
    ProviderFactory(code="a")
    body = {"provider": "a", "name": "Hall 1", "city": "Beijing", "hub": "jingjinji", **override}
    error = assert_error(operations_client.post("/api/v1/sites/", body, format="json"), 400, "invalid", field)
    if message:
        assert error["fields"][field] == [message]
    assert Site.objects.count() == 0


def test_a_site_cannot_move_to_another_provider(operations_client):
    site = SiteFactory()
    ProviderFactory(code="other")
    response = operations_client.patch(f"/api/v1/sites/{site.pk}/", {"provider": "other"}, format="json")
    assert_error(response, 400, "invalid", "provider")


def test_sites_filter_by_provider_and_hub_without_n_plus_one(client_as, django_assert_max_num_queries):
    a, b = ProviderFactory(code="a"), ProviderFactory(code="b")
    SiteFactory(provider=a, hub="guizhou")
    client = client_as(roles.ACCOUNT_MANAGER)
    with django_assert_max_num_queries(4):
        client.get("/api/v1/sites/")
    for n in range(20):
        SiteFactory(provider=b if n % 2 else a, hub="jingjinji")
    with django_assert_max_num_queries(4):
        response = client.get("/api/v1/sites/")

    assert response.json()["count"] == 21
    assert client.get("/api/v1/sites/?provider=b").json()["count"] == 10
    assert client.get("/api/v1/sites/?hub=guizhou").json()["count"] == 1
    assert client.get("/api/v1/sites/?provider=a&hub=jingjinji").json()["count"] == 10


# GPU models


def test_gpu_models_show_dense_figures_and_p_per_card(client_as):
    client = client_as(roles.ACCOUNT_MANAGER)
    response = client.get("/api/v1/gpu-models/?name=A100-SXM4-40GB")

    assert response.status_code == 200
    (model,) = response.json()["results"]
    assert model["fp16_dense_tflops"] == "312"
    assert model["p_per_card"] == "0.312"
    h800 = client.get("/api/v1/gpu-models/?name=H800-SXM5-80GB").json()["results"][0]
    assert h800["fp16_dense_tflops"] == "989.4"
    assert h800["p_per_card"] == "0.9894"


def test_operations_adds_a_gpu_model(operations_client):
    body = {"vendor": "NVIDIA", "name": "B200-SXM6-180GB", "memory_gb": 180, "fp16_dense_tflops": "2250"}
    response = operations_client.post("/api/v1/gpu-models/", body, format="json")
    assert response.status_code == 201, response.content
    assert response.json()["p_per_card"] == "2.25"

    assert_error(operations_client.post("/api/v1/gpu-models/", body, format="json"), 400, "invalid", "name")
    zero = {**body, "name": "Zero", "fp16_dense_tflops": "0"}
    assert_error(
        operations_client.post("/api/v1/gpu-models/", zero, format="json"),
        400,
        "invalid",
        "fp16_dense_tflops",
    )
    assert GpuModel.objects.filter(name__in=["B200-SXM6-180GB", "Zero"]).count() == 1


def test_a_gpu_model_in_use_cannot_be_deleted(operations_client):
    server = ServerFactory()
    assert_error(operations_client.delete(f"/api/v1/gpu-models/{server.gpu_model.pk}/"), 409, "conflict")


# Price lists


def test_the_market_reference_price_list_with_its_items(client_as):
    client = client_as(roles.ACCOUNT_MANAGER)
    response = client.get("/api/v1/price-lists/?code=market-reference")

    assert response.status_code == 200
    (price_list,) = response.json()["results"]
    assert price_list["currency"] == "CNY" and price_list["is_default"] is True
    hourly = next(
        item
        for item in price_list["items"]
        if item["gpu_model"] == "A100-SXM4-40GB" and item["resource"] == "card" and item["term"] == "hourly"
    )
    assert hourly == {
        "id": hourly["id"],
        "price_list": "market-reference",
        "gpu_model": "A100-SXM4-40GB",
        "resource": "card",
        "term": "hourly",
        "unit": "card_hour",
        "list_unit_price": "22.70",  # mean of 26.1 and 19.3 (reference data)
        "term_discount_percent": "0.00",
        "tax_category": "it_service",
        "tax_rate": "0.06",
    }
    yearly = next(item for item in price_list["items"] if item["term"] == "yearly")
    assert yearly["unit"] == "server_year"
    assert yearly["tax_category"] == "equipment_lease" and yearly["tax_rate"] == "0.13"


def test_price_list_items_are_filtered(client_as):
    price_list = PriceList.objects.get(code="market-reference")
    client = client_as(roles.FINANCE)
    url = f"/api/v1/price-lists/{price_list.pk}/items/"

    everything = client.get(url).json()
    assert everything["count"] == price_list.items.count()
    a100_hourly = client.get(url + "?gpu_model=A100-SXM4-40GB&resource=card&term=hourly").json()["results"]
    assert [item["list_unit_price"] for item in a100_hourly] == ["22.70"]
    assert {item["term"] for item in client.get(url + "?resource=server").json()["results"]} == {
        "monthly",
        "yearly",
    }
    assert_error(client.get(url + "?term=weekly"), 400, "invalid", "term")
    assert_error(client.get("/api/v1/price-lists/999999/items/"), 404, "not_found")


def test_price_lists_have_no_n_plus_one(client_as, django_assert_max_num_queries):
    client = client_as(roles.FINANCE)
    with django_assert_max_num_queries(5):
        client.get("/api/v1/price-lists/")
    reference = PriceList.objects.get(code="market-reference")
    for n in range(10):
        copy = PriceList.objects.create(code=f"copy-{n}", name="Copy", valid_from=reference.valid_from)
        PriceListItem.objects.bulk_create(
            PriceListItem(
                price_list=copy,
                gpu_model=item.gpu_model,
                resource=item.resource,
                term=item.term,
                list_unit_price=item.list_unit_price,
                tax_category=item.tax_category,
            )
            for item in reference.items.all()
        )
    with django_assert_max_num_queries(5):
        response = client.get("/api/v1/price-lists/")
    assert response.json()["count"] == 11
    with django_assert_max_num_queries(5):
        client.get(f"/api/v1/price-lists/{reference.pk}/items/")


@pytest.mark.parametrize("role", [roles.ACCOUNT_MANAGER, roles.FINANCE])
def test_price_lists_are_read_only_without_the_permissions(client_as, role):
    client = client_as(role)
    price_list = PriceList.objects.get(code="market-reference")
    body = {"code": "new", "name": "New", "valid_from": "2026-01-01"}
    assert_error(client.post("/api/v1/price-lists/", body, format="json"), 403, "permission_denied")
    item = price_list.items.first()
    response = client.patch(
        f"/api/v1/price-lists/{price_list.pk}/items/{item.pk}/", {"list_unit_price": "1.00"}, format="json"
    )
    assert_error(response, 403, "permission_denied")
    assert PriceList.objects.count() == 1


def test_operations_does_not_see_prices(operations_client):
    assert_error(operations_client.get("/api/v1/price-lists/"), 403, "permission_denied")


def test_a_sales_manager_builds_a_price_list(client_as):
    client = client_as(roles.SALES_MANAGER)
    created = client.post(
        "/api/v1/price-lists/",
        {"code": "vip-2026", "name": "VIP 2026", "currency": "CNY", "valid_from": "2026-01-01"},
        format="json",
    )
    assert created.status_code == 201, created.content
    items_url = f"/api/v1/price-lists/{created.json()['id']}/items/"

    item = client.post(
        items_url,
        {"gpu_model": "H800-SXM5-80GB", "resource": "p_unit", "term": "yearly", "list_unit_price": "200000"},
        format="json",
    )
    assert item.status_code == 201, item.content
    assert item.json()["unit"] == "p_year"
    assert item.json()["list_unit_price"] == "200000.00"
    assert item.json()["tax_category"] == "it_service"  # the default
    assert item.json()["term_discount_percent"] == "0.00"

    again = client.post(
        items_url,
        {"gpu_model": "H800-SXM5-80GB", "resource": "p_unit", "term": "yearly", "list_unit_price": "1"},
        format="json",
    )
    assert "already has a price" in assert_error(again, 400, "invalid")["message"]

    patched = client.patch(f"{items_url}{item.json()['id']}/", {"term_discount_percent": "15"}, format="json")
    assert patched.status_code == 200 and patched.json()["term_discount_percent"] == "15.00"
    assert client.delete(f"{items_url}{item.json()['id']}/").status_code == 204
    assert PriceListItem.objects.filter(price_list__code="vip-2026").count() == 0


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"is_default": True}, "is_default"),  # market-reference is the CNY default already
        ({"valid_to": "2025-12-31"}, "valid_to"),
        ({"code": "market-reference"}, "code"),
        ({"valid_from": "yesterday"}, "valid_from"),
    ],
)
def test_bad_price_lists_name_the_field(client_as, body, field):
    base = {"code": "new", "name": "New", "valid_from": "2026-01-01"}
    response = client_as(roles.SALES_MANAGER).post("/api/v1/price-lists/", {**base, **body}, format="json")
    assert_error(response, 400, "invalid", field)
    assert PriceList.objects.count() == 1


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"gpu_model": "Z9000"}, "gpu_model"),
        ({"tax_category": "luxury"}, "tax_category"),
        ({"term_discount_percent": "100"}, "term_discount_percent"),
        ({"list_unit_price": "-1"}, "list_unit_price"),
        ({"list_unit_price": "1.1234567"}, "list_unit_price"),
        ({"resource": "rack"}, "resource"),
    ],
)
def test_bad_price_list_items_name_the_field(client_as, body, field):
    price_list = PriceList.objects.get(code="market-reference")
    before = price_list.items.count()
    base = {"gpu_model": "H20-96GB", "resource": "card", "term": "daily", "list_unit_price": "100"}
    response = client_as(roles.SALES_MANAGER).post(
        f"/api/v1/price-lists/{price_list.pk}/items/", {**base, **body}, format="json"
    )
    assert_error(response, 400, "invalid", field)
    assert price_list.items.count() == before
