"""``/api/v1/settlements/`` (docs/settlements.md): staff read statements, finance builds, confirms
and pays."""

from __future__ import annotations

import datetime
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from apps.accounts import roles
from apps.providers.models import SupplyAgreement
from tests.api.helpers import assert_error
from tests.factories.billing_flows import issued_invoice
from tests.factories.catalogue import CustomerFactory, ProviderFactory, ServerFactory, SiteFactory, gpu_model

pytestmark = pytest.mark.django_db

URL = "/api/v1/settlements/"


@pytest.fixture
def finance(client_as):
    return client_as(roles.FINANCE)


@pytest.fixture
def am(make_staff):
    return make_staff(roles.ACCOUNT_MANAGER, username="am1")


def invoiced_provider(am, code: str, *, cost="6.00"):
    """A provider whose card served 100 card-hours billed at 10.00 (1,000.00 incl. 6 % VAT)."""
    provider = ProviderFactory(code=code)
    server = ServerFactory(site=SiteFactory(provider=provider))
    SupplyAgreement.objects.create(
        provider=provider,
        gpu_model=gpu_model("A100-SXM4-40GB"),
        resource="card",
        term="hourly",
        cost_unit_price=Decimal(cost),
        valid_from=datetime.date(2026, 1, 1),
    )
    issued_invoice(CustomerFactory(), am, server)
    return provider


def test_finance_builds_reads_confirms_and_pays_a_statement(finance, am):
    invoiced_provider(am, "prov-a")

    response = finance.post(f"{URL}build/", {"period": "2026-11"}, format="json")
    assert response.status_code == 200, response.content
    result = response.json()
    assert (result["created"], result["warnings"], len(result["statements"])) == (1, [], 1)
    again = finance.post(f"{URL}build/", {"period": "2026-11"}, format="json").json()
    assert (again["created"], again["unchanged"]) == (0, 1)

    listing = finance.get(URL, {"provider": "prov-a", "period": "2026-11"}).json()
    (statement,) = listing["results"]
    assert (
        statement["status"],
        statement["cost_amount"],
        statement["revenue_net_amount"],
        statement["margin_amount"],
    ) == (
        "draft",
        "600.00",
        "943.40",
        "343.40",
    )
    assert "lines" not in statement
    detail = finance.get(f"{URL}{statement['id']}/").json()
    (line,) = detail["lines"]
    assert (line["kind"], line["quantity"], line["unit"], line["cost_unit_price"], line["cost_amount"]) == (
        "usage",
        "100",
        "card_hour",
        "6.00",
        "600.00",
    )
    assert line["invoice"].startswith("INV-2026-") and line["gpu_model"] == "A100-SXM4-40GB"

    confirmed = finance.post(f"{URL}{statement['id']}/confirm/").json()
    assert (confirmed["status"], confirmed["confirmed_by"]) == ("confirmed", "finance")
    assert_error(finance.post(f"{URL}{statement['id']}/confirm/"), 409, "invalid_state")
    paid = finance.post(f"{URL}{statement['id']}/pay/", {"reference": "ICBC-0001"}, format="json").json()
    assert (paid["status"], paid["payment_reference"]) == ("paid", "ICBC-0001")


def test_margins_by_provider(finance, am):
    invoiced_provider(am, "prov-a")
    invoiced_provider(am, "prov-b", cost="12.00")
    finance.post(f"{URL}build/", {"period": "2026-11"}, format="json")
    body = finance.get(f"{URL}margins/", {"period": "2026-11", "group_by": "provider"}).json()
    assert [(r["key"], r["cost_amount"], r["margin_amount"]) for r in body["rows"]] == [
        ("prov-a", "600.00", "343.40"),
        ("prov-b", "1200.00", "-256.60"),
    ]
    assert body["totals"] == {"CNY": {"revenue": "1886.80", "cost": "1800.00", "margin": "86.80"}}
    assert_error(
        finance.get(f"{URL}margins/", {"period": "2026-11", "group_by": "x"}), 400, "invalid", "group_by"
    )
    assert_error(
        finance.get(f"{URL}margins/", {"period": "2026-11", "provider": "nope"}), 400, "invalid", "provider"
    )
    assert_error(finance.get(f"{URL}margins/"), 400, "invalid", "period")


def test_permissions_and_bad_input(client_as, finance, am):
    provider = invoiced_provider(am, "prov-a")
    finance.post(f"{URL}build/", {"period": "2026-11"}, format="json")
    statement_id = finance.get(URL).json()["results"][0]["id"]
    operations = client_as(roles.OPERATIONS)
    assert operations.get(URL).status_code == 200
    assert_error(operations.post(f"{URL}{statement_id}/confirm/"), 403, "permission_denied")
    assert_error(client_as(roles.ACCOUNT_MANAGER).get(URL), 403, "permission_denied")
    assert_error(finance.post(f"{URL}build/", {"period": "2026-13"}, format="json"), 400, "invalid", "period")
    assert_error(
        finance.post(f"{URL}build/", {"period": "2026-11", "provider": "nope"}, format="json"),
        400,
        "invalid",
        "provider",
    )
    assert (
        finance.post(
            f"{URL}build/", {"period": "2026-11", "provider": provider.code}, format="json"
        ).status_code
        == 200
    )
    assert_error(finance.get(f"{URL}999999/"), 404, "not_found")


def test_the_list_does_not_grow_queries_with_statements(finance, am):
    invoiced_provider(am, "prov-a")
    finance.post(f"{URL}build/", {"period": "2026-11"}, format="json")
    finance.get(URL)
    with CaptureQueriesContext(connection) as few:
        finance.get(URL)
    invoiced_provider(am, "prov-b")
    invoiced_provider(am, "prov-c")
    finance.post(f"{URL}build/", {"period": "2026-11"}, format="json")
    with CaptureQueriesContext(connection) as many:
        body = finance.get(URL).json()
    assert body["count"] == 3
    assert len(many.captured_queries) == len(few.captured_queries) == 2
    statement_id = body["results"][0]["id"]
    with CaptureQueriesContext(connection) as detail:
        finance.get(f"{URL}{statement_id}/")
    assert len(detail.captured_queries) == 2  # the statement, its lines with their relations
