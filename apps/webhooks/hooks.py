"""Where webhook events come from (docs/webhooks.md#events), wired at start-up by ``apps.py``.

- ``apps.core.events``: every ``event_publish`` of a domain service reaches
  ``services.webhook_events_record`` (contract activated, settlement confirmed, invoice paid and
  overdue, usage batch refused).
- Invoicing's steps registry: issuing an invoice and writing a credit note publish
  ``invoice.issued`` and ``credit_note.issued`` from here, so invoicing needs no line of its own.
"""

from __future__ import annotations

import datetime

from apps.billing.models import CreditNote, Invoice
from apps.core.events import event_publish


def invoice_issued_step(*, invoice: Invoice, now: datetime.datetime, **_kwargs) -> None:
    """Invoicing's ``issue`` step: after the vouchers and credit took their share (the amounts due)."""
    invoice = Invoice.objects.select_related("customer").get(pk=invoice.pk)
    event_publish("invoice.issued", owner=invoice.customer, subject=invoice, now=now)


def credit_note_issued_step(*, invoice: Invoice, note: CreditNote, now: datetime.datetime, **_kwargs) -> None:
    """Invoicing's ``credit_note`` step."""
    note = CreditNote.objects.select_related("invoice__customer").get(pk=note.pk)
    event_publish("credit_note.issued", owner=note.invoice.customer, subject=note, now=now)
