"""Providers and their sites."""

from __future__ import annotations

from django.utils.translation import gettext, gettext_lazy
from rest_framework import serializers
from rest_framework.validators import UniqueValidator

from apps.providers.models import Provider, Site

from .common import ImmutableFieldsMixin
from .fields import ModelSerializer, NaturalKeyField, StrictSlugField


class ProviderSerializer(ImmutableFieldsMixin, ModelSerializer):
    code = StrictSlugField(
        max_length=50,
        validators=[
            UniqueValidator(
                Provider.objects.all(), message=gettext_lazy("Another provider already has this code.")
            )
        ],
        help_text="Unique slug; write payloads refer to the provider by it.",
    )

    class Meta:
        model = Provider
        fields = [
            "id",
            "code",
            "name",
            "type",
            "contact_name",
            "contact_email",
            "contact_phone",
            "settlement_terms_days",
            "is_related_party",
            "notes",
            "created_at",
            "updated_at",
        ]
        immutable_fields = ("code",)


class SiteSerializer(ImmutableFieldsMixin, ModelSerializer):
    provider = NaturalKeyField(
        noun="provider", slug_field="code", queryset=Provider.objects.all(), help_text="Provider code."
    )

    class Meta:
        model = Site
        fields = ["id", "provider", "name", "city", "hub", "created_at", "updated_at"]
        immutable_fields = ("provider",)
        validators = []  # (provider, name) is checked in validate() so the error names the field

    def validate(self, attrs):
        attrs = super().validate(attrs)
        provider = attrs.get("provider") or getattr(self.instance, "provider", None)
        name = attrs.get("name", getattr(self.instance, "name", None))
        clash = Site.objects.filter(provider=provider, name=name)
        if self.instance is not None:
            clash = clash.exclude(pk=self.instance.pk)
        if clash.exists():
            raise serializers.ValidationError(
                {
                    "name": [
                        gettext("Provider '%(provider)s' already has a site named '%(name)s'.")
                        % {"provider": provider.code, "name": name}
                    ]
                }
            )
        return attrs
