"""``/api/v1/billing-runs/``: start a run of a period, watch its progress (docs/invoices.md#billing-runs)."""

from __future__ import annotations

import datetime
import json

import pytest
import time_machine

from apps.accounts import roles
from apps.billing.models import BillingRun, Invoice
from tests.api.helpers import assert_error
from tests.factories.catalogue import CustomerFactory, ServerFactory
from tests.factories.contracts import server_line
from tests.factories.invoices import SH, active

RUN_KEYS = {
    "id",
    "period",
    "customer",
    "status",
    "progress_percent",
    "customers_total",
    "customers_done",
    "invoices_created",
    "invoices_refreshed",
    "invoices_unchanged",
    "errors",
    "as_of",
    "requested_by",
    "created_at",
    "started_at",
    "finished_at",
}
DEC_1 = datetime.datetime(2026, 12, 1, 3, tzinfo=SH)


@pytest.fixture(autouse=True)
def clock():
    with time_machine.travel(DEC_1, tick=False):
        yield


def post(client, body):
    return client.post("/api/v1/billing-runs/", json.dumps(body), content_type="application/json")


def _customers(am, *codes):
    for code in codes:
        active(
            CustomerFactory(code=code),
            am,
            [server_line(ServerFactory(), price="30000.00", term_discount="0")],
        )


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_with_an_eager_worker_the_run_has_finished_when_the_answer_comes(make_staff, client_as):
    _customers(make_staff(roles.ACCOUNT_MANAGER, username="am1"), "acme", "beta")
    finance = client_as(roles.FINANCE)
    response = post(finance, {"period": "2026-11"})
    assert response.status_code == 201, response.content
    body = response.json()
    assert set(body) == RUN_KEYS
    assert (body["status"], body["progress_percent"], body["customers_total"], body["customers_done"]) == (
        "done",
        100,
        2,
        2,
    )
    assert (body["invoices_created"], body["errors"], body["requested_by"], body["customer"]) == (
        2,
        {},
        "finance",
        None,
    )
    assert body["as_of"] == "2026-12-01T03:00:00+08:00"
    assert Invoice.objects.count() == 2


@pytest.mark.django_db
def test_a_queued_run_answers_202_and_its_progress_can_be_watched(
    make_staff, client_as, django_capture_on_commit_callbacks
):
    _customers(make_staff(roles.ACCOUNT_MANAGER, username="am1"), "acme", "beta")
    finance = client_as(roles.FINANCE)
    with django_capture_on_commit_callbacks(execute=False) as queued:
        response = post(finance, {"period": "2026-11", "customer": "acme"})
    assert response.status_code == 202, response.content
    body = response.json()
    assert (body["status"], body["progress_percent"], body["customer"]) == ("queued", 0, "acme")
    assert len(queued) == 1 and Invoice.objects.count() == 0  # queued after commit, not yet run
    with django_capture_on_commit_callbacks(execute=True):
        queued[0]()  # the worker picks it up
    run = finance.get(f"/api/v1/billing-runs/{body['id']}/").json()
    assert (run["status"], run["customers_done"], run["customers_total"], run["invoices_created"]) == (
        "done",
        1,
        1,
        1,
    )
    assert list(Invoice.objects.values_list("customer__code", flat=True)) == ["acme"]


@pytest.mark.django_db
def test_list_filters_and_errors_per_customer(client_as):
    BillingRun.objects.create(period="2026-10", status="done", as_of=DEC_1)
    BillingRun.objects.create(
        period="2026-11", status="done_with_errors", as_of=DEC_1, errors={"bad": "ValueError: broken data"}
    )
    finance = client_as(roles.FINANCE)
    body = finance.get("/api/v1/billing-runs/", {"period": "2026-11"}).json()
    assert [(r["period"], r["status"], r["errors"]) for r in body["results"]] == [
        ("2026-11", "done_with_errors", {"bad": "ValueError: broken data"})
    ]
    assert finance.get("/api/v1/billing-runs/", {"status": "done"}).json()["count"] == 1
    assert_error(finance.get("/api/v1/billing-runs/999999/"), 404, "not_found")


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        ({"period": "2026-13"}, "period", "YYYY-MM"),
        ({"period": "2027-01"}, "period", "has not started yet"),
        ({}, "period", "required"),
        ({"period": 202611}, "period", "valid string"),
        ({"period": "2026-11", "customer": "nope"}, "customer", "Unknown customer 'nope'"),
    ],
)
def test_bad_input_answers_400_naming_the_field(client_as, body, field, message):
    response = post(client_as(roles.FINANCE), body)
    error = assert_error(response, 400, "invalid", field)
    assert message in json.dumps(error, ensure_ascii=False)
    assert BillingRun.objects.count() == 0


@pytest.mark.django_db
def test_only_staff_with_the_permission_run_billing(client_as, portal_client, api_client):
    customer = CustomerFactory()
    assert_error(post(client_as(roles.ACCOUNT_MANAGER), {"period": "2026-11"}), 403, "permission_denied")
    assert_error(client_as(roles.OPERATIONS).get("/api/v1/billing-runs/"), 403, "permission_denied")
    assert_error(post(portal_client(customer), {"period": "2026-11"}), 403, "permission_denied")
    assert post(api_client, {"period": "2026-11"}).status_code == 401
    assert BillingRun.objects.count() == 0
