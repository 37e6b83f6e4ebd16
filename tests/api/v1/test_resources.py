"""Supply agreements, payments, credit entries and memberships through the API, with the admin's
permissions; customers see only their own rows (docs/api.md#more-resources)."""

from __future__ import annotations

import json

import pytest
from django.core import mail
from rest_framework.test import APIClient

from apps.accounts.models import CustomerMembership, User
from apps.billing.models import CreditEntry, InvoiceStatus, Payment
from apps.customers.models import Customer
from apps.providers.models import SupplyAgreement
from tests.api.helpers import assert_error

pytestmark = pytest.mark.django_db


def _as(username: str) -> APIClient:
    client = APIClient()
    client.force_authenticate(User.objects.get(username=username))
    return client


def _post(client, url, body):
    return client.post(url, data=json.dumps(body), content_type="application/json")


def _patch(client, url, body):
    return client.patch(url, data=json.dumps(body), content_type="application/json")


def _all(client, url) -> list[dict]:
    """Every row of a list, following its pages."""
    rows: list[dict] = []
    while url:
        response = client.get(url)
        assert response.status_code == 200, response.content
        body = response.json()
        if not isinstance(body, dict):
            return body
        rows += body["results"]
        url = body["next"]
    return rows


# -- supply agreements ---------------------------------------------------------------------------
def test_operations_manage_supply_agreements(demo):
    ops = _as("ops1")
    existing = SupplyAgreement.objects.select_related("provider", "gpu_model").first()
    assert _all(ops, "/api/v1/supply-agreements/")  # listed

    created = _post(
        ops,
        "/api/v1/supply-agreements/",
        {
            "provider": existing.provider.code,
            "gpu_model": existing.gpu_model.name,
            "resource": "card",
            "term": "monthly",
            "cost_unit_price": "9800.50",
            "currency": "CNY",
            "valid_from": "2027-01-01",
            "valid_to": None,
        },
    )
    assert created.status_code == 201, created.content
    body = created.json()
    assert (body["provider"], body["cost_unit_price"], body["valid_to"]) == (
        existing.provider.code,
        "9800.50",
        None,
    )
    url = f"/api/v1/supply-agreements/{body['id']}/"

    changed = _patch(ops, url, {"cost_unit_price": "9500"})
    assert changed.status_code == 200, changed.content
    assert SupplyAgreement.objects.get(pk=body["id"]).cost_unit_price == 9500
    assert_error(_patch(ops, url, {"valid_to": "2026-12-31"}), 400, "invalid", "valid_to")
    assert_error(_patch(ops, url, {"provider": "nobody"}), 400, "invalid", "provider")

    assert ops.delete(url).status_code == 204
    assert not SupplyAgreement.objects.filter(pk=body["id"]).exists()


def test_supply_agreements_are_costs_finance_reads_and_customers_are_refused(demo):
    agreement = SupplyAgreement.objects.first()
    url = f"/api/v1/supply-agreements/{agreement.pk}/"
    finance = _as("finance1")

    assert finance.get(url).json()["id"] == agreement.pk
    assert_error(_patch(finance, url, {"cost_unit_price": "1"}), 403, "permission_denied")
    assert_error(_as("acme-user").get("/api/v1/supply-agreements/"), 403, "permission_denied")
    assert_error(_as("acme-user").get(url), 403, "permission_denied")
    provider = agreement.provider.code
    listed = _all(finance, f"/api/v1/supply-agreements/?provider={provider}")
    assert len(listed) == SupplyAgreement.objects.filter(provider__code=provider).count()
    assert_error(finance.get("/api/v1/supply-agreements/?valid_on=yesterday"), 400, "invalid", "valid_on")


# -- payments and credit ------------------------------------------------------------------------
def test_finance_reads_every_payment_and_a_customer_its_own(demo):
    acme = Customer.objects.get(code="acme")
    finance = _all(_as("finance1"), "/api/v1/payments/")
    assert len(finance) == Payment.objects.count() > 0

    own = _all(_as("acme-user"), "/api/v1/payments/")
    expected = Payment.objects.filter(invoice__customer=acme).exclude(invoice__status=InvoiceStatus.DRAFT)
    assert sorted(p["id"] for p in own) == sorted(expected.values_list("id", flat=True))
    assert {p["customer"] for p in own} == {"acme"}
    foreign = Payment.objects.exclude(invoice__customer=acme).first()
    assert foreign is not None
    assert_error(_as("acme-user").get(f"/api/v1/payments/{foreign.pk}/"), 404, "not_found")
    transfer = Payment.objects.filter(invoice__customer=acme).first()
    row = _as("acme-user").get(f"/api/v1/payments/{transfer.pk}/").json()
    assert (row["invoice_number"], row["amount"]) == (transfer.invoice.number, f"{transfer.amount:.2f}")


def test_credit_entries_are_read_by_finance_and_by_their_customer(demo):
    acme = Customer.objects.get(code="acme")
    other = Customer.objects.exclude(pk=acme.pk).first()
    entry = CreditEntry.objects.create(
        customer=other,
        currency="CNY",
        kind="adjustment",
        amount="120.00",
        balance_after="120.00",
        created_at=demo,
        note="goodwill",
    )

    listed = _all(_as("finance1"), f"/api/v1/credit-entries/?customer={other.code}")
    assert [(e["id"], e["customer"], e["amount"], e["note"]) for e in listed][:1] == [
        (entry.pk, other.code, "120.00", "goodwill")
    ]
    own = _all(_as("acme-user"), "/api/v1/credit-entries/")
    assert {e["customer"] for e in own} <= {"acme"}
    assert len(own) == CreditEntry.objects.filter(customer=acme).count()
    assert_error(_as("acme-user").get(f"/api/v1/credit-entries/{entry.pk}/"), 404, "not_found")
    assert_error(_as("ops1").get("/api/v1/credit-entries/"), 403, "permission_denied")
    assert_error(_as("finance1").get("/api/v1/credit-entries/?kind=gift"), 400, "invalid", "kind")


# -- memberships ---------------------------------------------------------------------------------
def test_memberships_staff_read_all_customers_read_their_own(demo):
    staff_rows = _all(_as("am1"), "/api/v1/memberships/")
    assert len(staff_rows) == CustomerMembership.objects.count()

    own = _all(_as("acme-user"), "/api/v1/memberships/")
    assert {row["customer"] for row in own} == {"acme"}
    assert "acme-user" in {row["username"] for row in own}
    foreign = CustomerMembership.objects.create(
        user=User.objects.create_user(username="someone-else"),
        customer=Customer.objects.exclude(code="acme").first(),
    )
    assert_error(_as("acme-user").get(f"/api/v1/memberships/{foreign.pk}/"), 404, "not_found")


def test_a_customer_admin_invites_a_colleague_and_others_may_not(demo, django_capture_on_commit_callbacks):
    membership = CustomerMembership.objects.get(user__username="acme-user", customer__code="acme")
    membership.role = CustomerMembership.Role.ADMIN
    membership.save()

    with django_capture_on_commit_callbacks(execute=True):  # the e-mail leaves after commit
        response = _post(
            _as("acme-user"),
            "/api/v1/memberships/",
            {"email": "Li.Na@acme.example", "display_name": "Li Na", "role": "viewer"},
        )

    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["customer"], body["username"], body["role"]) == ("acme", "li.na@acme.example", "viewer")
    assert mail.outbox and mail.outbox[-1].to == ["li.na@acme.example"]
    again = _post(_as("acme-user"), "/api/v1/memberships/", {"email": "li.na@acme.example", "role": "viewer"})
    assert_error(again, 409, "conflict")
    viewer = APIClient()
    viewer.force_authenticate(User.objects.get(username="li.na@acme.example"))
    assert_error(
        _post(viewer, "/api/v1/memberships/", {"email": "x@acme.example", "role": "admin"}), 403, "forbidden"
    )
    assert_error(
        _post(_as("am1"), "/api/v1/memberships/", {"email": "y@acme.example", "role": "admin"}),
        403,
        "permission_denied",
    )
    assert_error(
        _post(
            _as("acme-user"),
            "/api/v1/memberships/",
            {"customer": "other", "email": "z@a.example", "role": "viewer"},
        ),
        400,
        "invalid",
        "customer",
    )


@pytest.mark.parametrize(
    "username, url",
    [
        ("ops1", "/api/v1/supply-agreements/"),
        ("finance1", "/api/v1/payments/"),
        ("finance1", "/api/v1/credit-entries/"),
        ("am1", "/api/v1/memberships/"),
        ("acme-user", "/api/v1/payments/"),
    ],
)
def test_lists_take_a_constant_number_of_queries(demo, django_assert_max_num_queries, username, url):
    acme = Customer.objects.get(code="acme")
    for amount, balance in (("10.00", "10.00"), ("5.00", "15.00")):  # the demo has no credit movements
        CreditEntry.objects.create(
            customer=acme, kind="adjustment", amount=amount, balance_after=balance, created_at=demo
        )
    client = _as(username)
    with django_assert_max_num_queries(6):  # permissions (2), membership or count, the page
        rows = _all(client, url)
    assert rows
