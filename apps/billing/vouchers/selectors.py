"""Reads of voucher programmes and vouchers, scoped to who is asking.

Staff see everything (their model permissions decide whether they may read at all); a customer
portal user sees only their customers' vouchers, so a foreign id reads as missing (404).
"""

from __future__ import annotations

from django.db.models import Prefetch, QuerySet

from apps.accounts.models import CustomerMembership
from apps.billing.vouchers.models import Voucher, VoucherLedgerEntry, VoucherProgramme


def voucher_programme_list() -> QuerySet[VoucherProgramme]:
    return VoucherProgramme.objects.all()


def voucher_list(*, user, with_ledger: bool = False) -> QuerySet[Voucher]:
    queryset = Voucher.objects.select_related("programme", "customer")
    if with_ledger:
        ledger = VoucherLedgerEntry.objects.select_related("invoice").order_by("created_at", "pk")
        queryset = queryset.prefetch_related(Prefetch("ledger", queryset=ledger))
    if not user.is_authenticated:
        return queryset.none()
    if user.is_staff:
        return queryset
    return queryset.filter(customer_id__in=CustomerMembership.objects.filter(user=user).values("customer_id"))
