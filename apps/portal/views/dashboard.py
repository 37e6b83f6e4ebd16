"""The dashboard: what is due, this month so far, card-hours per day, efficiency."""

from __future__ import annotations

from django.shortcuts import render
from django.utils import timezone

from apps.billing.invoicing.selectors import billing_today
from apps.billing.invoicing.services.preview import invoice_preview
from apps.contracts.selectors import contract_list
from apps.core.periods import Period
from apps.portal import selectors
from apps.portal.access import portal_view
from apps.portal.charts import stacked_daily_chart


@portal_view
def dashboard(request):
    customer = request.portal.customer
    now = timezone.now()
    last_month = Period.containing(now, selectors._tz()).previous()
    contracts = contract_list(user=request.user).filter(customer=customer)
    context = {
        "amounts_due": selectors.customer_amounts_due(customer=customer, today=billing_today(now)),
        "previews": invoice_preview(customer=customer, as_of=now),
        "chart": stacked_daily_chart(selectors.customer_daily_card_hours(customer=customer, now=now)),
        "chart_days": selectors.CHART_DAYS,
        "efficiency_period": last_month,
        "efficiency": selectors.customer_efficiency(contracts=contracts, period=last_month),
        "now": now,
    }
    return render(request, "portal/dashboard.html", context)
