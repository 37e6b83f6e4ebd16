"""``/api/v1/webhook-endpoints/`` (docs/webhooks.md#the-api): staff by model permission, customer
admins their own customers' endpoints only; the secret in the creating or rotating answer only."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from apps.accounts import roles
from apps.accounts.models import CustomerMembership
from apps.webhooks import services
from apps.webhooks.models import WebhookEndpoint
from tests.api.helpers import assert_error
from tests.factories.catalogue import CustomerFactory, ProviderFactory
from tests.factories.metering import partner_key

pytestmark = pytest.mark.django_db
URL = "/api/v1/webhook-endpoints/"


@pytest.fixture
def client_as(make_staff):
    def make(*role_names: str) -> APIClient:
        client = APIClient()
        client.force_authenticate(make_staff(*role_names))
        return client

    return make


@pytest.fixture
def member(django_user_model, customer):
    """``member("admin")``: a portal user of ``customer`` with that membership role."""

    def make(role: str, of=None) -> APIClient:
        user = django_user_model.objects.create_user(username=f"portal-{role}", password="pw-Secret-123")
        CustomerMembership.objects.create(user=user, customer=of or customer, role=role)
        client = APIClient()
        client.force_authenticate(user)
        return client

    return make


@pytest.fixture
def other_endpoint():
    endpoint, _ = services.webhook_endpoint_create(
        owner=CustomerFactory(code="globex"), url="https://globex.example/h"
    )
    return endpoint


def test_finance_creates_an_endpoint_and_sees_its_secret_once(client_as, customer):
    client = client_as(roles.FINANCE)
    response = client.post(
        URL,
        {
            "customer": "acme",
            "url": "https://erp.acme.example/suanli",
            "events": ["invoice.paid", "invoice.issued"],
        },
        format="json",
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["secret"].startswith("whsec_") and len(body["secret"]) > 40
    assert (body["customer"], body["provider"], body["events"], body["enabled"]) == (
        "acme",
        None,
        ["invoice.issued", "invoice.paid"],
        True,
    )
    assert WebhookEndpoint.objects.get().secret == body["secret"]

    shown = client.get(f"{URL}{body['id']}/").json()
    assert "secret" not in shown and body["secret"] not in str(shown)
    assert body["secret"] not in client.get(URL).content.decode()


def test_operations_manage_a_providers_endpoint_and_rotate_its_secret(client_as):
    ProviderFactory(code="bj-idc")
    client = client_as(roles.OPERATIONS)
    created = client.post(
        URL, {"provider": "bj-idc", "url": "http://scheduler.bj-idc.example/hooks"}, format="json"
    )
    assert created.status_code == 201, created.content
    endpoint_id = created.json()["id"]

    rotated = client.post(f"{URL}{endpoint_id}/rotate-secret/")
    assert rotated.status_code == 200
    assert (
        rotated.json()["secret"].startswith("whsec_") and rotated.json()["secret"] != created.json()["secret"]
    )
    endpoint = WebhookEndpoint.objects.get()
    assert endpoint.previous_secret == created.json()["secret"]
    assert rotated.json()["previous_secret_expires_at"] is not None

    patched = client.patch(
        f"{URL}{endpoint_id}/", {"enabled": False, "events": ["usage.rejected"]}, format="json"
    )
    assert patched.status_code == 200
    assert (patched.json()["enabled"], patched.json()["events"]) == (False, ["usage.rejected"])
    assert client.delete(f"{URL}{endpoint_id}/").status_code == 204
    assert WebhookEndpoint.objects.count() == 0


def test_refusals_name_the_field(client_as, customer):
    client = client_as(roles.FINANCE)
    assert_error(
        client.post(URL, {"customer": "acme", "url": "ftp://x.example/"}, format="json"),
        400,
        "invalid_url",
        "url",
    )
    assert_error(client.post(URL, {"url": "https://x.example/"}, format="json"), 400, "invalid", "customer")
    ProviderFactory(code="bj-idc")
    both = client.post(
        URL, {"customer": "acme", "provider": "bj-idc", "url": "https://x.example/"}, format="json"
    )
    assert_error(both, 400, "invalid", "provider")
    wrong_kind = client.post(
        URL, {"customer": "acme", "url": "https://x.example/", "events": ["usage.rejected"]}, format="json"
    )
    body = assert_error(wrong_kind, 400, "invalid", "events")
    assert "usage.rejected" in body["message"]
    unknown = client.post(
        URL, {"customer": "acme", "url": "https://x.example/", "events": ["invoice.eaten"]}, format="json"
    )
    assert_error(unknown, 400, "invalid", "events")
    endpoint, _ = services.webhook_endpoint_create(owner=customer, url="https://x.example/")
    moved = client.patch(f"{URL}{endpoint.pk}/", {"customer": "globex"}, format="json")
    assert moved.status_code == 400
    assert WebhookEndpoint.objects.get(pk=endpoint.pk).customer == customer


def test_a_customer_admin_manages_only_their_own_customers_endpoints(member, customer, other_endpoint):
    client = member("admin")
    created = client.post(URL, {"customer": "acme", "url": "https://erp.acme.example/h"}, format="json")
    assert created.status_code == 201, created.content
    assert created.json()["secret"].startswith("whsec_")

    listed = client.get(URL).json()
    rows = listed["results"] if isinstance(listed, dict) else listed
    assert [row["customer"] for row in rows] == ["acme"]
    assert_error(client.get(f"{URL}{other_endpoint.pk}/"), 404, "not_found")
    assert_error(
        client.patch(f"{URL}{other_endpoint.pk}/", {"enabled": False}, format="json"), 404, "not_found"
    )
    assert_error(client.delete(f"{URL}{other_endpoint.pk}/"), 404, "not_found")
    assert WebhookEndpoint.objects.get(pk=other_endpoint.pk).enabled

    for_other = client.post(URL, {"customer": "globex", "url": "https://x.example/"}, format="json")
    assert_error(for_other, 400, "invalid", "customer")
    ProviderFactory(code="bj-idc")
    for_provider = client.post(URL, {"provider": "bj-idc", "url": "https://x.example/"}, format="json")
    assert_error(for_provider, 400, "invalid", "provider")
    assert WebhookEndpoint.objects.count() == 2


@pytest.mark.parametrize("role", ["billing", "viewer"])
def test_billing_and_viewer_members_are_refused(member, customer, role):
    services.webhook_endpoint_create(owner=customer, url="https://erp.acme.example/h")
    client = member(role)
    assert_error(client.get(URL), 403, "permission_denied")
    assert_error(
        client.post(URL, {"customer": "acme", "url": "https://x.example/"}, format="json"),
        403,
        "permission_denied",
    )


def test_account_managers_read_their_customers_endpoints_and_change_none(
    client, am, customer, other_endpoint
):
    mine, _ = services.webhook_endpoint_create(owner=customer, url="https://erp.acme.example/h")
    api = APIClient()
    api.force_authenticate(am)
    rows = api.get(URL).json()
    rows = rows["results"] if isinstance(rows, dict) else rows
    assert [row["id"] for row in rows] == [mine.pk]
    assert_error(api.get(f"{URL}{other_endpoint.pk}/"), 404, "not_found")
    assert_error(api.patch(f"{URL}{mine.pk}/", {"enabled": False}, format="json"), 403, "permission_denied")
    assert_error(api.post(f"{URL}{mine.pk}/rotate-secret/"), 403, "permission_denied")


def test_sales_managers_and_partner_keys_are_refused(client_as, customer):
    services.webhook_endpoint_create(owner=customer, url="https://erp.acme.example/h")
    assert_error(client_as(roles.SALES_MANAGER).get(URL), 403, "permission_denied")
    provider = ProviderFactory(code="bj-idc")
    _key, raw = partner_key(provider)
    partner = APIClient()
    response = partner.get(URL, HTTP_AUTHORIZATION=f"Api-Key {raw}")
    assert response.status_code == 403


def test_lists_filter_by_owner_code_and_refuse_a_junk_boolean(client_as, customer, other_endpoint):
    mine, _ = services.webhook_endpoint_create(
        owner=customer, url="https://erp.acme.example/h", enabled=False
    )
    client = client_as(roles.FINANCE)

    def ids(query: str) -> list[int]:
        body = client.get(f"{URL}?{query}").json()
        return [row["id"] for row in (body["results"] if isinstance(body, dict) else body)]

    assert ids("customer=acme") == [mine.pk]
    assert ids("customer=globex") == [other_endpoint.pk]
    assert ids("enabled=false") == [mine.pk]
    assert ids("provider=bj-idc") == []
    assert_error(client.get(f"{URL}?enabled=maybe"), 400, "invalid", "enabled")


def test_refusals_speak_the_callers_language(client_as, customer):
    client = client_as(roles.FINANCE)
    response = client.post(
        URL, {"customer": "acme", "url": "ftp://x.example/"}, format="json", HTTP_ACCEPT_LANGUAGE="zh-CN"
    )
    body = assert_error(response, 400, "invalid_url", "url")
    assert body["message"] == "回调地址须为完整的 http:// 或 https:// 网址。"
    english = client.post(URL, {"customer": "acme", "url": "ftp://x.example/"}, format="json")
    assert english.json()["message"] == "Webhook URLs must be absolute http:// or https:// URLs."
