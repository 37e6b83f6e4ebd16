"""A billing chunk builds its new drafts positionally (docs/scaling.md#billing): the same invoice
``Invoice(**values)`` would make, field by field, with a mutable default of its own."""

from __future__ import annotations

import datetime
from decimal import Decimal

from apps.billing.invoicing.models import Invoice, InvoiceStatus
from apps.billing.invoicing.services.invoicing import _new_draft

AS_OF = datetime.datetime(2026, 12, 1, 3, tzinfo=datetime.UTC)
VALUES = {
    "customer_id": 7,
    "currency": "USD",
    "period": "2026-11",
    "billing_run_id": 3,
    "usage_cutoff_at": AS_OF,
}


def fields(invoice: Invoice) -> dict[str, object]:
    return {f.attname: getattr(invoice, f.attname) for f in Invoice._meta.concrete_fields}


def test_a_new_draft_is_the_invoice_the_model_would_make():
    built, made = _new_draft(**VALUES), Invoice(**VALUES)
    assert fields(built) == fields(made)
    assert (built.pk, built.status, built.total_amount, built.currency) == (
        None,
        InvoiceStatus.DRAFT,
        Decimal("0.00"),
        "USD",
    )
    assert built._state.adding


def test_each_draft_has_its_own_fapiao_snapshot():
    first, second = _new_draft(**VALUES), _new_draft(**VALUES)
    first.fapiao["buyer"] = "Acme"
    assert second.fapiao == {} and Invoice(**VALUES).fapiao == {}
