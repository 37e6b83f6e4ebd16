"""Billing's models, defined by its three peers and gathered here for Django's app registry:
invoicing (runs, invoices, lines, credit notes, payments), vouchers, provider settlements,
payments (customer credit, Stripe events)."""

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
    ReconciliationCard,
    ReconciliationDecision,
    ReconciliationStatus,
)
from apps.billing.notices.models import Notice, NoticeKind, NoticeStatus
from apps.billing.payments.models import CreditEntry, CreditKind, StripeEvent
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
    "CreditEntry",
    "CreditKind",
    "CreditNote",
    "CreditNoteLine",
    "Invoice",
    "InvoiceLine",
    "InvoiceStatus",
    "LedgerKind",
    "LineKind",
    "Notice",
    "NoticeKind",
    "NoticeStatus",
    "Payment",
    "PaymentMethod",
    "ReconciliationCard",
    "ReconciliationDecision",
    "ReconciliationStatus",
    "SettlementLine",
    "SettlementStatement",
    "SettlementStatus",
    "StripeEvent",
    "Voucher",
    "VoucherFlow",
    "VoucherLedgerEntry",
    "VoucherProgramme",
    "VoucherStatus",
]
