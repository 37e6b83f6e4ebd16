"""An invoice line's text says what the line stores: quantities and prices rounded half up, once."""

from __future__ import annotations

from decimal import Decimal

import pytest

from apps.accounts import roles
from apps.billing.invoicing.descriptions import _number
from apps.billing.models import InvoiceLine
from apps.contracts import services
from tests.factories.catalogue import CustomerFactory, ServerFactory
from tests.factories.contracts import NOW, card_line, draft
from tests.factories.invoices import bill


@pytest.mark.django_db
def test_a_half_price_line_prints_the_unit_price_it_stores(make_staff):
    """1.000001 × (1 − 50 %) = 0.5000005: stored half up as 0.500001, and printed so (not 0.500000)."""
    am = make_staff(roles.ACCOUNT_MANAGER, username="am1")
    sales = make_staff(roles.SALES_MANAGER, username="sales1")
    customer = CustomerFactory()
    line = card_line(ServerFactory(), 1, price="1.000001", discount="50", term="monthly")
    contract = draft(customer, am, [line])
    services.contract_submit(contract=contract, actor=am, now=NOW)
    services.contract_approve(contract=contract, actor=sales, now=NOW)
    services.contract_activate(contract=contract, actor=am, now=NOW)

    bill(customer=customer)

    stored = InvoiceLine.objects.get(invoice__customer=customer)
    assert stored.unit_price == Decimal("0.500001")
    assert "× 0.500001 (list 1.000001, negotiated −50%)" in stored.description
    assert stored.amount == Decimal("0.50")


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (Decimal("0.0000005"), "0.000001"),  # half up, as stored (half even would print 0)
        (Decimal("2.0000025"), "2.000003"),
        (Decimal("1440"), "1,440"),
        (Decimal("12.500000"), "12.5"),
    ],
)
def test_quantities_print_as_stored(value, text):
    assert _number(value) == text
