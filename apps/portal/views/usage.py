"""Usage records with filters and paging, and their CSV export (streamed)."""

from __future__ import annotations

import csv

from django.core.paginator import Paginator
from django.http import StreamingHttpResponse
from django.shortcuts import render

from apps.contracts.selectors import contract_list
from apps.core.db_router import replica_view
from apps.portal.access import portal_view
from apps.portal.forms import UsageFilterForm
from apps.portal.selectors import customer_usage, usage_csv_rows

PAGE_SIZE = 50


def _filtered(request):
    customer = request.portal.customer
    contracts = list(contract_list(user=request.user).filter(customer=customer).order_by("number", "version"))
    form = UsageFilterForm(request.GET or None, contracts=contracts)
    filters = {}
    if form.is_valid():
        filters = {k: v for k, v in form.cleaned_data.items() if v not in (None, "")}
    return form, customer_usage(customer=customer, **filters)


@portal_view
@replica_view
def usage_list(request):
    form, records = _filtered(request)
    page = Paginator(records, PAGE_SIZE).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    return render(request, "portal/usage_list.html", {"form": form, "page": page, "query": query.urlencode()})


class _Echo:
    def write(self, value: str) -> str:
        return value


@portal_view
@replica_view
def usage_csv(request):
    """The filtered records as CSV, written row by row while the database cursor is read."""
    _, records = _filtered(request)
    writer = csv.writer(_Echo())
    response = StreamingHttpResponse(
        (writer.writerow(row) for row in usage_csv_rows(records)), content_type="text/csv; charset=utf-8"
    )
    response["Content-Disposition"] = f'attachment; filename="usage-{request.portal.customer.code}.csv"'
    return response
