"""Webhook endpoints (docs/webhooks.md#the-api): owner by natural key (customer or provider code),
the events subscribed (empty: all of the owner's), the secret only in the answer that creates or
rotates it."""

from __future__ import annotations

from django.utils.translation import gettext
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from apps.customers.models import Customer
from apps.providers.models import Provider
from apps.webhooks.models import EventType, WebhookEndpoint

from .common import ImmutableFieldsMixin
from .fields import ModelSerializer, NaturalKeyField, StrictCharField


class EventListField(serializers.ListField):
    """Stored space-separated, read and written as a list."""

    def to_representation(self, data):
        return super().to_representation(data.split() if isinstance(data, str) else data)


class WebhookEndpointSerializer(ImmutableFieldsMixin, ModelSerializer):
    """A webhook endpoint of one customer or one provider (docs/webhooks.md#endpoints)."""

    customer = NaturalKeyField(
        noun="customer",
        slug_field="code",
        queryset=Customer.objects.all(),
        required=False,
        allow_null=True,
        help_text="Customer code; give a customer or a provider, not both. Cannot change.",
    )
    provider = NaturalKeyField(
        noun="provider",
        slug_field="code",
        queryset=Provider.objects.all(),
        required=False,
        allow_null=True,
        help_text="Provider code (staff only); give a customer or a provider, not both. Cannot change.",
    )
    url = StrictCharField(max_length=500, help_text="An http:// or https:// URL; redirects are not followed.")
    events = EventListField(
        child=serializers.ChoiceField(choices=EventType.choices),
        required=False,
        allow_empty=True,
        help_text="Event types to receive; empty or omitted: every event of the owner.",
    )
    description = StrictCharField(max_length=200, required=False, allow_blank=True)

    class Meta:
        model = WebhookEndpoint
        fields = [
            "id",
            "customer",
            "provider",
            "url",
            "events",
            "enabled",
            "description",
            "previous_secret_expires_at",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["id", "previous_secret_expires_at", "created_at", "updated_at"]
        immutable_fields = ("customer", "provider")

    def __init__(self, *args, customers=None, providers=None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if customers is not None:
            self.fields["customer"].queryset = customers
        if providers is not None:
            self.fields["provider"].queryset = providers

    def validate(self, attrs):
        attrs = super().validate(attrs)
        if self.instance is None and bool(attrs.get("customer")) == bool(attrs.get("provider")):
            message = gettext("Give either a customer or a provider.")
            raise serializers.ValidationError({"customer": [message], "provider": [message]})
        return attrs


class WebhookEndpointCreatedSerializer(WebhookEndpointSerializer):
    """A new webhook endpoint, with its signing secret (shown in this answer only)."""

    secret = serializers.SerializerMethodField(
        help_text="The signing secret (whsec_…): shown in this answer only. Keep it."
    )

    class Meta(WebhookEndpointSerializer.Meta):
        fields = [*WebhookEndpointSerializer.Meta.fields, "secret"]

    @extend_schema_field(str)
    def get_secret(self, obj) -> str:
        return self.context["secret"]


class WebhookSecretSerializer(serializers.Serializer):
    """A rotated signing secret (shown in this answer only)."""

    secret = serializers.CharField(help_text="The new signing secret: shown in this answer only.")
    previous_secret_expires_at = serializers.DateTimeField(
        help_text="Until then deliveries carry a second v1= signature made with the previous secret."
    )
