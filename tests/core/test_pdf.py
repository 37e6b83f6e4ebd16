"""apps.core.pdf: every PDF (invoice, credit note, quote, claim-pack summary) embeds its CJK font,
so a viewer with no Chinese font shows the text, and "·" and the Chinese strings extract; numbers
read as people write them (100 %, not 1E+2 %)."""

from __future__ import annotations

import io
from decimal import Decimal

import pytest
from pypdf import PdfReader
from pypdf.generic import IndirectObject

from apps.accounts import roles
from apps.billing.invoicing import selectors
from apps.billing.invoicing.pdf import credit_note_pdf, invoice_pdf
from apps.billing.invoicing.services.issuing import credit_note_create, invoice_issue
from apps.billing.vouchers.claim_pack import contract_summary_pdf
from apps.contracts.quote_pdf import quote_pdf
from apps.contracts.quotes import contract_quote
from apps.core import pdf
from tests.factories.catalogue import CustomerFactory, ServerFactory, gpu_model
from tests.factories.contracts import card_line, draft, p_line
from tests.factories.invoices import ISSUED_AT, metered_invoice

pytestmark = pytest.mark.django_db


def _resolve(obj):
    return obj.get_object() if isinstance(obj, IndirectObject) else obj


def font_report(content: bytes) -> dict[str, bool]:
    """What ``pdffonts`` lists: each font of every page (and of its form XObjects), embedded or not.

    A Type0 (composite) font is embedded when its descendant's descriptor carries the font file.
    """
    report: dict[str, bool] = {}

    def walk(resources) -> None:
        resources = _resolve(resources) or {}
        for font in (_resolve(resources.get("/Font")) or {}).values():
            font = _resolve(font)
            descriptors = []
            if font.get("/Subtype") == "/Type0":
                for descendant in _resolve(font["/DescendantFonts"]):
                    descriptors.append(_resolve(_resolve(descendant).get("/FontDescriptor")))
            else:
                descriptors.append(_resolve(font.get("/FontDescriptor")))
            report[str(font.get("/BaseFont"))] = all(
                d is not None and any(k in d for k in ("/FontFile", "/FontFile2", "/FontFile3"))
                for d in descriptors
            )
        for xobject in (_resolve(resources.get("/XObject")) or {}).values():
            xobject = _resolve(xobject)
            if xobject.get("/Subtype") == "/Form":
                walk(xobject.get("/Resources"))

    for page in PdfReader(io.BytesIO(content)).pages:
        walk(page.get("/Resources"))
    return report


def text_of(content: bytes) -> str:
    return "".join(page.extract_text() for page in PdfReader(io.BytesIO(content)).pages)


def assert_embedded(content: bytes) -> None:
    report = font_report(content)
    assert report, "the PDF has no fonts"
    assert all(report.values()), f"fonts not embedded: {[n for n, ok in report.items() if not ok]}"
    assert not any("STSong" in name for name in report)


@pytest.fixture
def am(make_staff):
    return make_staff(roles.ACCOUNT_MANAGER, username="am1")


def test_the_font_file_comes_with_the_project():
    # static/fonts/ is committed with its licence, so a fresh machine needs no system font
    assert pdf.CJK_FONT_FILE.is_file()
    assert (pdf.CJK_FONT_FILE.parent / "LICENSE-wqy-microhei-Apache-2.0.txt").is_file()
    assert str(pdf.CJK_FONT_FILE).startswith(str(pdf.Path(__file__).resolve().parents[2]))


def test_a_plain_document_embeds_its_font_and_extracts_chinese_and_the_middle_dot():
    content = pdf.build(
        [pdf.para("发票 Invoice · 草稿 DRAFT", pdf.TITLE), pdf.table([["客户", "金额 ¥"]])], title="t"
    )
    assert_embedded(content)
    text = text_of(content)
    assert "发票 Invoice · 草稿 DRAFT" in text
    assert "客户" in text and "金额 ¥" in text


def test_invoice_and_credit_note_pdfs_embed_the_font_and_keep_the_middle_dot(am):
    invoice = invoice_issue(invoice=metered_invoice(am, name="北京智算科技有限公司"), now=ISSUED_AT)
    content = invoice_pdf(selectors.invoice_for_pdf(invoice.pk))
    assert_embedded(content)
    text = text_of(content)
    assert "北京智算科技有限公司" in text
    assert f"发票号码 Number: {invoice.number} · 状态 Status:" in text
    assert "账期 Billing period: 2026-11 · 币种 Currency: CNY" in text

    note = credit_note_create(invoice=invoice, reason="服务中断补偿 outage credit", now=ISSUED_AT)
    content = credit_note_pdf(selectors.credit_note_for_pdf(note.pk))
    assert_embedded(content)
    text = text_of(content)
    assert f"原发票 Original invoice: {invoice.number} · 账期 Billing period: 2026-11" in text
    assert "服务中断补偿" in text


def test_quote_pdf_embeds_the_font_and_prints_100_percent_10_and_2_496(am):
    contract = draft(
        CustomerFactory(name="上海算力科技有限公司"),
        am,
        [
            p_line(ServerFactory(gpu_model=gpu_model("A100-SXM4-40GB")), "2.496"),
            p_line(ServerFactory(gpu_model=gpu_model("A100-SXM4-40GB")), "10"),
        ],
    )
    content = quote_pdf(contract_quote(contract=contract, utilisation_percent=Decimal("100")))
    assert_embedded(content)
    text = text_of(content)
    assert "预计使用率 Expected utilisation: 100%" in text
    assert "1E+" not in text
    assert f"报价单 Quotation · {contract.number}" in text
    assert "上海算力科技有限公司" in text
    cells = text.split()
    assert "2.496" in cells and "10" in cells


def test_claim_pack_contract_summary_embeds_the_font(am):
    server = ServerFactory()
    contract = draft(CustomerFactory(name="深圳智算有限公司"), am, [card_line(server, 2)])
    content = contract_summary_pdf(contract)
    assert_embedded(content)
    text = text_of(content)
    assert f"合同摘要 Contract summary · {contract}" in text
    assert "深圳智算有限公司" in text
