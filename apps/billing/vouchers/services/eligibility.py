"""Which invoice lines a programme covers (its eligibility rules; see the package docstring)."""

from __future__ import annotations

import datetime
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

from django.db.models import Min
from django.db.models.functions import Coalesce

from apps.billing.invoicing.models import InvoiceLine
from apps.billing.vouchers.models import VoucherProgramme
from apps.billing.vouchers.services._common import local_date
from apps.contracts.models import Allocation, Contract
from apps.core.money import ZERO, decimal_text, round_places

# --- eligibility ------------------------------------------------------------------------------


@dataclass(frozen=True)
class ContractFacts:
    signed_on: datetime.date
    start_at: datetime.datetime
    end_at: datetime.datetime | None


@dataclass
class EligibilityInputs:
    """What the rules need about the contracts of some invoice lines, loaded in three queries."""

    contracts: dict[int, ContractFacts]
    # contract id → [(contract line id, start, end, provider code, is related party)]
    allocations: dict[int, list[tuple[int, datetime.datetime, datetime.datetime | None, str, bool]]]

    @classmethod
    def load(cls, lines: Iterable[InvoiceLine]) -> EligibilityInputs:
        lines = list(lines)
        contract_ids = {line.contract_id for line in lines}
        if not contract_ids:
            return cls({}, {})
        contracts = list(Contract.objects.filter(pk__in=contract_ids).only("number", "start_at", "end_at"))
        first_signed = dict(
            Contract.objects.filter(number__in={c.number for c in contracts})
            .values("number")
            .annotate(first=Min(Coalesce("activated_at", "created_at")))
            .values_list("number", "first")
        )
        facts = {
            c.pk: ContractFacts(local_date(first_signed[c.number]), c.start_at, c.end_at) for c in contracts
        }
        allocations: dict[int, list] = defaultdict(list)
        for row in Allocation.objects.filter(line__contract_id__in=contract_ids, firm=True).values_list(
            "line__contract_id",
            "line_id",
            "start_at",
            "end_at",
            "server__provider__code",
            "server__provider__is_related_party",
        ):
            allocations[row[0]].append(row[1:])
        return cls(facts, allocations)


def line_ineligibility(*, programme: VoucherProgramme, line: InvoiceLine, inputs: EligibilityInputs) -> str:
    """Why ``line`` does not count under ``programme`` ("" when it does)."""
    facts = inputs.contracts[line.contract_id]
    if programme.contract_signed_on_or_after and facts.signed_on < programme.contract_signed_on_or_after:
        return (
            f"contract signed {facts.signed_on}, before {programme.contract_signed_on_or_after} "
            f"合同签订日期早于 {programme.contract_signed_on_or_after}"
        )
    if programme.max_contract_term_days is not None:
        if facts.end_at is None:
            return (
                f"open-ended contract; the term must be at most {programme.max_contract_term_days} days "
                "无固定期限合同不符合期限要求"
            )
        term = facts.end_at - facts.start_at
        if term > datetime.timedelta(days=programme.max_contract_term_days):
            days = decimal_text(round_places(Decimal(term.days * 86400 + term.seconds) / 86400, 1))
            return (
                f"contract term {days} days exceeds {programme.max_contract_term_days} "
                f"合同期限超过 {programme.max_contract_term_days} 天"
            )
    if programme.exclude_related_party_suppliers:
        related = sorted(
            {
                code
                for line_id, start, end, code, is_related in inputs.allocations.get(line.contract_id, ())
                if is_related
                and (line.contract_line_id is None or line_id == line.contract_line_id)
                and start < line.service_end_at
                and (end is None or end > line.service_start_at)
            }
        )
        if related:
            return f"hardware of related-party provider {', '.join(related)} 关联方供应商算力"
    return ""


def eligible_lines(
    *, programme: VoucherProgramme, lines: Iterable[InvoiceLine], inputs: EligibilityInputs
) -> tuple[Decimal, dict[int, str]]:
    """(Σ gross of the eligible lines, {line id: why excluded} for the others)."""
    total, excluded = ZERO, {}
    for line in lines:
        reason = line_ineligibility(programme=programme, line=line, inputs=inputs)
        if reason:
            excluded[line.pk] = reason
        else:
            total += line.gross_amount
    return total, excluded
