"""Stripe (docs/invoices.md#stripe): Checkout Session for the amount due, the signed idempotent
webhook, and nothing at all while Stripe is not configured. Stripe itself is tests/fakes/stripe.py."""

from __future__ import annotations

import datetime
from decimal import Decimal

import pytest
import time_machine
from django.test import override_settings

from apps.accounts import roles
from apps.billing.invoicing.services.payments import payment_record
from apps.billing.models import CreditEntry, Payment, StripeEvent
from apps.billing.payments.services.stripe import (
    amount_from_minor,
    amount_to_minor,
    stripe_checkout_create,
    stripe_configured,
)
from apps.core.errors import DomainError
from tests.factories.billing_flows import SH, bill, issued_invoice
from tests.factories.catalogue import CustomerFactory, ServerFactory
from tests.fakes.stripe import SECRET_KEY, WEBHOOK_SECRET, FakeStripe, signed_event, stripe_event

pytestmark = pytest.mark.django_db

WEBHOOK = "/payments/stripe/webhook/"
DEC_2 = datetime.datetime(2026, 12, 2, 9, tzinfo=SH)


@pytest.fixture
def fake_stripe():
    fake = FakeStripe().start()
    with (
        override_settings(
            STRIPE_SECRET_KEY=SECRET_KEY, STRIPE_WEBHOOK_SECRET=WEBHOOK_SECRET, STRIPE_API_BASE=fake.url
        ),
        time_machine.travel(DEC_2, tick=False),
    ):
        yield fake
    fake.stop()


@pytest.fixture
def invoice(make_staff):
    am = make_staff(roles.ACCOUNT_MANAGER, username="am1")
    # 100 card-hours at 12.3456 → 1,234.56 CNY
    return issued_invoice(CustomerFactory(), am, ServerFactory(), price="12.3456")


def post_event(client, event: dict, **kwargs):
    payload, signature = signed_event(event, **kwargs)
    return client.post(
        WEBHOOK, data=payload, content_type="application/json", HTTP_STRIPE_SIGNATURE=signature
    )


def pay(fake, invoice) -> str:
    url = stripe_checkout_create(
        invoice=invoice, success_url="https://x.test/ok", cancel_url="https://x.test/no"
    )
    return url.rsplit("/", 1)[1]


def test_minor_units_are_exact():
    assert amount_to_minor(amount=Decimal("1234.56"), currency="CNY") == 123456
    assert amount_to_minor(amount=Decimal("0.10"), currency="CNY") == 10
    assert amount_from_minor(minor=123456, currency="CNY") == Decimal("1234.56")
    with pytest.raises(ValueError):
        amount_to_minor(amount=Decimal("1.005"), currency="CNY")


def test_checkout_creates_a_session_for_the_amount_due_in_fen(fake_stripe, invoice):
    assert invoice.total_amount == Decimal("1234.56")
    url = stripe_checkout_create(
        invoice=invoice, success_url="https://x.test/ok", cancel_url="https://x.test/no"
    )

    assert url.startswith(fake_stripe.url + "/pay/cs_test_")
    path, headers, form = fake_stripe.requests[-1]
    assert (path, headers["Authorization"]) == ("/v1/checkout/sessions", f"Bearer {SECRET_KEY}")
    assert form["mode"] == "payment"
    item = form["line_items"]["0"]
    assert item["price_data"] == {
        "currency": "cny",
        "unit_amount": "123456",
        "product_data": {"name": f"Invoice {invoice.number}"},
    }
    assert item["quantity"] == "1"
    assert form["metadata"] == {"invoice_id": str(invoice.pk), "invoice_number": invoice.number}
    assert form["client_reference_id"] == str(invoice.pk)
    assert (form["success_url"], form["cancel_url"]) == ("https://x.test/ok", "https://x.test/no")


def test_checkout_asks_only_for_what_is_still_due(fake_stripe, invoice):
    payment_record(invoice=invoice, amount=Decimal("234.56"), method="bank_transfer", now=DEC_2)
    pay(fake_stripe, invoice)
    assert fake_stripe.requests[-1][2]["line_items"]["0"]["price_data"]["unit_amount"] == "100000"


def test_checkout_refuses_a_paid_or_draft_invoice(fake_stripe, invoice, make_staff):
    payment_record(invoice=invoice, amount=invoice.total_amount, method="bank_transfer", now=DEC_2)
    with pytest.raises(DomainError, match="only issued invoices can be paid online"):
        pay(fake_stripe, invoice)
    assert fake_stripe.requests == []


def test_a_stripe_failure_is_a_readable_error(fake_stripe, invoice):
    fake_stripe.fail_next = (500, {"error": {"type": "api_error", "message": "boom"}})
    with pytest.raises(DomainError, match="could not start the payment") as caught:
        pay(fake_stripe, invoice)
    assert caught.value.http_status == 502


def test_a_signed_completed_event_records_one_payment_and_marks_the_invoice_paid(
    fake_stripe, invoice, client
):
    session_id = pay(fake_stripe, invoice)
    response = post_event(client, fake_stripe.completed_event(session_id, event_id="evt_1"))

    assert response.status_code == 200
    invoice.refresh_from_db()
    assert (invoice.status, invoice.paid_amount, invoice.amount_due) == (
        "paid",
        Decimal("1234.56"),
        Decimal("0"),
    )
    payment = Payment.objects.get(invoice=invoice, method="stripe")
    assert (payment.amount, payment.external_id, payment.reference) == (
        Decimal("1234.56"),
        "pi_test_000001",
        session_id,
    )
    event = StripeEvent.objects.get(event_id="evt_1")
    assert (event.processed, event.session_id, event.invoice, event.payment) == (
        True,
        session_id,
        invoice,
        payment,
    )
    assert event.outcome == f"Paid 1,234.56 CNY on {invoice.number}."


def test_a_replayed_event_changes_nothing(fake_stripe, invoice, client):
    session_id = pay(fake_stripe, invoice)
    event = fake_stripe.completed_event(session_id, event_id="evt_1")
    assert post_event(client, event).status_code == 200
    again = post_event(client, event)

    assert again.status_code == 200
    assert again.json()["replayed"] is True
    assert Payment.objects.filter(invoice=invoice).count() == 1
    assert StripeEvent.objects.count() == 1
    assert CreditEntry.objects.count() == 0


def test_a_second_event_for_the_same_session_pays_nothing_more(fake_stripe, invoice, client):
    session_id = pay(fake_stripe, invoice)
    assert post_event(client, fake_stripe.completed_event(session_id, event_id="evt_1")).status_code == 200
    late = post_event(client, fake_stripe.completed_event(session_id, event_id="evt_0_out_of_order"))

    assert late.status_code == 200
    assert Payment.objects.filter(invoice=invoice).count() == 1
    assert CreditEntry.objects.count() == 0
    duplicate = StripeEvent.objects.get(event_id="evt_0_out_of_order")
    assert duplicate.outcome == f"Duplicate: session {session_id} was paid by event evt_1."
    assert duplicate.payment is None


def test_a_bad_signature_is_refused_with_400(fake_stripe, invoice, client):
    session_id = pay(fake_stripe, invoice)
    event = fake_stripe.completed_event(session_id, event_id="evt_1")
    response = post_event(client, event, secret="whsec_someone_else")

    assert response.status_code == 400
    assert response.json() == {
        "code": "invalid_signature",
        "message": "The Stripe signature does not verify.",
        "fields": {"Stripe-Signature": ["Invalid."]},
    }
    unsigned = client.post(WEBHOOK, data=b"{}", content_type="application/json")
    assert unsigned.status_code == 400
    assert Payment.objects.filter(invoice=invoice).count() == 0
    assert StripeEvent.objects.count() == 0


def test_an_old_signature_is_refused(fake_stripe, invoice, client):
    session_id = pay(fake_stripe, invoice)
    event = fake_stripe.completed_event(session_id, event_id="evt_1")
    old = int(DEC_2.timestamp()) - 3600
    assert post_event(client, event, timestamp=old).status_code == 400


def test_other_event_types_are_stored_and_acknowledged(fake_stripe, client):
    response = post_event(client, stripe_event("evt_x", "payment_intent.created", {"id": "pi_1"}))
    assert response.status_code == 200
    event = StripeEvent.objects.get(event_id="evt_x")
    assert (event.type, event.object_id, event.processed) == ("payment_intent.created", "pi_1", True)
    assert Payment.objects.count() == 0


def test_an_unpaid_completed_session_records_nothing(fake_stripe, invoice, client):
    session_id = pay(fake_stripe, invoice)
    post_event(client, fake_stripe.completed_event(session_id, event_id="evt_1", paid=False))
    assert Payment.objects.filter(invoice=invoice).count() == 0
    assert StripeEvent.objects.get(event_id="evt_1").session_id is None


def test_paying_more_than_is_due_leaves_the_rest_as_credit(fake_stripe, invoice, client):
    session_id = pay(fake_stripe, invoice)  # for 1,234.56
    payment_record(invoice=invoice, amount=Decimal("1000.00"), method="bank_transfer", now=DEC_2)
    post_event(client, fake_stripe.completed_event(session_id, event_id="evt_1"))

    invoice.refresh_from_db()
    assert (invoice.status, invoice.amount_due) == ("paid", Decimal("0"))
    assert Payment.objects.get(invoice=invoice, method="stripe").amount == Decimal("234.56")
    credit = CreditEntry.objects.get(customer=invoice.customer)
    assert (credit.kind, credit.amount, credit.balance_after) == (
        "overpayment",
        Decimal("1000.00"),
        Decimal("1000.00"),
    )


def test_not_configured_the_webhook_is_404_and_checkout_refuses(invoice, client, settings):
    assert stripe_configured() is False
    settings.STRIPE_SECRET_KEY = SECRET_KEY
    assert stripe_configured() is False  # both keys are needed
    settings.STRIPE_SECRET_KEY = ""
    payload, signature = signed_event(stripe_event("evt_1", "checkout.session.completed", {"id": "cs_1"}))
    response = client.post(
        WEBHOOK, data=payload, content_type="application/json", HTTP_STRIPE_SIGNATURE=signature
    )
    assert response.status_code == 404
    assert StripeEvent.objects.count() == 0
    with pytest.raises(DomainError, match="Stripe is not configured"):
        stripe_checkout_create(
            invoice=invoice, success_url="https://x.test/ok", cancel_url="https://x.test/no"
        )


def test_the_webhook_takes_post_only_and_needs_no_csrf_token(fake_stripe, invoice):
    from django.test import Client

    csrf_client = Client(enforce_csrf_checks=True)
    assert csrf_client.get(WEBHOOK).status_code == 405
    session_id = pay(fake_stripe, invoice)
    assert (
        post_event(csrf_client, fake_stripe.completed_event(session_id, event_id="evt_1")).status_code == 200
    )
    assert bill(invoice.customer).status == "paid"
