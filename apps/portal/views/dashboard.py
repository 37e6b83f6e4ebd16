"""The dashboard: what is due, this month so far, card-hours per day, efficiency.

What is due is read on every request. The three figures computed from usage (the month so far,
the 90-day chart and last month's efficiency) read every usage record of the customer in their
window, so they are kept for ``PORTAL_DASHBOARD_CACHE_SECONDS`` per customer and language-free
(docs/portal.md#dashboard); the month so far says when it was computed.
"""

from __future__ import annotations

from django.conf import settings
from django.core.cache import cache
from django.shortcuts import render
from django.utils import timezone

from apps.billing.invoicing.selectors import billing_today
from apps.billing.invoicing.services.preview import invoice_preview
from apps.contracts.selectors import contract_list
from apps.core.db_router import replica_view
from apps.core.periods import Period
from apps.portal import selectors
from apps.portal.access import portal_view
from apps.portal.charts import stacked_daily_chart


@portal_view
@replica_view
def dashboard(request):
    customer = request.portal.customer
    now = timezone.now()
    last_month = Period.containing(now, selectors._tz()).previous()
    contracts = contract_list(user=request.user).filter(customer=customer)

    def usage_figures() -> dict:
        return {
            "previews": invoice_preview(customer=customer, as_of=now),
            "daily": selectors.customer_daily_card_hours(customer=customer, now=now),
            "efficiency": selectors.customer_efficiency(contracts=contracts, period=last_month),
        }

    seconds = settings.PORTAL_DASHBOARD_CACHE_SECONDS
    if seconds:
        key = f"portal:dashboard:{customer.pk}:{last_month}"
        figures = cache.get_or_set(key, usage_figures, timeout=seconds)
    else:
        figures = usage_figures()
    context = {
        "amounts_due": selectors.customer_amounts_due(customer=customer, today=billing_today(now)),
        "previews": figures["previews"],
        "chart": stacked_daily_chart(figures["daily"]),
        "chart_days": selectors.CHART_DAYS,
        "efficiency_period": last_month,
        "efficiency": figures["efficiency"],
        "now": now,
    }
    return render(request, "portal/dashboard.html", context)
