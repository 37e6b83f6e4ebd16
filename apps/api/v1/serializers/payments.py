"""Customer credit (docs/invoices.md#customer-credit): the balance and the ledger entries."""

from __future__ import annotations

from rest_framework import serializers

from apps.billing.models import CreditEntry

from .fields import DecimalStringField


def _money(**kwargs) -> DecimalStringField:
    return DecimalStringField(max_digits=16, decimal_places=2, read_only=True, **kwargs)


class CreditEntrySerializer(serializers.ModelSerializer):
    amount = _money(help_text="Signed: + adds to the balance, − takes from it.")
    balance_after = _money()
    invoice = serializers.CharField(source="invoice.number", read_only=True, allow_null=True, default=None)
    credit_note = serializers.CharField(
        source="credit_note.number", read_only=True, allow_null=True, default=None
    )
    created_by = serializers.CharField(
        source="created_by.username", read_only=True, allow_null=True, default=None
    )

    class Meta:
        model = CreditEntry
        fields = [
            "id",
            "kind",
            "amount",
            "balance_after",
            "currency",
            "invoice",
            "credit_note",
            "reference",
            "note",
            "created_at",
            "created_by",
        ]


class CustomerCreditSerializer(serializers.Serializer):
    customer = serializers.CharField(help_text="The customer's code.")
    currency = serializers.CharField()
    balance = _money()
    entries = CreditEntrySerializer(many=True)
