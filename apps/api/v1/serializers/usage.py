"""Shapes of ``/api/v1/usage/`` for the OpenAPI document only.

The endpoint itself parses with orjson and checks records in ``apps.metering.validation`` (a
10,000-record batch through DRF serializers would be far too slow); these mirror those rules.
"""

from __future__ import annotations

from rest_framework import serializers


class UsageTelemetrySerializer(serializers.Serializer):
    utilization_percent = serializers.FloatField(required=False, min_value=0, max_value=100)
    memory_used_bytes = serializers.IntegerField(required=False, min_value=0)
    energy_mj = serializers.IntegerField(
        required=False, min_value=0, help_text="Cumulative energy counter of the card, millijoules."
    )


class UsageRecordInSerializer(serializers.Serializer):
    event_id = serializers.CharField(
        max_length=128, help_text="Unique per provider; a resend is a duplicate."
    )
    card = serializers.CharField(required=False, help_text="NVML UUID `GPU-…` (or give `server`).")
    server = serializers.CharField(required=False, help_text="Server serial (or give `card`).")
    start = serializers.DateTimeField(help_text="ISO 8601 with a UTC offset.")
    end = serializers.DateTimeField(
        help_text="After start, at most 5 minutes in the future, at most 31 days after start."
    )
    telemetry = UsageTelemetrySerializer(
        required=False, help_text="Evidence; extra keys with scalar values are kept."
    )


class UsageIngestResultSerializer(serializers.Serializer):
    accepted = serializers.IntegerField(help_text="New records stored.")
    duplicates = serializers.IntegerField(help_text="Records already stored with the same content.")


class UsageRecordErrorSerializer(serializers.Serializer):
    index = serializers.IntegerField(help_text="Position in the batch (0 for a single record).")
    event_id = serializers.CharField(allow_null=True)
    code = serializers.CharField(help_text="`invalid`, `conflict` or `usage_too_old`.")
    errors = serializers.DictField(child=serializers.ListField(child=serializers.CharField()))


class UsageBatchErrorSerializer(serializers.Serializer):
    code = serializers.CharField(help_text="invalid_batch, invalid, usage_too_old or usage_conflict.")
    message = serializers.CharField()
    fields = serializers.DictField(child=serializers.JSONField())
    errors = UsageRecordErrorSerializer(
        many=True, required=False, help_text="Per bad record; absent when the body itself is refused."
    )


class UsageVoidSerializer(serializers.Serializer):
    reason = serializers.CharField(required=False, max_length=300)
