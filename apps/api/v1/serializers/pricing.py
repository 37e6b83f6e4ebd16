"""Price lists and their items."""

from __future__ import annotations

from decimal import Decimal

from django.utils.translation import gettext, gettext_lazy
from rest_framework import serializers
from rest_framework.validators import UniqueValidator

from apps.contracts.models import PriceList, PriceListItem, TaxCategory
from apps.inventory.models import GpuModel

from .common import ImmutableFieldsMixin
from .fields import DecimalStringField, ModelSerializer, NaturalKeyField, StrictCharField, StrictSlugField

DEFAULT_TAX_CATEGORY = "it_service"


class PriceListItemSerializer(ModelSerializer):
    """A list price of (GPU model, resource, term) with its term discount and tax category."""

    price_list = StrictCharField(source="price_list.code", read_only=True)
    gpu_model = NaturalKeyField(
        noun="GPU model", slug_field="name", queryset=GpuModel.objects.all(), help_text="GPU model name."
    )
    unit = StrictCharField(read_only=True, help_text="card_hour, server_month, p_year, …")
    list_unit_price = DecimalStringField(max_digits=18, decimal_places=6, min_value=Decimal(0))
    term_discount_percent = DecimalStringField(
        max_digits=5,
        decimal_places=2,
        min_value=Decimal(0),
        max_value=Decimal("99.99"),
        default=Decimal(0),
    )
    tax_category = NaturalKeyField(
        noun="tax category",
        slug_field="code",
        queryset=TaxCategory.objects.all(),
        default=serializers.CreateOnlyDefault(lambda: TaxCategory.objects.get(code=DEFAULT_TAX_CATEGORY)),
        help_text="Tax category code (default it_service).",
    )
    tax_rate = DecimalStringField(
        source="tax_category.rate", max_digits=5, decimal_places=4, read_only=True, help_text="e.g. 0.06"
    )

    class Meta:
        model = PriceListItem
        fields = [
            "id",
            "price_list",
            "gpu_model",
            "resource",
            "term",
            "unit",
            "list_unit_price",
            "term_discount_percent",
            "tax_category",
            "tax_rate",
        ]
        validators = []  # (price list, model, resource, term) is checked in validate()

    def validate(self, attrs):
        attrs = super().validate(attrs)
        price_list = self.context.get("price_list") or self.instance.price_list
        key = {
            field: attrs.get(field, getattr(self.instance, field, None))
            for field in ("gpu_model", "resource", "term")
        }
        clash = PriceListItem.objects.filter(price_list=price_list, **key)
        if self.instance is not None:
            clash = clash.exclude(pk=self.instance.pk)
        if clash.exists():
            raise serializers.ValidationError(
                gettext("Price list '%(code)s' already has a price for %(model)s %(resource)s/%(term)s.")
                % {
                    "code": price_list.code,
                    "model": key["gpu_model"].name,
                    "resource": key["resource"],
                    "term": key["term"],
                }
            )
        return attrs


class PriceListSerializer(ImmutableFieldsMixin, ModelSerializer):
    code = StrictSlugField(
        max_length=50,
        validators=[
            UniqueValidator(
                PriceList.objects.all(), message=gettext_lazy("Another price list has this code.")
            )
        ],
    )
    items = PriceListItemSerializer(many=True, read_only=True)

    class Meta:
        model = PriceList
        fields = [
            "id",
            "code",
            "name",
            "currency",
            "prices_include_tax",
            "is_default",
            "valid_from",
            "valid_to",
            "notes",
            "items",
            "created_at",
            "updated_at",
        ]
        immutable_fields = ("code",)
        validators = []  # one default list per currency is checked in validate()

    def validate(self, attrs):
        attrs = super().validate(attrs)

        def current(field):
            return attrs.get(field, getattr(self.instance, field, None))

        valid_from, valid_to = current("valid_from"), current("valid_to")
        if valid_from and valid_to and valid_to < valid_from:
            raise serializers.ValidationError({"valid_to": [gettext("Must be on or after valid_from.")]})
        if current("is_default"):
            currency = current("currency") or PriceList._meta.get_field("currency").default
            others = PriceList.objects.filter(is_default=True, currency=currency)
            if self.instance is not None:
                others = others.exclude(pk=self.instance.pk)
            other = others.first()
            if other is not None:
                raise serializers.ValidationError(
                    {
                        "is_default": [
                            gettext("'%(code)s' is already the default %(currency)s price list.")
                            % {"code": other.code, "currency": other.currency}
                        ]
                    }
                )
        return attrs
