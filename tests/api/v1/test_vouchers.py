"""``/api/v1/voucher-programmes/`` and ``/api/v1/vouchers/`` (docs/vouchers.md)."""

from __future__ import annotations

import datetime
import io
import zipfile
from decimal import Decimal

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext

from apps.accounts import roles
from apps.billing.invoicing.services.payments import payment_record
from apps.billing.models import Voucher, VoucherProgramme
from apps.billing.vouchers import services as svc
from tests.api.helpers import assert_error
from tests.factories.billing_flows import SH, issued_invoice
from tests.factories.catalogue import CustomerFactory, ServerFactory

pytestmark = pytest.mark.django_db

PROGRAMMES = "/api/v1/voucher-programmes/"
VOUCHERS = "/api/v1/vouchers/"
CD_2026 = {
    "code": "cd-2026",
    "issuer": "成都市经济和信息化局",
    "flow": "supplier_side",
    "coverage_percent": "30",
    "cap_per_customer_year": "2000000.00",
    "valid_from": "2026-01-01",
    "valid_to": "2026-12-31",
}


@pytest.fixture(autouse=True)
def frozen_clock():
    with time_machine.travel(datetime.datetime(2026, 11, 1, 10, tzinfo=SH), tick=False):
        yield


@pytest.fixture
def finance(client_as):
    return client_as(roles.FINANCE)


@pytest.fixture
def am(make_staff):
    return make_staff(roles.ACCOUNT_MANAGER, username="am1")


def test_finance_creates_a_programme_and_a_voucher_with_natural_keys(finance):
    CustomerFactory(code="acme")
    response = finance.post(PROGRAMMES, CD_2026, format="json")
    assert response.status_code == 201, response.content
    body = response.json()
    assert (
        body["code"],
        body["coverage_percent"],
        body["cap_per_customer_year"],
        body["cap_per_voucher"],
    ) == (
        "cd-2026",
        "30",
        "2000000.00",
        None,
    )
    assert (body["max_contract_term_days"], body["exclude_related_party_suppliers"]) == (366, True)
    assert VoucherProgramme.objects.get().history.get().history_user.username == "finance"  # audit trail

    response = finance.post(
        VOUCHERS, {"programme": "cd-2026", "customer": "acme", "amount": "50000.00"}, format="json"
    )
    assert response.status_code == 201, response.content
    voucher = response.json()
    assert voucher["number"].startswith("VCH-")
    assert (
        voucher["programme"],
        voucher["customer"],
        voucher["amount"],
        voucher["balance"],
        voucher["status"],
    ) == (
        "cd-2026",
        "acme",
        "50000.00",
        "50000.00",
        "active",
    )
    assert voucher["valid_to"] == "2026-12-31"
    assert [(e["kind"], e["amount"], e["balance_after"]) for e in voucher["ledger"]] == [
        ("issue", "50000.00", "50000.00")
    ]


def test_invalid_programmes_and_vouchers_name_the_field(finance):
    assert_error(
        finance.post(PROGRAMMES, {**CD_2026, "coverage_percent": "0"}, format="json"),
        400,
        "invalid",
        "coverage_percent",
    )
    assert_error(
        finance.post(PROGRAMMES, {**CD_2026, "valid_to": "2025-12-31"}, format="json"),
        400,
        "invalid",
        "valid_to",
    )
    assert_error(
        finance.post(PROGRAMMES, {**CD_2026, "flow": "magic"}, format="json"), 400, "invalid", "flow"
    )
    finance.post(PROGRAMMES, {**CD_2026, "cap_per_voucher": "1000.00"}, format="json")
    assert_error(finance.post(PROGRAMMES, CD_2026, format="json"), 400, "invalid", "code")
    CustomerFactory(code="acme")
    assert_error(
        finance.post(VOUCHERS, {"programme": "nope", "customer": "acme", "amount": "1.00"}, format="json"),
        400,
        "invalid",
        "programme",
    )
    body = assert_error(
        finance.post(
            VOUCHERS, {"programme": "cd-2026", "customer": "acme", "amount": "1000.01"}, format="json"
        ),
        400,
        "voucher_cap_exceeded",
        "amount",
    )
    assert "1,000.00" in body["message"]
    programme = VoucherProgramme.objects.get()
    response = finance.patch(f"{PROGRAMMES}{programme.pk}/", {"code": "other"}, format="json")
    assert_error(response, 400, "invalid", "code")
    response = finance.patch(f"{PROGRAMMES}{programme.pk}/", {"coverage_percent": "50"}, format="json")
    assert (response.status_code, response.json()["coverage_percent"]) == (200, "50")


def test_roles_and_portal_users(client_as, portal_client, am):
    customer, other = CustomerFactory(code="acme"), CustomerFactory(code="other")
    programme = svc.voucher_programme_create(
        code="cd-2026",
        issuer="x",
        flow="supplier_side",
        coverage_percent=Decimal(30),
        valid_from=datetime.date(2026, 1, 1),
        valid_to=datetime.date(2026, 12, 31),
    )
    now = datetime.datetime(2026, 11, 1, tzinfo=SH)
    mine = svc.voucher_issue(programme=programme, customer=customer, amount=Decimal("100.00"), now=now)
    theirs = svc.voucher_issue(programme=programme, customer=other, amount=Decimal("100.00"), now=now)
    manager = client_as(roles.ACCOUNT_MANAGER)
    assert manager.get(VOUCHERS).status_code == 200
    assert_error(manager.post(PROGRAMMES, CD_2026, format="json"), 403, "permission_denied")
    assert_error(client_as(roles.OPERATIONS).get(VOUCHERS), 403, "permission_denied")

    portal = portal_client(customer)
    assert [v["number"] for v in portal.get(VOUCHERS).json()["results"]] == [mine.number]
    assert portal.get(f"{VOUCHERS}{mine.pk}/").status_code == 200
    assert_error(portal.get(f"{VOUCHERS}{theirs.pk}/"), 404, "not_found")
    assert_error(portal.get(PROGRAMMES), 403, "permission_denied")
    assert_error(portal.post(f"{VOUCHERS}{mine.pk}/expire/"), 403, "permission_denied")


def test_the_voucher_list_is_paginated_filtered_and_free_of_n_plus_one(finance):
    programme = svc.voucher_programme_create(
        code="cd-2026",
        issuer="x",
        flow="supplier_side",
        coverage_percent=Decimal(30),
        valid_from=datetime.date(2026, 1, 1),
        valid_to=datetime.date(2026, 12, 31),
    )
    now = datetime.datetime(2026, 11, 1, tzinfo=SH)
    for _ in range(3):
        svc.voucher_issue(programme=programme, customer=CustomerFactory(), amount=Decimal("10.00"), now=now)
    finance.get(VOUCHERS)  # the user's permissions are cached after the first request
    with CaptureQueriesContext(connection) as few:
        finance.get(VOUCHERS)
    for _ in range(7):
        svc.voucher_issue(programme=programme, customer=CustomerFactory(), amount=Decimal("10.00"), now=now)
    with CaptureQueriesContext(connection) as many:
        response = finance.get(VOUCHERS)
    assert response.json()["count"] == 10
    assert len(many.captured_queries) == len(few.captured_queries) == 2  # count + page
    code = Voucher.objects.first().customer.code
    assert [v["customer"] for v in finance.get(VOUCHERS, {"customer": code}).json()["results"]] == [code]


def test_supplier_side_redemption_shows_on_the_invoice_ledger_and_report(finance, am):
    customer = CustomerFactory(code="acme")
    finance.post(PROGRAMMES, CD_2026, format="json")
    voucher = finance.post(
        VOUCHERS, {"programme": "cd-2026", "customer": "acme", "amount": "50000.00"}, format="json"
    ).json()
    invoice = issued_invoice(customer, am, ServerFactory())

    detail = finance.get(f"{VOUCHERS}{voucher['id']}/").json()
    assert detail["balance"] == "49700.00"
    assert [(e["kind"], e["amount"], e["invoice"]) for e in detail["ledger"]] == [
        ("issue", "50000.00", None),
        ("redeem", "-300.00", invoice.number),
    ]
    programme = VoucherProgramme.objects.get()
    report = finance.get(f"{PROGRAMMES}{programme.pk}/redemptions/", {"period": "2026-12"}).json()
    assert (report["programme"], report["date_from"], report["date_to"], report["total_amount"]) == (
        "cd-2026",
        "2026-12-01",
        "2026-12-31",
        "300.00",
    )
    assert report["customers"] == [
        {"customer": "acme", "name": customer.name, "tax_id": customer.tax_id, "count": 1, "amount": "300.00"}
    ]
    assert [(r["invoice"], r["base_amount"], r["amount"]) for r in report["redemptions"]] == [
        (invoice.number, "1000.00", "300.00")
    ]
    assert (
        finance.get(f"{PROGRAMMES}{programme.pk}/redemptions/", {"period": "2026-11"}).json()["total_amount"]
        == "0.00"
    )
    assert_error(
        finance.get(f"{PROGRAMMES}{programme.pk}/redemptions/", {"period": "2026-13"}),
        400,
        "invalid",
        "period",
    )
    assert_error(
        finance.get(f"{PROGRAMMES}{programme.pk}/redemptions/", {"date_from": "x"}),
        400,
        "invalid",
        "date_from",
    )


def test_the_customer_downloads_a_claim_pack_and_finance_records_the_claim(finance, am, portal_client):
    customer = CustomerFactory(code="acme")
    finance.post(PROGRAMMES, {**CD_2026, "code": "bj-2026", "flow": "customer_claim"}, format="json")
    voucher = finance.post(
        VOUCHERS, {"programme": "bj-2026", "customer": "acme", "amount": "50000.00"}, format="json"
    ).json()
    invoice = issued_invoice(customer, am, ServerFactory())
    assert invoice.amount_due == Decimal("1000.00")  # a full-amount fapiao
    payment_record(
        invoice=invoice,
        amount=Decimal("1000.00"),
        method="bank_transfer",
        now=datetime.datetime(2026, 12, 5, tzinfo=SH),
    )

    response = portal_client(customer).get(
        f"{VOUCHERS}{voucher['id']}/claim-pack/", {"invoices": str(invoice.pk)}
    )
    assert response.status_code == 200, response.content
    assert response["Content-Type"] == "application/zip"
    assert f"claim-pack-{voucher['number']}.zip" in response["Content-Disposition"]
    names = zipfile.ZipFile(io.BytesIO(response.content)).namelist()
    assert "claim-summary.pdf" in names and f"invoices/{invoice.number}.pdf" in names

    assert_error(
        finance.get(f"{VOUCHERS}{voucher['id']}/claim-pack/", {"invoices": "a,b"}), 400, "invalid", "invoices"
    )
    assert_error(
        finance.get(f"{VOUCHERS}{voucher['id']}/claim-pack/", {"invoices": "999999"}), 404, "not_found"
    )

    response = finance.post(f"{VOUCHERS}{voucher['id']}/claims/", {"invoices": [invoice.pk]}, format="json")
    assert response.status_code == 201, response.content
    assert [(e["kind"], e["amount"], e["invoice"]) for e in response.json()] == [
        ("redeem", "-300.00", invoice.number)
    ]
    assert_error(
        finance.post(f"{VOUCHERS}{voucher['id']}/claims/", {"invoices": [invoice.pk]}, format="json"),
        400,
        "nothing_claimable",
    )


def test_finance_expires_a_voucher(finance):
    CustomerFactory(code="acme")
    finance.post(PROGRAMMES, CD_2026, format="json")
    voucher = finance.post(
        VOUCHERS, {"programme": "cd-2026", "customer": "acme", "amount": "80.00"}, format="json"
    ).json()
    response = finance.post(f"{VOUCHERS}{voucher['id']}/expire/")
    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["status"], body["balance"], body["ledger"][-1]["kind"], body["ledger"][-1]["amount"]) == (
        "expired",
        "0.00",
        "expire",
        "-80.00",
    )
    assert_error(finance.post(f"{VOUCHERS}{voucher['id']}/expire/"), 409, "invalid_state")
