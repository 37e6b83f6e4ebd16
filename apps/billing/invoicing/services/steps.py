"""Steps that other parts of billing plug into invoicing's events.

Invoicing imports none of the peers that read it (vouchers, payments, notices…). Where an
invoicing event must move something of theirs — a supplier-side voucher paying its share at
issue, a credit note giving back what a voucher or customer credit paid, a receipt mailed after a
payment — the peer registers a *step* for that event at start-up (``apps/billing/apps.py``), and
invoicing runs the steps inside its own transaction, with the invoice locked, in the order they
were registered. See docs/architecture.md#billings-peers.

| event | when | keyword arguments |
|---|---|---|
| ``issue`` | an invoice was issued (numbered, frozen) | ``invoice``, ``now`` |
| ``void`` | an issued invoice was voided | ``invoice``, ``now``, ``actor``, ``reason`` |
| ``credit_note`` | a credit note was written against an issued invoice | ``invoice``, ``note``, ``now``, ``actor`` |
| ``payment`` | a payment was recorded against an invoice | ``invoice``, ``payment``, ``now`` |
"""

from __future__ import annotations

from collections.abc import Callable

Step = Callable[..., object]

EVENTS = ("issue", "void", "credit_note", "payment")
_STEPS: dict[str, list[Step]] = {event: [] for event in EVENTS}


def invoicing_step_register(*, event: str, step: Step) -> Step:
    """Run ``step(**kwargs)`` on ``event`` (once per step, however often it is registered)."""
    if event not in _STEPS:
        raise ValueError(f"Unknown invoicing event {event!r}; one of {', '.join(EVENTS)}.")
    if step not in _STEPS[event]:
        _STEPS[event].append(step)
    return step


def invoicing_steps_run(*, event: str, **kwargs) -> None:
    for step in _STEPS[event]:
        step(**kwargs)
