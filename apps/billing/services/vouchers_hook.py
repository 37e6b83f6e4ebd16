"""Supplier-side vouchers pay part of an invoice when it is issued (SPEC §6).

This module is the seam between issuing and the voucher ledger; it does nothing until voucher
programmes exist.
"""

from __future__ import annotations

import datetime

from ..models import Invoice


def apply_supplier_side_vouchers(*, invoice: Invoice, now: datetime.datetime) -> None:
    try:
        from .vouchers import voucher_apply_at_issue
    except ImportError:
        return
    voucher_apply_at_issue(invoice=invoice, now=now)
