"""Shapes shared by every endpoint: the error body, immutable natural keys."""

from __future__ import annotations

from django.utils.translation import gettext
from rest_framework import serializers


class ErrorSerializer(serializers.Serializer):
    """Every failure answers this body (docs/api.md#errors): a stable ``code``, a human ``message`` and, for
    invalid input, ``fields`` mapping each offending field to its messages.
    """

    code = serializers.CharField(help_text="Stable error code, e.g. invalid, malformed_request, not_found.")
    message = serializers.CharField()
    fields = serializers.DictField(child=serializers.JSONField(), help_text="Field name → messages.")


class ImmutableFieldsMixin:
    """Reject changes to identity fields on update (``Meta.immutable_fields``), naming the field.

    Other systems refer to these rows by their natural keys, so the keys do not change once set.
    Resending the current value is accepted.
    """

    def validate(self, attrs):
        attrs = super().validate(attrs)
        if self.instance is None:
            return attrs
        errors = {}
        for field in getattr(self.Meta, "immutable_fields", ()):
            if field in attrs and attrs[field] != getattr(self.instance, field):
                errors[field] = [
                    gettext("This cannot change once set; other systems refer to the row by it.")
                ]
        if errors:
            raise serializers.ValidationError(errors)
        return attrs


def reject_unchangeable_fields(data, *, hints: dict[str, str]) -> None:
    """Name the fields a partial update cannot change (``hints``: field → why) instead of silently
    ignoring them."""
    if not isinstance(data, dict):
        return
    errors = {field: [str(hint)] for field, hint in hints.items() if field in data}
    if errors:
        raise serializers.ValidationError(errors)
