"""Gapless document numbers from a locked series row."""

from __future__ import annotations

from django.db import transaction

from .models import NumberSeries


def next_number(prefix: str, year: int) -> str:
    """Take the next number of ``prefix`` in ``year``: ``next_number("C", 2026)`` → ``"C-2026-000001"``.

    Must run inside the caller's transaction: the series row stays locked until it commits, so
    concurrent callers queue and a rolled-back caller gives its number back (no gaps).
    """
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("next_number must be called inside transaction.atomic")
    NumberSeries.objects.get_or_create(prefix=prefix, year=year)
    series = NumberSeries.objects.select_for_update().get(prefix=prefix, year=year)
    series.last_value += 1
    series.save(update_fields=["last_value"])
    return f"{prefix}-{year}-{series.last_value:06d}"
