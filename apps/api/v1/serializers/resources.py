"""Supply agreements, payments, customer credit entries and portal memberships as API resources
(docs/api.md#more-resources)."""

from __future__ import annotations

import datetime

from django.utils.translation import gettext
from rest_framework import serializers

from apps.accounts.models import CustomerMembership
from apps.billing.models import Payment
from apps.inventory.models import GpuModel
from apps.providers.models import Provider, SupplyAgreement

from .fields import DecimalStringField, NaturalKeyField, StrictCharField, StrictEmailField
from .payments import CreditEntrySerializer

_EARLIEST = datetime.date(2000, 1, 1)
_LATEST = datetime.date(2999, 12, 31)


class SupplyAgreementSerializer(serializers.ModelSerializer):
    """What the platform pays a provider per unit (docs/settlements.md#supply-agreements)."""

    provider = NaturalKeyField(
        noun="provider", slug_field="code", queryset=Provider.objects.all(), help_text="Provider code."
    )
    gpu_model = NaturalKeyField(
        noun="GPU model", slug_field="name", queryset=GpuModel.objects.all(), help_text="GPU model name."
    )
    cost_unit_price = DecimalStringField(max_digits=18, decimal_places=6, min_value=0)
    valid_to = serializers.DateField(required=False, allow_null=True, help_text="Empty: open-ended.")

    class Meta:
        model = SupplyAgreement
        fields = [
            "id",
            "provider",
            "gpu_model",
            "resource",
            "term",
            "cost_unit_price",
            "currency",
            "valid_from",
            "valid_to",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["id", "created_at", "updated_at"]

    def validate(self, attrs):
        attrs = super().validate(attrs)
        start = attrs.get("valid_from", getattr(self.instance, "valid_from", None))
        end = attrs.get("valid_to", getattr(self.instance, "valid_to", None))
        for name, value in (("valid_from", start), ("valid_to", end)):
            if value is not None and not _EARLIEST <= value <= _LATEST:
                raise serializers.ValidationError(
                    {name: [gettext("Must be between the years 2000 and 2999.")]}
                )
        if start is not None and end is not None and end < start:
            raise serializers.ValidationError({"valid_to": [gettext("Must be on or after valid_from.")]})
        return attrs


class PaymentListSerializer(serializers.ModelSerializer):
    """A payment of an invoice (bank transfer, Stripe, customer credit)."""

    invoice = serializers.IntegerField(source="invoice_id", read_only=True)
    invoice_number = serializers.CharField(source="invoice.number", read_only=True, allow_null=True)
    customer = serializers.CharField(
        source="invoice.customer.code", read_only=True, help_text="Customer code."
    )
    amount = DecimalStringField(max_digits=16, decimal_places=2, read_only=True)
    recorded_by = serializers.CharField(
        source="recorded_by.username", read_only=True, allow_null=True, default=None
    )

    class Meta:
        model = Payment
        fields = [
            "id",
            "invoice",
            "invoice_number",
            "customer",
            "method",
            "amount",
            "currency",
            "reference",
            "received_at",
            "recorded_by",
        ]
        read_only_fields = fields


class CreditEntryListSerializer(CreditEntrySerializer):
    """One movement of a customer's credit, with the customer it belongs to."""

    customer = serializers.CharField(source="customer.code", read_only=True, help_text="Customer code.")

    class Meta(CreditEntrySerializer.Meta):
        fields = ["id", "customer", *CreditEntrySerializer.Meta.fields[1:]]
        read_only_fields = fields


class MembershipSerializer(serializers.ModelSerializer):
    """A portal user's access to one customer, with the role (admin, billing, viewer)."""

    customer = serializers.CharField(source="customer.code", read_only=True, help_text="Customer code.")
    username = serializers.CharField(source="user.username", read_only=True)
    email = serializers.CharField(source="user.email", read_only=True)
    display_name = serializers.CharField(source="user.display_name", read_only=True)
    is_active = serializers.BooleanField(source="user.is_active", read_only=True)

    class Meta:
        model = CustomerMembership
        fields = ["id", "customer", "username", "email", "display_name", "is_active", "role", "created_at"]
        read_only_fields = fields


class MembershipInviteSerializer(serializers.Serializer):
    """``POST /memberships/``: a customer admin invites a colleague by e-mail."""

    customer = serializers.CharField(
        required=False, help_text="Customer code; default the caller's (when a member of one customer)."
    )
    email = StrictEmailField(max_length=254)
    display_name = StrictCharField(max_length=100, required=False, allow_blank=True, default="")
    role = serializers.ChoiceField(choices=CustomerMembership.Role.choices)
