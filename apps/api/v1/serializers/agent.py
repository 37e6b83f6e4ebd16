"""Shapes of the metering agent's endpoints (docs/hardware-truth.md#sources-and-incidents)."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone
from django.utils.translation import gettext
from rest_framework import serializers

from apps.inventory.models import IncidentKind
from apps.metering.validation import normalize_card_uuid

# Like usage: an incident may not start or end more than 5 minutes ahead of the server's clock.
MAX_FUTURE = timedelta(minutes=5)


class CardIncidentInSerializer(serializers.Serializer):
    event_id = serializers.CharField(
        max_length=128, help_text="The agent's id of the incident, unique per card; a resend updates it."
    )
    card = serializers.CharField(max_length=64, help_text="NVML UUID `GPU-…` of a card of the key's server.")
    kind = serializers.ChoiceField(choices=IncidentKind.choices)
    xid_code = serializers.IntegerField(
        required=False, allow_null=True, min_value=0, max_value=2_147_483_647, help_text="For `xid`."
    )
    detail = serializers.CharField(required=False, allow_blank=True, max_length=300)
    start = serializers.DateTimeField(help_text="ISO 8601 with a UTC offset.")
    end = serializers.DateTimeField(
        required=False, allow_null=True, help_text="When the card was healthy again; null while ongoing."
    )

    def validate_card(self, value: str) -> str:
        return normalize_card_uuid(value)

    def validate(self, attrs):
        horizon = self.context.get("now", timezone.now()) + MAX_FUTURE
        end = attrs.get("end")
        if attrs["start"] > horizon:
            raise serializers.ValidationError({"start": [gettext("In the future.")]})
        if end is not None and end <= attrs["start"]:
            raise serializers.ValidationError({"end": [gettext("Must be after start.")]})
        if end is not None and end > horizon:
            raise serializers.ValidationError({"end": [gettext("In the future.")]})
        if attrs["kind"] == IncidentKind.XID and attrs.get("xid_code") is None:
            raise serializers.ValidationError({"xid_code": [gettext("An Xid incident needs its Xid code.")]})
        return attrs


class CardIncidentReportResultSerializer(serializers.Serializer):
    created = serializers.IntegerField(help_text="New incidents.")
    ended = serializers.IntegerField(help_text="Ongoing incidents this report ended.")
    unchanged = serializers.IntegerField(help_text="Resends of what is stored.")
