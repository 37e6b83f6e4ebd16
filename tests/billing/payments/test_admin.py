"""Finance in the admin: a bank transfer larger than the amount due, the credit balances page,
refunds (refused beyond the balance), the read-only ledger and Stripe events."""

from __future__ import annotations

import datetime
from decimal import Decimal

import pytest
import time_machine
from django.urls import reverse

from apps.accounts import roles
from apps.billing.models import CreditEntry, Payment
from tests.factories.billing_flows import SH, issued_invoice
from tests.factories.catalogue import CustomerFactory, ServerFactory

pytestmark = pytest.mark.django_db

DEC_3 = datetime.datetime(2026, 12, 3, 15, tzinfo=SH)


@pytest.fixture
def invoice(make_staff):
    return issued_invoice(
        CustomerFactory(), make_staff(roles.ACCOUNT_MANAGER, username="am1"), ServerFactory()
    )


@pytest.fixture
def finance_client(client, make_staff):
    with time_machine.travel(DEC_3, tick=False):
        client.force_login(make_staff(roles.FINANCE, username="finance1"))
        yield client


def test_an_overpaid_transfer_on_the_invoice_page_becomes_credit_and_can_be_refunded(finance_client, invoice):
    url = reverse("admin:billing_invoice_payment", args=[invoice.pk])
    response = finance_client.post(
        url, {"amount": "1100.00", "reference": "ICBC-20261203-07", "received_on": "2026-12-03"}, follow=True
    )
    html = response.content.decode()
    assert f"Recorded 1000.00 CNY on {invoice.number}." in html
    assert (
        f"100.00 CNY more than was due became {invoice.customer.code}&#x27;s credit (balance 100.00)." in html
    )
    assert Payment.objects.get(invoice=invoice).amount == Decimal("1000.00")

    balances = finance_client.get(reverse("admin:billing_creditentry_balances")).content.decode()
    assert invoice.customer.code in balances and '<td class="balance">100.00</td>' in balances

    refund = reverse("admin:billing_creditentry_refund", args=[invoice.customer.pk])
    page = finance_client.post(refund, {"amount": "150.00", "reference": "R-1"}).content.decode()
    assert (
        f"A refund of 150.00 CNY is more than {invoice.customer.code}&#x27;s credit balance of 100.00 CNY."
        in page
    )
    done = finance_client.post(
        refund, {"amount": "40.00", "reference": "R-2", "note": "asked by mail"}, follow=True
    )
    assert f"Refunded 40.00 CNY to {invoice.customer.code}; 60.00 CNY credit left." in done.content.decode()
    assert list(CreditEntry.objects.order_by("pk").values_list("kind", "amount", "created_by__username")) == [
        ("overpayment", Decimal("100.00"), "finance1"),
        ("refund", Decimal("-40.00"), "finance1"),
    ]

    ledger = finance_client.get(reverse("admin:billing_creditentry_changelist")).content.decode()
    assert "R-2" in ledger and "ICBC-20261203-07" in ledger
    entry = CreditEntry.objects.first()
    assert (
        finance_client.post(reverse("admin:billing_creditentry_change", args=[entry.pk]), {}).status_code
        == 403
    )
    assert finance_client.get(reverse("admin:billing_stripeevent_changelist")).status_code == 200


def test_refunds_need_the_refund_permission(client, make_staff, invoice):
    client.force_login(make_staff(roles.ACCOUNT_MANAGER, username="am2"))
    url = reverse("admin:billing_creditentry_refund", args=[invoice.customer.pk])
    assert client.post(url, {"amount": "1.00", "reference": "R"}).status_code == 403
    assert CreditEntry.objects.count() == 0
