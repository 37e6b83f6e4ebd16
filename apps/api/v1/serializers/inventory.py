"""GPU models, servers and their cards."""

from __future__ import annotations

from decimal import Decimal

from django.utils.translation import gettext, gettext_lazy
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers
from rest_framework.validators import UniqueValidator

from apps.core.choices import Currency
from apps.core.validators import validate_nvml_uuid
from apps.inventory.models import Card, GpuModel, HardwareStatus, Server
from apps.inventory.services import MAX_CARDS_PER_SERVER
from apps.providers.models import Provider, Site

from .common import ImmutableFieldsMixin, reject_unchangeable_fields
from .fields import DecimalStringField, ModelSerializer, NaturalKeyField, StrictCharField, decimal_string


class GpuModelSerializer(ImmutableFieldsMixin, ModelSerializer):
    name = StrictCharField(
        max_length=60,
        validators=[
            UniqueValidator(GpuModel.objects.all(), message=gettext_lazy("Another GPU model has this name."))
        ],
    )
    fp16_dense_tflops = DecimalStringField(
        max_digits=10, decimal_places=3, min_places=0, help_text="Dense FP16 tensor TFLOPS (not sparse)."
    )
    int8_dense_tops = DecimalStringField(
        max_digits=10, decimal_places=3, min_places=0, required=False, allow_null=True, min_value=Decimal(0)
    )
    p_per_card = serializers.SerializerMethodField(help_text="P-units of one card: dense FP16 TFLOPS / 1000.")

    class Meta:
        model = GpuModel
        fields = [
            "id",
            "vendor",
            "name",
            "memory_gb",
            "memory_type",
            "interconnect",
            "interconnect_gbps",
            "fp16_dense_tflops",
            "int8_dense_tops",
            "p_per_card",
            "verified",
            "notes",
            "created_at",
            "updated_at",
        ]
        immutable_fields = ("name",)

    @extend_schema_field({"type": "string", "format": "decimal", "example": "0.312"})
    def get_p_per_card(self, obj: GpuModel) -> str:
        return decimal_string(obj.p_per_card)

    def validate_fp16_dense_tflops(self, value: Decimal) -> Decimal:
        if value <= 0:
            raise serializers.ValidationError(gettext("Must be greater than 0."))
        return value


class CardSerializer(ModelSerializer):
    class Meta:
        model = Card
        fields = ["id", "slot", "uuid", "status"]


class ServerSerializer(ModelSerializer):
    """A server as read: natural keys for its relations, its cards by slot, its P capacity."""

    provider = StrictCharField(source="provider.code", help_text="Provider code.")
    site = StrictCharField(source="site.name", help_text="Site name (unique within the provider).")
    hub = StrictCharField(source="site.hub", help_text="The site's hub region.")
    gpu_model = StrictCharField(source="gpu_model.name", help_text="GPU model name.")
    p_capacity = serializers.SerializerMethodField(
        help_text="card_count × the model's dense FP16 TFLOPS / 1000, exact (8 × A100 = 2.496)."
    )
    purchase_cost_amount = DecimalStringField(max_digits=14, decimal_places=2, allow_null=True)
    annual_cash_cost_amount = DecimalStringField(max_digits=14, decimal_places=2, allow_null=True)
    cards = CardSerializer(many=True)

    class Meta:
        model = Server
        fields = [
            "id",
            "serial",
            "provider",
            "site",
            "hub",
            "gpu_model",
            "card_count",
            "status",
            "p_capacity",
            "purchase_cost_amount",
            "annual_cash_cost_amount",
            "currency",
            "cards",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields

    @extend_schema_field({"type": "string", "format": "decimal", "example": "2.496"})
    def get_p_capacity(self, obj: Server) -> str:
        return decimal_string(obj.p_capacity)


class CardInputSerializer(serializers.Serializer):
    slot = serializers.IntegerField(min_value=0, max_value=MAX_CARDS_PER_SERVER - 1)
    uuid = StrictCharField(
        max_length=64, validators=[validate_nvml_uuid], help_text="NVML UUID, GPU-xxxxxxxx-xxxx-…"
    )
    status = serializers.ChoiceField(choices=HardwareStatus.choices, default=HardwareStatus.AVAILABLE)


class ServerCreateSerializer(serializers.Serializer):
    """``POST /servers/``: the server and its cards, related rows by natural key (docs/api.md#shapes)."""

    serial = StrictCharField(
        max_length=100,
        validators=[
            UniqueValidator(
                Server.objects.all(), message=gettext_lazy("A server with this serial already exists.")
            )
        ],
    )
    provider = NaturalKeyField(
        noun="provider", slug_field="code", queryset=Provider.objects.all(), help_text="Provider code."
    )
    site = StrictCharField(max_length=200, help_text="Site name, one of the provider's sites.")
    gpu_model = NaturalKeyField(
        noun="GPU model", slug_field="name", queryset=GpuModel.objects.all(), help_text="GPU model name."
    )
    status = serializers.ChoiceField(
        choices=HardwareStatus.choices,
        default=HardwareStatus.AVAILABLE,
        help_text="available, maintenance or retired; allocated follows from contract allocations.",
    )
    card_count = serializers.IntegerField(
        min_value=1,
        max_value=MAX_CARDS_PER_SERVER,
        required=False,
        help_text="Default: the number of cards given, or 8 when none are.",
    )
    cards = CardInputSerializer(many=True, default=list, max_length=MAX_CARDS_PER_SERVER)
    purchase_cost_amount = DecimalStringField(
        max_digits=14, decimal_places=2, min_value=Decimal(0), required=False, allow_null=True
    )
    annual_cash_cost_amount = DecimalStringField(
        max_digits=14, decimal_places=2, min_value=Decimal(0), required=False, allow_null=True
    )
    currency = serializers.ChoiceField(choices=Currency.choices, default=Currency.CNY)

    def validate(self, attrs):
        provider: Provider = attrs["provider"]
        name = attrs["site"]
        site = Site.objects.filter(provider=provider, name=name).first()
        if site is None:
            elsewhere = Site.objects.filter(name=name).exclude(provider=provider).exists()
            message = (
                gettext(
                    "Unknown site '%(name)s' for provider '%(provider)s': it is a site of another provider."
                )
                if elsewhere
                else gettext(
                    "Unknown site '%(name)s' for provider '%(provider)s': it is not one of its sites."
                )
            )
            raise serializers.ValidationError({"site": [message % {"name": name, "provider": provider.code}]})
        attrs["site"] = site
        return attrs


class ServerUpdateSerializer(serializers.Serializer):
    """``PATCH /servers/{id}/``: site (within the same provider), status and cost figures."""

    site = StrictCharField(max_length=200, required=False, help_text="Site name of the same provider.")
    status = serializers.ChoiceField(choices=HardwareStatus.choices, required=False)
    purchase_cost_amount = DecimalStringField(
        max_digits=14, decimal_places=2, min_value=Decimal(0), required=False, allow_null=True
    )
    annual_cash_cost_amount = DecimalStringField(
        max_digits=14, decimal_places=2, min_value=Decimal(0), required=False, allow_null=True
    )
    currency = serializers.ChoiceField(choices=Currency.choices, required=False)

    IDENTITY_HINTS = {
        "serial": gettext_lazy("The serial is the server's identity and cannot change."),
        "provider": gettext_lazy(
            "The provider cannot change; register the server anew under the other provider."
        ),
        "gpu_model": gettext_lazy("The GPU model cannot change; it is what the cards are."),
        "card_count": gettext_lazy("The card count cannot change here."),
        "cards": gettext_lazy("Add cards with POST /api/v1/servers/{id}/cards/."),
    }

    def validate(self, attrs):
        reject_unchangeable_fields(self.initial_data, hints=self.IDENTITY_HINTS)
        return attrs


class CardCreateSerializer(serializers.Serializer):
    """``POST /servers/{id}/cards/``: put a card in a free slot."""

    slot = serializers.IntegerField(min_value=0, max_value=MAX_CARDS_PER_SERVER - 1)
    uuid = StrictCharField(max_length=64, validators=[validate_nvml_uuid])
    status = serializers.ChoiceField(choices=HardwareStatus.choices, default=HardwareStatus.AVAILABLE)
