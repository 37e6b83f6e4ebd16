"""End to end through the billing run: contracts and usage in, draft invoices out
(docs/invoices.md#billing-runs)."""

from __future__ import annotations

import datetime
from decimal import Decimal
from io import StringIO

import pytest
import time_machine
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.test.utils import CaptureQueriesContext

from apps.accounts import roles
from apps.billing.invoicing.services.invoicing import invoice_drafts_refresh
from apps.billing.invoicing.services.issuing import invoice_issue
from apps.billing.invoicing.services.runs import billing_run_create
from apps.billing.models import BillingRun, Invoice, InvoiceLine, InvoiceStatus
from apps.contracts import services
from tests.factories.catalogue import CustomerFactory, ServerFactory, gpu_model
from tests.factories.contracts import NOW, card_line, draft, p_line, server_line
from tests.factories.usage import usage

pytestmark = pytest.mark.django_db

SH = datetime.timezone(datetime.timedelta(hours=8))
DEC_1 = datetime.datetime(2026, 12, 1, tzinfo=SH)
AS_OF = datetime.datetime(2026, 12, 1, 3, 0, tzinfo=SH)


@pytest.fixture
def am(make_staff):
    return make_staff(roles.ACCOUNT_MANAGER, username="am1")


def active(customer, am, lines, **kwargs):
    contract = draft(customer, am, lines, **kwargs)
    return services.contract_activate(contract=contract, actor=am, now=NOW)


def run(period="2026-11", as_of=AS_OF):
    """``manage.py run_billing --period …`` at ``as_of`` (the clock frozen there); returns the run."""
    with time_machine.travel(as_of, tick=False):
        try:
            call_command(
                "run_billing", "--period", period, "--no-progress", stdout=StringIO(), stderr=StringIO()
            )
        except CommandError:
            pass  # a run with failed customers exits non-zero; the tests read its record
    return BillingRun.objects.latest("pk")


def h(day, hour=0, month=11, year=2026):
    return datetime.datetime(year, month, day, hour, tzinfo=SH)


def test_metered_example_245_16(am):
    server = ServerFactory()
    customer = CustomerFactory()
    contract = active(customer, am, [card_line(server, 2, price="22.70", discount="10")])
    card0, card1 = server.cards.order_by("slot")[:2]
    usage(card=card0, start=h(3, 8), end=h(3, 16))  # 8 h
    usage(card=card1, start=h(4, 8), end=h(4, 12))  # 4 h
    result = run()
    assert (result.status, result.invoices_created, result.customers_done) == ("done", 1, 1)
    invoice = Invoice.objects.get(customer=customer, period="2026-11")
    line = invoice.lines.get()
    assert (line.kind, line.quantity, line.unit) == ("usage", Decimal("12.000000"), "card_hour")
    assert (line.amount, line.tax_amount, line.net_amount) == (
        Decimal("245.16"),
        Decimal("13.88"),
        Decimal("231.28"),
    )
    assert (invoice.total_amount, invoice.tax_amount, invoice.net_amount) == (
        Decimal("245.16"),
        Decimal("13.88"),
        Decimal("231.28"),
    )
    assert line.tax_classification == "*信息技术服务*算力服务费"
    assert contract.number in line.description and "12 card_hour × 20.43" in line.description
    assert "negotiated −10%" in line.description


def test_server_monthly_122400_and_p_unit_instalment(am):
    a80 = gpu_model("A100-SXM4-80GB")
    customer = CustomerFactory()
    s1, s2, s3 = (ServerFactory(gpu_model=a80) for _ in range(3))
    active(
        customer,
        am,
        [
            server_line(s1, price="144000.00", term_discount="15"),
        ],
    )
    p = p_line(s2, "2.5", price="200000.00", term_discount="15")
    p.allocations.append(type(p.allocations[0])(server=s3))
    active(customer, am, [p])
    run()
    lines = {line.unit: line for line in InvoiceLine.objects.filter(invoice__customer=customer)}
    assert lines["server_month"].amount == Decimal("122400.00")
    assert lines["server_month"].tax_rate == Decimal("0.1300")  # equipment lease from the price list
    assert lines["p_month"].amount == Decimal("35416.67")
    invoice = Invoice.objects.get(customer=customer)
    assert invoice.total_amount == Decimal("157816.67")
    assert invoice.lines.count() == 2


def test_server_hourly_all_year_1_576_800(am):
    customer = CustomerFactory()
    server = ServerFactory()
    start = datetime.datetime(2027, 1, 1, tzinfo=SH)
    line = server_line(server, price="180.00", term="hourly", term_discount="0")
    active(customer, am, [line], start=start)
    # a record may span at most 31 days: the agent reports the year as weekly records
    for week in range(53):
        begin = start + datetime.timedelta(weeks=week)
        finish = min(begin + datetime.timedelta(weeks=1), start + datetime.timedelta(days=365))
        usage(server=server, start=begin, end=finish, received_at=datetime.datetime(2028, 1, 1, 1, tzinfo=SH))
    total = Decimal(0)
    for month in range(1, 13):
        period = f"2027-{month:02d}"
        run(period, as_of=datetime.datetime(2028, 1, 2, tzinfo=SH))
        total += Invoice.objects.get(customer=customer, period=period).total_amount
    assert total == Decimal("1576800.00")
    assert Invoice.objects.get(customer=customer, period="2027-02").total_amount == Decimal(
        "120960.00"
    )  # 672 h


def test_usage_in_utc_and_plus_eight_across_the_month_boundary(am):
    customer = CustomerFactory()
    server = ServerFactory()
    active(customer, am, [card_line(server, 1, price="10.00", discount="0")])
    card = server.cards.get(slot=0)
    # 15:00Z–17:00Z on Nov 30 = 23:00–01:00 in Shanghai: 1 h in November, 1 h in December.
    usage(
        card=card,
        start=datetime.datetime(2026, 11, 30, 15, tzinfo=datetime.UTC),
        end=datetime.datetime(2026, 12, 1, 1, tzinfo=SH),
    )
    run("2026-11", as_of=datetime.datetime(2027, 1, 1, 3, tzinfo=SH))
    run("2026-12", as_of=datetime.datetime(2027, 1, 1, 3, tzinfo=SH))
    amounts = dict(Invoice.objects.filter(customer=customer).values_list("period", "total_amount"))
    assert amounts == {"2026-11": Decimal("10.00"), "2026-12": Decimal("10.00")}


def test_overlapping_records_and_server_records_count_once(am):
    customer = CustomerFactory()
    server = ServerFactory()
    active(customer, am, [card_line(server, 1, price="10.00", discount="0")])
    card = server.cards.get(slot=0)
    usage(card=card, start=h(2, 0), end=h(2, 3))
    usage(card=card, start=h(2, 2), end=h(2, 4))
    usage(server=server, start=h(2, 3), end=h(2, 5))  # counts for the card too
    run()
    line = InvoiceLine.objects.get(invoice__customer=customer)
    assert (line.quantity, line.amount) == (Decimal("5.000000"), Decimal("50.00"))


def test_line_starting_mid_month_and_month_end_start(am):
    customer = CustomerFactory()
    mid = ServerFactory()
    active(customer, am, [server_line(mid, price="30000.00", term_discount="0")], start=h(16))
    jan31 = datetime.datetime(2027, 1, 31, tzinfo=SH)
    other = CustomerFactory()
    active(other, am, [server_line(ServerFactory(), price="31000.00", term_discount="0")], start=jan31)
    run()
    run("2027-01", as_of=datetime.datetime(2027, 2, 1, 3, tzinfo=SH))
    run("2027-02", as_of=datetime.datetime(2027, 3, 1, 3, tzinfo=SH))
    assert Invoice.objects.get(customer=customer, period="2026-11").total_amount == Decimal("15000.00")
    assert Invoice.objects.get(customer=other, period="2027-01").total_amount == Decimal("1000.00")
    assert Invoice.objects.get(customer=other, period="2027-02").total_amount == Decimal("31000.00")


def test_leap_year_february_2028_daily_line(am):
    customer = CustomerFactory()
    line = server_line(ServerFactory(), price="1000.00", term="daily", term_discount="0")
    active(customer, am, [line], start=datetime.datetime(2028, 1, 1, tzinfo=SH))
    run("2028-02", as_of=datetime.datetime(2028, 3, 1, 3, tzinfo=SH))
    invoice_line = InvoiceLine.objects.get(invoice__period="2028-02")
    assert (invoice_line.quantity, invoice_line.amount) == (Decimal("29.000000"), Decimal("29000.00"))


def test_minimum_commitment_shortfall(am):
    customer = CustomerFactory()
    server = ServerFactory()
    active(
        customer,
        am,
        [card_line(server, 1, price="10.00", discount="0")],
        minimum_monthly_amount=Decimal("1000.00"),
    )
    usage(card=server.cards.get(slot=0), start=h(5, 0), end=h(5, 10))  # 100.00
    run()
    lines = {line.kind: line for line in InvoiceLine.objects.filter(invoice__customer=customer)}
    assert lines["usage"].amount == Decimal("100.00")
    assert lines["minimum_commitment_shortfall"].amount == Decimal("900.00")
    assert Invoice.objects.get(customer=customer).total_amount == Decimal("1000.00")


def test_rerun_changes_nothing_and_refreshes_drafts_when_usage_arrives(am):
    customer = CustomerFactory()
    server = ServerFactory()
    active(customer, am, [card_line(server, 1, price="10.00", discount="0")])
    card = server.cards.get(slot=0)
    usage(card=card, start=h(2), end=h(2, 5))
    first = run()
    invoice = Invoice.objects.get(customer=customer)
    line_ids = list(invoice.lines.values_list("pk", flat=True))
    again = run()
    assert (again.invoices_created, again.invoices_refreshed, again.invoices_unchanged) == (0, 0, 1)
    assert list(invoice.lines.values_list("pk", flat=True)) == line_ids
    usage(card=card, start=h(3), end=h(3, 1), received_at=AS_OF)
    third = run()
    assert (third.invoices_refreshed, Invoice.objects.get(pk=invoice.pk).total_amount) == (
        1,
        Decimal("60.00"),
    )
    assert Invoice.objects.count() == 1 and first.pk != third.pk


def test_issued_invoice_untouched_and_late_usage_lands_on_next_invoice(am):
    customer = CustomerFactory()
    server = ServerFactory()
    active(customer, am, [card_line(server, 1, price="10.00", discount="0")])
    card = server.cards.get(slot=0)
    usage(card=card, start=h(2), end=h(2, 5))
    run()
    november = Invoice.objects.get(customer=customer, period="2026-11")
    invoice_issue(invoice=november, now=AS_OF)
    # late: received after November's invoice; 2 h overlapping 1 h already billed
    late_at = datetime.datetime(2026, 12, 5, tzinfo=SH)
    usage(card=card, start=h(2, 4), end=h(2, 6), received_at=late_at)
    usage(card=card, start=h(2, 1, month=12), end=h(2, 2, month=12), received_at=late_at)
    again = run("2026-11", as_of=late_at)
    assert again.invoices_unchanged == 1
    november.refresh_from_db()
    assert (november.status, november.total_amount, november.lines.count()) == ("issued", Decimal("50.00"), 1)
    run("2026-12", as_of=datetime.datetime(2027, 1, 1, 3, tzinfo=SH))
    december = Invoice.objects.get(customer=customer, period="2026-12")
    kinds = {line.kind: line for line in december.lines.all()}
    assert kinds["usage"].amount == Decimal("10.00")
    assert kinds["late_usage"].quantity == Decimal("1.000000")  # only the hour not billed before
    assert kinds["late_usage"].amount == Decimal("10.00")
    assert "Late usage for 2026-11" in kinds["late_usage"].description
    # once December is issued, the same late record is never billed again
    invoice_issue(invoice=december, now=datetime.datetime(2027, 1, 1, 4, tzinfo=SH))
    run("2027-01", as_of=datetime.datetime(2027, 2, 1, 3, tzinfo=SH))
    assert not InvoiceLine.objects.filter(invoice__period="2027-01", kind="late_usage").exists()


def test_one_customer_failing_does_not_block_the_others(am, monkeypatch):
    good, bad = CustomerFactory(code="good"), CustomerFactory(code="bad")
    active(good, am, [server_line(ServerFactory())])
    active(bad, am, [server_line(ServerFactory())])
    from apps.billing.invoicing.services import invoicing

    real = invoicing.invoice_plan

    def flaky(*, contracts, **kwargs):
        if contracts and contracts[0].contract.customer_code == "bad":
            raise ValueError("broken data")
        return real(contracts=contracts, **kwargs)

    monkeypatch.setattr(invoicing, "invoice_plan", flaky)
    result = run()
    assert result.status == "done_with_errors"
    assert result.errors == {"bad": "ValueError: broken data"}
    assert list(Invoice.objects.values_list("customer__code", flat=True)) == ["good"]


def test_query_count_does_not_grow_with_lines_or_usage(am):
    small, big = CustomerFactory(), CustomerFactory()
    s = ServerFactory()
    active(small, am, [card_line(s, 1)])
    usage(card=s.cards.get(slot=0), start=h(2), end=h(2, 1))
    servers = [ServerFactory() for _ in range(4)]
    active(
        big,
        am,
        [
            card_line(servers[0], 8),
            server_line(servers[1]),
            p_line(servers[2]),
            server_line(servers[3], term="daily"),
        ],
    )
    for card in servers[0].cards.all():
        for day in range(1, 20):
            usage(card=card, start=h(day), end=h(day, 3))
    bill_run = billing_run_create(period="2026-11", as_of=AS_OF, now=AS_OF)
    counts = []
    for customer in (small, big):
        with CaptureQueriesContext(connection) as ctx:
            invoice_drafts_refresh(run=bill_run, customer_ids=[customer.pk])
        counts.append(len(ctx.captured_queries))
    assert counts[0] == counts[1], counts


def test_run_billing_command_and_unknown_customer(am, capsys):
    customer = CustomerFactory(code="acme")
    active(customer, am, [server_line(ServerFactory())])
    call_command("run_billing", "--period", "2026-11", "--no-progress")
    out = capsys.readouterr().out
    assert "invoices created 1" in out and "customers 1/1" in out
    assert BillingRun.objects.get().status == "done"
    call_command("run_billing", "--period", "2026-11", "--customer", "acme", "--no-progress")
    assert "unchanged 1" in capsys.readouterr().out
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="Unknown customer 'nope'"):
        call_command("run_billing", "--period", "2026-11", "--customer", "nope")
    with pytest.raises(CommandError, match="YYYY-MM"):
        call_command("run_billing", "--period", "2026-13")
    assert Invoice.objects.filter(status=InvoiceStatus.DRAFT).count() == 1
