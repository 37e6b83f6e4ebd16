"""The customer's voucher claim pack (docs/vouchers.md#claim-pack): a ZIP built in memory.

```
claim-summary.pdf                  programme, rules, invoices, caps, the claimable amount (大写 too)
invoices/INV-2026-000001.pdf       each invoice (apps.billing.invoicing.pdf.invoice_pdf)
contracts/C-2026-000001.pdf        a summary of each contract billed on them, with its hardware
usage-delivery-report.csv          per invoice line: contract line, period, service time, quantity, unit
```
Rendering only: the numbers come from ``services.vouchers.claim_compute``.
"""

from __future__ import annotations

import csv
import io
import zipfile
from decimal import Decimal

from django.conf import settings
from django.db.models import Prefetch

from apps.billing.invoicing.pdf import invoice_pdf
from apps.billing.vouchers.services import ClaimComputation
from apps.contracts.models import Allocation, Contract, ContractLine
from apps.core import pdf
from apps.core.money import amount_in_words, decimal_text, round_percent, round_places
from apps.core.periods import local_time_text

SUMMARY = "claim-summary.pdf"
USAGE_REPORT = "usage-delivery-report.csv"


def _money(value) -> str:
    return "—" if value is None else f"{value:,.2f}"


def _local(instant) -> str:
    return local_time_text(instant, settings.BILLING_TIME_ZONE)


def _contracts(claim: ClaimComputation) -> list[Contract]:
    ids = {line.contract_id for row in claim.rows for line in row.invoice.lines.all()}
    allocations = Allocation.objects.filter(firm=True).select_related(
        "card", "server__provider", "server__site"
    )
    lines = ContractLine.objects.select_related("gpu_model", "tax_category").prefetch_related(
        Prefetch("allocations", queryset=allocations)
    )
    return list(
        Contract.objects.filter(pk__in=ids)
        .select_related("customer")
        .prefetch_related(Prefetch("lines", queryset=lines))
        .order_by("number", "version")
    )


def contract_summary_pdf(contract: Contract) -> bytes:
    """A contract's terms and the hardware that served it, as filed with a claim."""
    term = "open-ended 无固定期限"
    if contract.end_at:
        length = contract.end_at - contract.start_at
        days = Decimal(length.days * 86400 + length.seconds) / 86400
        term = f"{round_places(days, 1):,.1f} days 天"
    story = [
        pdf.para(f"合同摘要 Contract summary · {contract}", pdf.TITLE),
        pdf.para(
            f"客户 Customer: {contract.customer.name} (统一社会信用代码 {contract.customer.tax_id})\n"
            f"服务方 Supplier: {settings.SELLER['name']}\n"
            f"状态 Status: {contract.get_status_display()} · 生效 Activated: "
            f"{_local(contract.activated_at) if contract.activated_at else '—'}\n"
            f"期间 Term: {_local(contract.start_at)} – {_local(contract.end_at) if contract.end_at else '…'} ({term})\n"
            f"币种 Currency: {contract.currency} · "
            + ("含税价 Prices include VAT" if contract.prices_include_tax else "不含税价 Prices exclude VAT")
        ),
        pdf.spacer(),
    ]
    rows = [["#", "资源 Resource", "数量 Qty", "期限 Term", "标价 List", "折扣 Discount", "税率 VAT"]]
    hardware = [["#", "硬件 Hardware", "供应商 Provider", "机房 Site", "期间 Interval"]]
    for line in contract.lines.all():
        rows.append(
            [
                str(line.position),
                f"{line.gpu_model} {line.get_resource_display()}",
                decimal_text(line.quantity),
                line.get_term_display(),
                decimal_text(line.list_unit_price),
                f"{round_percent(line.combined_discount_percent):.2f}%",
                f"{decimal_text(line.tax_category.rate * 100)}%",
            ]
        )
        for a in line.allocations.all():
            hardware.append(
                [
                    str(line.position),
                    f"{a.card.uuid} ({a.server.serial})" if a.card_id else f"整机 server {a.server.serial}",
                    a.server.provider.name,
                    f"{a.server.site.name} · {a.server.site.get_hub_display()}",
                    f"{_local(a.start_at)} – {_local(a.end_at) if a.end_at else '…'}",
                ]
            )
    story += [pdf.table(rows), pdf.spacer(), pdf.para("资源分配 Allocated hardware"), pdf.table(hardware)]
    return pdf.build(story, title=f"Contract {contract}")


def usage_delivery_csv(claim: ClaimComputation, contracts: list[Contract]) -> bytes:
    """What was delivered and billed: one row per invoice line (UTF-8 with BOM for spreadsheets)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(
        [
            "invoice",
            "period",
            "contract",
            "contract_line",
            "kind",
            "description",
            "service_start",
            "service_end",
            "quantity",
            "unit",
            "unit_price",
            "net_amount",
            "tax_amount",
            "gross_amount",
            "eligible",
            "excluded_because",
        ]
    )
    positions = {line.pk: line.position for c in contracts for line in c.lines.all()}
    for row in claim.rows:
        for line in sorted(row.invoice.lines.all(), key=lambda line: line.position):
            reason = row.excluded_lines.get(line.pk, "")
            writer.writerow(
                [
                    row.invoice.number,
                    row.invoice.period,
                    str(line.contract),
                    positions.get(line.contract_line_id, ""),
                    line.kind,
                    line.description,
                    _local(line.service_start_at),
                    _local(line.service_end_at),
                    decimal_text(line.quantity),
                    line.unit,
                    decimal_text(line.unit_price),
                    f"{line.net_amount:.2f}",
                    f"{line.tax_amount:.2f}",
                    f"{line.gross_amount:.2f}",
                    "no" if reason else "yes",
                    reason,
                ]
            )
    return buffer.getvalue().encode("utf-8-sig")


def claim_summary_pdf(claim: ClaimComputation, files: list[str]) -> bytes:
    programme, customer = claim.programme, claim.customer
    currency = programme.currency
    rules = [
        f"补贴比例 Coverage: {decimal_text(programme.coverage_percent)}%",
        f"年度上限 Cap per company per year: {_money(programme.cap_per_customer_year)}",
        f"单券上限 Cap per voucher: {_money(programme.cap_per_voucher)}",
        f"有效期 Valid: {programme.valid_from} – {programme.valid_to}",
    ]
    if programme.contract_signed_on_or_after:
        rules.append(f"合同签订日不早于 Contract signed on or after: {programme.contract_signed_on_or_after}")
    if programme.max_contract_term_days is not None:
        rules.append(f"合同期限不超过 Contract term at most: {programme.max_contract_term_days} days 天")
    if programme.exclude_related_party_suppliers:
        rules.append("不含关联方供应商算力 Related-party suppliers excluded")
    story = [
        pdf.para("算力券申领汇总 Compute voucher claim summary", pdf.TITLE),
        pdf.para(
            f"项目 Programme: {programme.name or programme.code} ({programme.code}) · 发放机构 Issuer: {programme.issuer}\n"
            f"申领企业 Claimant: {customer.name} · 统一社会信用代码 {customer.tax_id}\n"
            f"服务方 Supplier: {settings.SELLER['name']} · 纳税人识别号 {settings.SELLER['tax_id']}\n"
            + (f"算力券 Voucher: {claim.voucher.number} · " if claim.voucher else "")
            + f"日期 Date: {claim.on} · 币种 Currency: {currency}"
        ),
        pdf.spacer(2),
        pdf.para("规则 Rules: " + " · ".join(rules), pdf.SMALL),
        pdf.spacer(),
    ]
    rows = [
        [
            "发票 Invoice",
            "账期 Period",
            "开票日 Issued",
            "价税合计 Total",
            "合规已付 Eligible paid",
            "补贴额 Coverage",
            "可申领 Claim",
            "说明 Note",
        ]
    ]
    for row in claim.rows:
        inv = row.invoice
        rows.append(
            [
                inv.number,
                inv.period,
                str(inv.issued_on),
                _money(inv.total_amount),
                _money(row.eligible_amount),
                _money(row.coverage_amount),
                _money(row.claim_amount),
                row.note or ("部分行不符合 some lines excluded" if row.excluded_lines else ""),
            ]
        )
    rows.append(
        [
            "合计 Total",
            "",
            "",
            _money(sum((r.invoice.total_amount for r in claim.rows), 0)),
            _money(claim.eligible_amount),
            _money(claim.coverage_amount),
            _money(claim.claimable_amount),
            "",
        ]
    )
    story += [pdf.table(rows), pdf.spacer()]
    excluded = [
        [row.invoice.number, line.description, reason]
        for row in claim.rows
        for line in row.invoice.lines.all()
        if (reason := row.excluded_lines.get(line.pk))
    ]
    if excluded:
        story += [
            pdf.para("不符合条件的项目 Lines not eligible"),
            pdf.table([["发票 Invoice", "项目 Item", "原因 Reason"], *excluded]),
            pdf.spacer(),
        ]
    if claim.limits:
        story += [
            pdf.para("上限 Caps applied (what each still allows)"),
            pdf.table(
                [["上限 Cap", "剩余 Remaining"], *[[label, _money(left)] for label, left in claim.limits]]
            ),
            pdf.spacer(),
        ]
    story += [
        pdf.para(
            f"可申领金额 Claimable amount: {_money(claim.claimable_amount)} {currency}\n"
            f"大写 In words: {amount_in_words(claim.claimable_amount)}"
        ),
        pdf.spacer(),
        pdf.para("附件 Files: " + ", ".join(files), pdf.SMALL),
    ]
    return pdf.build(story, title=f"Voucher claim {programme.code} {customer.code}")


def build_claim_pack(claim: ClaimComputation) -> bytes:
    files: dict[str, bytes] = {}
    for row in claim.rows:
        files[f"invoices/{row.invoice.number}.pdf"] = invoice_pdf(row.invoice)
    contracts = _contracts(claim)
    for contract in contracts:
        files[f"contracts/{contract}.pdf".replace(" ", "-")] = contract_summary_pdf(contract)
    files[USAGE_REPORT] = usage_delivery_csv(claim, contracts)
    summary = claim_summary_pdf(claim, [SUMMARY, *files])
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(SUMMARY, summary)
        for name, content in files.items():
            archive.writestr(name, content)
    return buffer.getvalue()
