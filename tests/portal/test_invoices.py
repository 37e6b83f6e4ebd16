"""Invoices: list (no drafts, filters, paging), detail, PDFs, the pay button and Stripe Checkout."""

from __future__ import annotations

import datetime

import pytest
from django.test import override_settings
from django.urls import reverse

from apps.billing.invoicing.models import CreditNote, Invoice, InvoiceStatus, Payment, PaymentMethod
from tests.fakes.stripe import SECRET_KEY, WEBHOOK_SECRET, FakeStripe

pytestmark = pytest.mark.django_db


def add_invoices(customer, count: int, *, status=InvoiceStatus.PAID):
    """``count`` issued-and-paid invoices of earlier periods, straight into the table."""
    for i in range(count):
        year, month = 2024 + i // 12, i % 12 + 1
        Invoice.objects.create(
            customer=customer,
            period=f"{year}-{month:02d}",
            status=status,
            number=f"INV-{year}-{900000 + i}",
            total_amount="100.00",
            paid_amount="100.00" if status == InvoiceStatus.PAID else "0.00",
            issued_on=datetime.date(year, month, 28),
            due_on=datetime.date(year, month, 28),
        )


def test_the_list_shows_issued_invoices_with_amounts_never_drafts(portal_client, world):
    Invoice.objects.create(customer=world.acme, period="2026-12", status=InvoiceStatus.DRAFT)
    response = portal_client.get("/portal/invoices/")
    body = response.content.decode()
    assert body.count('data-testid="invoice-row"') == 1
    assert world.acme_invoice.number in body
    assert "CNY 1,000.00" in body
    assert "Open" in body


def test_the_list_filters_by_status_and_period_and_pages(portal_client, world):
    add_invoices(world.acme, 25)
    body = portal_client.get("/portal/invoices/?status=paid").content.decode()
    assert body.count('data-testid="invoice-row"') == 20 and "Page 1 of 2" in body
    page2 = portal_client.get("/portal/invoices/?status=paid&page=2").content.decode()
    assert page2.count('data-testid="invoice-row"') == 5
    only = portal_client.get("/portal/invoices/?period=2026-11").content.decode()
    assert only.count('data-testid="invoice-row"') == 1 and world.acme_invoice.number in only
    none = portal_client.get("/portal/invoices/?status=overdue").content.decode()
    assert "No invoices match." in none
    bad = portal_client.get("/portal/invoices/?period=2026-13").content.decode()
    assert "Enter a month as YYYY-MM." in bad


@pytest.mark.parametrize("count", [2, 20])
def test_the_list_runs_a_constant_number_of_queries(
    portal_client, world, count, django_assert_max_num_queries
):
    add_invoices(world.acme, count)
    with django_assert_max_num_queries(8):
        assert portal_client.get("/portal/invoices/").status_code == 200


def test_the_detail_groups_lines_by_contract_and_shows_the_totals(portal_client, world):
    body = portal_client.get(reverse("portal:invoice_detail", args=[world.acme_invoice.pk])).content.decode()
    assert f"Invoice {world.acme_invoice.number}" in body
    assert body.count('data-testid="line-group"') == 1 and world.acme_contract.number in body
    assert "CNY 1,000.00" in body  # total incl. VAT
    assert "CNY 56.60" in body  # 6 % VAT included in 1,000.00
    assert 'data-testid="invoice-amount-due"><strong>CNY 1,000.00' in body
    assert 'data-testid="pay-button"' not in body  # Stripe is not configured


@pytest.mark.parametrize("count", [2, 20])
def test_the_detail_runs_a_constant_number_of_queries(
    portal_client, world, count, django_assert_max_num_queries
):
    invoice = world.acme_invoice
    for i in range(count):
        CreditNote.objects.create(
            invoice=invoice,
            number=f"CN-2026-{900000 + i}",
            reason="goodwill",
            net_amount="0.94",
            tax_amount="0.06",
            total_amount="1.00",
            issued_at=invoice.issued_at,
        )
        Payment.objects.create(
            invoice=invoice,
            method=PaymentMethod.BANK_TRANSFER,
            amount="1.00",
            reference=f"BANK-{i}",
            received_at=invoice.issued_at,
        )
    with django_assert_max_num_queries(12):
        body = portal_client.get(reverse("portal:invoice_detail", args=[invoice.pk])).content.decode()
    assert body.count('data-testid="credit-note-row"') == count
    assert body.count('data-testid="payment-row"') == count
    assert "Bank transfer" in body and "BANK-0" in body


def test_pdf_download(portal_client, world):
    response = portal_client.get(reverse("portal:invoice_pdf", args=[world.acme_invoice.pk]))
    assert response.status_code == 200 and response["Content-Type"] == "application/pdf"
    assert response.content.startswith(b"%PDF")
    assert f'filename="{world.acme_invoice.number}.pdf"' in response["Content-Disposition"]


@pytest.fixture
def fake_stripe():
    fake = FakeStripe().start()
    with override_settings(
        STRIPE_SECRET_KEY=SECRET_KEY, STRIPE_WEBHOOK_SECRET=WEBHOOK_SECRET, STRIPE_API_BASE=fake.url
    ):
        yield fake
    fake.stop()


@pytest.mark.parametrize(("who", "shown"), [("admin", True), ("billing", True), ("viewer", False)])
def test_the_pay_button_is_for_admins_and_billing_when_stripe_is_configured(
    client, world, fake_stripe, who, shown
):
    client.force_login(getattr(world, who))
    body = client.get(reverse("portal:invoice_detail", args=[world.acme_invoice.pk])).content.decode()
    assert ('data-testid="pay-button"' in body) is shown
    if shown:
        assert "Pay CNY 1,000.00 by card" in body


def test_paying_redirects_to_stripe_checkout_for_the_amount_due(portal_client, world, fake_stripe):
    response = portal_client.post(reverse("portal:invoice_pay", args=[world.acme_invoice.pk]))
    assert response.status_code == 302
    assert response["Location"].startswith(fake_stripe.url + "/pay/cs_test_")
    _, _, form = fake_stripe.requests[-1]
    assert "http://testserver/portal/payments/success/?invoice=" in str(form)
    assert "100000" in str(form)  # 1,000.00 CNY in fen


def test_viewers_cannot_pay(client, world, fake_stripe):
    client.force_login(world.viewer)
    response = client.post(reverse("portal:invoice_pay", args=[world.acme_invoice.pk]))
    assert response.status_code == 403
    assert "does not allow this" in response.content.decode()
    assert fake_stripe.requests == []


def test_nothing_to_pay_on_a_paid_invoice(portal_client, world, fake_stripe):
    add_invoices(world.acme, 1)
    paid = Invoice.objects.get(number="INV-2024-900000")
    response = portal_client.post(reverse("portal:invoice_pay", args=[paid.pk]), follow=True)
    assert "Invoice INV-2024-900000 has nothing left to pay." in response.content.decode()
    assert fake_stripe.requests == []


def test_without_stripe_the_pay_url_is_404(portal_client, world):
    assert portal_client.post(reverse("portal:invoice_pay", args=[world.acme_invoice.pk])).status_code == 404


def test_success_and_cancel_pages(portal_client, world):
    ok = portal_client.get(f"/portal/payments/success/?invoice={world.acme_invoice.pk}").content.decode()
    assert "Thank you for your payment" in ok and f"Back to invoice {world.acme_invoice.number}" in ok
    no = portal_client.get(f"/portal/payments/cancel/?invoice={world.other_invoice.pk}").content.decode()
    assert "Nothing was charged." in no and world.other_invoice.number not in no
