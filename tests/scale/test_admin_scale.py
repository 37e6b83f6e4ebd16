"""The invoice changelist with many customers: the customer filter leaves the sidebar past its
limit, the customer link still filters (docs/scaling.md#pages)."""

from __future__ import annotations

import pytest
from django.test import Client

from apps.accounts import roles
from apps.billing.invoicing.admin import CustomerFilter
from tests.factories.billing_flows import issued_invoice
from tests.factories.catalogue import CustomerFactory, ServerFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def invoices(make_staff):
    am = make_staff(roles.ACCOUNT_MANAGER, username="am1")
    acme, other = (
        CustomerFactory(code="acme-a", name="Acme A"),
        CustomerFactory(code="other-a", name="Other A"),
    )
    return issued_invoice(acme, am, ServerFactory()), issued_invoice(other, am, ServerFactory(), hours=50)


@pytest.fixture
def admin_client(make_staff):
    client = Client()
    client.force_login(make_staff(roles.FINANCE, username="fin1"))
    return client


def test_few_customers_are_listed_in_the_sidebar(invoices, admin_client):
    body = admin_client.get("/admin/billing/invoice/").content.decode()
    assert 'data-filter-title="customer"' in body
    assert "Acme A" in body and "Other A" in body


def test_past_the_limit_the_sidebar_leaves_customers_out_and_the_link_still_filters(
    invoices, admin_client, monkeypatch
):
    monkeypatch.setattr(CustomerFilter, "limit", 1)
    acme_invoice, other_invoice = invoices
    body = admin_client.get("/admin/billing/invoice/").content.decode()
    assert 'data-filter-title="customer"' not in body
    assert acme_invoice.number in body and other_invoice.number in body
    only = admin_client.get(f"/admin/billing/invoice/?customer__id__exact={acme_invoice.customer_id}")
    text = only.content.decode()
    assert acme_invoice.number in text and other_invoice.number not in text


def test_the_period_filter_lists_the_periods_with_invoices_newest_first(invoices, admin_client):
    acme_invoice, _ = invoices
    body = admin_client.get("/admin/billing/invoice/").content.decode()
    assert 'data-filter-title="period"' in body and "?period=2026-11" in body
    assert "?period=2026-10" not in body  # no invoice of October
    filtered = admin_client.get("/admin/billing/invoice/?period=2026-11").content.decode()
    assert acme_invoice.number in filtered
    assert (
        acme_invoice.number not in admin_client.get("/admin/billing/invoice/?period=2026-09").content.decode()
    )
