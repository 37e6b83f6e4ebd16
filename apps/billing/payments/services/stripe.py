"""Stripe Checkout for the amount due, and the signed webhook that records what was paid
(docs/invoices.md#stripe).

Keys come from settings (``STRIPE_SECRET_KEY``, ``STRIPE_WEBHOOK_SECRET``; ``STRIPE_API_BASE``
points the client elsewhere, e.g. at the test fake). With no keys, ``stripe_configured()`` is
False: the portal hides its pay button and the webhook answers 404.
"""

from __future__ import annotations

import datetime
import json
import logging
from dataclasses import dataclass
from decimal import Decimal

import stripe
from django.conf import settings
from django.db import IntegrityError, transaction

from apps.billing.invoicing.models import Invoice, InvoiceStatus, PaymentMethod
from apps.billing.payments.models import StripeEvent
from apps.billing.payments.services.credit import invoice_payment_take
from apps.core.errors import DomainError, InvalidState
from apps.core.money import ZERO, round_money

logger = logging.getLogger(__name__)

# Digits after the decimal point of each currency's minor unit (fen, cents): Stripe counts in it.
MINOR_UNIT_DIGITS = {"CNY": 2, "USD": 2, "HKD": 2}
PAID_EVENTS = ("checkout.session.completed", "checkout.session.async_payment_succeeded")


def stripe_configured() -> bool:
    """True when both the secret key and the webhook signing secret are set."""
    return bool(getattr(settings, "STRIPE_SECRET_KEY", "") and getattr(settings, "STRIPE_WEBHOOK_SECRET", ""))


def stripe_client() -> stripe.StripeClient:
    base = getattr(settings, "STRIPE_API_BASE", "")
    options = {"base_addresses": {"api": base}} if base else {}
    return stripe.StripeClient(settings.STRIPE_SECRET_KEY, max_network_retries=0, **options)


def amount_to_minor(*, amount: Decimal, currency: str) -> int:
    """1,234.56 CNY → 123456 fen, exactly (no float): the amount must already be in whole minor units."""
    digits = MINOR_UNIT_DIGITS[currency.upper()]
    if round_money(amount) != amount:
        raise ValueError(f"{amount} is not a whole number of minor units of {currency}")
    return int(amount.scaleb(digits))


def amount_from_minor(*, minor: int, currency: str) -> Decimal:
    """123456 fen → Decimal("1234.56") CNY."""
    return Decimal(int(minor)).scaleb(-MINOR_UNIT_DIGITS[currency.upper()])


def stripe_checkout_create(*, invoice: Invoice, success_url: str, cancel_url: str, actor=None) -> str:
    """A Stripe Checkout Session for the invoice's amount due; returns the URL to send the payer to.

    Nothing is stored: the payment is recorded when Stripe's signed webhook says it was paid.
    """
    if not stripe_configured():
        raise DomainError(
            "Online payment is not available: Stripe is not configured.", code="stripe_not_configured"
        )
    invoice = Invoice.objects.select_related("customer").get(pk=invoice.pk)
    if invoice.status != InvoiceStatus.ISSUED:
        raise InvalidState(f"Invoice {invoice} is {invoice.status}; only issued invoices can be paid online.")
    due = invoice.amount_due
    if due <= ZERO:
        raise InvalidState(f"Invoice {invoice} has nothing due.", code="nothing_due")
    if invoice.currency.upper() not in MINOR_UNIT_DIGITS:
        raise DomainError(f"Stripe payments in {invoice.currency} are not supported.", code="invalid")
    metadata = {"invoice_id": str(invoice.pk), "invoice_number": invoice.number}
    params = {
        "mode": "payment",
        "line_items": [
            {
                "quantity": 1,
                "price_data": {
                    "currency": invoice.currency.lower(),
                    "unit_amount": amount_to_minor(amount=due, currency=invoice.currency),
                    "product_data": {"name": f"Invoice {invoice.number}"},
                },
            }
        ],
        "success_url": success_url,
        "cancel_url": cancel_url,
        "client_reference_id": str(invoice.pk),
        "metadata": metadata,
        "payment_intent_data": {"metadata": metadata},
    }
    if invoice.customer.billing_email:
        params["customer_email"] = invoice.customer.billing_email
    try:
        session = stripe_client().v1.checkout.sessions.create(params=params)
    except stripe.StripeError as exc:
        logger.warning("Stripe refused a checkout session for %s: %s", invoice, exc)
        raise DomainError(
            "The payment provider could not start the payment; please try again later.",
            code="stripe_error",
            http_status=502,
        ) from None
    logger.info("Stripe checkout %s for %s (%s %s) by %s", session.id, invoice, due, invoice.currency, actor)
    return session.url


@dataclass(frozen=True)
class StripeEventOutcome:
    event: StripeEvent
    replayed: bool  # the event id was seen before: nothing changed


def stripe_event_verify(*, payload: bytes, signature: str) -> dict:
    """The event Stripe signed, or ``DomainError`` (400) when the payload or signature is bad."""
    try:
        stripe.Webhook.construct_event(payload, signature, settings.STRIPE_WEBHOOK_SECRET)
    except stripe.SignatureVerificationError:
        raise DomainError(
            "The Stripe signature does not verify.",
            code="invalid_signature",
            fields={"Stripe-Signature": ["Invalid."]},
        ) from None
    except ValueError:
        raise DomainError("The payload is not a Stripe event.", code="malformed_request") from None
    return json.loads(payload)  # plain JSON: the event as Stripe sent it


@transaction.atomic
def stripe_event_receive(*, payload: bytes, signature: str, now: datetime.datetime) -> StripeEventOutcome:
    """Verify, store once by event id, and act on a webhook event (idempotent).

    A paid Checkout Session records a ``stripe`` payment of the amount due; what exceeds it (or
    all of it, when the invoice was paid or voided meanwhile) becomes customer credit. Any other
    event type is stored and acknowledged.
    """
    data = stripe_event_verify(payload=payload, signature=signature)
    event_id = str(data.get("id") or "")
    if not event_id:
        raise DomainError("The Stripe event has no id.", code="malformed_request")
    obj = (data.get("data") or {}).get("object") or {}
    try:
        with transaction.atomic():
            event = StripeEvent.objects.create(
                event_id=event_id,
                type=str(data.get("type") or ""),
                object_id=str(obj.get("id") or "")[:255],
                payload=data,
                received_at=now,
            )
    except IntegrityError:  # the same event again (a replay or a concurrent retry)
        return StripeEventOutcome(StripeEvent.objects.get(event_id=event_id), replayed=True)
    if event.type in PAID_EVENTS:
        _checkout_paid(event=event, session=obj, now=now)
    else:
        event.outcome = "Stored; nothing to do for this event type."
    event.processed = True
    event.save()
    return StripeEventOutcome(event, replayed=False)


def _checkout_paid(*, event: StripeEvent, session: dict, now: datetime.datetime) -> None:
    session_id = str(session.get("id") or "")
    if session.get("payment_status") != "paid":
        event.outcome = f"Session {session_id} is {session.get('payment_status')!r}, not paid yet."
        return
    metadata = session.get("metadata") or {}
    invoice_id = str(metadata.get("invoice_id") or session.get("client_reference_id") or "")
    # the invoice's lock first: two events of one session arriving together pay in turn
    invoice = (
        Invoice.objects.select_for_update().filter(pk=int(invoice_id)).first()
        if invoice_id.isdigit()
        else None
    )
    earlier = StripeEvent.objects.filter(session_id=session_id).first()
    if earlier is not None:
        event.outcome = f"Duplicate: session {session_id} was paid by event {earlier.event_id}."
        event.invoice_id = earlier.invoice_id
        return
    currency = str(session.get("currency") or "").upper()
    if invoice is None:
        event.outcome = f"Session {session_id} names no invoice of ours ({invoice_id!r}); nothing recorded."
        logger.error("Stripe session %s paid for an unknown invoice %r", session_id, invoice_id)
        return
    if currency != invoice.currency or currency not in MINOR_UNIT_DIGITS:
        event.invoice = invoice
        event.outcome = (
            f"Session {session_id} was paid in {currency}, not {invoice.currency}; nothing recorded."
        )
        logger.error("Stripe session %s currency %s does not match %s", session_id, currency, invoice)
        return
    amount = amount_from_minor(minor=session.get("amount_total") or 0, currency=currency)
    event.session_id = session_id  # unique: a second event for this session cannot pay again
    event.invoice = invoice
    event.save(update_fields=["session_id", "invoice"])
    if amount <= ZERO:
        event.outcome = f"Session {session_id} paid nothing."
        return
    taken = invoice_payment_take(
        invoice=invoice,
        amount=amount,
        method=PaymentMethod.STRIPE,
        received_at=now,
        actor=None,
        reference=session_id,
        external_id=str(session.get("payment_intent") or session_id),
    )
    event.payment = taken.payment
    parts = []
    if taken.payment is not None:
        parts.append(f"paid {taken.payment.amount:,.2f} {currency} on {invoice.number}")
    if taken.credit is not None:
        parts.append(f"{taken.credit.amount:,.2f} {currency} to customer credit")
    text = "; ".join(parts)
    event.outcome = text[:1].upper() + text[1:] + "."
