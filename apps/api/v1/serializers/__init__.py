"""Serializers of the v1 API: input serializers parse and validate, output serializers render.

Writes name related rows by natural key (docs/api.md#shapes): provider ``code``, site ``name`` (within the
provider), GPU model ``name``, customer ``code``, tax category ``code``, user ``username``.
"""
