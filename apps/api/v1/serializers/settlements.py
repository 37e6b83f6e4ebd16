"""Provider settlement statements and the margin report (docs/settlements.md#statements): money as strings."""

from __future__ import annotations

from rest_framework import serializers

from apps.billing.models import SettlementLine, SettlementStatement
from apps.providers.models import Provider

from .fields import DecimalStringField, NaturalKeyField, StrictCharField


def _money(**kwargs) -> DecimalStringField:
    return DecimalStringField(max_digits=16, decimal_places=2, read_only=True, **kwargs)


def _exact(**kwargs) -> DecimalStringField:
    return DecimalStringField(max_digits=20, decimal_places=6, read_only=True, **kwargs)


class SettlementLineSerializer(serializers.ModelSerializer):
    contract = serializers.CharField(source="contract.number", read_only=True)
    contract_line = serializers.IntegerField(source="contract_line.position", read_only=True)
    invoice = serializers.CharField(source="invoice_line.invoice.number", read_only=True)
    gpu_model = serializers.CharField(source="gpu_model.name", read_only=True)
    quantity = _exact(min_places=0)
    cost_unit_price = _exact()
    cost_amount = _money()
    revenue_net_amount = _money(help_text="Customer net revenue (excl. VAT) of this share.")
    margin_amount = _money()

    class Meta:
        model = SettlementLine
        fields = [
            "position",
            "kind",
            "invoice",
            "contract",
            "contract_line",
            "allocation",
            "supply_agreement",
            "gpu_model",
            "resource",
            "term",
            "description",
            "quantity",
            "unit",
            "cost_unit_price",
            "cost_amount",
            "revenue_net_amount",
            "margin_amount",
            "service_start_at",
            "service_end_at",
            "warning",
        ]
        read_only_fields = fields


class SettlementSerializer(serializers.ModelSerializer):
    provider = serializers.CharField(source="provider.code", read_only=True)
    cost_amount = _money(help_text="What the platform owes the provider.")
    revenue_net_amount = _money()
    margin_amount = _money()
    confirmed_by = serializers.CharField(
        source="confirmed_by.username", read_only=True, allow_null=True, default=None
    )
    paid_by = serializers.CharField(source="paid_by.username", read_only=True, allow_null=True, default=None)

    class Meta:
        model = SettlementStatement
        fields = [
            "id",
            "provider",
            "period",
            "currency",
            "status",
            "cost_amount",
            "revenue_net_amount",
            "margin_amount",
            "line_count",
            "warning_count",
            "built_at",
            "confirmed_at",
            "confirmed_by",
            "paid_at",
            "paid_by",
            "payment_reference",
        ]
        read_only_fields = fields


class SettlementDetailSerializer(SettlementSerializer):
    lines = SettlementLineSerializer(many=True, read_only=True)

    class Meta(SettlementSerializer.Meta):
        fields = [*SettlementSerializer.Meta.fields, "lines"]
        read_only_fields = fields


class SettlementBuildSerializer(serializers.Serializer):
    period = StrictCharField(max_length=7, help_text="YYYY-MM")
    provider = NaturalKeyField(
        noun="provider", slug_field="code", queryset=Provider.objects.all(), required=False, allow_null=True
    )


class SettlementBuildResultSerializer(serializers.Serializer):
    period = serializers.CharField()
    created = serializers.IntegerField()
    refreshed = serializers.IntegerField()
    unchanged = serializers.IntegerField()
    locked = serializers.IntegerField(help_text="Confirmed or paid: left as they were.")
    deleted = serializers.IntegerField()
    warnings = serializers.ListField(child=serializers.CharField())
    unattributed = serializers.ListField(child=serializers.CharField())
    statements = serializers.ListField(child=serializers.IntegerField(), source="statement_ids")


class SettlementPaySerializer(serializers.Serializer):
    reference = StrictCharField(required=False, allow_blank=True, max_length=200, default="")


class MarginRowSerializer(serializers.Serializer):
    key = serializers.CharField()
    label = serializers.CharField()
    currency = serializers.CharField()
    line_count = serializers.IntegerField()
    revenue_net_amount = _money()
    cost_amount = _money()
    margin_amount = _money()
    margin_percent = DecimalStringField(max_digits=8, decimal_places=1, read_only=True, min_places=1)


class MarginReportSerializer(serializers.Serializer):
    group_by = serializers.CharField()
    period_from = serializers.CharField()
    period_to = serializers.CharField()
    rows = MarginRowSerializer(many=True)
    totals = serializers.DictField(child=serializers.DictField(child=_money()))
