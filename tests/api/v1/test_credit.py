"""Payments through the API (docs/invoices.md#customer-credit): a bank transfer larger than the
amount due, and ``GET /customers/{id}/credit/`` for finance and for the customer themselves."""

from __future__ import annotations

import json

import pytest
import time_machine

from apps.accounts import roles
from apps.billing.invoicing.services.issuing import invoice_issue
from tests.api.helpers import assert_error
from tests.factories.catalogue import CustomerFactory
from tests.factories.invoices import ISSUED_AT, metered_invoice

pytestmark = pytest.mark.django_db


def post(client, url, body=None):
    return client.post(url, json.dumps(body or {}), content_type="application/json")


@pytest.fixture(autouse=True)
def clock():
    with time_machine.travel(ISSUED_AT, tick=False):
        yield


@pytest.fixture
def invoice(make_staff):
    draft = metered_invoice(make_staff(roles.ACCOUNT_MANAGER, username="am1"))  # 245.16
    return invoice_issue(invoice=draft, now=ISSUED_AT)


def test_an_overpaid_transfer_answers_with_the_payment_and_the_credit(client_as, invoice, portal_client):
    finance = client_as(roles.FINANCE)
    paid = post(
        finance, f"/api/v1/invoices/{invoice.pk}/payments/", {"amount": "300.00", "reference": "ICBC-9"}
    )
    assert paid.status_code == 201, paid.content
    body = paid.json()
    assert (body["method"], body["amount"], body["credit_amount"], body["credit_balance"]) == (
        "bank_transfer",
        "245.16",
        "54.84",
        "54.84",
    )
    again = post(
        finance, f"/api/v1/invoices/{invoice.pk}/payments/", {"amount": "10.00", "reference": "ICBC-10"}
    )
    assert (again.json()["id"], again.json()["credit_amount"], again.json()["credit_balance"]) == (
        None,
        "10.00",
        "64.84",
    )  # the invoice was paid: all of it is credit

    url = f"/api/v1/customers/{invoice.customer_id}/credit/"
    credit = finance.get(url).json()
    assert (credit["customer"], credit["currency"], credit["balance"]) == (
        invoice.customer.code,
        "CNY",
        "64.84",
    )
    assert [
        (e["kind"], e["amount"], e["invoice"], e["reference"], e["created_by"]) for e in credit["entries"]
    ] == [
        ("overpayment", "10.00", invoice.number, "ICBC-10", "finance"),
        ("overpayment", "54.84", invoice.number, "ICBC-9", "finance"),
    ]

    own = portal_client(invoice.customer).get(url)
    assert own.status_code == 200 and own.json()["balance"] == "64.84"
    assert_error(portal_client(None, username="stranger").get(url), 403, "permission_denied")
    other = CustomerFactory()
    foreign = portal_client(invoice.customer, username="p2").get(f"/api/v1/customers/{other.pk}/credit/")
    assert_error(foreign, 404, "not_found")
    assert_error(client_as(roles.OPERATIONS).get(url), 403, "permission_denied")


def test_a_transfer_on_a_draft_is_refused(client_as, make_staff):
    draft = metered_invoice(make_staff(roles.ACCOUNT_MANAGER, username="am1"))
    response = post(
        client_as(roles.FINANCE),
        f"/api/v1/invoices/{draft.pk}/payments/",
        {"amount": "1.00", "reference": "x"},
    )
    assert_error(response, 409, "invalid_state")
