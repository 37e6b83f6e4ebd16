"""Fields shared by the v1 serializers: natural keys in, decimals out as plain strings."""

from __future__ import annotations

from decimal import Decimal

from django.db import models
from django.db.models import Model, QuerySet
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers


def decimal_string(value: Decimal, *, min_places: int = 0) -> str:
    """``value`` in plain notation without trailing zeros, but with at least ``min_places`` decimals.

    ``Decimal("22.700000")`` → ``"22.70"`` (min 2), ``Decimal("2.496000")`` → ``"2.496"``; never
    exponent notation (``Decimal("1E+1")`` → ``"10"``).
    """
    text = format(value.normalize(), "f")
    whole, _, frac = text.partition(".")
    frac = frac.ljust(min_places, "0")
    return f"{whole}.{frac}" if frac else whole


@extend_schema_field({"type": "string", "format": "decimal", "example": "22.70"})
class DecimalStringField(serializers.DecimalField):
    """A DecimalField whose output drops insignificant zeros (keeping ``min_places``).

    Input accepts a JSON string (the documented form) or a number; output is always a string.
    """

    def __init__(self, *, min_places: int = 2, **kwargs) -> None:
        self.min_places = min_places
        super().__init__(**kwargs)

    def to_representation(self, value):
        if value is None:
            return None
        return decimal_string(Decimal(value), min_places=self.min_places)


@extend_schema_field({"type": "string", "minLength": 1})  # an empty key names nothing
class NaturalKeyField(serializers.SlugRelatedField):
    """A relation written and read by its natural key (provider ``code``, GPU model ``name``, …).

    An unknown key answers ``Unknown <noun> '<key>'.``; anything but a string is rejected before
    touching the database, and so is a key longer than the column could hold.
    """

    default_error_messages = {
        "does_not_exist": "Unknown {noun} '{value}'.",
        "invalid": "Expected the {noun}'s {slug_name} as a string.",
    }

    def __init__(self, *, noun: str, slug_field: str, queryset: QuerySet | None = None, **kwargs) -> None:
        self.noun = noun
        super().__init__(slug_field=slug_field, queryset=queryset, **kwargs)

    def to_internal_value(self, data) -> Model:
        if not isinstance(data, str):
            self.fail("invalid", noun=self.noun, slug_name=self.slug_field)
        queryset = self.get_queryset()
        max_length = queryset.model._meta.get_field(self.slug_field).max_length
        key = data.strip()
        if "\x00" in key or (max_length and len(key) > max_length):
            self.fail("does_not_exist", noun=self.noun, value=_shorten(key))
        try:
            return queryset.get(**{self.slug_field: key})
        except queryset.model.DoesNotExist:
            self.fail("does_not_exist", noun=self.noun, value=_shorten(key))


def _shorten(text: str, limit: int = 60) -> str:
    text = text.replace("\x00", "")
    return text if len(text) <= limit else text[: limit - 1] + "…"


class StrictStringMixin:
    """Text is a JSON string: a number or a boolean is refused, not stringified (``00123`` sent
    as a number would lose its zeros; a number where a name belongs is a client bug)."""

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictCharField(StrictStringMixin, serializers.CharField):
    pass


class StrictSlugField(StrictStringMixin, serializers.SlugField):
    pass


class StrictEmailField(StrictStringMixin, serializers.EmailField):
    pass


class ModelSerializer(serializers.ModelSerializer):
    """The v1 model serializer: text model fields map to strict string fields."""

    serializer_field_mapping = {
        **serializers.ModelSerializer.serializer_field_mapping,
        models.CharField: StrictCharField,
        models.TextField: StrictCharField,
        models.SlugField: StrictSlugField,
        models.EmailField: StrictEmailField,
    }
