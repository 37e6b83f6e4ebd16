"""Contracts, read-only: lines, prices, discounts, allocations and term."""

from __future__ import annotations

from django.shortcuts import get_object_or_404, render

from apps.core.db_router import replica_view
from apps.portal.access import follow_customer, portal_view
from apps.portal.selectors import portal_contracts


@portal_view
@replica_view
def contract_list_view(request):
    contracts = portal_contracts(user=request.user).filter(customer=request.portal.customer)
    return render(request, "portal/contract_list.html", {"contracts": contracts})


@portal_view
@replica_view
def contract_detail(request, pk: int):
    contract = get_object_or_404(portal_contracts(user=request.user), pk=pk)
    follow_customer(request, contract.customer_id)
    return render(request, "portal/contract_detail.html", {"contract": contract})
