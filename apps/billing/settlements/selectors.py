"""Reads of provider settlement statements (staff only for now; partner keys may read their own later)."""

from __future__ import annotations

from django.db.models import Prefetch, QuerySet

from apps.billing.settlements.models import SettlementLine, SettlementStatement


def settlement_lines_queryset() -> QuerySet[SettlementLine]:
    return SettlementLine.objects.select_related(
        "contract", "contract_line", "gpu_model", "invoice_line__invoice", "supply_agreement"
    ).order_by("position")


def settlement_list(*, with_lines: bool = False) -> QuerySet[SettlementStatement]:
    queryset = SettlementStatement.objects.select_related("provider", "confirmed_by", "paid_by")
    if with_lines:
        queryset = queryset.prefetch_related(Prefetch("lines", queryset=settlement_lines_queryset()))
    return queryset
