"""Usage records with filters and paging, and their CSV export (streamed)."""

from __future__ import annotations

import csv
import datetime

from django.core.paginator import Paginator
from django.http import StreamingHttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.utils.functional import cached_property

from apps.contracts.selectors import contract_list
from apps.core.db_router import replica_view
from apps.portal.access import portal_view
from apps.portal.forms import UsageFilterForm
from apps.portal.selectors import customer_usage, usage_csv_rows

PAGE_SIZE = 50


class RecentFirstPaginator(Paginator):
    """Pages of newest-first usage without reading all of a large customer's records
    (docs/scaling.md#pages).

    The count stops at ``cap`` + 1 (the page says "more than 10,000 records"; a period filter
    narrows it). A page is looked for among records that started in the last week, then month,
    quarter and year, and only then among all: the first window holding the page's last row holds
    every row before it too, so the rows are the same as the full ordering's.
    """

    cap = 10_000
    window_days = (7, 31, 92, 366)

    def __init__(self, object_list, per_page, *, now: datetime.datetime, **kwargs):
        super().__init__(object_list, per_page, **kwargs)
        self.now = now

    @cached_property
    def count(self) -> int:
        return self.object_list.order_by()[: self.cap + 1].count()

    @property
    def capped(self) -> bool:
        return self.count > self.cap

    def page(self, number):
        number = self.validate_number(number)
        bottom = (number - 1) * self.per_page
        top = bottom + self.per_page
        # a window can hold the page only if there are enough records for it at all
        for days in self.window_days if self.count >= top else ():
            since = self.now - datetime.timedelta(days=days)
            rows = list(self.object_list.filter(start_at__gte=since)[bottom:top])
            if len(rows) == top - bottom:
                return self._get_page(rows, number, self)
        return self._get_page(list(self.object_list[bottom:top]), number, self)


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
    page = RecentFirstPaginator(records, PAGE_SIZE, now=timezone.now()).get_page(request.GET.get("page"))
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
