"""Dates and times as the admin shows them: ISO dates and, for instants, the billing time zone's
name (``2026-11-29 08:59 CST``), so no page mixes zones without saying so (docs/contracts.md#times).
Everything else falls back to Django's English formats."""

DATE_FORMAT = "Y-m-d"
SHORT_DATE_FORMAT = "Y-m-d"
DATETIME_FORMAT = "Y-m-d H:i T"
SHORT_DATETIME_FORMAT = "Y-m-d H:i T"
TIME_FORMAT = "H:i"
