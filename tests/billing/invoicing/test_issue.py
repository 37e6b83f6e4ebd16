"""Issuing, voiding, crediting and paying invoices; auto-issue in the run; ``issue_invoices``
(docs/invoices.md)."""

from __future__ import annotations

import datetime
from decimal import Decimal

import pytest
import time_machine
from django.core.management import call_command
from django.core.management.base import CommandError

from apps.accounts import roles
from apps.billing.invoicing.services import runs
from apps.billing.invoicing.services.issuing import credit_note_create, invoice_issue, invoice_void
from apps.billing.invoicing.services.payments import payment_record
from apps.billing.models import CreditNote, Invoice, InvoiceStatus, Payment
from apps.core.errors import DomainError, InvalidState
from apps.core.models import NumberSeries
from tests.factories.catalogue import CustomerFactory, ServerFactory
from tests.factories.contracts import server_line
from tests.factories.invoices import AS_OF, ISSUED_AT, SH, active, bill, metered_customer, metered_invoice

pytestmark = pytest.mark.django_db


@pytest.fixture
def am(make_staff):
    return make_staff(roles.ACCOUNT_MANAGER, username="am1")


def test_issue_numbers_dates_and_snapshots_the_fapiao(am):
    invoice = metered_invoice(am, name="杭州模型科技有限公司", billing_address="杭州市西湖区", phone="0571-1")
    invoice.customer.payment_terms_days = 45
    invoice.customer.save()
    issued = invoice_issue(invoice=invoice, now=ISSUED_AT)
    assert (issued.number, issued.status) == ("INV-2026-000001", "issued")
    assert (issued.issued_on, issued.due_on) == (datetime.date(2026, 12, 2), datetime.date(2027, 1, 16))
    assert issued.fapiao["buyer"]["name"] == "杭州模型科技有限公司"
    assert issued.fapiao["buyer"]["address_phone"] == "杭州市西湖区 0571-1"
    assert issued.fapiao["total_in_words"] == "贰佰肆拾伍元壹角陆分"
    assert issued.fapiao["seller"]["tax_id"] == "91110108MA01A2B3C4"
    # a late-night issue belongs to the billing day (Shanghai), so to the Shanghai year
    other = metered_invoice(am)
    new_year = datetime.datetime(2026, 12, 31, 16, 30, tzinfo=datetime.UTC)  # 00:30 on 1 Jan in Shanghai
    assert invoice_issue(invoice=other, now=new_year).number == "INV-2027-000001"


def test_only_drafts_with_lines_can_be_issued(am):
    issued = invoice_issue(invoice=metered_invoice(am), now=ISSUED_AT)
    with pytest.raises(InvalidState, match="only drafts can be issued"):
        invoice_issue(invoice=issued, now=ISSUED_AT)
    empty = Invoice.objects.create(customer=CustomerFactory(), period="2026-11")
    with pytest.raises(DomainError, match="without lines"):
        invoice_issue(invoice=empty, now=ISSUED_AT)
    assert NumberSeries.objects.get(prefix="INV", year=2026).last_value == 1


def test_void_needs_a_reason_keeps_the_number_and_frees_the_period(am):
    customer, _ = metered_customer(am)
    bill(customer=customer)
    invoice = invoice_issue(invoice=Invoice.objects.get(customer=customer), now=ISSUED_AT)
    with pytest.raises(DomainError, match="reason is required"):
        invoice_void(invoice=invoice, reason="  ", now=ISSUED_AT)
    void = invoice_void(invoice=invoice, reason="wrong buyer", now=ISSUED_AT)
    assert (void.status, void.number, void.void_reason) == ("void", "INV-2026-000001", "wrong buyer")
    with pytest.raises(InvalidState):
        invoice_void(invoice=void, reason="again", now=ISSUED_AT)
    rerun = bill(customer=customer)  # the period is billed again on a fresh draft
    assert rerun.invoices_created == 1
    fresh = Invoice.objects.get(customer=customer, status=InvoiceStatus.DRAFT)
    assert (fresh.total_amount, fresh.number) == (Decimal("245.16"), None)
    assert invoice_issue(invoice=fresh, now=ISSUED_AT).number == "INV-2026-000002"


def test_a_paid_or_credited_invoice_is_credited_not_voided(am):
    invoice = invoice_issue(invoice=metered_invoice(am), now=ISSUED_AT)
    payment_record(invoice=invoice, amount=Decimal("10.00"), method="bank_transfer", now=ISSUED_AT)
    with pytest.raises(InvalidState, match="credit note"):
        invoice_void(invoice=invoice, reason="x", now=ISSUED_AT)


def test_partial_then_full_credit_notes_reduce_the_amount_due(am):
    invoice = invoice_issue(invoice=metered_invoice(am), now=ISSUED_AT)
    partial = credit_note_create(invoice=invoice, reason="outage 4 h", amount=Decimal("81.72"), now=ISSUED_AT)
    assert (partial.number, partial.total_amount, partial.tax_amount, partial.net_amount) == (
        "CN-2026-000001",
        Decimal("81.72"),
        Decimal("4.63"),
        Decimal("77.09"),
    )
    invoice.refresh_from_db()
    assert (invoice.credited_amount, invoice.amount_due, invoice.status) == (
        Decimal("81.72"),
        Decimal("163.44"),
        "issued",
    )
    assert invoice.total_amount == Decimal("245.16")  # the invoice itself never changes
    with pytest.raises(DomainError, match=r"At most 163\.44") as exc:
        credit_note_create(invoice=invoice, reason="too much", amount=Decimal("200.00"), now=ISSUED_AT)
    assert exc.value.code == "credit_exceeds_invoice"
    rest = credit_note_create(invoice=invoice, reason="contract cancelled", now=ISSUED_AT)
    assert (rest.number, rest.total_amount) == ("CN-2026-000002", Decimal("163.44"))
    # the two notes together give back exactly the line's tax and net
    assert partial.tax_amount + rest.tax_amount == Decimal("13.88")
    assert partial.net_amount + rest.net_amount == Decimal("231.28")
    invoice.refresh_from_db()
    assert (invoice.amount_due, invoice.status) == (Decimal("0"), "paid")
    with pytest.raises(DomainError, match="credited in full already"):
        credit_note_create(invoice=invoice, reason="nothing left", now=ISSUED_AT)
    with pytest.raises(InvalidState):
        credit_note_create(invoice=metered_invoice(am), reason="a draft", now=ISSUED_AT)
    assert CreditNote.objects.count() == 2


def test_a_full_credit_of_a_tax_exclusive_line_nets_its_tax_exactly(am):
    customer = CustomerFactory()
    active(
        customer,
        am,
        [server_line(ServerFactory(), price="999.99", term_discount="0")],
        prices_include_tax=False,
    )
    bill(customer=customer)
    invoice = invoice_issue(invoice=Invoice.objects.get(customer=customer), now=ISSUED_AT)
    line = invoice.lines.get()
    assert (line.net_amount, line.tax_amount, line.gross_amount) == (
        Decimal("999.99"),
        Decimal("130.00"),
        Decimal("1129.99"),
    )
    note = credit_note_create(invoice=invoice, reason="cancelled", now=ISSUED_AT)
    assert (note.net_amount, note.tax_amount, note.total_amount) == (
        Decimal("999.99"),
        Decimal("130.00"),
        Decimal("1129.99"),
    )


def test_bank_transfers_partial_then_paid(am, make_staff):
    finance = make_staff(roles.FINANCE)
    invoice = invoice_issue(invoice=metered_invoice(am), now=ISSUED_AT)
    payment_record(
        invoice=invoice,
        amount=Decimal("200.00"),
        method="bank_transfer",
        reference="B1",
        now=ISSUED_AT,
        actor=finance,
    )
    invoice.refresh_from_db()
    assert (invoice.status, invoice.amount_due) == ("issued", Decimal("45.16"))
    later = ISSUED_AT + datetime.timedelta(days=3)
    payment_record(
        invoice=invoice, amount=Decimal("45.16"), method="bank_transfer", reference="B2", now=later
    )
    invoice.refresh_from_db()
    assert (invoice.status, invoice.paid_amount, invoice.paid_at) == ("paid", Decimal("245.16"), later)
    assert list(
        Payment.objects.order_by("received_at").values_list("reference", "recorded_by__username")
    ) == [
        ("B1", "finance"),
        ("B2", None),
    ]
    with pytest.raises(InvalidState):
        payment_record(invoice=metered_invoice(am), amount=Decimal("1.00"), method="bank_transfer", now=later)


def test_overdue_is_derived(am):
    invoice = invoice_issue(invoice=metered_invoice(am), now=ISSUED_AT)
    assert not invoice.is_overdue(datetime.date(2027, 1, 1))
    assert invoice.is_overdue(datetime.date(2027, 1, 2))
    payment_record(invoice=invoice, amount=Decimal("245.16"), method="bank_transfer", now=ISSUED_AT)
    invoice.refresh_from_db()
    assert not invoice.is_overdue(datetime.date(2027, 1, 2))


# -- auto-issue ---------------------------------------------------------------------------------


def test_the_run_issues_the_drafts_of_auto_issue_customers(am):
    auto, _ = metered_customer(am, code="auto", auto_issue=True)
    manual, _ = metered_customer(am, code="manual")
    run = bill()
    assert (run.status, run.invoices_created, run.errors) == ("done", 2, {})
    issued = Invoice.objects.get(customer=auto)
    assert (issued.status, issued.number, issued.issued_on) == ("issued", "INV-2026-000001", AS_OF.date())
    assert Invoice.objects.get(customer=manual).status == "draft"
    again = bill()  # idempotent: nothing is issued twice, the issued invoice is untouched
    assert (again.invoices_unchanged, again.errors) == (2, {})
    assert Invoice.objects.filter(status="issued").count() == 1
    assert NumberSeries.objects.get(prefix="INV", year=2026).last_value == 1


def test_a_run_of_a_period_that_has_not_ended_issues_nothing_automatically(am):
    auto, _ = metered_customer(am, code="auto", auto_issue=True)
    mid_month = datetime.datetime(2026, 11, 28, 3, 0, tzinfo=SH)
    run = bill(as_of=mid_month)
    assert (run.status, run.invoices_created, run.errors) == ("done", 1, {})
    assert Invoice.objects.get(customer=auto).status == "draft"
    after_close = bill()  # the run after the month closed issues it
    assert (after_close.errors, Invoice.objects.get(customer=auto).number) == ({}, "INV-2026-000001")


def test_a_failing_auto_issue_is_a_run_error_and_the_next_run_issues_it(am, monkeypatch):
    first, _ = metered_customer(am, code="a-first", auto_issue=True)
    second, _ = metered_customer(am, code="b-second", auto_issue=True)
    real = runs.invoice_issue

    def flaky(*, invoice, now, **kwargs):
        if invoice.customer.code == "a-first":
            raise DomainError("fapiao service unavailable")
        return real(invoice=invoice, now=now, **kwargs)

    monkeypatch.setattr(runs, "invoice_issue", flaky)
    run = bill()
    assert run.status == "done_with_errors"
    assert run.errors == {"a-first": "auto-issue failed: DomainError: fapiao service unavailable"}
    assert Invoice.objects.get(customer=first).status == "draft"
    assert Invoice.objects.get(customer=second).number == "INV-2026-000001"
    monkeypatch.setattr(runs, "invoice_issue", real)
    rerun = bill()
    assert (rerun.status, rerun.errors) == ("done", {})
    assert Invoice.objects.get(customer=first).number == "INV-2026-000002"


# -- issue_invoices -----------------------------------------------------------------------------


@time_machine.travel(ISSUED_AT, tick=False)
def test_issue_invoices_command_issues_the_period_in_customer_order(am, capsys):
    for code in ("beta", "acme"):
        metered_customer(am, code=code)
    bill()
    call_command("issue_invoices", "--period", "2026-11", "--no-progress")
    out = capsys.readouterr().out
    assert "INV-2026-000001  acme  245.16 CNY" in out and "INV-2026-000002  beta  245.16 CNY" in out
    assert "Issued 2 invoice(s) of 2026-11; failed 0." in out
    assert set(Invoice.objects.values_list("status", flat=True)) == {"issued"}
    call_command("issue_invoices", "--period", "2026-11", "--no-progress")
    assert "Issued 0 invoice(s)" in capsys.readouterr().out
    with pytest.raises(CommandError, match="YYYY-MM"):
        call_command("issue_invoices", "--period", "2026-13", "--no-progress")
    with pytest.raises(CommandError, match="Unknown customer 'nope'"):
        call_command("issue_invoices", "--period", "2026-11", "--customer", "nope")


@time_machine.travel(ISSUED_AT, tick=False)
def test_issue_invoices_reports_failures_and_issues_the_rest(am, capsys):
    metered_customer(am, code="acme")
    bill()
    Invoice.objects.create(customer=CustomerFactory(code="empty"), period="2026-11")
    with pytest.raises(CommandError, match="1 draft"):
        call_command("issue_invoices", "--period", "2026-11", "--no-progress")
    captured = capsys.readouterr()
    assert "INV-2026-000001  acme" in captured.out
    assert "empty CNY 2026-11: An invoice without lines cannot be issued." in captured.err


@time_machine.travel(datetime.datetime(2026, 11, 29, 9, 0, tzinfo=SH), tick=False)
def test_issue_invoices_command_needs_a_reason_before_the_period_ends(am, capsys):
    metered_customer(am, code="acme")
    bill()
    with pytest.raises(CommandError, match="The period 2026-11 has not ended: issuing early needs a reason"):
        call_command("issue_invoices", "--period", "2026-11", "--no-progress")
    assert Invoice.objects.get().status == "draft"
    call_command(
        "issue_invoices", "--period", "2026-11", "--no-progress", "--early-reason", "customer audit on 30 Nov"
    )
    assert "Issued 1 invoice(s) of 2026-11" in capsys.readouterr().out
    invoice = Invoice.objects.get()
    assert (invoice.status, invoice.early_issue_reason) == ("issued", "customer audit on 30 Nov")


# -- issuing early ------------------------------------------------------------------------------


def test_issuing_before_the_period_ends_needs_a_reason_and_keeps_it(am):
    invoice = metered_invoice(am)
    before_end = datetime.datetime(2026, 11, 30, 23, 59, tzinfo=SH)
    with pytest.raises(DomainError) as refused:
        invoice_issue(invoice=invoice, now=before_end, early_reason="  ")
    assert refused.value.code == "period_not_ended"
    assert refused.value.message == "The period 2026-11 has not ended: issuing early needs a reason."
    invoice.refresh_from_db()
    assert (invoice.status, invoice.number) == ("draft", None)
    issued = invoice_issue(invoice=invoice, now=before_end, early_reason="year-end audit")
    assert (issued.number, issued.early_issue_reason) == ("INV-2026-000001", "year-end audit")


def test_after_the_period_ends_no_reason_is_needed_nor_kept(am):
    period_end = datetime.datetime(2026, 12, 1, 0, 0, tzinfo=SH)
    issued = invoice_issue(invoice=metered_invoice(am), now=period_end, early_reason="not needed")
    assert (issued.status, issued.early_issue_reason) == ("issued", "")


def test_the_early_issue_reason_is_frozen_after_issue(am):
    from django.db import IntegrityError, transaction

    issued = invoice_issue(
        invoice=metered_invoice(am), now=datetime.datetime(2026, 11, 30, 12, tzinfo=SH), early_reason="audit"
    )
    with pytest.raises(IntegrityError, match="frozen"), transaction.atomic():
        Invoice.objects.filter(pk=issued.pk).update(early_issue_reason="changed later")


def test_due_dates_follow_the_billing_time_zone(am):
    invoice = metered_invoice(am)
    late_evening_utc = datetime.datetime(2026, 12, 1, 17, 0, tzinfo=datetime.UTC)  # 2 Dec 01:00 in Shanghai
    issued = invoice_issue(invoice=invoice, now=late_evening_utc)
    assert issued.issued_on == datetime.date(2026, 12, 2) == late_evening_utc.astimezone(SH).date()
