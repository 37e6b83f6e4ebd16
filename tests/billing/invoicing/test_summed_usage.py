"""Usage summed up in SQL for cards whose line and allocation cover the month, intervals for the
rest (docs/rating.md#usage-summed-up-in-sql): which cards qualify, and the same figures either way."""

from __future__ import annotations

import datetime
from decimal import Decimal

import pytest

from apps.accounts import roles
from apps.billing.invoicing.inputs import contracts_for, merged_usage, summable_cards
from apps.billing.invoicing.services.invoicing import invoice_drafts_refresh
from apps.billing.invoicing.services.runs import billing_run_create
from apps.billing.models import Invoice, InvoiceLine
from apps.contracts import pricing, services
from tests.factories.catalogue import CustomerFactory, ServerFactory
from tests.factories.contracts import NOW, card_line, draft, server_line
from tests.factories.usage import usage

pytestmark = pytest.mark.django_db

SH = datetime.timezone(datetime.timedelta(hours=8))
NOV, DEC = datetime.datetime(2026, 11, 1, tzinfo=SH), datetime.datetime(2026, 12, 1, tzinfo=SH)
AS_OF = datetime.datetime(2026, 12, 1, 3, tzinfo=SH)


def h(day, hour=0):
    return datetime.datetime(2026, 11, day, hour, tzinfo=SH)


@pytest.fixture
def am(make_staff):
    return make_staff(roles.ACCOUNT_MANAGER, username="am1")


def active(customer, am, lines, **kwargs):
    return services.contract_activate(contract=draft(customer, am, lines, **kwargs), actor=am, now=NOW)


def test_only_cards_of_whole_month_card_lines_are_summed(am):
    whole, late_start, hourly_server = ServerFactory(), ServerFactory(), ServerFactory()
    customer = CustomerFactory()
    active(customer, am, [card_line(whole, 2, price="10.00", discount="0")])
    active(customer, am, [card_line(late_start, 1, price="10.00", discount="0")], start=h(16))
    active(customer, am, [server_line(hourly_server, price="80.00", term="hourly", term_discount="0")])
    loaded = contracts_for([customer.pk], NOV, DEC)[customer.pk]
    summed = summable_cards(loaded, NOV, DEC)
    assert summed == set(whole.cards.filter(slot__lt=2).values_list("pk", flat=True))
    # a card of a line starting on the 16th is clipped to it, a server line's cards are unioned
    assert not summed & set(late_start.cards.values_list("pk", flat=True))
    assert not summed & set(hourly_server.cards.values_list("pk", flat=True))


def test_a_summed_card_reads_the_same_microseconds_as_its_intervals(am):
    server = ServerFactory()
    customer = CustomerFactory()
    active(customer, am, [card_line(server, 1, price="10.00", discount="0")])
    card = server.cards.get(slot=0)
    usage(card=card, start=h(2, 0), end=h(2, 3))
    usage(card=card, start=h(2, 2), end=h(2, 4))  # overlaps: counted once
    usage(server=server, start=h(2, 3), end=h(2, 5))  # a server record counts for its cards
    args = ({card.pk}, {server.pk}, NOV, DEC)
    (intervals,) = merged_usage(*args, received_to=AS_OF)[card.pk]
    (total,) = merged_usage(*args, received_to=AS_OF, summed={card.pk})[card.pk]
    assert isinstance(intervals, pricing.CardMicros) and isinstance(total, pricing.CardTotal)
    assert total.micros == sum(intervals.ends) - sum(intervals.starts) == 5 * 3600 * 1_000_000
    assert (total.first, total.last) == (min(intervals.starts), max(intervals.ends))


def test_summed_and_clipped_cards_in_one_run_bill_their_hours(am):
    whole_server, late_server = ServerFactory(), ServerFactory()
    whole, late = CustomerFactory(), CustomerFactory()
    active(whole, am, [card_line(whole_server, 1, price="10.00", discount="0")])
    active(late, am, [card_line(late_server, 1, price="10.00", discount="0")], start=h(16))
    for server in (whole_server, late_server):
        card = server.cards.get(slot=0)
        usage(card=card, start=h(10, 8), end=h(10, 12))  # 4 h, before the second contract starts
        usage(card=card, start=h(15, 22), end=h(16, 3))  # 5 h, 3 of them from the 16th
    run = billing_run_create(period="2026-11", as_of=AS_OF, now=AS_OF)
    invoice_drafts_refresh(run=run, customer_ids=[whole.pk, late.pk])
    lines = {
        line.invoice.customer_id: line
        for line in InvoiceLine.objects.select_related("invoice").filter(kind="usage")
    }
    assert (lines[whole.pk].quantity, lines[whole.pk].amount) == (Decimal("9.000000"), Decimal("90.00"))
    assert (lines[late.pk].quantity, lines[late.pk].amount) == (Decimal("3.000000"), Decimal("30.00"))
    assert Invoice.objects.count() == 2
