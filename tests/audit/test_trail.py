"""The audit trail: each money-relevant change leaves an event with who, when, what and why."""

from __future__ import annotations

import datetime
from decimal import Decimal
from types import SimpleNamespace

import pytest
import time_machine
from django.contrib.auth.models import Group
from django.contrib.contenttypes.models import ContentType

from apps.accounts import roles
from apps.accounts.models import CustomerMembership
from apps.audit.models import AuditAction, AuditEvent
from apps.audit.services import audit_context, object_key
from apps.billing.invoicing.models import BillingRun, BillingRunStatus
from apps.billing.invoicing.services.issuing import credit_note_create, invoice_void
from apps.billing.models import CreditNote, Invoice, Payment, SettlementStatement
from apps.billing.payments.services.credit import bank_transfer_record
from apps.billing.vouchers.models import VoucherProgramme
from apps.billing.vouchers.services.ledger import voucher_issue
from apps.contracts import services as contract_services
from apps.contracts.models import Contract, PriceListItem
from apps.metering.models import PartnerAPIKey
from apps.metering.services import partner_key_create
from apps.providers.models import SupplyAgreement
from apps.webhooks.models import WebhookEndpoint
from tests.factories.billing_flows import issued_invoice
from tests.factories.catalogue import CustomerFactory, ServerFactory

pytestmark = pytest.mark.django_db

SH = datetime.timezone(datetime.timedelta(hours=8))
DEC_2 = datetime.datetime(2026, 12, 2, 9, tzinfo=SH)


@pytest.fixture
def world(make_staff):
    with time_machine.travel(DEC_2, tick=False):
        am = make_staff(roles.ACCOUNT_MANAGER, username="am1")
        finance = make_staff(roles.FINANCE, username="finance1")
        acme = CustomerFactory(code="acme-a", name="Acme Audit 有限公司")
        invoice = issued_invoice(acme, am, ServerFactory())
        yield SimpleNamespace(am=am, finance=finance, acme=acme, invoice=invoice)


def events(obj, action=None):
    qs = AuditEvent.objects.filter(
        content_type=ContentType.objects.get_for_model(type(obj)), object_id=object_key(obj)
    ).order_by("pk")
    return list(qs.filter(action=action) if action else qs)


def test_contract_activation_and_termination_record_actor_and_reason(world):
    am, finance, acme, _invoice = world.am, world.finance, world.acme, world.invoice
    contract = acme.contracts.get()
    created = events(contract, AuditAction.CREATED)
    assert len(created) == 1 and created[0].actor == am and created[0].actor_label == "am1"
    contract_services.contract_terminate(
        contract=contract, actor=finance, at=DEC_2, now=DEC_2, reason="Customer asked to stop"
    )
    change = events(contract, AuditAction.CHANGED)[-1]
    assert change.actor == finance
    assert change.reason == "terminated: Customer asked to stop"
    assert change.changes["status"] == ["active", "terminated"]
    line = contract.lines.get()
    assert events(line, AuditAction.CREATED)[0].actor == am
    allocation = line.allocations.first()
    assert events(allocation, AuditAction.CREATED)[0].actor == am


def test_invoice_void_through_the_api_records_finance_and_the_reason(world, api_client):
    api_client.force_authenticate(world.finance)
    with time_machine.travel(DEC_2, tick=False):
        response = api_client.post(
            f"/api/v1/invoices/{world.invoice.pk}/void/", {"reason": "Wrong customer entity"}, format="json"
        )
    assert response.status_code == 200, response.content
    change = events(world.invoice, AuditAction.CHANGED)[-1]
    assert change.actor == world.finance
    assert change.reason == "Wrong customer entity"
    assert change.changes["status"] == ["issued", "void"]
    assert change.occurred_at == DEC_2
    assert change.via == f"POST /api/v1/invoices/{world.invoice.pk}/void/"


def test_a_service_called_outside_a_request_names_its_actor_with_audit_context(world):
    with time_machine.travel(DEC_2, tick=False), audit_context(actor=world.finance):
        invoice_void(invoice=world.invoice, actor=world.finance, reason="Duplicate", now=DEC_2)
    change = events(world.invoice, AuditAction.CHANGED)[-1]
    assert (change.actor, change.reason, change.via) == (world.finance, "Duplicate", "system")


def test_payment_and_credit_note_record_who_and_why(world):
    _am, finance, _acme, invoice = world.am, world.finance, world.acme, world.invoice
    bank_transfer_record(
        invoice=invoice, amount=Decimal("300.00"), reference="ICBC-2026-1202-001", actor=finance, now=DEC_2
    )
    payment = Payment.objects.get(invoice=invoice)
    created = events(payment, AuditAction.CREATED)
    assert created[0].actor == finance
    assert created[0].changes["amount"] == "300.00"
    note = credit_note_create(
        invoice=invoice, actor=finance, reason="Outage on 2026-11-20", now=DEC_2, amount=Decimal("100.00")
    )
    recorded = events(CreditNote.objects.get(pk=note.pk), AuditAction.CREATED)
    assert recorded[0].actor == finance
    assert "Outage on 2026-11-20" in recorded[0].reason


def test_price_change_records_actor_and_reason(world):
    item = PriceListItem.objects.order_by("pk").first()
    old_price = item.list_unit_price
    for price, reason in ((old_price + 1, "2027 list"), (old_price + 2, "2027 list, second draft")):
        item.list_unit_price = price
        item._history_user = world.finance
        item._change_reason = reason
        item.save()
    first, second = events(item, AuditAction.CHANGED)[-2:]
    assert (first.actor, first.reason) == (world.finance, "2027 list")
    assert first.changes["list_unit_price"] == format(old_price + 1, "f")  # made without history: the row
    assert (second.actor, second.reason) == (world.finance, "2027 list, second draft")
    assert second.changes == {"list_unit_price": [format(old_price + 1, "f"), format(old_price + 2, "f")]}


def test_voucher_settlement_and_key_changes_are_recorded(world):
    _am, finance, acme, _invoice = world.am, world.finance, world.acme, world.invoice
    programme = VoucherProgramme.objects.create(
        code="cd-2026",
        issuer="Chengdu",
        flow="supplier_side",
        coverage_percent=Decimal("30"),
        valid_from=datetime.date(2026, 1, 1),
        valid_to=datetime.date(2026, 12, 31),
    )
    voucher = voucher_issue(
        programme=programme, customer=acme, amount=Decimal("5000.00"), now=DEC_2, actor=finance
    )
    assert events(voucher, AuditAction.CREATED)[0].actor == finance
    provider = acme.contracts.get().lines.get().allocations.first().card.server.provider
    with audit_context(actor=finance, reason="Scheduler of the Beijing hub"):
        key, raw = partner_key_create(provider=provider, name="scheduler")
    created = events(PartnerAPIKey.objects.get(pk=key.pk), AuditAction.CREATED)[0]
    assert created.actor == finance and created.reason == "Scheduler of the Beijing hub"
    assert created.object_id == key.prefix
    assert created.changes["hashed_key"] == "(hidden)"
    secret = raw.partition(".")[2]
    assert not AuditEvent.objects.filter(changes__icontains=secret).exists()
    assert secret not in str(list(AuditEvent.objects.values_list("object_id", "object_repr", "changes")))


def test_roles_of_portal_users_and_staff_are_recorded(world, django_user_model):
    am, finance, acme, _invoice = world.am, world.finance, world.acme, world.invoice
    user = django_user_model.objects.create_user(username="carol", password="x-Secret-123")
    membership = CustomerMembership.objects.create(
        user=user, customer=acme, role=CustomerMembership.Role.VIEWER
    )
    with audit_context(actor=am, reason="Carol pays the invoices now"):
        membership.role = CustomerMembership.Role.BILLING
        membership.save()
    change = events(membership, AuditAction.CHANGED)[-1]
    assert change.actor == am
    assert change.reason == "Carol pays the invoices now"
    assert change.changes == {"role": ["viewer", "billing"]}
    with audit_context(actor=finance, reason="New finance clerk"):
        user.groups.add(Group.objects.get(name=roles.FINANCE))
    roles_changed = events(user, AuditAction.ROLES_CHANGED)[-1]
    assert roles_changed.actor == finance
    assert roles_changed.changes == {"groups": {"added": ["finance"]}}
    assert roles_changed.reason == "New finance clerk"


def test_without_a_person_the_actor_is_system(world):
    _am, _finance, acme, invoice = world.am, world.finance, world.acme, world.invoice
    contract = Contract.objects.get(customer=acme)
    contract.notes = "typed by a script"
    contract.save()
    assert events(contract, AuditAction.CHANGED)[-1].actor_label == "system"
    assert Invoice.objects.filter(pk=invoice.pk).exists()


def test_revoking_partner_keys_in_the_admin_is_recorded(world, client, make_staff):
    provider = world.acme.contracts.get().lines.get().allocations.first().card.server.provider
    key, _ = partner_key_create(provider=provider, name="old scheduler")
    ops = make_staff(roles.OPERATIONS, username="ops1")
    client.force_login(ops)
    response = client.post(
        "/admin/metering/partnerapikey/", {"action": "revoke", "_selected_action": [key.pk]}, follow=True
    )
    assert response.status_code == 200
    key.refresh_from_db()
    assert key.revoked
    change = events(key, AuditAction.CHANGED)[-1]
    assert (change.actor, change.changes, change.reason) == (ops, {"revoked": [False, True]}, "Revoked.")


def test_webhook_endpoints_are_recorded_without_their_secret(world, make_staff, api_client):
    finance = world.finance
    api_client.force_authenticate(finance)
    created = api_client.post(
        "/api/v1/webhook-endpoints/",
        {"customer": world.acme.code, "url": "https://erp.acme.example/suanli"},
        format="json",
    )
    assert created.status_code == 201, created.content
    secret = created.json()["secret"]
    endpoint_id = created.json()["id"]
    endpoint = WebhookEndpoint.objects.get(pk=endpoint_id)
    event = events(endpoint, AuditAction.CREATED)[0]
    assert event.actor == finance and event.via == "POST /api/v1/webhook-endpoints/"
    assert event.changes["url"] == "https://erp.acme.example/suanli"
    assert event.changes["secret"] == "(hidden)"
    rotated = api_client.post(f"/api/v1/webhook-endpoints/{endpoint_id}/rotate-secret/").json()["secret"]
    change = events(endpoint, AuditAction.CHANGED)[-1]
    assert change.actor == finance and change.changes["secret"] == ["(hidden)", "(hidden)"]
    trail = str(list(AuditEvent.objects.values_list("changes", "object_repr", "reason")))
    assert secret not in trail and rotated not in trail


def test_confirming_a_settlement_through_the_api_is_recorded(world, api_client):
    provider = world.acme.contracts.get().lines.get().allocations.first().card.server.provider
    agreement = SupplyAgreement(
        provider=provider,
        gpu_model=world.acme.contracts.get().lines.get().gpu_model,
        resource="card",
        term="hourly",
        cost_unit_price=Decimal("6.00"),
        valid_from=datetime.date(2026, 1, 1),
    )
    agreement._history_user = world.finance
    agreement.save()
    assert events(agreement, AuditAction.CREATED)[0].actor == world.finance
    api_client.force_authenticate(world.finance)
    built = api_client.post("/api/v1/settlements/build/", {"period": "2026-11"}, format="json")
    assert built.status_code == 200, built.content
    statement = SettlementStatement.objects.get(provider=provider)
    assert events(statement, AuditAction.CREATED)[0].actor == world.finance
    confirmed = api_client.post(f"/api/v1/settlements/{statement.pk}/confirm/")
    assert confirmed.status_code == 200, confirmed.content
    change = events(statement, AuditAction.CHANGED)[-1]
    assert change.actor == world.finance
    assert change.changes["status"] == ["draft", "confirmed"]


def test_a_save_of_some_fields_records_only_what_it_wrote(world):
    run = BillingRun.objects.create(period="2026-11", as_of=DEC_2)
    run = BillingRun.objects.defer("draft_changes").get(pk=run.pk)
    run.customers_done = 7  # changed in memory, not saved
    run.status = BillingRunStatus.DONE
    run.save(update_fields=["status"])

    (changed,) = events(run, AuditAction.CHANGED)
    assert changed.changes == {"status": ["queued", "done"]}
    assert run.get_deferred_fields() == {"draft_changes"}  # not loaded to be compared
    assert BillingRun.objects.get(pk=run.pk).customers_done == 0
