"""Bank transfers and the customer credit ledger (docs/invoices.md#customer-credit): partial and
over-payments, credit paying the next invoice at issue, refunds, the database's last word, and
credit notes giving back what vouchers and the customer paid."""

from __future__ import annotations

import datetime
from decimal import Decimal

import pytest
from django.db import IntegrityError, connection, transaction

from apps.accounts import roles
from apps.billing.invoicing.services.issuing import credit_note_create
from apps.billing.models import CreditEntry, Invoice, Payment, VoucherLedgerEntry
from apps.billing.payments.selectors import customer_credit_balance, customer_credit_entries
from apps.billing.payments.services.credit import bank_transfer_record, credit_refund
from apps.billing.vouchers import services as vouchers
from apps.core.errors import DomainError
from tests.factories.billing_flows import SH, issued_invoice
from tests.factories.catalogue import CustomerFactory, ServerFactory

pytestmark = pytest.mark.django_db

DEC_3 = datetime.datetime(2026, 12, 3, 15, tzinfo=SH)


@pytest.fixture
def am(make_staff):
    return make_staff(roles.ACCOUNT_MANAGER, username="am1")


@pytest.fixture
def finance(make_staff):
    return make_staff(roles.FINANCE, username="finance1")


@pytest.fixture
def server():
    return ServerFactory()


@pytest.fixture
def invoice(am, server):
    return issued_invoice(CustomerFactory(), am, server)  # 1,000.00 CNY, issued 2026-12-01


def transfer(invoice, amount, actor, *, reference="ICBC-0001", on=datetime.date(2026, 12, 3)):
    return bank_transfer_record(
        invoice=invoice, amount=Decimal(amount), reference=reference, received_on=on, actor=actor, now=DEC_3
    )


def entries(customer) -> list[tuple[str, Decimal, Decimal]]:
    return list(
        CreditEntry.objects.filter(customer=customer)
        .order_by("pk")
        .values_list("kind", "amount", "balance_after")
    )


def test_a_partial_transfer_leaves_the_rest_due(invoice, finance):
    taken = transfer(invoice, "400.00", finance)
    invoice.refresh_from_db()
    assert (invoice.status, invoice.paid_amount, invoice.amount_due) == (
        "issued",
        Decimal("400.00"),
        Decimal("600.00"),
    )
    assert (taken.payment.method, taken.payment.reference, taken.payment.recorded_by) == (
        "bank_transfer",
        "ICBC-0001",
        finance,
    )
    assert taken.credit is None
    assert taken.payment.received_at == DEC_3  # received today: now
    transfer(invoice, "600.00", finance, reference="ICBC-0002", on=datetime.date(2026, 12, 2))
    invoice.refresh_from_db()
    assert (invoice.status, invoice.amount_due) == ("paid", Decimal("0"))
    earlier = Payment.objects.get(reference="ICBC-0002")
    assert earlier.received_at == datetime.datetime(2026, 12, 2, 12, tzinfo=SH)  # noon of an earlier day


def test_an_overpayment_pays_the_invoice_and_becomes_credit(invoice, finance):
    taken = transfer(invoice, "1100.00", finance)
    invoice.refresh_from_db()
    assert (invoice.status, invoice.paid_amount) == ("paid", Decimal("1000.00"))
    assert taken.payment.amount == Decimal("1000.00")
    assert (taken.credit.kind, taken.credit.amount, taken.credit.payment) == (
        "overpayment",
        Decimal("100.00"),
        taken.payment,
    )
    assert customer_credit_balance(customer=invoice.customer) == Decimal("100.00")


def test_credit_pays_the_next_invoice_at_issue(invoice, finance, am, server):
    transfer(invoice, "1100.00", finance)
    december = issued_invoice(invoice.customer, am, server, period="2026-12")  # 1,000.00 again

    assert (december.status, december.paid_amount, december.amount_due) == (
        "issued",
        Decimal("100.00"),
        Decimal("900.00"),
    )
    payment = Payment.objects.get(invoice=december)
    assert (payment.method, payment.amount) == ("credit", Decimal("100.00"))
    assert entries(invoice.customer) == [
        ("overpayment", Decimal("100.00"), Decimal("100.00")),
        ("applied", Decimal("-100.00"), Decimal("0.00")),
    ]
    applied = CreditEntry.objects.get(kind="applied")
    assert (applied.invoice, applied.payment, applied.note) == (
        december,
        payment,
        f"applied to {december.number}",
    )
    assert customer_credit_balance(customer=invoice.customer) == Decimal("0.00")


def test_credit_larger_than_the_next_invoice_pays_it_and_keeps_the_rest(invoice, finance, am, server):
    transfer(invoice, "2500.00", finance)
    december = issued_invoice(invoice.customer, am, server, period="2026-12")
    assert (december.status, december.amount_due) == ("paid", Decimal("0"))
    assert customer_credit_balance(customer=invoice.customer) == Decimal("500.00")


def test_a_refund_larger_than_the_balance_is_refused(invoice, finance):
    transfer(invoice, "1100.00", finance)
    with pytest.raises(DomainError) as refused:
        credit_refund(
            customer=invoice.customer, amount=Decimal("100.01"), reference="R-1", actor=finance, now=DEC_3
        )
    assert refused.value.message == (
        f"A refund of 100.01 CNY is more than {invoice.customer.code}'s credit balance of 100.00 CNY."
    )
    refund = credit_refund(
        customer=invoice.customer, amount=Decimal("60.00"), reference="R-2", actor=finance, now=DEC_3
    )
    assert (refund.kind, refund.amount, refund.balance_after, refund.created_by) == (
        "refund",
        Decimal("-60.00"),
        Decimal("40.00"),
        finance,
    )
    assert customer_credit_balance(customer=invoice.customer) == Decimal("40.00")


def test_every_entry_shows_who_and_when(invoice, finance, am, server):
    transfer(invoice, "1100.00", finance)
    credit_refund(
        customer=invoice.customer, amount=Decimal("10.00"), reference="R-1", actor=finance, now=DEC_3
    )
    issued_invoice(invoice.customer, am, server, period="2026-12")
    rows = list(
        customer_credit_entries(customer=invoice.customer).values_list(
            "kind", "created_by__username", "created_at"
        )
    )
    assert rows == [
        ("applied", None, datetime.datetime(2027, 1, 1, 10, tzinfo=SH)),  # the issue step: no person
        ("refund", "finance1", DEC_3),
        ("overpayment", "finance1", DEC_3),
    ]


def test_transfers_are_refused_on_drafts_void_invoices_and_without_a_reference(invoice, finance):
    with pytest.raises(DomainError, match="reference"):
        transfer(invoice, "10.00", finance, reference="  ")
    with pytest.raises(DomainError, match="after today"):
        transfer(invoice, "10.00", finance, on=datetime.date(2026, 12, 4))
    Invoice.objects.filter(pk=invoice.pk).update(status="void")
    with pytest.raises(DomainError, match="is void"):
        transfer(invoice, "10.00", finance)
    assert Payment.objects.filter(invoice=invoice).count() == 0


def test_the_database_refuses_a_negative_balance_and_edits_of_the_ledger(invoice, finance):
    transfer(invoice, "1100.00", finance)
    entry = CreditEntry.objects.get()
    with pytest.raises(IntegrityError, match="creditentry_balance_non_negative"), transaction.atomic():
        with connection.cursor() as cursor:  # past the service: raw SQL, a balance that continues the chain
            cursor.execute(
                "INSERT INTO billing_creditentry (customer_id, currency, kind, amount, balance_after, reference,"
                " note, created_at) VALUES (%s, 'CNY', 'refund', -200.00, -100.00, '', '', now())",
                [invoice.customer_id],
            )
    with pytest.raises(IntegrityError, match="not the previous balance"), transaction.atomic():
        with connection.cursor() as cursor:  # credit out of nothing
            cursor.execute(
                "INSERT INTO billing_creditentry (customer_id, currency, kind, amount, balance_after, reference,"
                " note, created_at) VALUES (%s, 'CNY', 'adjustment', 5.00, 500.00, '', '', now())",
                [invoice.customer_id],
            )
    with pytest.raises(IntegrityError, match="append-only"), transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("UPDATE billing_creditentry SET balance_after = -1 WHERE id = %s", [entry.pk])
    with pytest.raises(IntegrityError, match="append-only"), transaction.atomic():
        CreditEntry.objects.filter(pk=entry.pk).delete()
    assert entries(invoice.customer) == [("overpayment", Decimal("100.00"), Decimal("100.00"))]


# --- credit notes give back what vouchers and the customer paid ------------------------------


def programme_30():
    return vouchers.voucher_programme_create(
        code="cd-2026",
        issuer="成都市经济和信息化局",
        flow="supplier_side",
        coverage_percent=Decimal("30"),
        valid_from=datetime.date(2026, 1, 1),
        valid_to=datetime.date(2026, 12, 31),
    )


def test_a_half_credit_note_gives_the_voucher_15_percent_and_the_customer_half_of_what_they_paid(
    am, finance, server
):
    customer = CustomerFactory()
    voucher = vouchers.voucher_issue(
        programme=programme_30(),
        customer=customer,
        amount=Decimal("5000.00"),
        now=datetime.datetime(2026, 11, 1, 9, tzinfo=SH),
    )
    invoice = issued_invoice(customer, am, server, price="100.00")  # 100 h × 100.00 = 10,000.00
    assert (invoice.voucher_amount, invoice.amount_due) == (Decimal("3000.00"), Decimal("7000.00"))  # 30 %
    transfer(invoice, "7000.00", finance)

    note = credit_note_create(
        invoice=invoice,
        actor=finance,
        reason="half the hours were down",
        amount=Decimal("5000.00"),
        now=DEC_3,
    )

    # By hand: the voucher paid 3,000.00 of 10,000.00, so it gets back 5,000.00 × 30 % = 1,500.00
    # (15 % of the total); the customer paid 7,000.00 and gets 5,000.00 − 1,500.00 = 3,500.00.
    voucher.refresh_from_db()
    assert voucher.balance == Decimal("5000.00") - Decimal("3000.00") + Decimal("1500.00")
    back = VoucherLedgerEntry.objects.get(voucher=voucher, kind="reverse")
    assert (back.amount, back.invoice, back.note) == (
        Decimal("1500.00"),
        invoice,
        f"share of credit note {note.number} on {invoice.number}",
    )
    credit = CreditEntry.objects.get(customer=customer)
    assert (credit.kind, credit.amount, credit.credit_note, credit.created_by) == (
        "credit_note",
        Decimal("3500.00"),
        note,
        finance,
    )
    invoice.refresh_from_db()
    assert (
        invoice.status,
        invoice.credited_amount,
        invoice.voucher_amount,
        invoice.paid_amount,
        invoice.amount_due,
    ) == (
        "paid",
        Decimal("5000.00"),
        Decimal("1500.00"),
        Decimal("3500.00"),
        Decimal("0"),
    )
    # the programme's report nets the reversal
    report = vouchers.voucher_redemption_report(
        programme=voucher.programme, date_from=datetime.date(2026, 12, 1), date_to=datetime.date(2026, 12, 31)
    )
    assert [(r.kind, r.amount) for r in report.rows] == [
        ("redeem", Decimal("3000.00")),
        ("reverse", Decimal("-1500.00")),
    ]
    assert report.total_amount == Decimal("1500.00")


def test_a_credit_note_on_an_unpaid_voucher_invoice_lowers_what_is_due(am, finance, server):
    customer = CustomerFactory()
    vouchers.voucher_issue(
        programme=programme_30(),
        customer=customer,
        amount=Decimal("5000.00"),
        now=datetime.datetime(2026, 11, 1, 9, tzinfo=SH),
    )
    invoice = issued_invoice(customer, am, server)  # 1,000.00; voucher 300.00; due 700.00
    transfer(invoice, "200.00", finance)
    credit_note_create(invoice=invoice, actor=finance, reason="discount", amount=Decimal("500.00"), now=DEC_3)
    invoice.refresh_from_db()
    # left to pay: 500.00, of which the voucher covers 150.00; 200.00 was paid: 150.00 is due
    assert (invoice.status, invoice.voucher_amount, invoice.amount_due) == (
        "issued",
        Decimal("150.00"),
        Decimal("150.00"),
    )
    assert CreditEntry.objects.filter(customer=customer).count() == 0


def test_a_credit_note_gives_back_the_credit_share_and_a_full_note_gives_back_everything(
    invoice, finance, am, server
):
    transfer(invoice, "1200.00", finance)  # 200.00 credit
    december = issued_invoice(invoice.customer, am, server, period="2026-12")  # credit pays 200.00
    transfer(december, "800.00", finance)
    credit_note_create(invoice=december, actor=finance, reason="half", amount=Decimal("500.00"), now=DEC_3)
    # by hand: credit paid 200 of 1,000 → 100.00 back; cash 800 of 1,000 → 400.00 back
    assert entries(invoice.customer)[2:] == [
        ("credit_note", Decimal("100.00"), Decimal("100.00")),
        ("credit_note", Decimal("400.00"), Decimal("500.00")),
    ]
    credit_note_create(invoice=december, actor=finance, reason="the rest", now=DEC_3)
    assert customer_credit_balance(customer=invoice.customer) == Decimal("1000.00")
    december.refresh_from_db()
    assert (december.status, december.paid_amount, december.credited_amount) == (
        "paid",
        Decimal("0.00"),
        Decimal("1000.00"),
    )
