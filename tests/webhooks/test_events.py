"""Each event type is produced by its real service (docs/webhooks.md#events): issuing, paying,
the daily overdue job, a credit note, activating a contract, confirming a settlement, a refused
usage batch (through the API: the provider hears of it after the 400)."""

from __future__ import annotations

import datetime
import json
from decimal import Decimal

import pytest
import time_machine
from rest_framework.test import APIClient

from apps.accounts import roles
from apps.billing.invoicing.services.issuing import credit_note_create
from apps.billing.invoicing.services.payments import payment_record
from apps.billing.models import SettlementStatement
from apps.billing.notices.services import notice_queue_reminders
from apps.billing.settlements import services as settlements
from apps.metering import services as metering
from apps.metering.models import UsageRecord
from apps.providers.models import SupplyAgreement
from apps.webhooks.models import WebhookDelivery, WebhookEvent
from tests.factories.billing_flows import bill, card_contract, issue, use
from tests.factories.metering import card_record, partner_key
from tests.webhooks.conftest import SH, provider_endpoint

pytestmark = pytest.mark.django_db

ISSUED_AT = datetime.datetime(2026, 12, 1, 10, tzinfo=SH)


def events_received(receiver) -> list[tuple[str, dict]]:
    return [(json.loads(r.body)["type"], json.loads(r.body)["data"]) for r in receiver.requests]


@pytest.fixture
def issued(customer, am, server, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        card_contract(customer, am, server, price="10.00")
        use(server, 100)
        return issue(bill(customer), on=ISSUED_AT)


def test_activating_a_contract_sends_contract_activated(
    endpoint, customer, am, server, receiver, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        contract = card_contract(customer, am, server, price="10.00")
    ((kind, data),) = events_received(receiver)
    assert kind == "contract.activated"
    assert data == {
        "object": "contract",
        "id": contract.pk,
        "number": contract.number,
        "version": 1,
        "customer": "acme",
        "status": "active",
        "currency": "CNY",
        "start": "2026-11-01T00:00:00+08:00",
        "end": "2027-11-01T00:00:00+08:00",
        "activated_at": data["activated_at"],
    }
    assert data["activated_at"].endswith("+08:00")


def test_issuing_sends_invoice_issued(endpoint, issued, receiver):
    assert [kind for kind, _ in events_received(receiver)] == ["contract.activated", "invoice.issued"]
    _, data = events_received(receiver)[1]
    assert (data["number"], data["amount_due"], data["due_on"]) == (issued.number, "1000.00", "2026-12-31")


def test_a_payment_covering_the_invoice_sends_invoice_paid_once(
    endpoint, issued, receiver, django_capture_on_commit_callbacks
):
    paid_at = ISSUED_AT + datetime.timedelta(days=3)
    with django_capture_on_commit_callbacks(execute=True):
        payment_record(invoice=issued, amount=Decimal("400.00"), method="bank_transfer", now=paid_at)
    assert [kind for kind, _ in events_received(receiver)][-1] == "invoice.issued"  # part-paid: nothing
    with django_capture_on_commit_callbacks(execute=True):
        payment_record(invoice=issued, amount=Decimal("600.00"), method="bank_transfer", now=paid_at)
    kind, data = events_received(receiver)[-1]
    assert kind == "invoice.paid"
    assert (data["status"], data["paid_amount"], data["amount_due"]) == ("paid", "1000.00", "0.00")
    assert data["paid_at"] == "2026-12-04T10:00:00+08:00"
    assert WebhookEvent.objects.filter(type="invoice.paid").count() == 1


def test_the_daily_overdue_job_sends_invoice_overdue_once_per_invoice(
    endpoint, issued, receiver, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        notice_queue_reminders(now=datetime.datetime(2026, 12, 31, 9, tzinfo=SH))  # due today: not yet
        assert WebhookEvent.objects.filter(type="invoice.overdue").count() == 0
        for day in (1, 2, 9):  # overdue the 1st of January, reminded again a week later
            notice_queue_reminders(now=datetime.datetime(2027, 1, day, 9, tzinfo=SH))
    overdue = [data for kind, data in events_received(receiver) if kind == "invoice.overdue"]
    assert len(overdue) == 1
    assert (overdue[0]["number"], overdue[0]["status"], overdue[0]["amount_due"]) == (
        issued.number,
        "issued",
        "1000.00",
    )


def test_a_credit_note_sends_credit_note_issued(
    endpoint, issued, receiver, finance_user, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        note = credit_note_create(
            invoice=issued,
            actor=finance_user,
            reason="SLA credit for the outage of 3 November",
            amount=Decimal("100.00"),
            now=ISSUED_AT + datetime.timedelta(days=2),
        )
    kind, data = events_received(receiver)[-1]
    assert kind == "credit_note.issued"
    assert data == {
        "object": "credit_note",
        "id": note.pk,
        "number": note.number,
        "invoice": {"id": issued.pk, "number": issued.number},
        "customer": "acme",
        "currency": "CNY",
        "reason": "SLA credit for the outage of 3 November",
        "net_amount": "94.34",
        "tax_amount": "5.66",
        "total_amount": "100.00",
        "issued_at": "2026-12-03T10:00:00+08:00",
    }


@pytest.fixture
def finance_user(make_staff):
    return make_staff(roles.FINANCE, username="fin1")


def test_confirming_a_settlement_sends_settlement_confirmed_to_the_provider_without_margin(
    issued, server, receiver, finance_user, django_capture_on_commit_callbacks
):
    provider = server.provider
    provider_endpoint(provider, receiver.url)
    SupplyAgreement.objects.create(
        provider=provider,
        gpu_model=server.gpu_model,
        resource="card",
        term="hourly",
        cost_unit_price=Decimal("8.00"),
        valid_from=datetime.date(2026, 1, 1),
    )
    confirmed_at = datetime.datetime(2026, 12, 2, 9, tzinfo=SH)
    settlements.settlement_build(period="2026-11", now=confirmed_at)
    statement = SettlementStatement.objects.get(provider=provider)
    with django_capture_on_commit_callbacks(execute=True):
        settlements.settlement_confirm(statement=statement, actor=finance_user, now=confirmed_at)
    ((kind, data),) = events_received(receiver)
    assert kind == "settlement.confirmed"
    assert data == {
        "object": "settlement",
        "id": statement.pk,
        "provider": "bj-idc",
        "period": "2026-11",
        "status": "confirmed",
        "currency": "CNY",
        "cost_amount": "800.00",
        "line_count": 1,
        "confirmed_at": "2026-12-02T09:00:00+08:00",
    }


def test_a_refused_usage_batch_sends_usage_rejected_to_the_provider_after_the_400(
    server, receiver, django_capture_on_commit_callbacks
):
    provider = server.provider
    provider_endpoint(provider, receiver.url)
    _key, raw = partner_key(provider)
    client = APIClient()
    uuid = server.cards.get(slot=0).uuid
    now = datetime.datetime(2026, 11, 20, 10, tzinfo=SH)
    good = card_record(uuid, now - datetime.timedelta(hours=1))
    bad = card_record("GPU-not-ours", now - datetime.timedelta(hours=1), event_id="probe-1")
    with time_machine.travel(now, tick=False), django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            "/api/v1/usage/", [good, bad], format="json", HTTP_AUTHORIZATION=f"Api-Key {raw}"
        )
        assert response.status_code == 400
        assert receiver.requests == []  # the answer first; the event after commit
    assert UsageRecord.objects.count() == 0
    ((kind, data),) = events_received(receiver)
    assert kind == "usage.rejected"
    assert (data["provider"], data["records"], data["stored"], data["error_count"]) == ("bj-idc", 2, 0, 1)
    assert data["received_at"] == "2026-11-20T10:00:00+08:00"
    ((entry),) = data["errors"]
    assert (entry["index"], entry["event_id"], entry["code"]) == (1, "probe-1", "invalid")
    assert entry["errors"] == {"card": ["No card with this UUID among your provider's hardware."]}
    assert [entry] == response.json()["errors"]  # what the 400 said


def test_a_batch_refused_for_a_conflict_while_storing_still_sends_usage_rejected(
    server, receiver, django_capture_on_commit_callbacks
):
    provider = server.provider
    provider_endpoint(provider, receiver.url)
    uuid = server.cards.get(slot=0).uuid
    now = datetime.datetime(2026, 11, 20, 10, tzinfo=SH)
    start = now - datetime.timedelta(hours=1)
    metering.usage_ingest(provider=provider, payload_records=[card_record(uuid, start)], received_at=now)
    changed = card_record(uuid, start, start + datetime.timedelta(minutes=2))  # same event id, other content
    with django_capture_on_commit_callbacks(execute=True):
        with pytest.raises(metering.UsageRejected):
            metering.usage_ingest(provider=provider, payload_records=[changed], received_at=now)
    ((kind, data),) = events_received(receiver)
    assert kind == "usage.rejected"
    assert data["errors"][0]["code"] == "conflict"
    assert WebhookDelivery.objects.get().status == "delivered"


def test_events_of_other_owners_do_not_reach_an_endpoint(
    endpoint, am, server, receiver, django_capture_on_commit_callbacks
):
    from tests.factories.catalogue import CustomerFactory

    other = CustomerFactory(code="other")
    with django_capture_on_commit_callbacks(execute=True):
        card_contract(other, am, server, price="10.00")
    assert receiver.requests == []
    assert WebhookEvent.objects.count() == 0
