"""``GET /api/v1/usage/``: usage records as stored (docs/api.md#usage-reads)."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from apps.metering.models import UsageRecord

from .fields import DecimalStringField


class UsageRecordSerializer(serializers.ModelSerializer):
    """One usage record. ``rated``: a firm allocation covers it (docs/rating.md#unrated-usage)."""

    provider = serializers.SerializerMethodField(help_text="Provider code; null for customer users.")
    card = serializers.CharField(
        source="card.uuid",
        allow_null=True,
        default=None,
        read_only=True,
        help_text="Card UUID (card records).",
    )
    server = serializers.CharField(
        source="server.serial",
        allow_null=True,
        default=None,
        read_only=True,
        help_text="Server serial (whole-server records).",
    )
    start = serializers.DateTimeField(source="start_at", read_only=True)
    end = serializers.DateTimeField(source="end_at", read_only=True)
    utilization_percent = DecimalStringField(
        max_digits=5,
        decimal_places=2,
        min_places=0,
        allow_null=True,
        read_only=True,
        help_text="telemetry.utilization_percent of the posted record.",
    )
    telemetry = serializers.JSONField(allow_null=True, read_only=True, help_text="As the partner sent it.")
    rated = serializers.BooleanField(read_only=True, help_text="A firm allocation covers it.")
    voided = serializers.SerializerMethodField()

    class Meta:
        model = UsageRecord
        fields = [
            "id",
            "event_id",
            "provider",
            "source",
            "card",
            "server",
            "start",
            "end",
            "utilization_percent",
            "memory_used_bytes",
            "energy_mj",
            "telemetry",
            "received_at",
            "rated",
            "voided",
            "voided_at",
            "void_reason",
        ]
        read_only_fields = fields

    @extend_schema_field({"type": "string", "nullable": True})
    def get_provider(self, record: UsageRecord) -> str | None:
        return record.provider.code if self.context.get("show_provider", True) else None

    def get_voided(self, record: UsageRecord) -> bool:
        return record.voided_at is not None
