"""Admin of webhook endpoints and the delivery log (docs/webhooks.md#admin): the secret shown once,
rows scoped to the account manager's customers, re-send and rotation through services."""

from __future__ import annotations

import datetime

import pytest
import time_machine
from django.contrib.messages import get_messages
from django.urls import reverse

from apps.accounts import roles
from apps.webhooks import services
from apps.webhooks.models import WebhookDelivery, WebhookEndpoint
from tests.factories.billing_flows import card_contract
from tests.factories.catalogue import CustomerFactory
from tests.webhooks.conftest import SH

pytestmark = pytest.mark.django_db

ENDPOINTS = reverse("admin:webhooks_webhookendpoint_changelist")
DELIVERIES = reverse("admin:webhooks_webhookdelivery_changelist")
NOW = datetime.datetime(2026, 11, 20, 10, tzinfo=SH)


def messages_of(response) -> list[str]:
    return [str(message) for message in get_messages(response.wsgi_request)]


@pytest.fixture
def finance(client, make_staff):
    client.force_login(make_staff(roles.FINANCE, username="finance1"))
    return client


@pytest.fixture
def globex_endpoint(make_staff):
    other_am = make_staff(roles.ACCOUNT_MANAGER, username="am2")
    endpoint, _ = services.webhook_endpoint_create(
        owner=CustomerFactory(code="globex", account_manager=other_am), url="https://globex.example/h"
    )
    return endpoint


def test_finance_adds_an_endpoint_and_reads_its_secret_once(finance, customer):
    response = finance.post(
        reverse("admin:webhooks_webhookendpoint_add"),
        {
            "customer": customer.pk,
            "url": "https://erp.acme.example/suanli",
            "event_types": ["invoice.issued", "invoice.paid"],
            "enabled": "on",
            "description": "ERP",
        },
        follow=True,
    )
    assert response.status_code == 200
    endpoint = WebhookEndpoint.objects.get()
    assert (endpoint.customer, endpoint.events, endpoint.enabled) == (
        customer,
        "invoice.issued invoice.paid",
        True,
    )
    (message,) = [m for m in messages_of(response) if "whsec_" in m]
    assert message.endswith(endpoint.secret)
    change_page = finance.get(reverse("admin:webhooks_webhookendpoint_change", args=[endpoint.pk]))
    assert change_page.status_code == 200
    assert endpoint.secret not in change_page.content.decode()


def test_the_admin_refuses_a_non_http_url_and_two_owners(finance, customer, server):
    add = reverse("admin:webhooks_webhookendpoint_add")
    response = finance.post(add, {"customer": customer.pk, "url": "ftp://erp.acme.example/", "enabled": "on"})
    assert response.status_code == 200 and "Enter a valid URL." in response.content.decode()
    response = finance.post(
        add,
        {
            "customer": customer.pk,
            "provider": server.provider.pk,
            "url": "https://x.example/",
            "enabled": "on",
        },
    )
    assert "Choose either a customer or a provider." in response.content.decode()
    assert WebhookEndpoint.objects.count() == 0


def test_account_managers_see_only_their_customers_endpoints_and_deliveries(
    client, am, customer, endpoint, globex_endpoint, server, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        card_contract(customer, am, server, price="10.00")  # contract.activated to the receiver
    client.force_login(am)
    listed = client.get(ENDPOINTS)
    assert [row.pk for row in listed.context["cl"].result_list] == [endpoint.pk]
    assert client.get(
        reverse("admin:webhooks_webhookendpoint_change", args=[globex_endpoint.pk])
    ).status_code in (
        302,
        404,
    )
    # read-only: no add, no change
    assert client.get(reverse("admin:webhooks_webhookendpoint_add")).status_code == 403
    deliveries = client.get(DELIVERIES)
    assert [d.endpoint_id for d in deliveries.context["cl"].result_list] == [endpoint.pk]


def test_the_delivery_log_re_sends_a_delivered_event(
    finance, customer, am, endpoint, server, receiver, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        card_contract(customer, am, server, price="10.00")
    delivery = WebhookDelivery.objects.get()
    assert delivery.status == "delivered" and len(receiver.requests) == 1

    page = finance.get(reverse("admin:webhooks_webhookdelivery_change", args=[delivery.pk]))
    assert page.status_code == 200
    assert "contract.activated" in page.content.decode() and delivery.event.public_id in page.content.decode()

    with time_machine.travel(NOW, tick=False), django_capture_on_commit_callbacks(execute=True):
        response = finance.post(
            DELIVERIES, {"action": "resend", "_selected_action": [delivery.pk]}, follow=True
        )
    assert "1 delivery queued to be sent again 已重新排队发送." in messages_of(response)
    assert len(receiver.requests) == 2
    assert receiver.requests[0].body == receiver.requests[1].body
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempt_count) == ("delivered", 2)
    assert delivery.retry_until == NOW + datetime.timedelta(hours=72)


def test_account_managers_cannot_re_send(
    client, am, customer, endpoint, server, receiver, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        card_contract(customer, am, server, price="10.00")
    delivery = WebhookDelivery.objects.get()
    client.force_login(am)
    assert client.get(DELIVERIES).context["action_form"] is None  # no action offered
    with django_capture_on_commit_callbacks(execute=True):
        client.post(DELIVERIES, {"action": "resend", "_selected_action": [delivery.pk]})
    assert len(receiver.requests) == 1


def test_rotating_in_the_admin_shows_the_new_secret_once(finance, endpoint):
    with time_machine.travel(NOW, tick=False):
        response = finance.post(
            ENDPOINTS, {"action": "rotate_secret", "_selected_action": [endpoint.pk]}, follow=True
        )
    endpoint.refresh_from_db()
    (message,) = [m for m in messages_of(response) if "whsec_" in m]
    assert message.endswith(endpoint.secret)
    assert endpoint.previous_secret == endpoint.plain_secret
    assert "2026-11-21 10:00 CST" in message  # the old secret signs for 24 more hours
