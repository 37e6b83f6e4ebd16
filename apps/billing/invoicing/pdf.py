"""Invoice and credit-note PDFs: bilingual, with the fapiao data (docs/invoices.md#fapiao-fields);
ReportLab, with the embedded CJK font of apps/core/pdf.py.

Issued documents print the seller and buyer data snapshotted at issue (``invoice.fapiao``), so a
customer renamed later does not change an issued invoice; drafts print live data and say
草稿 DRAFT. Lines are grouped by contract; totals come in figures and in capital numerals (大写).
"""

from __future__ import annotations

from decimal import Decimal
from itertools import groupby

from django.conf import settings
from reportlab.lib import colors
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.platypus import TableStyle

from apps.billing.invoicing.models import CreditNote, Invoice, InvoiceStatus
from apps.billing.invoicing.services.issuing import fapiao_snapshot
from apps.core import pdf
from apps.core.money import ZERO, amount_in_words
from apps.core.periods import local_time_text
from apps.customers.models import InvoiceType

WARNING = ParagraphStyle("warning", parent=pdf.BODY, textColor=colors.HexColor("#b00020"), fontSize=11)

_UNIT_PREFIX = {"card": ("卡", "card"), "server": ("台", "server"), "p": ("P", "P")}
_UNIT_SUFFIX = {"hour": "时", "day": "天", "month": "月", "year": "年"}
_STATUS = {
    InvoiceStatus.DRAFT: "草稿 DRAFT",
    InvoiceStatus.ISSUED: "已开具 Issued",
    InvoiceStatus.PAID: "已支付 Paid",
    InvoiceStatus.VOID: "已作废 VOID",
}


def money(value: Decimal) -> str:
    return f"{value:,.2f}"


def quantity(value: Decimal) -> str:
    text = f"{value:,.6f}".rstrip("0").rstrip(".")
    return text or "0"


def unit_price(value: Decimal) -> str:
    whole, _, frac = quantity(value).partition(".")
    return f"{whole}.{frac.ljust(2, '0')}"


def rate(value: Decimal) -> str:
    return f"{quantity(value * 100)}%"


def unit_label(unit: str) -> str:
    """``card_hour`` → ``卡时 card-hour``; ``p_month`` → ``P月 P-month``; ``item`` → ``项 item``."""
    prefix, _, suffix = unit.partition("_")
    if prefix in _UNIT_PREFIX and suffix in _UNIT_SUFFIX:
        cn, en = _UNIT_PREFIX[prefix]
        return f"{cn}{_UNIT_SUFFIX[suffix]} {en}-{suffix}"
    return "项 item" if unit == "item" else unit


def fapiao_data(invoice: Invoice) -> dict:
    """The snapshot of an issued invoice; live data for a draft (or an old invoice without one)."""
    if invoice.status != InvoiceStatus.DRAFT and invoice.fapiao:
        return invoice.fapiao
    return fapiao_snapshot(invoice=invoice)


def _parties(fapiao: dict) -> list:
    buyer, seller = fapiao["buyer"], fapiao["seller"]
    rows = [
        ["", "购买方 Buyer", "销售方 Seller"],
        ["名称 Name", buyer["name"], seller["name"]],
        ["统一社会信用代码 / 纳税人识别号 Unified social credit code", buyer["tax_id"], seller["tax_id"]],
        ["地址、电话 Address, phone", buyer["address_phone"] or "—", seller["address_phone"] or "—"],
        ["开户行及账号 Bank, account", buyer["bank_account"] or "—", seller["bank_account"] or "—"],
    ]
    return [pdf.table(rows, col_widths=[46 * mm, 70 * mm, 70 * mm])]


def _span_rows(table, rows: list[int], colour: str) -> None:
    style = []
    for row in rows:
        style += [("SPAN", (0, row), (-1, row)), ("BACKGROUND", (0, row), (-1, row), colors.HexColor(colour))]
    table.setStyle(TableStyle(style))


LINE_HEADER = [
    "项目名称 Item",
    "数量 Qty",
    "单位 Unit",
    "单价 Unit price",
    "金额 Amount excl. VAT",
    "税率 Rate",
    "税额 VAT",
    "价税合计 Total incl. VAT",
]
LINE_WIDTHS = [mm * w for w in (62, 16, 17, 19, 22, 11, 18, 21)]


def _line_table(invoice: Invoice):
    rows = [LINE_HEADER]
    group_rows, subtotal_rows = [], []
    lines = sorted(invoice.lines.all(), key=lambda line: line.position)
    # grouped by contract, in the order the contracts first appear
    order = {}
    for line in lines:
        order.setdefault(line.contract_id, len(order))
    lines.sort(key=lambda line: (order[line.contract_id], line.position))
    for _, group in groupby(lines, key=lambda line: line.contract_id):
        group = list(group)
        group_rows.append(len(rows))
        rows.append([f"合同 Contract {group[0].contract}", "", "", "", "", "", "", ""])
        for line in group:
            rows.append(
                [
                    f"{line.tax_classification}\n{line.description}",
                    quantity(line.quantity),
                    unit_label(line.unit),
                    unit_price(line.unit_price),
                    money(line.net_amount),
                    rate(line.tax_rate),
                    money(line.tax_amount),
                    money(line.gross_amount),
                ]
            )
        subtotal_rows.append(len(rows))
        rows.append(
            [
                "小计 Subtotal",
                "",
                "",
                "",
                money(sum((line.net_amount for line in group), ZERO)),
                "",
                money(sum((line.tax_amount for line in group), ZERO)),
                money(sum((line.gross_amount for line in group), ZERO)),
            ]
        )
    rows.append(
        [
            "合计 Total",
            "",
            "",
            "",
            money(invoice.net_amount),
            "",
            money(invoice.tax_amount),
            money(invoice.total_amount),
        ]
    )
    table = pdf.table(rows, col_widths=LINE_WIDTHS)
    _span_rows(table, group_rows, "#f3f3f3")
    table.setStyle(TableStyle([("BACKGROUND", (0, -1), (-1, -1), colors.HexColor("#e8eef7"))]))
    return table


def invoice_pdf(invoice: Invoice) -> bytes:
    """The invoice as a bilingual PDF (pass one from ``selectors.invoice_for_pdf`` to save queries)."""
    fapiao = fapiao_data(invoice)
    is_draft = invoice.status == InvoiceStatus.DRAFT
    invoice_type = InvoiceType(fapiao.get("invoice_type") or InvoiceType.VAT_SPECIAL).label
    number = invoice.number or "—"
    story = [pdf.para(f"发票 Invoice {number}" + (" · 草稿 DRAFT" if is_draft else ""), pdf.TITLE)]
    if is_draft:
        story.append(
            pdf.para(
                "草稿 DRAFT：尚未开具，金额可能随计费运行变化。Not issued: amounts may change with the next billing run.",
                WARNING,
            )
        )
    if invoice.status == InvoiceStatus.VOID:
        story.append(pdf.para(f"已作废 VOID: {invoice.void_reason}", WARNING))
    story += [
        pdf.para(
            f"发票类型 Invoice type: {invoice_type}\n"
            f"发票号码 Number: {number} · 状态 Status: {_STATUS.get(invoice.status, invoice.status)}\n"
            f"开票日期 Issue date: {invoice.issued_on or '—'} · 付款期限 Due date: {invoice.due_on or '—'}\n"
            f"账期 Billing period: {invoice.period} · 币种 Currency: {invoice.currency} · "
            + (
                "单价含税 Unit prices include VAT"
                if invoice.prices_include_tax
                else "单价不含税 Unit prices exclude VAT"
            )
        ),
        pdf.spacer(3),
        *_parties(fapiao),
        pdf.spacer(3),
        _line_table(invoice),
        pdf.spacer(3),
    ]
    words = amount_in_words(invoice.total_amount)
    totals = [
        ["价税合计（大写） Total incl. VAT in words", words],
        ["价税合计（小写） Total incl. VAT in figures", f"{money(invoice.total_amount)} {invoice.currency}"],
        ["其中增值税 of which VAT", f"{money(invoice.tax_amount)} {invoice.currency}"],
    ]
    if invoice.voucher_amount:
        totals.append(
            ["算力券抵扣 Paid by compute vouchers", f"-{money(invoice.voucher_amount)} {invoice.currency}"]
        )
    if invoice.credited_amount:
        totals.append(
            ["红字冲减 Credited by credit notes", f"-{money(invoice.credited_amount)} {invoice.currency}"]
        )
    if invoice.paid_amount:
        totals.append(["已付款 Paid", f"-{money(invoice.paid_amount)} {invoice.currency}"])
    if invoice.voucher_amount or invoice.credited_amount or invoice.paid_amount:
        due = invoice.amount_due
        totals.append(["应付金额 Amount due", f"{money(due)} {invoice.currency}"])
        totals.append(["应付金额（大写） Amount due in words", amount_in_words(due)])
    story.append(pdf.table(totals, col_widths=[76 * mm, 110 * mm], header=False))
    story.append(pdf.spacer(3))
    story.append(
        pdf.para(
            "金额按行四舍五入，税额逐行计算；合计为各行之和。"
            "Each line is rounded half up once and taxed on its own; totals are the sums of the lines.",
            pdf.SMALL,
        )
    )
    return pdf.build(story, title=f"Invoice {number} {invoice.period}")


def credit_note_pdf(note: CreditNote) -> bytes:
    """A credit note (红字发票信息) of an issued invoice; credited amounts print as negatives."""
    invoice = note.invoice
    fapiao = fapiao_data(invoice)
    currency = invoice.currency
    story = [
        pdf.para(f"红字发票 / 贷项通知单 Credit note {note.number}", pdf.TITLE),
        pdf.para(
            f"原发票 Original invoice: {invoice.number} · 账期 Billing period: {invoice.period} · "
            f"币种 Currency: {currency}\n"
            f"开具时间 Issued: {local_time_text(note.issued_at, settings.BILLING_TIME_ZONE)} · "
            f"原因 Reason: {note.reason}"
        ),
        pdf.spacer(3),
        *_parties(fapiao),
        pdf.spacer(3),
    ]
    rows = [["项目名称 Item", "税率 Rate", "金额 Amount excl. VAT", "税额 VAT", "价税合计 Total incl. VAT"]]
    for line in note.lines.all():
        rows.append(
            [
                line.description,
                rate(line.tax_rate),
                money(-line.net_amount),
                money(-line.tax_amount),
                money(-line.gross_amount),
            ]
        )
    rows.append(
        ["合计 Total", "", money(-note.net_amount), money(-note.tax_amount), money(-note.total_amount)]
    )
    story.append(pdf.table(rows, col_widths=[mm * w for w in (96, 14, 26, 24, 26)]))
    story.append(pdf.spacer(3))
    story.append(
        pdf.table(
            [
                ["价税合计（大写） Total in words", amount_in_words(-note.total_amount)],
                ["价税合计（小写） Total in figures", f"{money(-note.total_amount)} {currency}"],
            ],
            col_widths=[76 * mm, 110 * mm],
            header=False,
        )
    )
    return pdf.build(story, title=f"Credit note {note.number}")
