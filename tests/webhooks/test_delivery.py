"""Signed delivery to a local receiver (docs/webhooks.md): after commit, verified with the docs'
snippet, retried with backoff for 72 hours, each attempt logged; rotation, disabled endpoints,
redirects, running the task twice."""

from __future__ import annotations

import datetime
import json

import pytest
import time_machine
from django.db import transaction

from apps.billing.models import Invoice
from apps.webhooks import services
from apps.webhooks.models import WebhookAttempt, WebhookDelivery, WebhookEvent
from apps.webhooks.tasks import webhook_deliver_due_task, webhook_deliver_task
from tests.factories.billing_flows import bill, card_contract, issue, use
from tests.webhooks.conftest import SH, docs_verify

pytestmark = pytest.mark.django_db

ISSUED_AT = datetime.datetime(2026, 12, 1, 10, tzinfo=SH)


@pytest.fixture
def endpoint(customer, receiver):
    """The customer's endpoint for ``invoice.issued`` (not the contract's activation)."""
    made, secret = services.webhook_endpoint_create(
        owner=customer, url=receiver.url, events=["invoice.issued"]
    )
    made.plain_secret = secret
    return made


@pytest.fixture
def draft(customer, am, server):
    """November's draft invoice of 100 card-hours at 10.00 (1,000.00 including VAT)."""
    card_contract(customer, am, server, price="10.00")
    use(server, 100)
    return bill(customer)


def issue_now(draft, django_capture_on_commit_callbacks) -> Invoice:
    with time_machine.travel(ISSUED_AT, tick=False), django_capture_on_commit_callbacks(execute=True):
        return issue(draft, on=ISSUED_AT)


def test_issuing_an_invoice_delivers_invoice_issued_signed_as_the_docs_verify(
    endpoint, draft, receiver, django_capture_on_commit_callbacks
):
    with (
        time_machine.travel(ISSUED_AT, tick=False),
        django_capture_on_commit_callbacks(execute=True) as queued,
    ):
        invoice = issue(draft, on=ISSUED_AT)
        assert receiver.requests == []  # nothing leaves inside the transaction
    assert len(queued) >= 1
    (request,) = receiver.requests  # sent once the issue committed

    verify = docs_verify()
    signature = request.headers["Suanli-Signature"]
    assert signature.startswith(f"t={int(ISSUED_AT.timestamp())},v1=")
    with time_machine.travel(ISSUED_AT + datetime.timedelta(seconds=30), tick=False):
        assert verify(request.body, signature, endpoint.plain_secret)
        assert not verify(request.body + b" ", signature, endpoint.plain_secret)
        assert not verify(request.body, signature, "whsec_someone-else")
    with time_machine.travel(ISSUED_AT + datetime.timedelta(minutes=6), tick=False):
        assert not verify(request.body, signature, endpoint.plain_secret)  # too old: a replay

    body = json.loads(request.body)
    event = WebhookEvent.objects.get()
    assert request.path == "/hooks/suanli"
    assert request.headers["Suanli-Event-Id"] == event.public_id == body["id"]
    assert request.headers["Content-Type"] == "application/json; charset=utf-8"
    assert body["type"] == "invoice.issued"
    assert body["created"] == "2026-12-01T10:00:00+08:00"
    assert body["data"] | {"id": None} == {
        "object": "invoice",
        "id": None,
        "number": invoice.number,
        "customer": "acme",
        "period": "2026-11",
        "status": "issued",
        "currency": "CNY",
        "net_amount": "943.40",
        "tax_amount": "56.60",
        "total_amount": "1000.00",
        "voucher_amount": "0.00",
        "credited_amount": "0.00",
        "paid_amount": "0.00",
        "amount_due": "1000.00",
        "issued_on": "2026-12-01",
        "due_on": "2026-12-31",
        "issued_at": "2026-12-01T10:00:00+08:00",
        "paid_at": None,
    }
    delivery = WebhookDelivery.objects.get()
    assert (delivery.status, delivery.attempt_count, delivery.last_status_code) == ("delivered", 1, 200)
    (attempt,) = delivery.attempts.all()
    assert (attempt.status_code, attempt.response_snippet, attempt.succeeded) == (200, "ok", True)


def test_a_rolled_back_change_writes_no_outbox_row_and_sends_nothing(
    endpoint, draft, receiver, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        with pytest.raises(RuntimeError), transaction.atomic():
            issue(draft, on=ISSUED_AT)
            assert WebhookEvent.objects.count() == 1  # written with the change…
            raise RuntimeError("the caller's transaction fails after the issue")
    assert WebhookEvent.objects.count() == 0  # …and gone with it
    assert WebhookDelivery.objects.count() == 0
    assert receiver.requests == []
    draft.refresh_from_db()
    assert draft.status == "draft"


def test_a_500_is_retried_after_a_minute_and_delivered_with_both_attempts_logged(
    endpoint, draft, receiver, django_capture_on_commit_callbacks
):
    receiver.answer(500, b"database is down")
    issue_now(draft, django_capture_on_commit_callbacks)
    delivery = WebhookDelivery.objects.get()
    assert (delivery.status, delivery.attempt_count, delivery.last_status_code) == ("pending", 1, 500)
    assert delivery.next_attempt_at == ISSUED_AT + datetime.timedelta(minutes=1)

    with time_machine.travel(ISSUED_AT + datetime.timedelta(seconds=59), tick=False):
        assert webhook_deliver_due_task() == 0  # not due yet
    with time_machine.travel(ISSUED_AT + datetime.timedelta(minutes=1), tick=False):
        assert webhook_deliver_due_task() == 1
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempt_count, delivery.last_status_code) == ("delivered", 2, 200)
    assert delivery.delivered_at == ISSUED_AT + datetime.timedelta(minutes=1)
    assert [(a.status_code, a.response_snippet, a.succeeded) for a in delivery.attempts.all()] == [
        (500, "database is down", False),
        (200, "ok", True),
    ]
    assert len(receiver.requests) == 2
    first, second = receiver.requests
    assert first.body == second.body  # the same event, the same bytes
    assert first.headers["Suanli-Event-Id"] == second.headers["Suanli-Event-Id"]


def test_failures_back_off_1m_5m_30m_2h_5h_10h_then_every_10h_and_give_up_after_72h(
    endpoint, draft, receiver, django_capture_on_commit_callbacks
):
    for _ in range(20):
        receiver.answer(503)
    issue_now(draft, django_capture_on_commit_callbacks)
    delivery = WebhookDelivery.objects.get()
    while delivery.status == "pending":
        with time_machine.travel(delivery.next_attempt_at, tick=False):
            assert webhook_deliver_task(delivery.pk) is True
        delivery.refresh_from_db()
    offsets = [a.attempted_at - ISSUED_AT for a in WebhookAttempt.objects.filter(delivery=delivery)]
    hours = [round(offset.total_seconds() / 3600, 2) for offset in offsets]
    assert hours == [0, 0.02, 0.1, 0.6, 2.6, 7.6, 17.6, 27.6, 37.6, 47.6, 57.6, 67.6]
    assert (delivery.status, delivery.attempt_count, delivery.next_attempt_at) == ("failed", 12, None)
    assert len(receiver.requests) == 12


def test_running_the_task_twice_sends_a_delivered_event_once(
    endpoint, draft, receiver, django_capture_on_commit_callbacks
):
    issue_now(draft, django_capture_on_commit_callbacks)
    delivery = WebhookDelivery.objects.get()
    assert webhook_deliver_task(delivery.pk) is False
    assert webhook_deliver_due_task() == 0
    assert len(receiver.requests) == 1
    assert delivery.attempts.count() == 1


def test_after_rotation_both_secrets_verify_until_the_grace_period_ends(
    endpoint, draft, receiver, django_capture_on_commit_callbacks
):
    old_secret = endpoint.plain_secret
    rotated_at = ISSUED_AT - datetime.timedelta(hours=1)
    endpoint, new_secret = services.webhook_endpoint_rotate_secret(endpoint=endpoint, now=rotated_at)
    assert new_secret.startswith("whsec_") and new_secret != old_secret
    assert endpoint.previous_secret_expires_at == rotated_at + datetime.timedelta(hours=24)
    issue_now(draft, django_capture_on_commit_callbacks)

    (request,) = receiver.requests
    header = request.headers["Suanli-Signature"]
    assert header.count("v1=") == 2
    verify = docs_verify()
    with time_machine.travel(ISSUED_AT, tick=False):
        assert verify(request.body, header, new_secret)
        assert verify(request.body, header, old_secret)

    # After the grace period only the new secret signs.
    delivery = WebhookDelivery.objects.get()
    later = rotated_at + datetime.timedelta(hours=24, seconds=1)
    with time_machine.travel(later, tick=False), django_capture_on_commit_callbacks(execute=True):
        services.webhook_delivery_resend(delivery=delivery, now=later)
    header = receiver.requests[-1].headers["Suanli-Signature"]
    assert header.count("v1=") == 1
    with time_machine.travel(later, tick=False):
        assert verify(receiver.requests[-1].body, header, new_secret)
        assert not verify(receiver.requests[-1].body, header, old_secret)


def test_a_disabled_endpoint_receives_nothing(endpoint, draft, receiver, django_capture_on_commit_callbacks):
    services.webhook_endpoint_update(endpoint=endpoint, enabled=False)
    issue_now(draft, django_capture_on_commit_callbacks)
    assert receiver.requests == []
    assert WebhookEvent.objects.count() == 0 and WebhookDelivery.objects.count() == 0


def test_an_endpoint_disabled_while_a_retry_waits_gets_it_cancelled(
    endpoint, draft, receiver, django_capture_on_commit_callbacks
):
    receiver.answer(500)
    issue_now(draft, django_capture_on_commit_callbacks)
    services.webhook_endpoint_update(endpoint=endpoint, enabled=False)
    with time_machine.travel(ISSUED_AT + datetime.timedelta(minutes=2), tick=False):
        assert webhook_deliver_due_task() == 0
    delivery = WebhookDelivery.objects.get()
    assert (delivery.status, delivery.last_error) == ("cancelled", "The endpoint is disabled.")
    assert len(receiver.requests) == 1  # only the first, failed attempt


def test_an_endpoint_subscribed_to_other_events_gets_nothing(
    endpoint, draft, receiver, django_capture_on_commit_callbacks
):
    services.webhook_endpoint_update(endpoint=endpoint, events=["invoice.paid"])
    issue_now(draft, django_capture_on_commit_callbacks)
    assert receiver.requests == [] and WebhookEvent.objects.count() == 0


def test_a_redirect_is_not_followed_and_counts_as_a_failure(
    endpoint, draft, receiver, django_capture_on_commit_callbacks
):
    receiver.answer(302, b"", {"Location": "http://169.254.169.254/latest/meta-data/"})
    issue_now(draft, django_capture_on_commit_callbacks)
    (attempt,) = WebhookAttempt.objects.all()
    assert attempt.status_code == 302 and not attempt.succeeded
    assert attempt.error == "Redirect to http://169.254.169.254/latest/meta-data/ not followed."
    assert len(receiver.requests) == 1
    assert WebhookDelivery.objects.get().status == "pending"


def test_the_logged_answer_is_cut_at_1_kb(endpoint, draft, receiver, django_capture_on_commit_callbacks):
    receiver.answer(500, b"x" * 5000)
    issue_now(draft, django_capture_on_commit_callbacks)
    (attempt,) = WebhookAttempt.objects.all()
    assert attempt.response_snippet == "x" * 1024


def test_an_unreachable_endpoint_logs_the_error_and_retries(
    customer, draft, django_capture_on_commit_callbacks
):
    services.webhook_endpoint_create(owner=customer, url="http://127.0.0.1:9/closed")
    issue_now(draft, django_capture_on_commit_callbacks)
    (attempt,) = WebhookAttempt.objects.all()
    assert attempt.status_code is None and attempt.error.startswith("ConnectionError")
    assert WebhookDelivery.objects.get().next_attempt_at == ISSUED_AT + datetime.timedelta(minutes=1)


@pytest.mark.parametrize(
    "url", ["ftp://example.com/hook", "file:///etc/passwd", "javascript:alert(1)", "example.com/hook", ""]
)
def test_non_http_urls_are_refused(customer, url):
    from apps.core.errors import DomainError

    with pytest.raises(DomainError) as refused:
        services.webhook_endpoint_create(owner=customer, url=url)
    assert refused.value.code == "invalid_url"
    assert refused.value.message == "Webhook URLs must be absolute http:// or https:// URLs."
