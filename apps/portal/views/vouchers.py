"""Compute vouchers: balances, ledgers, and the claim pack of customer-claim programmes."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from apps.billing.invoicing.models import InvoiceStatus
from apps.billing.invoicing.selectors import invoice_list
from apps.billing.vouchers.models import VoucherFlow
from apps.billing.vouchers.selectors import voucher_list
from apps.billing.vouchers.services.claims import claim_pack
from apps.core.db_router import replica_view
from apps.core.errors import DomainError
from apps.portal.access import PAYING_ROLES, follow_customer, portal_view


@portal_view
@replica_view
def voucher_list_view(request):
    vouchers = (
        voucher_list(user=request.user, with_ledger=True)
        .filter(customer=request.portal.customer)
        .order_by("-issued_at", "pk")
    )
    return render(
        request, "portal/voucher_list.html", {"vouchers": vouchers, "claim_flow": VoucherFlow.CUSTOMER_CLAIM}
    )


@require_POST
@portal_view(roles=PAYING_ROLES)
def voucher_claim_pack(request, pk: int):
    """The ZIP to file with a customer-claim programme for the customer's paid invoices
    (docs/vouchers.md#claim-pack); reads only."""
    voucher = get_object_or_404(voucher_list(user=request.user), pk=pk)
    follow_customer(request, voucher.customer_id)
    paid = invoice_list(user=request.user, with_lines=False).filter(
        customer=voucher.customer, status=InvoiceStatus.PAID, currency=voucher.programme.currency
    )
    try:
        content = claim_pack(
            customer=voucher.customer,
            programme=voucher.programme,
            invoices=list(paid.values_list("pk", flat=True)),
            now=timezone.now(),
            voucher=voucher,
        )
    except DomainError as exc:
        messages.error(request, exc.message)
        return redirect("portal:voucher_list")
    response = HttpResponse(content, content_type="application/zip")
    response["Content-Disposition"] = f'attachment; filename="claim-{voucher.number}.zip"'
    return response
