"""Billing at scale: the late-usage screen is one query per chunk whatever its customers and
months (docs/scaling.md#billing), and it finds exactly the late records."""

from __future__ import annotations

import datetime
from decimal import Decimal
from io import StringIO

import pytest
import time_machine
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext

from apps.accounts import roles
from apps.billing.invoicing.services.invoicing import invoice_drafts_refresh
from apps.billing.invoicing.services.issuing import invoice_issue
from apps.billing.invoicing.services.runs import billing_run_create
from apps.billing.models import Invoice, InvoiceLine
from apps.contracts import services
from tests.factories.catalogue import CustomerFactory, ServerFactory
from tests.factories.contracts import NOW, card_line, draft
from tests.factories.usage import usage

pytestmark = pytest.mark.django_db

SH = datetime.timezone(datetime.timedelta(hours=8))


def h(day, hour=0, month=11, year=2026):
    return datetime.datetime(year, month, day, hour, tzinfo=SH)


AS_OF = h(1, 3, month=12)


@pytest.fixture
def customers(make_staff):
    """Five customers with an hourly card since September, September and October issued."""
    am = make_staff(roles.ACCOUNT_MANAGER, username="am1")
    made = []
    for n in range(5):
        customer, server = CustomerFactory(code=f"c{n}"), ServerFactory()
        contract = draft(
            customer, am, [card_line(server, 1, price="10.00", discount="0")], start=h(1, month=9)
        )
        services.contract_activate(contract=contract, actor=am, now=NOW)
        card = server.cards.get(slot=0)
        for month in (9, 10, 11):
            usage(
                card=card, start=h(2, month=month), end=h(2, 1, month=month), received_at=h(2, 2, month=month)
            )
        made.append((customer, card))
    for period, as_of in (("2026-09", h(1, 3, month=10)), ("2026-10", h(1, 3))):
        with time_machine.travel(as_of, tick=False):
            call_command("run_billing", "--period", period, "--no-progress", stdout=StringIO())
        for invoice in Invoice.objects.filter(period=period):
            invoice_issue(invoice=invoice, now=as_of)
    return made


def queries_to_refresh(run, customer_ids) -> int:
    with CaptureQueriesContext(connection) as captured:
        invoice_drafts_refresh(run=run, customer_ids=customer_ids)
    return len(captured)


def test_the_late_usage_screen_does_not_grow_with_customers_or_months(customers):
    ids = [customer.pk for customer, _ in customers]
    run = billing_run_create(period="2026-11", as_of=AS_OF, now=AS_OF)
    one = queries_to_refresh(run, ids[:1])
    four = queries_to_refresh(run, ids[1:])
    assert Invoice.objects.filter(period="2026-11", status="draft").count() == 5
    assert one == four  # two issued months each: no query per customer or per month


def test_only_the_customer_with_late_usage_gets_a_late_line(customers):
    _, card = customers[3]
    # 2 hours of October on customer c3's card, received after October was invoiced
    usage(card=card, start=h(10, month=10), end=h(10, 2, month=10), received_at=h(20))
    with time_machine.travel(AS_OF, tick=False):
        call_command("run_billing", "--period", "2026-11", "--no-progress", stdout=StringIO())
    late = InvoiceLine.objects.filter(kind="late_usage", invoice__period="2026-11")
    assert [(line.invoice.customer.code, line.quantity, line.amount) for line in late] == [
        ("c3", Decimal("2.000000"), Decimal("20.00"))
    ]
    assert "Late usage for 2026-10" in late.get().description
    totals = dict(Invoice.objects.filter(period="2026-11").values_list("customer__code", "total_amount"))
    assert totals == {
        "c0": Decimal("10.00"),
        "c1": Decimal("10.00"),
        "c2": Decimal("10.00"),
        "c3": Decimal("30.00"),
        "c4": Decimal("10.00"),
    }
