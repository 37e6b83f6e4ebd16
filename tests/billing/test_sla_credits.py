"""SLA credits in the billing run: availability from card incidents, the ``sla_credit`` line, and
late incidents credited on the next run (docs/hardware-truth.md#sla-credits-and-efficiency)."""

from __future__ import annotations

import datetime
from decimal import Decimal
from io import StringIO

import pytest
import time_machine
from django.core.management import call_command
from django.core.management.base import CommandError

from apps.accounts import roles
from apps.billing.invoicing.services.issuing import invoice_issue
from apps.billing.models import BillingRun, CreditNote, Invoice
from apps.contracts import services
from apps.contracts.models import PriceList, SlaCreditTier, SlaPolicy
from apps.inventory.models import CardIncident
from tests.factories.catalogue import CustomerFactory, ServerFactory
from tests.factories.contracts import NOW, draft, server_line

pytestmark = pytest.mark.django_db

SH = datetime.timezone(datetime.timedelta(hours=8))


def h(day, hour=0, month=11, year=2026):
    return datetime.datetime(year, month, day, hour, tzinfo=SH)


@pytest.fixture
def am(make_staff):
    return make_staff(roles.ACCOUNT_MANAGER, username="am1")


@pytest.fixture
def gold():
    """99.5 % a month; below 99.5 → 10 %, below 99 → 25 %, below 95 → 50 % of the line's charge."""
    policy = SlaPolicy.objects.create(name="Gold 99.5", target_percent=Decimal("99.50"))
    for below, credit in (("99.50", "10"), ("99.00", "25"), ("95.00", "50")):
        SlaCreditTier.objects.create(
            policy=policy, below_percent=Decimal(below), credit_percent=Decimal(credit)
        )
    return policy


def run(period="2026-11", as_of=None):
    as_of = as_of or h(1, 3, month=12)
    with time_machine.travel(as_of, tick=False):
        try:
            call_command(
                "run_billing", "--period", period, "--no-progress", stdout=StringIO(), stderr=StringIO()
            )
        except CommandError:
            pass
    return BillingRun.objects.latest("pk")


def leased_server(am, policy, *, customer=None):
    """One 8-card server leased monthly at 144,000.00 (tax included, 13 %) from November 1."""
    server = ServerFactory()
    customer = customer or CustomerFactory()
    contract = draft(customer, am, [server_line(server, sla=policy)])
    services.contract_activate(contract=contract, actor=am, now=NOW)
    return customer, server


def incident(card, start, end, *, reported_at=None, event="xid-1", code=79):
    """An Xid incident of ``card`` over ``[start, end)`` (``end`` None: ongoing)."""
    return CardIncident.objects.create(
        card=card,
        kind="xid",
        xid_code=code,
        detail="GPU has fallen off the bus",
        started_at=start,
        ended_at=end,
        reported_at=reported_at or end + datetime.timedelta(minutes=5),
        source_event_id=event,
    )


def test_60_hour_xid_on_2_of_8_cards_credits_25_percent(am, gold):
    customer, server = leased_server(am, gold)
    cards = list(server.cards.order_by("slot"))
    for n, card in enumerate(cards[:2]):
        incident(card, h(10), h(12, 12), event=f"xid-{n}")  # 60 h each
    run()
    invoice = Invoice.objects.get(customer=customer, period="2026-11")
    lease, credit = invoice.lines.order_by("position")
    assert lease.kind == "recurring"
    assert lease.amount == Decimal("144000.00")
    # 120 card-h down of 8 × 720 = 5,760: 1 − 120/5760 = 97.916…% → under 99 %, not under 95 % → 25 %
    assert credit.kind == "sla_credit"
    assert credit.contract_line_id == lease.contract_line_id
    assert credit.amount == Decimal("-36000.00")  # 25 % × 144,000.00
    assert credit.tax_rate == lease.tax_rate == Decimal("0.1300")  # a lease of hardware: 13 %
    assert credit.tax_amount == Decimal("-4141.59")  # 36,000 × 0.13 / 1.13 = 4,141.592… → 4,141.59
    assert credit.net_amount == Decimal("-31858.41")
    assert credit.gross_amount == Decimal("-36000.00")
    assert credit.tax_classification == lease.tax_classification
    assert "availability 97.92 %" in credit.description
    assert "→ 25.00 % credit" in credit.description
    assert "120 card-h down" in credit.description
    assert f"{cards[0].uuid} xid 79 11-10 00:00–11-12 12:00" in credit.description
    assert f"{cards[1].uuid} xid 79" in credit.description
    assert invoice.total_amount == Decimal("108000.00")
    assert invoice.tax_amount == lease.tax_amount + credit.tax_amount


def test_no_incident_no_credit_line(am, gold):
    customer, _ = leased_server(am, gold)
    run()
    invoice = Invoice.objects.get(customer=customer, period="2026-11")
    assert list(invoice.lines.values_list("kind", flat=True)) == ["recurring"]
    assert invoice.total_amount == Decimal("144000.00")


def test_line_takes_its_price_lists_sla(am, gold):
    price_list = PriceList.objects.create(
        code="sla-list", name="With SLA", valid_from=datetime.date(2026, 1, 1), sla=gold
    )
    server = ServerFactory()
    customer = CustomerFactory()
    contract = draft(customer, am, [server_line(server)], price_list=price_list)
    services.contract_activate(contract=contract, actor=am, now=NOW)
    incident(server.cards.get(slot=0), h(1), h(8))  # 168 card-h of 5,760: 97.08 %
    run()
    credit = Invoice.objects.get(customer=customer).lines.get(kind="sla_credit")
    assert credit.amount == Decimal("-36000.00")
    assert "availability 97.08 %" in credit.description


@pytest.mark.parametrize(
    ("down_minutes", "availability", "credit"),
    [
        (1728, "99.50", None),  # 28.8 of 5,760 card-h: exactly on target, no credit
        (1800, "99.48", Decimal("-14400.00")),  # 30 h: under 99.5 → 10 %
        (3456, "99.00", Decimal("-14400.00")),  # 57.6 h: exactly 99 %, not under 99 → 10 %
        (17280, "95.00", Decimal("-36000.00")),  # 288 h: exactly 95 %, not under 95 → 25 %
        (17340, "94.98", Decimal("-72000.00")),  # 289 h: under 95 → 50 %
    ],
)
def test_tier_edges(am, gold, down_minutes, availability, credit):
    customer, server = leased_server(am, gold)
    start = h(5)
    incident(server.cards.get(slot=3), start, start + datetime.timedelta(minutes=down_minutes))
    run()
    lines = Invoice.objects.get(customer=customer).lines
    if credit is None:
        assert not lines.filter(kind="sla_credit").exists()
    else:
        line = lines.get(kind="sla_credit")
        assert line.amount == credit
        assert f"availability {availability} %" in line.description


def test_overlapping_incidents_on_one_card_count_once_and_only_within_the_month(am, gold):
    customer, server = leased_server(am, gold)
    card = server.cards.get(slot=0)
    # ongoing at the run: 48 h in November (December's hours are December's)
    incident(card, h(29), None, event="a", reported_at=h(29, 1))
    incident(card, h(30), h(30, 12), event="b", code=48)  # inside the first: no extra time
    # 48 card-h of 5,760 = 99.1666…% → under 99.5 → 10 %
    run()
    line = Invoice.objects.get(customer=customer).lines.get(kind="sla_credit")
    assert line.amount == Decimal("-14400.00")
    assert "availability 99.17 %" in line.description
    assert "48 card-h down" in line.description


def test_incident_reported_after_issue_becomes_a_credit_note_on_the_next_run_once(am, gold, make_staff):
    finance = make_staff(roles.FINANCE, username="fin")
    customer, server = leased_server(am, gold)
    run()
    invoice = Invoice.objects.get(customer=customer, period="2026-11")
    assert list(invoice.lines.values_list("kind", flat=True)) == ["recurring"]
    invoice = invoice_issue(invoice=invoice, actor=finance, now=h(1, 10, month=12))
    issued_total = invoice.total_amount
    # reported on December 5th: two cards down 60 h each in November
    for n, card in enumerate(server.cards.order_by("slot")[:2]):
        incident(card, h(10), h(12, 12), event=f"late-{n}", reported_at=h(5, 9, month=12))
    run(period="2026-12", as_of=h(1, 3, month=1, year=2027))
    invoice.refresh_from_db()
    note = CreditNote.objects.get(invoice=invoice)
    assert note.total_amount == Decimal("36000.00")
    assert note.tax_amount == Decimal("4141.59")
    assert "availability 97.92 %" in note.reason and "25.00 %" in note.reason
    assert note.sla_credit.credit_percent == Decimal("25.00")
    assert invoice.total_amount == issued_total  # the issued invoice is unchanged
    assert invoice.credited_amount == Decimal("36000.00")
    assert list(invoice.lines.values_list("kind", flat=True)) == ["recurring"]
    # a rerun credits nothing twice
    run(period="2026-12", as_of=h(1, 4, month=1, year=2027))
    assert CreditNote.objects.filter(invoice=invoice).count() == 1
    # a third card reported later: only the difference (now under 95 %? no: 180/5760 → 96.875 %, still 25 %)
    incident(
        server.cards.get(slot=2), h(10), h(12, 12), event="late-2", reported_at=h(2, 9, month=1, year=2027)
    )
    run(period="2026-12", as_of=h(3, 0, month=1, year=2027))
    assert CreditNote.objects.filter(invoice=invoice).count() == 1


def test_late_incident_adds_only_the_rest_when_the_tier_deepens(am, gold, make_staff):
    finance = make_staff(roles.FINANCE, username="fin")
    customer, server = leased_server(am, gold)
    cards = list(server.cards.order_by("slot"))
    incident(cards[0], h(10), h(12, 12), event="first")  # 60 of 5,760 → 98.96 % → 25 %
    run()
    invoice = Invoice.objects.get(customer=customer, period="2026-11")
    assert invoice.lines.get(kind="sla_credit").amount == Decimal("-36000.00")
    invoice = invoice_issue(invoice=invoice, actor=finance, now=h(1, 10, month=12))
    # reported after issue: 240 more card-h → 300 / 5,760 → 94.79 % → 50 %: 72,000 owed, 36,000 given
    for n, card in enumerate(cards[1:5]):
        incident(card, h(20), h(22, 12), event=f"more-{n}", reported_at=h(4, month=12))
    run(period="2026-12", as_of=h(1, 3, month=1, year=2027))
    note = CreditNote.objects.get(invoice=invoice)
    assert note.total_amount == Decimal("36000.00")
    assert note.sla_credit.credit_percent == Decimal("50.00")
    run(period="2026-12", as_of=h(1, 4, month=1, year=2027))
    assert CreditNote.objects.filter(invoice=invoice).count() == 1


def test_an_sla_given_to_a_running_line_credits_and_the_invoice_prints(am, gold, make_staff):
    from apps.billing.invoicing.pdf import invoice_pdf
    from apps.contracts.services import line_sla_set

    customer, server = leased_server(am, None)
    line = customer.contracts.get().lines.get()
    line_sla_set(line=line, sla=gold, actor=am, reason="Dedicated-server SLA")
    assert line.history.latest().history_change_reason == "Dedicated-server SLA"
    incident(server.cards.get(slot=0), h(10), h(12, 12))  # 60 of 5,760 card-h: 98.96 % → 25 %
    run()
    invoice = Invoice.objects.get(customer=customer)
    assert invoice.lines.get(kind="sla_credit").amount == Decimal("-36000.00")
    invoice = invoice_issue(
        invoice=invoice, actor=make_staff(roles.FINANCE, username="fin"), now=h(1, 10, month=12)
    )
    assert invoice.total_amount == Decimal("108000.00")
    assert invoice_pdf(invoice).startswith(b"%PDF")
