"""Billing's models, defined by its three peers and gathered here for Django's app registry:
invoicing (runs, invoices, lines, credit notes, payments), vouchers, provider settlements."""

from apps.billing.invoicing.models import (
    BillingRun,
    BillingRunStatus,
    CreditNote,
    CreditNoteLine,
    Invoice,
    InvoiceLine,
    InvoiceStatus,
    LineKind,
    Payment,
    PaymentMethod,
)
from apps.billing.settlements.models import SettlementLine, SettlementStatement, SettlementStatus
from apps.billing.vouchers.models import (
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
