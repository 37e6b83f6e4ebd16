"""Invoices, credit notes, payments and billing runs (docs/api.md#shapes): money and quantities as strings."""

from __future__ import annotations

from decimal import Decimal

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from apps.billing.models import BillingRun, CreditNote, CreditNoteLine, Invoice, InvoiceLine, Payment
from apps.customers.models import Customer

from .fields import DecimalStringField, NaturalKeyField, StrictCharField


def _money(**kwargs) -> DecimalStringField:
    return DecimalStringField(max_digits=16, decimal_places=2, read_only=True, **kwargs)


def _exact(**kwargs) -> DecimalStringField:
    return DecimalStringField(max_digits=20, decimal_places=6, read_only=True, **kwargs)


class InvoiceLineSerializer(serializers.ModelSerializer):
    contract = serializers.CharField(source="contract.number", read_only=True, help_text="Contract number.")
    quantity = _exact(min_places=0)
    list_unit_price = _exact()
    unit_price = _exact(help_text="Effective unit price after discounts, on the contract's tax basis.")
    discount_amount = _money()
    amount = _money(help_text="The line's charge on the contract's tax basis.")
    tax_rate = DecimalStringField(max_digits=5, decimal_places=4, read_only=True, help_text="e.g. 0.06")
    tax_amount = _money()
    net_amount = _money(help_text="Excluding VAT.")
    gross_amount = _money(help_text="Including VAT.")

    class Meta:
        model = InvoiceLine
        # Every stored field of the line, in model order (a new one is served without another list).
        fields = [f.name for f in InvoiceLine._meta.concrete_fields if f.name not in ("id", "invoice")]
        read_only_fields = fields


class InvoiceSerializer(serializers.ModelSerializer):
    customer = serializers.CharField(source="customer.code", read_only=True, help_text="Customer code.")
    overdue = serializers.SerializerMethodField(help_text="Issued, unpaid and past its due date.")
    net_amount = _money()
    tax_amount = _money()
    total_amount = _money(help_text="Including VAT.")
    voucher_amount = _money(help_text="Paid by compute vouchers (supplier-side programmes).")
    credited_amount = _money()
    paid_amount = _money()
    amount_due = _money(help_text="total − credited − vouchers − paid, never below 0.")
    lines = InvoiceLineSerializer(many=True, read_only=True)

    class Meta:
        model = Invoice
        fields = [
            "id",
            "number",
            "customer",
            "status",
            "overdue",
            "period",
            "currency",
            "prices_include_tax",
            "net_amount",
            "tax_amount",
            "total_amount",
            "voucher_amount",
            "credited_amount",
            "paid_amount",
            "amount_due",
            "issued_on",
            "due_on",
            "issued_at",
            "paid_at",
            "voided_at",
            "void_reason",
            "early_issue_reason",
            "reconciliation_status",
            "reconciliation_decision",
            "lines",
        ]
        read_only_fields = fields

    @extend_schema_field(serializers.BooleanField())
    def get_overdue(self, obj: Invoice) -> bool:
        return obj.is_overdue(self.context["today"])


class IssueSerializer(serializers.Serializer):
    early_reason = StrictCharField(
        max_length=300,
        required=False,
        allow_blank=True,
        default="",
        help_text="Required to issue before the invoice's period has ended (else 409 period_not_ended).",
    )


class VoidSerializer(serializers.Serializer):
    reason = StrictCharField(max_length=300)


class PaymentCreateSerializer(serializers.Serializer):
    """A bank transfer (对公转账) received for an issued invoice; partial payments are allowed."""

    amount = DecimalStringField(max_digits=16, decimal_places=2, min_value=Decimal("0.01"))
    reference = StrictCharField(max_length=200, help_text="The bank's reference of the transfer.")
    received_at = serializers.DateTimeField(required=False, help_text="Default: now.")


class PaymentSerializer(serializers.ModelSerializer):
    invoice = serializers.IntegerField(source="invoice_id", read_only=True)
    amount = _money()
    recorded_by = serializers.CharField(
        source="recorded_by.username", read_only=True, allow_null=True, default=None
    )

    class Meta:
        model = Payment
        fields = ["id", "invoice", "method", "amount", "currency", "reference", "received_at", "recorded_by"]
        read_only_fields = fields


class BankTransferSerializer(serializers.Serializer):
    """A recorded bank transfer: the payment it made (empty when nothing was due) and the part
    that exceeded the amount due, now the customer's credit (docs/invoices.md#bank-transfers)."""

    id = serializers.IntegerField(source="payment.id", read_only=True, allow_null=True, default=None)
    invoice = serializers.IntegerField(
        source="payment.invoice_id", read_only=True, allow_null=True, default=None
    )
    method = serializers.CharField(source="payment.method", read_only=True, allow_null=True, default=None)
    amount = _money(source="payment.amount", default=None)
    currency = serializers.CharField(source="payment.currency", read_only=True, allow_null=True, default=None)
    reference = serializers.CharField(
        source="payment.reference", read_only=True, allow_null=True, default=None
    )
    received_at = serializers.DateTimeField(
        source="payment.received_at", read_only=True, allow_null=True, default=None
    )
    recorded_by = serializers.CharField(
        source="payment.recorded_by.username", read_only=True, allow_null=True, default=None
    )
    credit_amount = _money(
        source="credit.amount", default=Decimal("0.00"), help_text="Became customer credit."
    )
    credit_balance = _money(
        source="credit.balance_after", default=None, help_text="The customer's credit balance after it."
    )


class CreditNoteLineSerializer(serializers.ModelSerializer):
    tax_rate = DecimalStringField(max_digits=5, decimal_places=4, read_only=True)
    net_amount = _money()
    tax_amount = _money()
    gross_amount = _money()

    class Meta:
        model = CreditNoteLine
        fields = ["invoice_line", "description", "tax_rate", "net_amount", "tax_amount", "gross_amount"]
        read_only_fields = fields


class CreditNoteSerializer(serializers.ModelSerializer):
    invoice = serializers.IntegerField(source="invoice_id", read_only=True)
    invoice_number = serializers.CharField(source="invoice.number", read_only=True)
    customer = serializers.CharField(source="invoice.customer.code", read_only=True)
    currency = serializers.CharField(source="invoice.currency", read_only=True)
    net_amount = _money()
    tax_amount = _money()
    total_amount = _money()
    lines = CreditNoteLineSerializer(many=True, read_only=True)

    class Meta:
        model = CreditNote
        fields = [
            "id",
            "number",
            "invoice",
            "invoice_number",
            "customer",
            "currency",
            "reason",
            "net_amount",
            "tax_amount",
            "total_amount",
            "issued_at",
            "lines",
        ]
        read_only_fields = fields


class CreditNoteCreateSerializer(serializers.Serializer):
    invoice = serializers.IntegerField(min_value=1, max_value=2**63 - 1, help_text="Invoice id.")
    reason = StrictCharField(max_length=300)
    amount = DecimalStringField(
        max_digits=16,
        decimal_places=2,
        min_value=Decimal("0.01"),
        required=False,
        help_text="Amount incl. VAT, spread over the lines; omitted: everything still open (full credit).",
    )


class BillingRunCreateSerializer(serializers.Serializer):
    period = StrictCharField(max_length=7, help_text="YYYY-MM")
    customer = NaturalKeyField(
        noun="customer",
        slug_field="code",
        queryset=Customer.objects.all(),
        required=False,
        allow_null=True,
        help_text="Customer code: bill only this customer.",
    )


class BillingRunSerializer(serializers.ModelSerializer):
    customer = serializers.CharField(source="customer.code", read_only=True, allow_null=True, default=None)
    requested_by = serializers.CharField(
        source="requested_by.username", read_only=True, allow_null=True, default=None
    )
    progress_percent = serializers.IntegerField(read_only=True)

    class Meta:
        model = BillingRun
        fields = [
            "id",
            "period",
            "customer",
            "status",
            "progress_percent",
            "customers_total",
            "customers_done",
            "invoices_created",
            "invoices_refreshed",
            "invoices_unchanged",
            "errors",
            "as_of",
            "requested_by",
            "created_at",
            "started_at",
            "finished_at",
        ]
        read_only_fields = fields


class PreviewLineSerializer(serializers.Serializer):
    position = serializers.IntegerField()
    kind = serializers.CharField()
    contract = serializers.CharField(source="contract_number")
    contract_line = serializers.IntegerField(source="contract_line_id", allow_null=True)
    description = serializers.CharField()
    tax_classification = serializers.CharField()
    quantity = _exact(min_places=0)
    unit = serializers.CharField()
    list_unit_price = _exact()
    unit_price = _exact()
    discount_amount = _money()
    amount = _money()
    tax_rate = DecimalStringField(max_digits=5, decimal_places=4, read_only=True)
    tax_amount = _money()
    net_amount = _money()
    gross_amount = _money()
    service_start_at = serializers.DateTimeField()
    service_end_at = serializers.DateTimeField()


class PreviewInvoiceSerializer(serializers.Serializer):
    """One currency's invoice as a billing run would draft it now."""

    currency = serializers.CharField()
    prices_include_tax = serializers.BooleanField()
    net_amount = _money()
    tax_amount = _money()
    total_amount = _money()
    lines = PreviewLineSerializer(many=True)


class UpcomingInvoiceSerializer(serializers.Serializer):
    """The running month's invoices (one per currency; none without a contract in force)."""

    customer = serializers.CharField(help_text="Customer code.")
    period = serializers.CharField(help_text="YYYY-MM, the month containing as_of.")
    as_of = serializers.DateTimeField(help_text="Usage received up to this instant is included.")
    invoices = PreviewInvoiceSerializer(many=True)
