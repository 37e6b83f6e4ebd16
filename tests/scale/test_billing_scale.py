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


def test_the_screen_finds_each_window_with_a_record_received_after_its_own_cutoff(customers):
    """Windows invoiced after their end are screened by arrival, an early-issued one by its cards;
    each window is judged by its own cutoff, not by the earliest of the chunk."""
    from apps.billing.invoicing.inputs import LateWindow, windows_with_usage

    start, end = h(1, month=10), h(1)
    cards = [card for _, card in customers]
    # c1: invoiced early (cut off on 15 October), a record of the 20th received that day
    usage(card=cards[1], start=h(20, month=10), end=h(20, 1, month=10), received_at=h(20, 2, month=10))
    # c2: cut off on 10 November; its record arrived on the 5th, before its cutoff (not late for it)
    usage(card=cards[2], start=h(12, month=10), end=h(12, 1, month=10), received_at=h(5))
    # c3: a record of its whole server received on 20 November, after its cutoff
    usage(server=cards[3].server, start=h(14, month=10), end=h(14, 1, month=10), received_at=h(20))
    # c4: a September record received late is outside the October window
    usage(card=cards[4], start=h(3, month=9), end=h(3, 1, month=9), received_at=h(20))

    def window(n, cutoff):
        card = cards[n]
        return LateWindow(start, end, cutoff, frozenset({card.pk}), frozenset({card.server_id}))

    windows = [
        window(0, h(1, 3)),
        window(1, h(15, month=10)),
        window(2, h(10)),
        window(3, h(1, 3)),
        window(4, h(1, 3)),
    ]
    assert windows_with_usage(windows, as_of=AS_OF) == {1, 3}
    # the same windows one at a time: the same answers
    assert [bool(windows_with_usage([w], as_of=AS_OF)) for w in windows] == [False, True, False, True, False]
    # nothing received after as_of counts
    assert windows_with_usage(windows, as_of=h(19)) == {1}


def test_usage_after_an_early_issue_is_billed_late_and_only_to_its_customer(make_staff):
    """October issued early for one customer (cut off on 20 October): its record of the 25th is late
    usage on November's invoice. The screen names that customer a suspect without any arrival scan
    of the rest of October; the other customer, issued after October ended, gets no late line."""
    am = make_staff(roles.ACCOUNT_MANAGER, username="am1")
    cards = {}
    for code in ("early", "on-time"):
        customer, server = CustomerFactory(code=code), ServerFactory()
        contract = draft(
            customer, am, [card_line(server, 1, price="10.00", discount="0")], start=h(1, month=10)
        )
        services.contract_activate(contract=contract, actor=am, now=NOW)
        cards[code] = server.cards.get(slot=0)
        usage(card=cards[code], start=h(2, month=10), end=h(2, 1, month=10), received_at=h(2, 2, month=10))
    early_cut = h(20, month=10)
    with time_machine.travel(early_cut, tick=False):
        call_command(
            "run_billing", "--period", "2026-10", "--customer", "early", "--no-progress", stdout=StringIO()
        )
    invoice_issue(
        invoice=Invoice.objects.get(customer__code="early", period="2026-10"),
        now=early_cut,
        early_reason="customer's year-end closing",
    )
    for card in cards.values():  # 3 hours on 25 October, reported that day: after the early cutoff only
        usage(card=card, start=h(25, month=10), end=h(25, 3, month=10), received_at=h(25, 4, month=10))
    with time_machine.travel(h(1, 3), tick=False):
        call_command(
            "run_billing", "--period", "2026-10", "--customer", "on-time", "--no-progress", stdout=StringIO()
        )
    invoice_issue(invoice=Invoice.objects.get(customer__code="on-time", period="2026-10"), now=h(1, 3))
    with time_machine.travel(AS_OF, tick=False):
        call_command("run_billing", "--period", "2026-11", "--no-progress", stdout=StringIO())
    late = InvoiceLine.objects.filter(kind="late_usage", invoice__period="2026-11")
    assert [(line.invoice.customer.code, line.quantity, line.amount) for line in late] == [
        ("early", Decimal("3.000000"), Decimal("30.00"))
    ]
    # the on-time customer's October invoice already billed its 25 October hours (4 h in all)
    on_time = Invoice.objects.get(customer__code="on-time", period="2026-10")
    assert on_time.lines.get().quantity == Decimal("4.000000")
