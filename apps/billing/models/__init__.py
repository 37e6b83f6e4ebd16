"""Billing models, one module per area: runs, invoices (lines, credit notes, payments), vouchers,
provider settlements."""

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
from .settlements import SettlementLine, SettlementStatement, SettlementStatus
from .vouchers import (
    LedgerKind,
    Voucher,
    VoucherFlow,
    VoucherLedgerEntry,
    VoucherProgramme,
    VoucherStatus,
)

__all__ = [
    "BillingRun",
    "BillingRunStatus",
    "CreditNote",
    "CreditNoteLine",
    "Invoice",
    "InvoiceLine",
    "InvoiceStatus",
    "LedgerKind",
    "LineKind",
    "Payment",
    "PaymentMethod",
    "SettlementLine",
    "SettlementStatement",
    "SettlementStatus",
    "Voucher",
    "VoucherFlow",
    "VoucherLedgerEntry",
    "VoucherProgramme",
    "VoucherStatus",
]
