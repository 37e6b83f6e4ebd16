"""Deliveries never reach the platform's own network unless ``WEBHOOK_ALLOW_PRIVATE_ADDRESSES``
says so (docs/webhooks.md#endpoints): loopback, private, link-local (cloud metadata) addresses
fail the attempt without a request."""

from __future__ import annotations

import pytest
import time_machine

from apps.webhooks import services
from apps.webhooks.models import WebhookAttempt, WebhookDelivery
from tests.factories.billing_flows import card_contract
from tests.factories.contracts import NOW

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("url", "address"),
    [
        ("http://127.0.0.1:8000/admin/", "127.0.0.1"),
        ("http://localhost/", None),
        ("http://10.1.2.3/hook", "10.1.2.3"),
        ("http://169.254.169.254/latest/meta-data/", "169.254.169.254"),
        ("http://[::1]/hook", "::1"),
    ],
)
def test_private_addresses_are_refused(settings, url, address):
    settings.WEBHOOK_ALLOW_PRIVATE_ADDRESSES = False
    refusal = services.private_address_refusal(url)
    assert refusal.endswith("a private address: not sent.")
    if address:
        assert f"resolves to {address}," in refusal


def test_a_public_address_is_allowed(settings):
    settings.WEBHOOK_ALLOW_PRIVATE_ADDRESSES = False
    assert services.private_address_refusal("https://93.184.215.14/hook") == ""


def test_a_delivery_to_a_private_address_is_a_failed_attempt_without_a_request(
    settings, customer, am, server, receiver, django_capture_on_commit_callbacks
):
    services.webhook_endpoint_create(owner=customer, url=receiver.url)
    settings.WEBHOOK_ALLOW_PRIVATE_ADDRESSES = False
    with time_machine.travel(NOW, tick=False), django_capture_on_commit_callbacks(execute=True):
        card_contract(customer, am, server, price="10.00")
    assert receiver.requests == []
    (attempt,) = WebhookAttempt.objects.all()
    assert attempt.status_code is None
    assert attempt.error == "127.0.0.1 resolves to 127.0.0.1, a private address: not sent."
    assert WebhookDelivery.objects.get().status == "pending"  # retried: the setting may change
