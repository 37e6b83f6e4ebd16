"""Delivery in order per endpoint (docs/webhooks.md#order): an event waits while an earlier one to
the same endpoint is being retried, goes as soon as that one is delivered or given up, and another
endpoint's line is not held up."""

from __future__ import annotations

import datetime
from decimal import Decimal

import pytest
import time_machine

from apps.billing.invoicing.services.payments import payment_record
from apps.webhooks import services
from apps.webhooks.models import WebhookDelivery
from apps.webhooks.tasks import webhook_deliver_due_task, webhook_deliver_task
from tests.factories.billing_flows import bill, card_contract, issue, use
from tests.webhooks.conftest import SH

pytestmark = pytest.mark.django_db

ISSUED_AT = datetime.datetime(2026, 12, 1, 10, tzinfo=SH)
PAID_AT = ISSUED_AT + datetime.timedelta(seconds=10)
EVENTS = ["invoice.issued", "invoice.paid"]


@pytest.fixture
def draft(customer, am, server):
    """November's draft invoice of 100 card-hours at 10.00 (1,000.00 including VAT)."""
    card_contract(customer, am, server, price="10.00")
    use(server, 100)
    return bill(customer)


@pytest.fixture
def endpoint(customer, receiver, draft):
    made, _ = services.webhook_endpoint_create(owner=customer, url=receiver.url, events=EVENTS)
    return made


def issue_then_pay(draft, capture) -> None:
    """The invoice issued at 10:00 (``invoice.issued``) and paid in full 10 s later (``invoice.paid``)."""
    with time_machine.travel(ISSUED_AT, tick=False), capture(execute=True):
        invoice = issue(draft, on=ISSUED_AT)
    with time_machine.travel(PAID_AT, tick=False), capture(execute=True):
        payment_record(invoice=invoice, amount=Decimal("1000.00"), method="bank_transfer", now=PAID_AT)


def sent(receiver, path: str = "/hooks/suanli") -> list[str]:
    return [r.headers["Suanli-Event-Type"] for r in receiver.requests if r.path == path]


def delivery(endpoint, event_type: str) -> WebhookDelivery:
    return WebhookDelivery.objects.get(endpoint=endpoint, event__type=event_type)


def test_an_event_waits_while_the_earlier_one_is_retried_and_follows_it_once_delivered(
    endpoint, draft, receiver, django_capture_on_commit_callbacks
):
    receiver.answer(503)
    issue_then_pay(draft, django_capture_on_commit_callbacks)
    assert sent(receiver) == ["invoice.issued"]  # the 503; invoice.paid was not sent past it
    paid = delivery(endpoint, "invoice.paid")
    assert (paid.status, paid.attempt_count) == ("pending", 0)

    with time_machine.travel(ISSUED_AT + datetime.timedelta(seconds=59), tick=False):
        assert webhook_deliver_due_task() == 0  # the paid one is due, but behind the issued one
        assert webhook_deliver_task(paid.pk) is False
    assert sent(receiver) == ["invoice.issued"]

    with (
        time_machine.travel(ISSUED_AT + datetime.timedelta(minutes=1), tick=False),
        django_capture_on_commit_callbacks(execute=True),
    ):
        assert webhook_deliver_due_task() == 1  # the issued one; it queues the paid one
    assert sent(receiver) == ["invoice.issued", "invoice.issued", "invoice.paid"]
    assert [r.status for r in (delivery(endpoint, t) for t in EVENTS)] == ["delivered", "delivered"]
    assert delivery(endpoint, "invoice.paid").attempt_count == 1


def test_another_endpoint_is_not_held_up_by_this_ones_failing_event(
    endpoint, customer, draft, receiver, django_capture_on_commit_callbacks
):
    other, _ = services.webhook_endpoint_create(owner=customer, url=receiver.url + "/other", events=EVENTS)
    receiver.answer(503)  # the first request: the issued event to the first endpoint
    issue_then_pay(draft, django_capture_on_commit_callbacks)
    assert sent(receiver) == ["invoice.issued"]
    assert sent(receiver, "/hooks/suanli/other") == ["invoice.issued", "invoice.paid"]
    assert [delivery(other, t).status for t in EVENTS] == ["delivered", "delivered"]
    assert [delivery(endpoint, t).status for t in EVENTS] == ["pending", "pending"]


def test_when_the_earlier_event_is_given_up_the_next_one_goes_at_once(
    endpoint, draft, receiver, django_capture_on_commit_callbacks
):
    for _ in range(12):
        receiver.answer(503)
    issue_then_pay(draft, django_capture_on_commit_callbacks)
    issued = delivery(endpoint, "invoice.issued")
    while issued.status == "pending":
        with (
            time_machine.travel(issued.next_attempt_at, tick=False),
            django_capture_on_commit_callbacks(execute=True),
        ):
            assert webhook_deliver_task(issued.pk) is True
        issued.refresh_from_db()
        if issued.status == "pending":
            assert delivery(endpoint, "invoice.paid").attempt_count == 0
    assert (issued.status, issued.attempt_count) == ("failed", 12)  # given up after 67.6 h
    paid = delivery(endpoint, "invoice.paid")
    assert (paid.status, paid.attempt_count) == ("delivered", 1)
    assert paid.delivered_at == issued.attempts.order_by("attempted_at").last().attempted_at
    assert sent(receiver) == ["invoice.issued"] * 12 + ["invoice.paid"]
