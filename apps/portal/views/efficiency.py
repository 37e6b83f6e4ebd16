"""Efficiency per contract and month: billed card-hours, the agent's busy card-hours, mean
utilisation and energy (docs/hardware-truth.md#sla-credits-and-efficiency)."""

from __future__ import annotations

from django.conf import settings
from django.shortcuts import render
from django.utils import timezone

from apps.billing.invoicing.efficiency import contract_efficiency_list
from apps.core.db_router import replica_view
from apps.core.periods import Period
from apps.portal.access import portal_view

MONTHS_SHOWN = 12


def _periods(now) -> list[Period]:
    """The running month and the eleven before it, newest first."""
    period = Period.containing(now, settings.BILLING_TIME_ZONE)
    out = []
    for _ in range(MONTHS_SHOWN):
        out.append(period)
        period = period.previous()
    return out


@portal_view
@replica_view
def efficiency(request):
    periods = _periods(timezone.now())
    chosen = {str(p): p for p in periods}.get(request.GET.get("period", ""), periods[1])
    rows = contract_efficiency_list(period=chosen, customer_id=request.portal.customer.pk)
    return render(
        request,
        "portal/efficiency.html",
        {"rows": rows, "period": str(chosen), "periods": [str(p) for p in periods]},
    )
