"""The margin report: net revenue − provider cost by contract, provider, GPU model or month (SQL sums)."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from django.db.models import Count, Sum
from django.utils.translation import gettext

from apps.billing.settlements.models import SettlementLine
from apps.billing.settlements.services._period import parse_period
from apps.core.errors import DomainError
from apps.core.money import round_percent
from apps.providers.models import Provider

# --- margin report ----------------------------------------------------------------------------

GROUPS = {
    "contract": ("contract__number", "contract__customer__code"),
    "provider": ("statement__provider__code", "statement__provider__name"),
    "gpu_model": ("gpu_model__name", "gpu_model__vendor"),
    "month": ("statement__period", None),
}


@dataclass(frozen=True)
class MarginRow:
    key: str
    label: str
    currency: str
    line_count: int
    revenue_net_amount: Decimal
    cost_amount: Decimal
    margin_amount: Decimal

    @property
    def margin_percent(self) -> Decimal | None:
        if not self.revenue_net_amount:
            return None
        return round_percent(self.margin_amount * 100 / self.revenue_net_amount, places=1)


@dataclass(frozen=True)
class MarginReport:
    group_by: str
    period_from: str
    period_to: str
    rows: list[MarginRow]
    totals: dict[str, dict[str, Decimal]]  # currency → revenue, cost, margin


def margin_report(
    *,
    period: str | None = None,
    period_from: str | None = None,
    period_to: str | None = None,
    group_by: str = "provider",
    provider: Provider | None = None,
    statuses: list[str] | None = None,
) -> MarginReport:
    """Net revenue − provider cost per contract, provider, GPU model or month, summed in SQL.

    Built from settlement lines (draft statements included unless ``statuses`` says otherwise),
    so shortfall lines and unissued invoices are not in it. Two queries.
    """
    if group_by not in GROUPS:
        raise DomainError(
            gettext("group_by must be one of %(groups)s.") % {"groups": ", ".join(GROUPS)},
            code="invalid",
            fields={"group_by": [gettext("Unknown.")]},
        )
    first = parse_period(period or period_from or "")
    last = parse_period(period or period_to or str(first))
    if last < first:
        raise DomainError(
            gettext("period_to is before period_from."),
            code="invalid",
            fields={"period_to": [gettext("Too early.")]},
        )
    lines = SettlementLine.objects.filter(statement__period__gte=str(first), statement__period__lte=str(last))
    if provider is not None:
        lines = lines.filter(statement__provider=provider)
    if statuses:
        lines = lines.filter(statement__status__in=statuses)
    key_field, label_field = GROUPS[group_by]
    fields = [key_field, "statement__currency"] + ([label_field] if label_field else [])
    sums = {
        "revenue": Sum("revenue_net_amount"),
        "cost": Sum("cost_amount"),
        "margin": Sum("margin_amount"),
    }
    rows = [
        MarginRow(
            key=r[key_field],
            label=r[label_field] if label_field else r[key_field],
            currency=r["statement__currency"],
            line_count=r["n"],
            revenue_net_amount=r["revenue"],
            cost_amount=r["cost"],
            margin_amount=r["margin"],
        )
        for r in lines.values(*fields)
        .annotate(**sums, n=Count("pk"))
        .order_by(key_field, "statement__currency")
    ]
    totals = {
        r["statement__currency"]: {"revenue": r["revenue"], "cost": r["cost"], "margin": r["margin"]}
        for r in lines.values("statement__currency").annotate(**sums).order_by("statement__currency")
    }
    return MarginReport(group_by, str(first), str(last), rows, totals)
