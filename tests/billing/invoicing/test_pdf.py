"""Invoice and credit-note PDFs: the fapiao data and the Chinese text extract correctly
(docs/invoices.md#pdf)."""

from __future__ import annotations

import datetime
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from apps.accounts import roles
from apps.billing.invoicing import selectors
from apps.billing.invoicing.pdf import credit_note_pdf, invoice_pdf, unit_label
from apps.billing.invoicing.services.issuing import credit_note_create, invoice_issue
from apps.billing.invoicing.services.payments import payment_record
from apps.billing.models import Invoice
from apps.core.money import amount_in_words
from tests.factories.catalogue import CustomerFactory, ServerFactory, gpu_model
from tests.factories.contracts import card_line, p_line, server_line
from tests.factories.invoices import ISSUED_AT, active, bill, metered_invoice, pdf_text

pytestmark = pytest.mark.django_db


@pytest.fixture
def am(make_staff):
    return make_staff(roles.ACCOUNT_MANAGER, username="am1")


@pytest.fixture
def invoice(am):
    return metered_invoice(
        am,
        code="acme",
        name="北京智算科技有限公司",
        billing_address="北京市海淀区中关村南大街5号",
        phone="010-62345678",
        bank_name="招商银行北京分行",
        bank_account="110908765432101",
    )


def test_issued_invoice_pdf_carries_the_fapiao_data_and_the_total_in_words(invoice):
    invoice = invoice_issue(invoice=invoice, now=ISSUED_AT)
    text = pdf_text(invoice_pdf(selectors.invoice_for_pdf(invoice.pk)))
    assert "INV-2026-000001" in text
    assert "增值税专用发票" in text and "VATspecial" in text
    # buyer and seller: name, unified social credit code, address and phone, bank and account
    assert "北京智算科技有限公司" in text and invoice.customer.tax_id in text
    assert "北京市海淀区中关村南大街5号010-62345678" in text
    assert "招商银行北京分行110908765432101" in text
    assert "算力租赁平台有限公司" in text and "91110108MA01A2B3C4" in text
    # the line: tax classification, quantity, unit, unit price, excl. tax, rate, tax, incl. tax
    contract = invoice.lines.get().contract
    assert f"合同Contract{contract.number}" in text
    assert "*信息技术服务*算力服务费" in text
    assert "12卡时card-hour20.43231.286%13.88245.16" in text
    # totals in figures and in capital numerals
    assert "价税合计" in text and "贰佰肆拾伍元壹角陆分" in text
    assert "245.16CNY" in text and "其中增值税" in text
    assert "草稿" not in text and "DRAFT" not in text
    assert "2026-12-02" in text and "2027-01-01" in text  # issued on, due on (30 days)


def test_an_issued_invoice_prints_its_snapshot_and_a_draft_live_data_marked_draft(invoice):
    draft_text = pdf_text(invoice_pdf(invoice))
    assert "草稿DRAFT" in draft_text and "北京智算科技有限公司" in draft_text
    invoice_issue(invoice=invoice, now=ISSUED_AT)
    invoice.customer.name = "北京智算科技集团有限公司"
    invoice.customer.save()
    issued_text = pdf_text(invoice_pdf(Invoice.objects.get(pk=invoice.pk)))
    assert "北京智算科技有限公司" in issued_text and "集团" not in issued_text
    assert "草稿" not in issued_text


def test_voucher_part_credit_and_amount_due_are_printed(invoice):
    invoice = invoice_issue(invoice=invoice, now=ISSUED_AT)
    payment_record(invoice=invoice, amount=Decimal("73.55"), method="voucher", now=ISSUED_AT)
    credit_note_create(invoice=invoice, reason="SLA credit", amount=Decimal("10.00"), now=ISSUED_AT)
    text = pdf_text(invoice_pdf(Invoice.objects.get(pk=invoice.pk)))
    assert "算力券抵扣" in text and "-73.55CNY" in text
    assert "红字冲减" in text and "-10.00CNY" in text
    assert "应付金额Amountdue161.61CNY" in text
    assert amount_in_words(Decimal("161.61")) in text  # 壹佰陆拾壹元陆角壹分


def test_lines_are_grouped_by_contract_with_their_own_tax_rates(am):
    a80 = gpu_model("A100-SXM4-80GB")
    customer = CustomerFactory(name="上海深算人工智能有限公司")
    first = active(customer, am, [server_line(ServerFactory(gpu_model=a80), term_discount="15")])
    p = p_line(ServerFactory(gpu_model=a80), "2.5")
    p.allocations.append(type(p.allocations[0])(server=ServerFactory(gpu_model=a80)))
    second = active(customer, am, [p])
    bill(customer=customer)
    invoice = Invoice.objects.get(customer=customer)
    text = pdf_text(invoice_pdf(invoice))
    assert (
        text.index(f"Contract{first.number}")
        < text.index("122,400.00")
        < text.index(f"Contract{second.number}")
        < text.index("35,416.67")
    )
    assert "*经营租赁*服务器租赁费" in text  # the dedicated server lease, at 13 %
    assert "6%" in text and "13%" in text
    assert amount_in_words(invoice.total_amount) in text  # 壹拾伍万柒仟捌佰壹拾陆元陆角柒分
    assert "157,816.67" in text


def test_credit_note_pdf(invoice):
    invoice = invoice_issue(invoice=invoice, now=ISSUED_AT)
    note = credit_note_create(invoice=invoice, reason="服务中断补偿 outage credit", now=ISSUED_AT)
    text = pdf_text(credit_note_pdf(selectors.credit_note_for_pdf(note.pk)))
    assert "CN-2026-000001" in text and "INV-2026-000001" in text
    assert "红字发票" in text and "服务中断补偿" in text
    assert "北京智算科技有限公司" in text
    assert "-231.28" in text and "-13.88" in text and "-245.16" in text
    assert "负贰佰肆拾伍元壹角陆分" in text


def test_credit_note_pdf_dates_the_note_in_the_billing_zone(invoice):
    invoice = invoice_issue(invoice=invoice, now=ISSUED_AT)
    late_evening = datetime.datetime(2026, 12, 3, 17, 30, tzinfo=datetime.UTC)  # Dec 4, 01:30 in Shanghai
    note = credit_note_create(invoice=invoice, reason="outage credit", now=late_evening)
    text = pdf_text(credit_note_pdf(selectors.credit_note_for_pdf(note.pk)))
    assert "Issued:2026-12-0401:30CST(UTC+08:00)" in text  # pdf_text drops the spaces


def test_pdf_queries_do_not_grow_with_lines(am):
    server = ServerFactory()
    customer = CustomerFactory()
    active(customer, am, [card_line(server, 1), server_line(ServerFactory()), p_line(ServerFactory())])
    bill(customer=customer)
    invoice = Invoice.objects.get(customer=customer)
    with CaptureQueriesContext(connection) as ctx:
        invoice_pdf(selectors.invoice_for_pdf(invoice.pk))
    assert len(ctx.captured_queries) <= 4, [q["sql"] for q in ctx.captured_queries]


@pytest.mark.parametrize(
    ("unit", "label"),
    [
        ("card_hour", "卡时 card-hour"),
        ("server_month", "台月 server-month"),
        ("p_year", "P年 P-year"),
        ("item", "项 item"),
    ],
)
def test_unit_labels(unit, label):
    assert unit_label(unit) == label
