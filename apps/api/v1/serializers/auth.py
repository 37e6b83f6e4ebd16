"""Token authentication payloads."""

from __future__ import annotations

from rest_framework import serializers

from .fields import StrictCharField


class TokenRequestSerializer(serializers.Serializer):
    username = StrictCharField(max_length=150)
    password = StrictCharField(max_length=1024, trim_whitespace=False, style={"input_type": "password"})


class TokenSerializer(serializers.Serializer):
    token = StrictCharField(help_text="Send it as the header `Authorization: Token <token>`.")
