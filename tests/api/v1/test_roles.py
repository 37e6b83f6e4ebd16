"""Roles in the API (docs/security.md#roles): customer users of every membership role read their
customer's issued documents and write nothing; drafts are invisible to them (404, PDFs too);
partner API keys reach only usage and their own provider's settlements (403 everywhere else)."""

from __future__ import annotations

import datetime
import re
from decimal import Decimal

import pytest
import time_machine
from drf_spectacular.generators import SchemaGenerator
from rest_framework.test import APIClient

from apps.accounts import roles
from apps.accounts.models import CustomerMembership
from apps.audit.models import AuditEvent
from apps.billing.invoicing.services.runs import billing_run_create, billing_run_execute
from apps.billing.models import Invoice, InvoiceStatus, SettlementStatement
from apps.billing.settlements.services import settlement_build
from apps.metering.services import partner_key_create
from apps.providers.models import SupplyAgreement
from tests.api.helpers import assert_error
from tests.factories.billing_flows import issued_invoice, use
from tests.factories.catalogue import CustomerFactory, ProviderFactory, ServerFactory, SiteFactory, gpu_model

pytestmark = pytest.mark.django_db

SH = datetime.timezone(datetime.timedelta(hours=8))
ROLES = [CustomerMembership.Role.ADMIN, CustomerMembership.Role.BILLING, CustomerMembership.Role.VIEWER]


def provider_with_server(code: str):
    provider = ProviderFactory(code=code)
    server = ServerFactory(site=SiteFactory(provider=provider))
    SupplyAgreement.objects.create(
        provider=provider,
        gpu_model=gpu_model("A100-SXM4-40GB"),
        resource="card",
        term="hourly",
        cost_unit_price=Decimal("6.00"),
        valid_from=datetime.date(2026, 1, 1),
    )
    return provider, server


@pytest.fixture
def world(make_staff, django_user_model):
    am = make_staff(roles.ACCOUNT_MANAGER, username="am1")
    acme = CustomerFactory(code="acme-r")
    provider, server = provider_with_server("prov-own")
    issued = issued_invoice(acme, am, server)  # November, issued
    use(server, 10, day=3, month=12)
    as_of = datetime.datetime(2027, 1, 1, 3, tzinfo=SH)
    billing_run_execute(
        run=billing_run_create(period="2026-12", customer=acme, as_of=as_of, now=as_of), now=as_of
    )
    draft = Invoice.objects.get(customer=acme, period="2026-12")
    assert (issued.status, draft.status) == (InvoiceStatus.ISSUED, InvoiceStatus.DRAFT)
    other_provider, other_server = provider_with_server("prov-other")
    issued_invoice(CustomerFactory(code="other-r"), am, other_server)
    settlement_build(period="2026-11", now=as_of)
    members = {}
    for role in ROLES:
        user = django_user_model.objects.create_user(username=f"acme-{role}", password="pw-Role-2026")
        CustomerMembership.objects.create(user=user, customer=acme, role=role)
        members[role] = user
    return {
        "acme": acme,
        "issued": issued,
        "draft": draft,
        "provider": provider,
        "other_provider": other_provider,
        "members": members,
    }


def as_member(world, role) -> APIClient:
    client = APIClient()
    client.force_authenticate(world["members"][role])
    return client


def with_key(provider) -> APIClient:
    _, key = partner_key_create(provider=provider, name="scheduler")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {key}")
    return client


# -- customer users ------------------------------------------------------------------------------


@pytest.mark.parametrize("role", ROLES)
def test_every_role_reads_issued_invoices_and_never_a_draft(world, role):
    client = as_member(world, role)
    listing = client.get("/api/v1/invoices/")
    assert listing.status_code == 200
    assert [row["number"] for row in listing.json()["results"]] == [world["issued"].number]
    assert client.get(f"/api/v1/invoices/{world['issued'].pk}/").json()["total_amount"] == "1000.00"
    pdf = client.get(f"/api/v1/invoices/{world['issued'].pk}/pdf/")
    assert pdf.status_code == 200 and pdf["Content-Type"] == "application/pdf"
    assert_error(client.get(f"/api/v1/invoices/{world['draft'].pk}/"), 404, "not_found")
    assert_error(client.get(f"/api/v1/invoices/{world['draft'].pk}/pdf/"), 404, "not_found")
    assert client.get("/api/v1/invoices/", {"status": "draft"}).json()["results"] == []


def test_staff_still_see_the_draft(world, client_as):
    finance = client_as(roles.FINANCE)
    assert finance.get(f"/api/v1/invoices/{world['draft'].pk}/").json()["status"] == "draft"
    assert finance.get(f"/api/v1/invoices/{world['draft'].pk}/pdf/").status_code == 200


@pytest.mark.parametrize("role", ROLES)
def test_no_role_writes_through_the_api(world, role):
    client = as_member(world, role)
    issued = world["issued"].pk
    writes = [
        (f"/api/v1/invoices/{issued}/payments/", {"amount": "1000.00", "reference": "ICBC-1"}),
        (f"/api/v1/invoices/{issued}/void/", {"reason": "mine"}),
        ("/api/v1/credit-notes/", {"invoice": issued, "reason": "mine", "amount": "1.00"}),
        ("/api/v1/contracts/", {"customer": "acme-r", "currency": "CNY"}),
        ("/api/v1/billing-runs/", {"period": "2026-12"}),
    ]
    for url, body in writes:
        assert_error(client.post(url, body, format="json"), 403, "permission_denied")
    assert Invoice.objects.get(pk=issued).status == InvoiceStatus.ISSUED
    assert not world["issued"].payments.exists()


# -- partner API keys ----------------------------------------------------------------------------

PARTNER_PATHS = re.compile(r"^/api/v1/(usage|settlements)/")
# The login itself takes a username and a password, not a key: nothing to refuse there.
NO_AUTH_PATHS = {"/api/v1/auth/token/"}


def api_operations():
    """Every (method, path) of the OpenAPI document, ids filled with 1."""
    schema = SchemaGenerator(patterns=None).get_schema(request=None, public=True)
    for path, operations in schema["paths"].items():
        for method in operations:
            if method in {"get", "post", "patch", "put", "delete"}:
                yield method, re.sub(r"\{[^}]+\}", "1", path)


def test_partner_keys_are_refused_with_403_everywhere_but_usage_and_settlements(world):
    client = with_key(world["provider"])
    walked = 0
    for method, path in api_operations():
        if PARTNER_PATHS.match(path) or path in NO_AUTH_PATHS:
            continue
        response = getattr(client, method)(path, {}, format="json")
        assert response.status_code == 403, (method, path, response.status_code, response.content[:200])
        assert response.json()["code"] == "permission_denied", (method, path)
        walked += 1
    assert walked > 40


def test_a_partner_key_reads_its_own_providers_settlements_without_the_platforms_margin(world):
    client = with_key(world["provider"])
    listing = client.get("/api/v1/settlements/")
    assert listing.status_code == 200, listing.content
    rows = listing.json()["results"]
    assert [row["provider"] for row in rows] == ["prov-own"]
    assert rows[0]["cost_amount"] == "600.00"
    assert not {"margin_amount", "revenue_net_amount", "confirmed_by", "paid_by"} & set(rows[0])
    detail = client.get(f"/api/v1/settlements/{rows[0]['id']}/").json()
    assert detail["lines"] and not {"margin_amount", "revenue_net_amount", "invoice"} & set(
        detail["lines"][0]
    )
    other = SettlementStatement.objects.get(provider=world["other_provider"])
    assert_error(client.get(f"/api/v1/settlements/{other.pk}/"), 404, "not_found")
    for action in ("confirm", "pay"):
        assert_error(
            client.post(f"/api/v1/settlements/{rows[0]['id']}/{action}/", {}, format="json"),
            403,
            "permission_denied",
        )
    assert_error(
        client.post("/api/v1/settlements/build/", {"period": "2026-11"}, format="json"),
        403,
        "permission_denied",
    )
    assert_error(client.get("/api/v1/settlements/margins/", {"period": "2026-11"}), 403, "permission_denied")


def test_a_partner_key_still_reaches_usage(world):
    client = with_key(world["provider"])
    travel = time_machine.travel(datetime.datetime(2026, 12, 6, 9, tzinfo=SH), tick=False)
    travel.start()
    card = world["provider"].sites.get().servers.get().cards.get(slot=0)
    response = client.post(
        "/api/v1/usage/",
        {
            "event_id": "roles-1",
            "card": card.uuid,
            "start": "2026-12-05T00:00:00+08:00",
            "end": "2026-12-05T01:00:00+08:00",
        },
        format="json",
    )
    travel.stop()
    assert response.status_code in (200, 201), response.content
    assert response.json()["accepted"] == 1


def test_a_bad_key_is_still_401_not_403(world):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Api-Key nope.nope")
    assert_error(client.get("/api/v1/customers/"), 401, "authentication_failed")


@pytest.mark.parametrize(("role", "manages"), [("admin", True), ("billing", False), ("viewer", False)])
def test_only_customer_admins_manage_portal_users_and_webhook_endpoints(
    world, django_capture_on_commit_callbacks, role, manages
):
    client = as_member(world, role)
    with django_capture_on_commit_callbacks(execute=True):
        invited = client.post(
            "/api/v1/memberships/", {"email": f"new-{role}@acme-r.example", "role": "viewer"}, format="json"
        )
    endpoint = client.post(
        "/api/v1/webhook-endpoints/",
        {"customer": "acme-r", "url": "https://erp.acme-r.example/hooks"},
        format="json",
    )
    made = CustomerMembership.objects.filter(user__email=f"new-{role}@acme-r.example")
    if manages:
        assert (invited.status_code, endpoint.status_code) == (201, 201), (invited.content, endpoint.content)
        event = AuditEvent.objects.get(
            content_type__model="customermembership", object_id=str(made.get().pk), action="created"
        )
        assert event.actor == world["members"][role]
    else:
        assert (invited.status_code, endpoint.status_code) == (403, 403)
        assert not made.exists()
