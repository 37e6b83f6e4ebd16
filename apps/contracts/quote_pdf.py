"""The printable bilingual quote as PDF."""

from __future__ import annotations

from django.conf import settings

from apps.core import pdf
from apps.core.money import amount_in_words, decimal_text

from .quotes import Quote


def _money(value) -> str:
    return "—" if value is None else f"{value:,.2f}"


def quote_pdf(quote: Quote) -> bytes:
    contract = quote.contract
    seller = settings.SELLER
    story = [
        pdf.para(f"报价单 Quotation · {contract.number}", pdf.TITLE),
        pdf.para(
            f"卖方 Seller: {seller['name']}\n"
            f"买方 Buyer: {contract.customer.name} (统一社会信用代码 {contract.customer.tax_id})\n"
            f"币种 Currency: {contract.currency} · "
            f"{'含税价 Prices include VAT' if contract.prices_include_tax else '不含税价 Prices exclude VAT'}\n"
            f"计费月份 Month priced: {quote.period} · 预计使用率 Expected utilisation: "
            f"{decimal_text(quote.utilisation_percent)}%"
        ),
        pdf.spacer(),
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
    for q in quote.lines:
        line = q.line
        rows.append(
            [
                str(line.position),
                f"{line.gpu_model} {line.get_resource_display()}",
                decimal_text(line.quantity),
                line.get_term_display(),
                _money(q.list_amount),
                _money(q.term_discount_amount),
                _money(q.negotiated_discount_amount),
                _money(q.tax_amount),
                _money(q.amount),
            ]
        )
    story.append(pdf.table(rows))
    story.append(pdf.spacer())
    story.append(
        pdf.para(
            f"合计 Total (incl. VAT 含税): {_money(quote.gross_amount)} {contract.currency}\n"
            f"不含税 Excl. VAT: {_money(quote.net_amount)} · 税额 VAT: {_money(quote.tax_amount)}\n"
            f"大写 In words: {amount_in_words(quote.gross_amount)}"
        )
    )
    story.append(pdf.spacer())
    story.append(
        pdf.para(
            "本报价按一个完整自然月计算，仅供参考，以正式合同为准。"
            "This quotation prices one full calendar month; the signed contract governs.",
            pdf.SMALL,
        )
    )
    return pdf.build(story, title=f"Quotation {contract.number}")
