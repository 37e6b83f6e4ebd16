"""``/api/v1/invoices/``, ``/credit-notes/``, ``/customers/{id}/upcoming-invoice/`` (docs/invoices.md).

The first test is the whole cycle through the API: contracts and usage in, a billing run, the
invoices of the docs/rating.md#worked-examples out, issue, PDF, credit note.
"""

from __future__ import annotations

import datetime
import json
from decimal import Decimal

import orjson
import pytest
import time_machine
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from apps.accounts import roles
from apps.billing.invoicing.services.issuing import credit_note_create, invoice_issue
from apps.billing.models import BillingRun, CreditNote, Invoice, InvoiceLine, Payment
from apps.core.models import NumberSeries
from tests.api.helpers import assert_error
from tests.factories.catalogue import CustomerFactory, ServerFactory, gpu_model
from tests.factories.contracts import p_line, server_line
from tests.factories.invoices import ISSUED_AT, SH, active, bill, metered_customer, metered_invoice, pdf_text
from tests.factories.metering import partner_key

pytestmark = pytest.mark.django_db

A100_40, A100_80 = "A100-SXM4-40GB", "A100-SXM4-80GB"
INVOICE_KEYS = {
    "id",
    "number",
    "customer",
    "status",
    "overdue",
    "period",
    "currency",
    "prices_include_tax",
    "net_amount",
    "tax_amount",
    "total_amount",
    "voucher_amount",
    "credited_amount",
    "paid_amount",
    "amount_due",
    "issued_on",
    "due_on",
    "issued_at",
    "paid_at",
    "voided_at",
    "void_reason",
    "early_issue_reason",
    "reconciliation_status",
    "reconciliation_decision",
    "lines",
}
LINE_KEYS = {
    "position",
    "kind",
    "contract",
    "contract_line",
    "description",
    "tax_classification",
    "quantity",
    "unit",
    "list_unit_price",
    "unit_price",
    "discount_amount",
    "amount",
    "tax_rate",
    "tax_amount",
    "net_amount",
    "gross_amount",
    "service_start_at",
    "service_end_at",
}


def post(client, url, body=None, **extra):
    return client.post(url, json.dumps(body or {}), content_type="application/json", **extra)


@pytest.fixture(autouse=True)
def clock():
    with time_machine.travel(ISSUED_AT, tick=False):
        yield


@pytest.fixture
def am(make_staff):
    return make_staff(roles.ACCOUNT_MANAGER, username="am1")


@pytest.fixture
def finance(client_as):
    return client_as(roles.FINANCE)


# -- the cycle through the API -------------------------------------------------------------------


def _contract(am_client, body) -> dict:
    created = post(am_client, "/api/v1/contracts/", body)
    assert created.status_code == 201, created.content
    activated = post(am_client, f"/api/v1/contracts/{created.json()['id']}/activate/")
    assert activated.status_code == 200, activated.content
    return activated.json()


def test_contracts_usage_run_invoices_issue_pdf_and_credit_note_through_the_api(
    client_as, finance, django_capture_on_commit_callbacks
):
    cards = ServerFactory(serial="SRV-BJ-0001", gpu_model=gpu_model(A100_40))
    for serial in ("SRV-BJ-0002", "SRV-BJ-0003", "SRV-BJ-0004"):
        ServerFactory(serial=serial, gpu_model=gpu_model(A100_80))
    CustomerFactory(code="acme", name="北京智算科技有限公司")
    CustomerFactory(code="bigco", name="上海深算人工智能有限公司")
    am_client = client_as(roles.ACCOUNT_MANAGER)
    uuid0, uuid1 = cards.cards.order_by("slot").values_list("uuid", flat=True)[:2]
    with time_machine.travel(datetime.datetime(2026, 10, 25, 10, tzinfo=SH), tick=False):
        metered = _contract(
            am_client,
            {
                "customer": "acme",
                "currency": "CNY",
                "prices_include_tax": True,
                "start": "2026-11-01T00:00:00+08:00",
                "lines": [
                    {
                        "resource": "card",
                        "gpu_model": A100_40,
                        "quantity": "2",
                        "term": "hourly",
                        "list_unit_price": "22.70",
                        "discount_percent": "10",
                        "allocations": [{"card": uuid0}, {"card": uuid1}],
                    }
                ],
            },
        )
        _contract(
            am_client,
            {
                "customer": "bigco",
                "start": "2026-11-01T00:00:00+08:00",
                "lines": [
                    {
                        "resource": "server",
                        "gpu_model": A100_80,
                        "quantity": "1",
                        "term": "monthly",
                        "list_unit_price": "144000.00",
                        "term_discount_percent": "15",
                        "allocations": [{"server": "SRV-BJ-0002"}],
                    },
                    {
                        "resource": "p_unit",
                        "gpu_model": A100_80,
                        "quantity": "2.5",
                        "term": "yearly",
                        "list_unit_price": "200000.00",
                        "term_discount_percent": "15",
                        "yearly_billing": "monthly_instalments",
                        "allocations": [{"server": "SRV-BJ-0003"}, {"server": "SRV-BJ-0004"}],
                    },
                ],
            },
        )

    # the partner's metering agent reports 8 h and 4 h
    _, key = partner_key(cards.provider)
    records = [
        {
            "event_id": "e1",
            "card": uuid0,
            "start": "2026-11-03T08:00:00+08:00",
            "end": "2026-11-03T16:00:00+08:00",
        },
        {
            "event_id": "e2",
            "card": uuid1,
            "start": "2026-11-04T08:00:00+08:00",
            "end": "2026-11-04T12:00:00+08:00",
        },
    ]
    with time_machine.travel(datetime.datetime(2026, 11, 5, 10, tzinfo=SH), tick=False):
        pushed = Client().post(
            "/api/v1/usage/",
            orjson.dumps(records),
            content_type="application/json",
            HTTP_AUTHORIZATION=f"Api-Key {key}",
        )
    assert pushed.status_code == 201, pushed.content

    # finance runs November's billing on 1 December
    with time_machine.travel(datetime.datetime(2026, 12, 1, 3, tzinfo=SH), tick=False):
        with django_capture_on_commit_callbacks(execute=True):
            started = post(finance, "/api/v1/billing-runs/", {"period": "2026-11"})
        assert started.status_code in (201, 202), started.content
        run = finance.get(f"/api/v1/billing-runs/{started.json()['id']}/").json()
    assert (run["status"], run["progress_percent"], run["customers_done"], run["invoices_created"]) == (
        "done",
        100,
        2,
        2,
    )

    listed = finance.get("/api/v1/invoices/", {"customer": "acme", "period": "2026-11"}).json()
    (acme,) = listed["results"]
    assert set(acme) == INVOICE_KEYS
    assert (acme["number"], acme["status"], acme["overdue"], acme["period"], acme["currency"]) == (
        None,
        "draft",
        False,
        "2026-11",
        "CNY",
    )
    assert (acme["total_amount"], acme["tax_amount"], acme["net_amount"]) == ("245.16", "13.88", "231.28")
    assert (acme["voucher_amount"], acme["amount_due"]) == ("0.00", "245.16")
    (line,) = acme["lines"]
    assert set(line) == LINE_KEYS
    assert (line["kind"], line["contract"], line["quantity"], line["unit"], line["unit_price"]) == (
        "usage",
        metered["number"],
        "12",
        "card_hour",
        "20.43",
    )
    assert (line["amount"], line["tax_rate"], line["tax_amount"], line["net_amount"]) == (
        "245.16",
        "0.06",
        "13.88",
        "231.28",
    )
    assert line["discount_amount"] == "27.24"  # 12 × 22.70 − 245.16

    (bigco,) = finance.get("/api/v1/invoices/", {"customer": "bigco"}).json()["results"]
    amounts = {line["unit"]: (line["amount"], line["tax_rate"]) for line in bigco["lines"]}
    assert amounts == {"server_month": ("122400.00", "0.13"), "p_month": ("35416.67", "0.06")}
    assert bigco["total_amount"] == "157816.67"

    # issue, PDF, credit note
    issued = post(finance, f"/api/v1/invoices/{acme['id']}/issue/")
    assert issued.status_code == 200, issued.content
    assert (issued.json()["number"], issued.json()["status"], issued.json()["due_on"]) == (
        "INV-2026-000001",
        "issued",
        "2027-01-01",
    )
    pdf = finance.get(f"/api/v1/invoices/{acme['id']}/pdf/")
    assert pdf.status_code == 200 and pdf["Content-Type"] == "application/pdf"
    text = pdf_text(pdf.content)
    assert "贰佰肆拾伍元壹角陆分" in text and "北京智算科技有限公司" in text and "INV-2026-000001" in text
    note = post(
        finance, "/api/v1/credit-notes/", {"invoice": acme["id"], "reason": "4 h outage", "amount": "45.16"}
    )
    assert note.status_code == 201, note.content
    assert (note.json()["number"], note.json()["total_amount"], note.json()["invoice_number"]) == (
        "CN-2026-000001",
        "45.16",
        "INV-2026-000001",
    )
    after = finance.get(f"/api/v1/invoices/{acme['id']}/").json()
    assert (after["credited_amount"], after["amount_due"], after["total_amount"]) == (
        "45.16",
        "200.00",
        "245.16",
    )


def test_auto_issue_customers_are_issued_by_the_run(am, finance, django_capture_on_commit_callbacks):
    metered_customer(am, code="auto", auto_issue=True)
    metered_customer(am, code="manual")
    with time_machine.travel(datetime.datetime(2026, 12, 1, 3, tzinfo=SH), tick=False):
        with django_capture_on_commit_callbacks(execute=True):
            post(finance, "/api/v1/billing-runs/", {"period": "2026-11"})
    results = finance.get("/api/v1/invoices/", {"period": "2026-11", "ordering": "number"}).json()["results"]
    by_customer = {r["customer"]: (r["status"], r["number"], r["issued_on"]) for r in results}
    assert by_customer == {
        "auto": ("issued", "INV-2026-000001", "2026-12-01"),
        "manual": ("draft", None, None),
    }


# -- reads: shape, filters, query counts ---------------------------------------------------------


def test_filters_by_customer_period_status_overdue_and_number(am, finance):
    old = invoice_issue(
        invoice=metered_invoice(am, code="old"),
        now=ISSUED_AT - datetime.timedelta(days=45),
        early_reason="issued before November ended, to be overdue now",
    )
    metered_invoice(am, code="new")

    def codes(**params):
        response = finance.get("/api/v1/invoices/", params)
        assert response.status_code == 200, response.content
        return sorted(r["customer"] for r in response.json()["results"])

    assert codes() == ["new", "old"]
    assert codes(customer="old") == ["old"]
    assert codes(status="draft") == ["new"]
    assert codes(overdue="true") == ["old"] and codes(overdue="false") == ["new"]
    assert codes(number=old.number) == ["old"]
    assert codes(period="2026-10") == []
    assert codes(search="new") == ["new"]
    assert finance.get(f"/api/v1/invoices/{old.pk}/").json()["overdue"] is True
    assert_error(finance.get("/api/v1/invoices/", {"status": "bogus"}), 400, "invalid", "status")


def test_list_queries_do_not_grow_with_invoices_or_lines(am, finance):
    def customers(count, prefix):
        for index in range(count):
            customer = CustomerFactory(code=f"{prefix}{index:02d}")
            a80 = gpu_model(A100_80)
            active(
                customer,
                am,
                [server_line(ServerFactory(gpu_model=a80)), p_line(ServerFactory(gpu_model=a80))],
            )

    customers(2, "a")
    bill()
    finance.get("/api/v1/invoices/")  # the user's permissions are cached from here on
    with CaptureQueriesContext(connection) as small:
        assert len(finance.get("/api/v1/invoices/").json()["results"]) == 2
    customers(18, "b")
    bill()
    with CaptureQueriesContext(connection) as large:
        body = finance.get("/api/v1/invoices/").json()
    assert len(body["results"]) == 20 and all(len(r["lines"]) == 2 for r in body["results"])
    assert len(large.captured_queries) == len(small.captured_queries)


def test_lists_are_paginated(am, finance):
    metered_invoice(am)
    body = finance.get("/api/v1/invoices/").json()
    assert set(body) == {"count", "next", "previous", "results"} and body["count"] == 1


# -- state changes --------------------------------------------------------------------------------


def test_issue_twice_void_and_errors(am, finance):
    invoice = metered_invoice(am)
    assert post(finance, f"/api/v1/invoices/{invoice.pk}/issue/").status_code == 200
    assert_error(post(finance, f"/api/v1/invoices/{invoice.pk}/issue/"), 409, "invalid_state")
    assert_error(post(finance, f"/api/v1/invoices/{invoice.pk}/void/", {}), 400, "invalid", "reason")
    voided = post(finance, f"/api/v1/invoices/{invoice.pk}/void/", {"reason": "wrong buyer"})
    assert voided.status_code == 200, voided.content
    assert (voided.json()["status"], voided.json()["void_reason"], voided.json()["number"]) == (
        "void",
        "wrong buyer",
        "INV-2026-000001",
    )
    assert_error(post(finance, "/api/v1/invoices/999999/issue/"), 404, "not_found")
    assert_error(finance.get("/api/v1/invoices/abc/"), 404, "not_found")


def test_issuing_before_the_period_ends_needs_early_reason(am, finance):
    invoice = metered_invoice(am)
    url = f"/api/v1/invoices/{invoice.pk}/issue/"
    with time_machine.travel(datetime.datetime(2026, 11, 30, 23, 0, tzinfo=SH), tick=False):
        body = assert_error(post(finance, url), 409, "period_not_ended", "early_reason")
        assert body["message"] == "The period 2026-11 has not ended: issuing early needs a reason."
        assert_error(post(finance, url, {"early_reason": 5}), 400, "invalid", "early_reason")
        assert Invoice.objects.get().status == "draft"
        issued = post(finance, url, {"early_reason": "year-end audit"})
    assert issued.status_code == 200, issued.content
    data = issued.json()
    assert (data["status"], data["number"], data["early_issue_reason"]) == (
        "issued",
        "INV-2026-000001",
        "year-end audit",
    )


def test_bank_transfer_payments(am, finance):
    invoice = metered_invoice(am)
    url = f"/api/v1/invoices/{invoice.pk}/payments/"
    assert_error(post(finance, url, {"amount": "10.00", "reference": "B0"}), 409, "invalid_state")  # a draft
    invoice_issue(invoice=invoice, now=ISSUED_AT)
    paid = post(
        finance, url, {"amount": "245.16", "reference": "ICBC-1", "received_at": "2026-12-03T09:30:00+08:00"}
    )
    assert paid.status_code == 201, paid.content
    assert (
        paid.json()["method"],
        paid.json()["amount"],
        paid.json()["reference"],
        paid.json()["recorded_by"],
    ) == (
        "bank_transfer",
        "245.16",
        "ICBC-1",
        "finance",
    )
    body = finance.get(f"/api/v1/invoices/{invoice.pk}/").json()
    assert (body["status"], body["paid_amount"], body["amount_due"]) == ("paid", "245.16", "0.00")
    assert body["paid_at"] == "2026-12-03T09:30:00+08:00"
    assert_error(post(finance, url, {"amount": "0", "reference": "x"}), 400, "invalid", "amount")
    assert_error(post(finance, url, {"amount": 12.5, "reference": 7}), 400, "invalid", "reference")


def test_credit_notes_full_partial_and_too_much(am, finance):
    invoice = invoice_issue(invoice=metered_invoice(am), now=ISSUED_AT)
    too_much = post(
        finance, "/api/v1/credit-notes/", {"invoice": invoice.pk, "reason": "x", "amount": "245.17"}
    )
    assert_error(too_much, 400, "credit_exceeds_invoice", "amount")
    assert_error(post(finance, "/api/v1/credit-notes/", {"invoice": invoice.pk}), 400, "invalid", "reason")
    assert_error(post(finance, "/api/v1/credit-notes/", {"invoice": 999999, "reason": "x"}), 404, "not_found")
    full = post(finance, "/api/v1/credit-notes/", {"invoice": invoice.pk, "reason": "cancelled"})
    assert full.status_code == 201, full.content
    body = full.json()
    assert (body["total_amount"], body["tax_amount"], body["net_amount"], len(body["lines"])) == (
        "245.16",
        "13.88",
        "231.28",
        1,
    )
    assert finance.get(f"/api/v1/invoices/{invoice.pk}/").json()["amount_due"] == "0.00"
    listed = finance.get("/api/v1/credit-notes/", {"invoice": invoice.pk}).json()
    assert [n["number"] for n in listed["results"]] == ["CN-2026-000001"]
    pdf = finance.get(f"/api/v1/credit-notes/{body['id']}/pdf/", HTTP_ACCEPT="application/pdf")
    assert pdf.status_code == 200 and "负贰佰肆拾伍元壹角陆分" in pdf_text(pdf.content)


# -- who may do what ------------------------------------------------------------------------------


def test_a_customer_sees_only_its_own_invoices_and_credit_notes(am, portal_client):
    own = invoice_issue(invoice=metered_invoice(am, code="own"), now=ISSUED_AT)
    other = invoice_issue(invoice=metered_invoice(am, code="other"), now=ISSUED_AT)
    own_note = credit_note_create(invoice=own, reason="x", amount=Decimal("1.00"), now=ISSUED_AT)
    other_note = credit_note_create(invoice=other, reason="y", amount=Decimal("1.00"), now=ISSUED_AT)
    client = portal_client(own.customer)

    assert [r["id"] for r in client.get("/api/v1/invoices/").json()["results"]] == [own.pk]
    assert client.get(f"/api/v1/invoices/{own.pk}/").status_code == 200
    assert_error(client.get(f"/api/v1/invoices/{other.pk}/"), 404, "not_found")
    assert_error(client.get(f"/api/v1/invoices/{other.pk}/pdf/"), 404, "not_found")
    pdf = client.get(f"/api/v1/invoices/{own.pk}/pdf/")
    assert pdf.status_code == 200 and own.number in pdf_text(pdf.content)
    assert [n["id"] for n in client.get("/api/v1/credit-notes/").json()["results"]] == [own_note.pk]
    assert_error(client.get(f"/api/v1/credit-notes/{other_note.pk}/"), 404, "not_found")
    assert client.get(f"/api/v1/credit-notes/{own_note.pk}/pdf/").status_code == 200

    # and changes nothing
    assert_error(post(client, f"/api/v1/invoices/{own.pk}/void/", {"reason": "x"}), 403, "permission_denied")
    assert_error(
        post(client, f"/api/v1/invoices/{own.pk}/payments/", {"amount": "1", "reference": "x"}),
        403,
        "permission_denied",
    )
    assert_error(
        post(client, "/api/v1/credit-notes/", {"invoice": own.pk, "reason": "x"}), 403, "permission_denied"
    )
    assert_error(post(client, "/api/v1/billing-runs/", {"period": "2026-11"}), 403, "permission_denied")
    assert_error(client.get("/api/v1/billing-runs/"), 403, "permission_denied")
    draft = metered_invoice(am, code="own-draft")
    assert_error(
        post(portal_client(draft.customer, username="p2"), f"/api/v1/invoices/{draft.pk}/issue/"),
        403,
        "permission_denied",
    )
    assert (CreditNote.objects.count(), Payment.objects.count(), BillingRun.objects.count()) == (2, 0, 3)
    assert Invoice.objects.get(pk=draft.pk).status == "draft"


def test_staff_need_the_model_permissions(am, client_as, portal_client, api_client):
    invoice = metered_invoice(am)
    operations = client_as(roles.OPERATIONS)
    assert_error(operations.get("/api/v1/invoices/"), 403, "permission_denied")
    assert_error(operations.get(f"/api/v1/invoices/{invoice.pk}/pdf/"), 403, "permission_denied")
    account_manager = client_as(roles.ACCOUNT_MANAGER, roles.SALES_MANAGER)
    assert_error(post(account_manager, f"/api/v1/invoices/{invoice.pk}/issue/"), 403, "permission_denied")
    assert_error(portal_client(None, username="nobody").get("/api/v1/invoices/"), 403, "permission_denied")
    assert api_client.get("/api/v1/invoices/").status_code == 401
    assert Invoice.objects.get(pk=invoice.pk).status == "draft"


# -- upcoming invoice -----------------------------------------------------------------------------


def test_upcoming_invoice_previews_the_running_month_and_saves_nothing(am, finance, portal_client):
    customer, contract = metered_customer(am, code="acme")
    other, _ = metered_customer(am, code="other")

    def counts():
        return (
            Invoice.objects.count(),
            InvoiceLine.objects.count(),
            BillingRun.objects.count(),
            NumberSeries.objects.filter(prefix="INV").count(),
        )

    before = counts()
    with time_machine.travel(datetime.datetime(2026, 11, 30, 23, tzinfo=SH), tick=False):
        response = finance.get(f"/api/v1/customers/{customer.pk}/upcoming-invoice/")
        assert response.status_code == 200, response.content
        body = response.json()
        own = portal_client(customer).get(f"/api/v1/customers/{customer.pk}/upcoming-invoice/")
        foreign = portal_client(customer, username="p2").get(
            f"/api/v1/customers/{other.pk}/upcoming-invoice/"
        )
    assert counts() == before == (0, 0, 0, 0)
    assert (body["customer"], body["period"]) == ("acme", "2026-11")
    (upcoming,) = body["invoices"]
    assert (
        upcoming["currency"],
        upcoming["total_amount"],
        upcoming["tax_amount"],
        upcoming["net_amount"],
    ) == (
        "CNY",
        "245.16",
        "13.88",
        "231.28",
    )
    (line,) = upcoming["lines"]
    assert (line["kind"], line["contract"], line["quantity"], line["amount"]) == (
        "usage",
        contract.number,
        "12",
        "245.16",
    )
    assert own.status_code == 200 and own.json() == body
    assert_error(foreign, 404, "not_found")
    assert_error(finance.get("/api/v1/customers/999999/upcoming-invoice/"), 404, "not_found")
