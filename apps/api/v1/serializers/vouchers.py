"""Voucher programmes, vouchers and their ledger (docs/vouchers.md): natural keys in, money as
strings (docs/api.md#shapes)."""

from __future__ import annotations

from rest_framework import serializers

from apps.billing.models import Voucher, VoucherLedgerEntry, VoucherProgramme
from apps.customers.models import Customer

from .common import ImmutableFieldsMixin
from .fields import DecimalStringField, ModelSerializer, NaturalKeyField, StrictCharField


def _money(**kwargs) -> DecimalStringField:
    return DecimalStringField(max_digits=16, decimal_places=2, **kwargs)


class VoucherProgrammeSerializer(ImmutableFieldsMixin, ModelSerializer):
    coverage_percent = DecimalStringField(
        max_digits=5, decimal_places=2, min_places=0, help_text='Share of an eligible bill paid, e.g. "30".'
    )
    cap_per_customer_year = _money(required=False, allow_null=True, help_text="Empty: no yearly cap.")
    cap_per_voucher = _money(required=False, allow_null=True, help_text="Empty: no cap per voucher.")

    class Meta:
        model = VoucherProgramme
        fields = [
            "id",
            "code",
            "name",
            "issuer",
            "flow",
            "currency",
            "coverage_percent",
            "cap_per_customer_year",
            "cap_per_voucher",
            "valid_from",
            "valid_to",
            "contract_signed_on_or_after",
            "max_contract_term_days",
            "exclude_related_party_suppliers",
            "notes",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["id", "created_at", "updated_at"]
        immutable_fields = ("code",)


class VoucherLedgerEntrySerializer(serializers.ModelSerializer):
    amount = _money(read_only=True, help_text="Signed: + adds to the balance, − takes from it.")
    balance_after = _money(read_only=True)
    base_amount = _money(read_only=True, allow_null=True)
    invoice = serializers.CharField(source="invoice.number", read_only=True, allow_null=True, default=None)

    class Meta:
        model = VoucherLedgerEntry
        fields = [
            "id",
            "kind",
            "amount",
            "balance_after",
            "invoice",
            "payment",
            "base_amount",
            "cap_year",
            "note",
            "created_at",
        ]
        read_only_fields = fields


class VoucherSerializer(serializers.ModelSerializer):
    programme = serializers.CharField(source="programme.code", read_only=True)
    customer = serializers.CharField(source="customer.code", read_only=True)
    currency = serializers.CharField(source="programme.currency", read_only=True)
    amount = _money(read_only=True)
    balance = _money(read_only=True)

    class Meta:
        model = Voucher
        fields = [
            "id",
            "number",
            "programme",
            "customer",
            "currency",
            "amount",
            "balance",
            "status",
            "valid_to",
            "issued_at",
            "reference",
        ]
        read_only_fields = fields


class VoucherDetailSerializer(VoucherSerializer):
    ledger = VoucherLedgerEntrySerializer(many=True, read_only=True)

    class Meta(VoucherSerializer.Meta):
        fields = [*VoucherSerializer.Meta.fields, "ledger"]
        read_only_fields = fields


class VoucherCreateSerializer(serializers.Serializer):
    programme = NaturalKeyField(
        noun="voucher programme", slug_field="code", queryset=VoucherProgramme.objects.all()
    )
    customer = NaturalKeyField(noun="customer", slug_field="code", queryset=Customer.objects.all())
    amount = _money(min_value=0, help_text='Face value, e.g. "50000.00".')
    valid_to = serializers.DateField(required=False, help_text="Default: the programme's last day.")
    reference = StrictCharField(required=False, allow_blank=True, max_length=200, default="")


class ClaimSerializer(serializers.Serializer):
    invoices = serializers.ListField(
        child=serializers.IntegerField(min_value=1), min_length=1, max_length=500, help_text="Invoice ids."
    )


class RedemptionRowSerializer(serializers.Serializer):
    on = serializers.DateField()
    kind = serializers.CharField()
    voucher = serializers.CharField()
    customer = serializers.CharField(source="customer_code")
    customer_name = serializers.CharField()
    customer_tax_id = serializers.CharField()
    invoice = serializers.CharField()
    invoice_total = _money(allow_null=True)
    base_amount = _money(allow_null=True)
    amount = _money(help_text="Paid by the programme; reversals negative.")


class RedemptionCustomerSerializer(serializers.Serializer):
    customer = serializers.CharField(source="code")
    name = serializers.CharField()
    tax_id = serializers.CharField()
    count = serializers.IntegerField()
    amount = _money()


class RedemptionReportSerializer(serializers.Serializer):
    programme = serializers.CharField(source="programme.code")
    issuer = serializers.CharField(source="programme.issuer")
    currency = serializers.CharField(source="programme.currency")
    date_from = serializers.DateField(source="start")
    date_to = serializers.DateField(source="end")
    total_amount = _money()
    customers = RedemptionCustomerSerializer(many=True)
    redemptions = RedemptionRowSerializer(many=True, source="rows")
