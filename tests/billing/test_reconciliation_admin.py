"""The invoice admin's reconciliation: the per-card table, the one-click decisions, who may click,
and a page whose query count does not grow with the cards (docs/hardware-truth.md#reconciliation)."""

from __future__ import annotations

import datetime
from decimal import Decimal

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from apps.accounts import roles
from apps.billing.models import Invoice, SettlementStatement
from tests.billing.test_reconciliation import observe
from tests.factories.billing_flows import at, bill, card_contract, use
from tests.factories.catalogue import CustomerFactory, ServerFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def am(make_staff):
    return make_staff(roles.ACCOUNT_MANAGER, username="am1")


@pytest.fixture
def finance_client(client, make_staff):
    client.force_login(make_staff(roles.FINANCE, username="finance1"))
    return client


def flagged_draft(am, *, cards: int = 1) -> Invoice:
    """Each card: 110 h reported, 100 h observed (10 % over-reported)."""
    customer = CustomerFactory(auto_issue=False)
    server = ServerFactory()
    card_contract(customer, am, server, price="10.00", cards=cards)
    for slot in range(cards):
        use(server, 110, slot=slot)
        observe(server, at(2), at(2) + datetime.timedelta(hours=100), slot=slot)
    return bill(customer)


def page(client, invoice: Invoice):
    return client.get(reverse("admin:billing_invoice_change", args=[invoice.pk]))


def test_finance_sees_the_discrepancy_per_card_and_bills_the_observed_hours(am, finance_client):
    invoice = flagged_draft(am)
    response = page(finance_client, invoice)
    assert response.status_code == 200
    html = response.content.decode()
    assert "Reconciliation per card 逐卡核对" in html
    serial = invoice.lines.get().contract_line.allocations.get().card.server.serial
    assert f"{serial} #0" in html
    for figure in ("110.000000", "100.000000", "10.000000", "1.100000"):
        assert figure in html
    for button in ("Bill as reported 按上报计费", "Bill the observed hours 按实测计费", "Hold 暂缓"):
        assert button in html
    response = finance_client.post(
        reverse("admin:billing_invoice_reconciliation", args=[invoice.pk, "observed"]), follow=True
    )
    assert "Bill the observed hours 按实测计费 — total 1000.00 CNY" in response.content.decode()
    invoice.refresh_from_db()
    assert (invoice.reconciliation_status, invoice.reconciliation_decision, invoice.total_amount) == (
        "decided",
        "observed",
        Decimal("1000.00"),
    )
    assert invoice.reconciliation_decided_by.username == "finance1"


def test_staff_without_the_permission_see_no_buttons_and_cannot_decide(am, client):
    invoice = flagged_draft(am)
    client.force_login(am)
    url = reverse("admin:billing_invoice_reconciliation", args=[invoice.pk, "as_reported"])
    assert client.post(url).status_code == 403
    invoice.refresh_from_db()
    assert invoice.reconciliation_status == "flagged"


def test_the_page_reads_a_constant_number_of_queries(am, finance_client):
    counts = []
    for cards in (1, 8):
        invoice = flagged_draft(am, cards=cards)
        assert invoice.reconciliation_cards.count() == cards
        with CaptureQueriesContext(connection) as queries:
            assert page(finance_client, invoice).status_code == 200
        counts.append(len(queries))
    assert counts[0] == counts[1], counts


def test_the_provider_settlement_statement_shows_the_reconciliation_rate(am, finance_client):
    invoice = flagged_draft(am)
    provider = invoice.lines.get().contract_line.allocations.get().server.provider
    statement = SettlementStatement.objects.create(provider=provider, period="2026-11", currency="CNY")
    response = finance_client.get(reverse("admin:billing_settlementstatement_change", args=[statement.pk]))
    # the agent confirmed 100 of the 110 hours billed from the provider's reports
    assert "90.91 % (100 of 110 h matched)" in response.content.decode()
    other = SettlementStatement.objects.create(provider=provider, period="2026-10", currency="CNY")
    response = finance_client.get(reverse("admin:billing_settlementstatement_change", args=[other.pk]))
    assert "no hours compared with the agent" in response.content.decode()


def test_the_api_shows_the_reconciliation_status(am, api_client, make_staff):
    invoice = flagged_draft(am)
    api_client.force_authenticate(make_staff(roles.FINANCE, username="finance2"))
    data = api_client.get(f"/api/v1/invoices/{invoice.pk}/").json()
    assert (data["reconciliation_status"], data["reconciliation_decision"]) == ("flagged", "")
    # issuing it through the API is refused until finance decides
    with time_machine.travel(datetime.datetime(2026, 12, 2, 10, tzinfo=datetime.UTC), tick=False):
        refused = api_client.post(f"/api/v1/invoices/{invoice.pk}/issue/", format="json")
    assert refused.status_code == 409
    assert refused.json()["code"] == "reconciliation_flagged"


def test_finance_finds_the_flagged_drafts(am, finance_client):
    flagged = flagged_draft(am)
    customer = CustomerFactory(auto_issue=False)
    server = ServerFactory()
    card_contract(customer, am, server, price="10.00")
    use(server, 50)
    matched = bill(customer)
    url = reverse("admin:billing_invoice_changelist") + "?reconciliation_status__exact=flagged"
    response = finance_client.get(url)
    assert list(response.context["cl"].result_list) == [flagged]
    assert matched.reconciliation_status == "not_needed"
