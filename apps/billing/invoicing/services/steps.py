"""Steps that other parts of billing plug into invoicing's issue and void.

Invoicing does not import vouchers (or anything else that reads it): a supplier-side voucher
paying its share at issue, or giving it back at void, is a *step* registered here by the billing
app at start-up (``apps/billing/apps.py``). Steps run inside the issuing transaction, in the
order registered, with the invoice locked. See docs/architecture.md#layers.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable

from apps.billing.invoicing.models import Invoice

IssueStep = Callable[..., object]

_ISSUE_STEPS: list[IssueStep] = []
_VOID_STEPS: list[IssueStep] = []


def issue_step_register(*, step: IssueStep) -> IssueStep:
    """Run ``step(invoice=…, now=…)`` when an invoice is issued (once per step)."""
    if step not in _ISSUE_STEPS:
        _ISSUE_STEPS.append(step)
    return step


def void_step_register(*, step: IssueStep) -> IssueStep:
    """Run ``step(invoice=…, now=…, actor=…, reason=…)`` when an issued invoice is voided."""
    if step not in _VOID_STEPS:
        _VOID_STEPS.append(step)
    return step


def issue_steps_run(*, invoice: Invoice, now: datetime.datetime) -> None:
    for step in _ISSUE_STEPS:
        step(invoice=invoice, now=now)


def void_steps_run(*, invoice: Invoice, now: datetime.datetime, actor, reason: str) -> None:
    for step in _VOID_STEPS:
        step(invoice=invoice, now=now, actor=actor, reason=reason)
