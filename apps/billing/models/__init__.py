"""Billing models, one module per area: runs, invoices (lines, credit notes, payments)."""

from .invoices import (
    CreditNote,
    CreditNoteLine,
    Invoice,
    InvoiceLine,
    InvoiceStatus,
    LineKind,
    Payment,
    PaymentMethod,
)
from .runs import BillingRun, BillingRunStatus

__all__ = [
    "BillingRun",
    "BillingRunStatus",
    "CreditNote",
    "CreditNoteLine",
    "Invoice",
    "InvoiceLine",
    "InvoiceStatus",
    "LineKind",
    "Payment",
    "PaymentMethod",
]
