"""The printable bilingual quote as PDF, drawn from a quote snapshot (docs/quotes.md).

The live preview and a saved version print the same way: the preview from the snapshot of the
quote just computed, a version from the snapshot frozen when it was saved, so a version's PDF
never changes when the draft does.
"""

from __future__ import annotations

import datetime
from decimal import Decimal

from django.conf import settings

from apps.core import pdf
from apps.core.money import amount_in_words
from apps.core.periods import local_time_text

from .quotes import Quote, default_quote_terms, quote_snapshot


def _money(value) -> str:
    return "—" if value is None else f"{Decimal(value):,.2f}"


def _neg(value) -> str:
    return "—" if value is None else f"−{Decimal(value):,.2f}"


def quote_pdf(quote: Quote, *, now: datetime.datetime | None = None) -> bytes:
    """The live preview (not a saved version) as PDF, dated ``now`` (undated when None)."""
    return snapshot_pdf(
        quote_snapshot(quote), terms=default_quote_terms(contract=quote.contract), dated=now, version=None
    )


def snapshot_pdf(
    snapshot: dict, *, terms: str, dated: datetime.datetime | None, version: int | None
) -> bytes:
    contract = snapshot["contract"]
    currency = contract["currency"]
    seller = settings.SELLER
    label = f"第{version}版 Version {version}" if version else "预览 Preview (not saved 未保存)"
    tax_basis = (
        "含税价 Prices include VAT" if contract["prices_include_tax"] else "不含税价 Prices exclude VAT"
    )
    story = [
        pdf.para(f"报价单 Quotation · {contract['number']} · {label}", pdf.TITLE),
        pdf.para(
            (f"日期 Date: {local_time_text(dated, settings.BILLING_TIME_ZONE)}\n" if dated else "")
            + f"卖方 Seller: {seller['name']}\n"
            f"买方 Buyer: {contract['customer']} (统一社会信用代码 {contract['customer_tax_id']})\n"
            f"币种 Currency: {currency} · {tax_basis}\n"
            f"合同期 Contract term: {contract['term_text']}\n"
            f"计费月份 Month priced: {snapshot['period']} · 预计使用率 Expected utilisation: "
            f"{snapshot['utilisation_percent']}%"
        ),
        pdf.spacer(),
        pdf.para("月度报价 Monthly value (one full calendar month 一个完整自然月)"),
    ]
    rows = [
        [
            "#",
            "资源 Resource",
            "数量 Qty",
            "期限 Term",
            "标价 List",
            "期限折扣 Term disc.",
            "协议折扣 Negotiated",
            "税额 Tax",
            "金额 Amount",
        ]
    ]
    for line in snapshot["lines"]:
        term = line["term_label"]
        if line["yearly_billing"] == "upfront":
            term += " (monthly equivalent 月均)"
        rows.append(
            [
                str(line["position"]),
                line["description"],
                line["quantity"],
                term,
                _money(line["list_amount"]),
                _neg(line["term_discount_amount"]),
                _neg(line["negotiated_discount_amount"]),
                _money(line["tax_amount"]),
                _money(line["amount"]),
            ]
        )
    story.append(pdf.table(rows))
    monthly = snapshot["monthly"]
    story.append(pdf.spacer(2))
    story.append(
        pdf.para(
            f"月度合计 Monthly total (incl. VAT 含税): {_money(monthly['gross_amount'])} {currency}\n"
            f"不含税 Excl. VAT: {_money(monthly['net_amount'])} · 税额 VAT: {_money(monthly['tax_amount'])}\n"
            f"大写 In words: {amount_in_words(Decimal(monthly['gross_amount']))}"
        )
    )
    term = snapshot.get("term")
    if term:
        story += _term_story(term, currency)
    story.append(pdf.spacer())
    story.append(pdf.para("条款 Terms"))
    story.append(pdf.para(terms, pdf.SMALL))
    story.append(pdf.spacer())
    story.append(
        pdf.para(
            "按小时计费的资源按预计使用率估算；年付预付资源在每个合同年开始的月份一次性计费。"
            "Hourly resources are estimated at the expected utilisation; upfront yearly lines bill "
            "their whole year in the month it starts.",
            pdf.SMALL,
        )
    )
    title = f"Quotation {contract['number']}" + (f" v{version}" if version else "")
    return pdf.build(story, title=title)


def _term_story(term: dict, currency: str) -> list:
    years = term["years"]
    total = term["total"]
    heading = (
        "前12个月报价 Value of the first 12 months (open-ended contract 无固定期限合同)"
        if term["open_ended"]
        else "合同期总价 Total contract value over the term"
    )
    story = [pdf.spacer(), pdf.para(f"{heading}: {term['range_text']}")]
    head = ["#", "资源 Resource", "期限 Term", *(f"第{y['number']}年 Year {y['number']}" for y in years)]
    rows = [[*head, "合计 Total"]]
    for line in term["lines"]:
        term_text = line["term_label"]
        if line["yearly_billing"]:
            term_text += f" · {line['yearly_billing_label']}"
        rows.append(
            [
                str(line["position"]),
                line["description"],
                term_text,
                *(_money(amount) for amount in line["years"]),
                _money(line["amount"]),
            ]
        )
    story.append(pdf.table(rows))
    story.append(pdf.spacer(2))
    rows = [
        [
            "合同年 Year",
            "期间 Period",
            "标价 List",
            "折扣 Discounts",
            "不含税 Excl. VAT",
            "税额 VAT",
            "含税 Incl. VAT",
        ]
    ]
    for year in years:
        rows.append(
            [
                f"第{year['number']}年 Year {year['number']}",
                year["range_text"],
                _money(year["list_amount"]),
                _neg(year["discount_amount"]),
                _money(year["net_amount"]),
                _money(year["tax_amount"]),
                _money(year["gross_amount"]),
            ]
        )
    rows.append(
        [
            "合计 Total",
            term["label"],
            _money(total["list_amount"]),
            _neg(total["discount_amount"]),
            _money(total["net_amount"]),
            _money(total["tax_amount"]),
            _money(total["gross_amount"]),
        ]
    )
    story.append(pdf.table(rows))
    story.append(pdf.spacer(2))
    label = "前12个月合计 First 12 months total" if term["open_ended"] else "合同期总价 Total over the term"
    story.append(
        pdf.para(
            f"{label} (incl. VAT 含税): {_money(total['gross_amount'])} {currency}\n"
            f"大写 In words: {amount_in_words(Decimal(total['gross_amount']))}"
        )
    )
    return story
