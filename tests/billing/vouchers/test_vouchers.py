"""Compute vouchers (docs/vouchers.md): supplier-side redemption at issue, caps, eligibility, the ledger,
customer claims and their pack, the redemption report."""

from __future__ import annotations

import csv
import datetime
import io
import threading
import zipfile
from decimal import Decimal

import pytest
from django.db import IntegrityError, connection, transaction
from pypdf import PdfReader

from apps.accounts import roles
from apps.billing.invoicing.services.issuing import invoice_void
from apps.billing.invoicing.services.payments import payment_record
from apps.billing.models import (
    Invoice,
    Payment,
    Voucher,
    VoucherLedgerEntry,
    VoucherProgramme,
    VoucherStatus,
)
from apps.billing.vouchers import services as svc
from apps.core.errors import DomainError
from tests.factories.billing_flows import SH, at, bill, card_contract, issue, issued_invoice, use
from tests.factories.catalogue import CustomerFactory, ProviderFactory, ServerFactory, SiteFactory

pytestmark = pytest.mark.django_db

DEC_1 = datetime.datetime(2026, 12, 1, 10, tzinfo=SH)


@pytest.fixture
def am(make_staff):
    return make_staff(roles.ACCOUNT_MANAGER, username="am1")


def programme(code="cd-2026", **overrides) -> VoucherProgramme:
    values = {
        "issuer": "成都市经济和信息化局",
        "flow": "supplier_side",
        "coverage_percent": Decimal("30"),
        "cap_per_customer_year": Decimal("2000000.00"),
        "valid_from": datetime.date(2026, 1, 1),
        "valid_to": datetime.date(2026, 12, 31),
    }
    values.update(overrides)
    return svc.voucher_programme_create(code=code, **values)


def voucher(prog, customer, amount="50000.00", **kwargs) -> Voucher:
    return svc.voucher_issue(
        programme=prog, customer=customer, amount=Decimal(amount), now=at(1, 9), **kwargs
    )


def ledger(v: Voucher) -> list[tuple[str, Decimal]]:
    return list(VoucherLedgerEntry.objects.filter(voucher=v).order_by("pk").values_list("kind", "amount"))


def assert_balance_is_ledger_sum(v: Voucher) -> None:
    v.refresh_from_db()
    assert v.balance == sum((amount for _, amount in ledger(v)), Decimal(0))
    assert v.balance >= 0


# --- supplier side ----------------------------------------------------------------------------


def test_supplier_side_voucher_pays_30_percent_when_the_invoice_is_issued(am):
    customer = CustomerFactory()
    v = voucher(programme(), customer)
    invoice = issued_invoice(customer, am, ServerFactory())

    assert (invoice.status, invoice.total_amount) == ("issued", Decimal("1000.00"))
    assert invoice.voucher_amount == Decimal("300.00")
    assert invoice.amount_due == Decimal("700.00")
    payment = Payment.objects.get(invoice=invoice)
    assert (payment.method, payment.amount, payment.reference) == (
        "voucher",
        Decimal("300.00"),
        f"{v.number} (cd-2026)",
    )
    assert ledger(v) == [("issue", Decimal("50000.00")), ("redeem", Decimal("-300.00"))]
    entry = VoucherLedgerEntry.objects.get(voucher=v, kind="redeem")
    assert (entry.invoice, entry.payment, entry.base_amount, entry.cap_year) == (
        invoice,
        payment,
        Decimal("1000.00"),
        2026,
    )
    v.refresh_from_db()
    assert (v.balance, v.status) == (Decimal("49700.00"), "active")
    assert_balance_is_ledger_sum(v)


# December issued before it ends, so the invoice falls in 2026 (the year the caps count in)
DEC_31 = datetime.datetime(2026, 12, 31, 10, tzinfo=SH)


def test_the_voucher_balance_caps_the_payment_and_an_exhausted_voucher_pays_nothing(am):
    customer = CustomerFactory()
    server = ServerFactory()
    v = voucher(programme(), customer, "200.00")
    first = issued_invoice(customer, am, server)
    assert (first.voucher_amount, first.amount_due) == (Decimal("200.00"), Decimal("800.00"))
    v.refresh_from_db()
    assert (v.balance, v.status) == (Decimal("0.00"), "exhausted")

    use(server, 50, month=12)
    second = issue(bill(customer, "2026-12"), on=DEC_31, early_reason="issued within 2026")
    assert (second.voucher_amount, second.amount_due) == (Decimal("0.00"), Decimal("500.00"))
    assert ledger(v) == [("issue", Decimal("200.00")), ("redeem", Decimal("-200.00"))]


def test_the_per_customer_year_cap_spans_invoices_and_resets_with_the_year(am):
    customer = CustomerFactory()
    server = ServerFactory()
    prog = programme(cap_per_customer_year=Decimal("500.00"), valid_to=datetime.date(2027, 12, 31))
    v = voucher(prog, customer, "5000.00")
    november = issued_invoice(customer, am, server)  # issued 2026-12-01
    assert november.voucher_amount == Decimal("300.00")

    use(server, 100, month=12, day=3)
    december = issue(bill(customer, "2026-12"), on=DEC_31, early_reason="issued within 2026")
    assert december.voucher_amount == Decimal("200.00")  # 500 − 300 left of 2026's cap

    use(server, 100, month=1, year=2027)
    january = issue(bill(customer, "2027-01"))  # issued 2027-02-01: a new year, a new cap
    assert january.voucher_amount == Decimal("300.00")
    v.refresh_from_db()
    assert v.balance == Decimal("4200.00")
    assert list(
        VoucherLedgerEntry.objects.filter(voucher=v, kind="redeem")
        .order_by("pk")
        .values_list("cap_year", flat=True)
    ) == [2026, 2026, 2027]


def test_the_per_voucher_cap_limits_face_value_and_pay_out(am):
    customer = CustomerFactory()
    prog = programme(cap_per_voucher=Decimal("1000.00"))
    with pytest.raises(DomainError, match=r"caps one voucher at 1,000\.00") as exc:
        voucher(prog, customer, "1000.01")
    assert exc.value.code == "voucher_cap_exceeded"
    v = voucher(prog, customer, "1000.00")
    svc.voucher_programme_update(programme=prog, cap_per_voucher=Decimal("250.00"))
    invoice = issued_invoice(customer, am, ServerFactory())
    assert invoice.voucher_amount == Decimal("250.00")
    v.refresh_from_db()
    assert v.balance == Decimal("750.00")


def test_two_vouchers_of_one_programme_share_its_coverage_soonest_expiring_first(am):
    customer = CustomerFactory()
    prog = programme()
    late = voucher(prog, customer, "1000.00")
    soon = voucher(prog, customer, "100.00", valid_to=datetime.date(2026, 12, 15))
    invoice = issued_invoice(customer, am, ServerFactory())
    assert invoice.voucher_amount == Decimal("300.00")  # one 30 % share, not two
    assert ledger(soon)[-1] == ("redeem", Decimal("-100.00"))
    assert ledger(late)[-1] == ("redeem", Decimal("-200.00"))
    assert Payment.objects.filter(invoice=invoice, method="voucher").count() == 2


def test_vouchers_outside_their_dates_or_of_claim_programmes_do_not_pay(am):
    customer = CustomerFactory()
    voucher(programme("ended", valid_to=datetime.date(2026, 11, 30)), customer, "100.00")
    voucher(programme("short"), customer, "100.00", valid_to=datetime.date(2026, 11, 30))
    voucher(programme("bj-2026", flow="customer_claim"), customer, "100.00")
    voucher(programme("usd", currency="USD"), customer, "100.00")
    invoice = issued_invoice(customer, am, ServerFactory())
    assert (invoice.voucher_amount, invoice.amount_due) == (Decimal("0.00"), Decimal("1000.00"))
    assert not Payment.objects.filter(invoice=invoice).exists()


def test_full_coverage_marks_the_invoice_paid(am):
    customer = CustomerFactory()
    voucher(programme(coverage_percent=Decimal("100")), customer)
    invoice = issued_invoice(customer, am, ServerFactory())
    assert (invoice.status, invoice.voucher_amount, invoice.amount_due) == (
        "paid",
        Decimal("1000.00"),
        Decimal("0.00"),
    )


# --- eligibility ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rule", "contract_kwargs", "reason"),
    [
        (
            {"contract_signed_on_or_after": datetime.date(2026, 11, 1)},
            {},
            "contract signed 2026-10-20, before 2026-11-01",
        ),
        ({}, {"end": datetime.datetime(2027, 11, 3, tzinfo=SH)}, "contract term 367 days exceeds 366"),
        ({}, {"end": None}, "open-ended contract"),
        ({}, {"related": True}, "hardware of related-party provider"),
    ],
    ids=["signed-before", "term-over-a-year", "open-ended", "related-party"],
)
def test_each_eligibility_rule_excludes_a_contract(am, rule, contract_kwargs, reason):
    customer = CustomerFactory()
    prog = programme(**rule)
    voucher(prog, customer)
    related = contract_kwargs.pop("related", False)
    server = ServerFactory(site=SiteFactory(provider=ProviderFactory(is_related_party=related)))
    eligible_server = ServerFactory()
    excluded_contract = card_contract(customer, am, server, **contract_kwargs)
    card_contract(customer, am, eligible_server, price="5.00", now=at(1, 9))  # signed 2026-11-01
    use(server, 100)
    use(eligible_server, 100)
    invoice = bill(customer)
    assert invoice.total_amount == Decimal("1500.00")
    invoice = issue(invoice)
    assert invoice.voucher_amount == Decimal("150.00")  # 30 % of the eligible 500.00 only

    lines = list(invoice.lines.all())
    inputs = svc.EligibilityInputs.load(lines)
    reasons = {
        line.contract_id: svc.line_ineligibility(programme=prog, line=line, inputs=inputs) for line in lines
    }
    assert reason in reasons.pop(excluded_contract.pk)
    assert list(reasons.values()) == [""]


def test_rules_can_be_relaxed(am):
    customer = CustomerFactory()
    voucher(programme(max_contract_term_days=None, exclude_related_party_suppliers=False), customer)
    server = ServerFactory(site=SiteFactory(provider=ProviderFactory(is_related_party=True)))
    invoice = issued_invoice(customer, am, server, end=None)
    assert invoice.voucher_amount == Decimal("300.00")


# --- void, expiry, the ledger's guarantees ----------------------------------------------------


def test_voiding_an_invoice_gives_the_redemption_back(am):
    customer = CustomerFactory()
    prog = programme(cap_per_customer_year=Decimal("400.00"))
    v = voucher(prog, customer, "1000.00")
    invoice = issued_invoice(customer, am, ServerFactory())
    invoice_void(invoice=invoice, reason="wrong customer", now=DEC_1)
    assert ledger(v) == [
        ("issue", Decimal("1000.00")),
        ("redeem", Decimal("-300.00")),
        ("reverse", Decimal("300.00")),
    ]
    v.refresh_from_db()
    assert (v.balance, v.status) == (Decimal("1000.00"), "active")
    reversal = VoucherLedgerEntry.objects.get(kind="reverse")
    assert reversal.reverses.kind == "redeem" and "wrong customer" in reversal.note
    assert svc.programme_redeemed_in_year(customer_id=customer.pk, programme_ids=[prog.pk], year=2026) == {
        prog.pk: Decimal("0.00")
    }
    assert_balance_is_ledger_sum(v)


def test_vouchers_expire_after_their_last_day_once(am):
    customer = CustomerFactory()
    v = voucher(programme(), customer, "800.00", valid_to=datetime.date(2026, 11, 30))
    assert svc.voucher_expire_due(now=at(30, 23)) == 0
    assert svc.voucher_expire_due(now=DEC_1) == 1
    assert svc.voucher_expire_due(now=DEC_1) == 0
    v.refresh_from_db()
    assert (v.status, v.balance) == ("expired", Decimal("0.00"))
    assert ledger(v) == [("issue", Decimal("800.00")), ("expire", Decimal("-800.00"))]


def test_the_database_refuses_a_negative_balance_and_edits_of_the_ledger():
    customer = CustomerFactory()
    v = voucher(programme(), customer, "100.00")
    with pytest.raises(IntegrityError), transaction.atomic():
        Voucher.objects.filter(pk=v.pk).update(balance=Decimal("-1.00"))
    with pytest.raises(IntegrityError, match="append-only"), transaction.atomic():
        VoucherLedgerEntry.objects.filter(voucher=v).update(amount=Decimal("1000.00"))
    with pytest.raises(IntegrityError, match="append-only"), transaction.atomic():
        VoucherLedgerEntry.objects.filter(voucher=v).delete()
    with pytest.raises(IntegrityError, match="does not match its ledger"), transaction.atomic():
        Voucher.objects.filter(pk=v.pk).update(balance=Decimal("50.00"), status=VoucherStatus.ACTIVE)
        with connection.cursor() as cursor:
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_two_concurrent_redemptions_cannot_overdraw_a_voucher(make_staff):
    am = make_staff(roles.ACCOUNT_MANAGER, username="am-v")
    customer = CustomerFactory()
    a, b = ServerFactory(), ServerFactory()
    card_contract(customer, am, a)
    card_contract(customer, am, b, price="20.00")
    use(a, 100)
    use(b, 50)
    invoice = issue(bill(customer))  # 2,000.00; no voucher yet
    use(a, 100, month=12)
    december = issue(bill(customer, "2026-12"))  # 1,000.00
    v = voucher(programme(valid_to=datetime.date(2027, 12, 31)), customer, "500.00")
    barrier = threading.Barrier(2)
    errors: list[Exception] = []

    def redeem(inv):
        try:
            barrier.wait(timeout=10)
            svc.voucher_apply_at_issue(invoice=inv, now=datetime.datetime(2027, 1, 2, tzinfo=SH))
        except Exception as exc:  # surfaced below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=redeem, args=(inv,)) for inv in (invoice, december)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert errors == []
    v.refresh_from_db()
    assert (v.balance, v.status) == (Decimal("0.00"), "exhausted")
    assert sorted(Invoice.objects.values_list("voucher_amount", flat=True)) in (
        [Decimal("0.00"), Decimal("500.00")],
        [Decimal("200.00"), Decimal("300.00")],
    )
    assert sum(Invoice.objects.values_list("voucher_amount", flat=True)) == Decimal("500.00")
    assert_balance_is_ledger_sum(v)


# --- customer claim ---------------------------------------------------------------------------


def test_a_customer_claim_programme_leaves_the_invoice_unchanged(am):
    customer = CustomerFactory()
    v = voucher(programme("bj-2026", flow="customer_claim"), customer)
    invoice = issued_invoice(customer, am, ServerFactory())
    assert (invoice.voucher_amount, invoice.amount_due, invoice.status) == (
        Decimal("0.00"),
        Decimal("1000.00"),
        "issued",
    )
    assert ledger(v) == [("issue", Decimal("50000.00"))]


def test_the_claim_pack_holds_the_documents_and_the_claimable_amount(am):
    customer = CustomerFactory(name="北京智算科技有限公司")
    prog = programme("bj-2026", flow="customer_claim", name="北京算力券")
    v = voucher(prog, customer)
    server = ServerFactory()
    paid = issued_invoice(customer, am, server)
    payment_record(invoice=paid, amount=paid.total_amount, method="bank_transfer", now=DEC_1)
    use(server, 20, month=12)
    unpaid = issue(bill(customer, "2026-12"), on=DEC_31, early_reason="issued within 2026")
    before = Invoice.objects.values_list("pk", "status", "voucher_amount", "paid_amount").order_by("pk")
    before = list(before)

    data = svc.claim_pack(
        customer=customer, programme=prog, invoices=[paid.pk, unpaid.pk], now=DEC_1, voucher=v
    )

    archive = zipfile.ZipFile(io.BytesIO(data))
    contract = paid.lines.get().contract
    assert sorted(archive.namelist()) == sorted(
        [
            "claim-summary.pdf",
            f"invoices/{paid.number}.pdf",
            f"invoices/{unpaid.number}.pdf",
            f"contracts/{contract.number}.pdf",
            "usage-delivery-report.csv",
        ]
    )
    summary = "".join(
        p.extract_text() for p in PdfReader(io.BytesIO(archive.read("claim-summary.pdf"))).pages
    )
    assert "300.00" in summary and "叁佰元整" in summary
    assert "北京智算科技有限公司" in summary and "not paid yet" in summary
    invoice_text = PdfReader(io.BytesIO(archive.read(f"invoices/{paid.number}.pdf"))).pages[0].extract_text()
    assert paid.number in invoice_text
    rows = list(csv.DictReader(io.StringIO(archive.read("usage-delivery-report.csv").decode("utf-8-sig"))))
    assert [(r["invoice"], r["period"], r["quantity"], r["unit"], r["eligible"]) for r in rows] == [
        (paid.number, "2026-11", "100", "card_hour", "yes"),
        (unpaid.number, "2026-12", "20", "card_hour", "yes"),
    ]
    assert rows[0]["contract"] == contract.number and rows[0]["contract_line"] == "1"
    # the claim pack reads only: the invoices are exactly as they were
    after = list(Invoice.objects.values_list("pk", "status", "voucher_amount", "paid_amount").order_by("pk"))
    assert after == before
    assert ledger(v) == [("issue", Decimal("50000.00"))]


def test_claims_respect_caps_count_an_invoice_once_and_move_the_ledger(am):
    customer = CustomerFactory()
    prog = programme("bj-2026", flow="customer_claim", cap_per_customer_year=Decimal("250.00"))
    v = voucher(prog, customer)
    invoice = issued_invoice(customer, am, ServerFactory())
    payment_record(invoice=invoice, amount=Decimal("1000.00"), method="bank_transfer", now=DEC_1)
    claim = svc.claim_compute(customer=customer, programme=prog, invoices=[invoice], now=DEC_1, voucher=v)
    assert (claim.coverage_amount, claim.claimable_amount) == (Decimal("300.00"), Decimal("250.00"))

    entries = svc.voucher_claim_record(voucher=v, invoices=[invoice], now=DEC_1)
    assert [(e.kind, e.amount, e.invoice_id) for e in entries] == [("redeem", Decimal("-250.00"), invoice.pk)]
    again = svc.claim_compute(customer=customer, programme=prog, invoices=[invoice], now=DEC_1, voucher=v)
    assert again.claimable_amount == Decimal("0.00")
    assert "already claimed" in again.rows[0].note
    with pytest.raises(DomainError, match="Nothing is claimable"):
        svc.voucher_claim_record(voucher=v, invoices=[invoice], now=DEC_1)
    invoice.refresh_from_db()
    assert (invoice.voucher_amount, invoice.paid_amount) == (Decimal("0.00"), Decimal("1000.00"))


def test_a_claim_pack_refuses_drafts_foreign_invoices_and_supplier_side_programmes(am):
    customer, other = CustomerFactory(), CustomerFactory()
    claim_prog = programme("bj-2026", flow="customer_claim")
    server = ServerFactory()
    card_contract(customer, am, server)
    use(server, 10)
    draft_invoice = bill(customer)
    with pytest.raises(DomainError, match="only issued invoices"):
        svc.claim_pack(customer=customer, programme=claim_prog, invoices=[draft_invoice.pk], now=DEC_1)
    with pytest.raises(DomainError, match="Unknown invoice") as exc:
        svc.claim_pack(customer=other, programme=claim_prog, invoices=[draft_invoice.pk], now=DEC_1)
    assert exc.value.http_status == 404
    with pytest.raises(DomainError, match="settled supplier-side"):
        svc.claim_pack(customer=customer, programme=programme(), invoices=[draft_invoice.pk], now=DEC_1)


# --- redemption report ------------------------------------------------------------------------


def test_the_redemption_report_sums_a_period_per_customer(am):
    prog = programme(valid_to=datetime.date(2027, 12, 31))
    acme, beta = CustomerFactory(code="acme"), CustomerFactory(code="beta")
    voucher(prog, acme)
    voucher(prog, beta)
    first = issued_invoice(acme, am, ServerFactory())  # 300.00 on 2026-12-01
    issued_invoice(beta, am, ServerFactory(), hours=50)  # 150.00 on 2026-12-01
    server = ServerFactory()
    card_contract(acme, am, server)
    use(server, 10, month=12)
    issue(bill(acme, "2026-12"), on=datetime.datetime(2027, 1, 1, 10, tzinfo=SH))  # next month
    invoice_void(invoice=first, reason="duplicate", now=datetime.datetime(2026, 12, 2, tzinfo=SH))

    report = svc.voucher_redemption_report(programme=prog, period="2026-12")
    assert (report.start, report.end) == (datetime.date(2026, 12, 1), datetime.date(2026, 12, 31))
    assert [(r.kind, r.customer_code, r.amount) for r in report.rows] == [
        ("redeem", "acme", Decimal("300.00")),
        ("redeem", "beta", Decimal("150.00")),
        ("reverse", "acme", Decimal("-300.00")),
    ]
    assert [(c.code, c.count, c.amount) for c in report.customers] == [
        ("acme", 2, Decimal("0.00")),
        ("beta", 1, Decimal("150.00")),
    ]
    assert report.total_amount == Decimal("150.00")
    january = svc.voucher_redemption_report(
        programme=prog, date_from=datetime.date(2027, 1, 1), date_to=datetime.date(2027, 1, 31)
    )
    assert (january.total_amount, len(january.rows)) == (Decimal("30.00"), 1)
    with pytest.raises(DomainError, match="YYYY-MM"):
        svc.voucher_redemption_report(programme=prog, period="2026-13")
