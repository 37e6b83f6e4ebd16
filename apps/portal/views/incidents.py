"""Hardware incidents of the customer's allocated cards (docs/hardware-truth.md#sources-and-incidents)."""

from __future__ import annotations

from decimal import Decimal

from django.core.paginator import Paginator
from django.shortcuts import render
from django.utils import timezone

from apps.core.db_router import replica_view
from apps.portal.access import portal_view
from apps.portal.selectors import customer_incidents

PAGE_SIZE = 50


@portal_view
@replica_view
def incident_list(request):
    now = timezone.now()
    incidents = customer_incidents(customer=request.portal.customer, now=now)
    page = Paginator(incidents, PAGE_SIZE).get_page(request.GET.get("page"))
    for incident in page:
        end = incident.ended_at or now
        incident.hours = Decimal(int((end - incident.started_at).total_seconds())) / 3600
    return render(request, "portal/incident_list.html", {"page": page, "query": ""})
