"""Approvals: the rule stated on the contract, auto-approval recorded, the queue, reject with a
reason, every decision in the history, and the account manager's e-mail after commit."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest
import time_machine
from django.core import mail
from django.urls import reverse

from apps.accounts import roles
from apps.contracts import services
from apps.contracts.models import Contract, ContractStatus
from apps.core.errors import DomainError, InvalidState
from tests.factories.catalogue import CustomerFactory, ServerFactory
from tests.factories.contracts import NOW, card_line, draft, p_line

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def frozen():
    with time_machine.travel(NOW, tick=False):
        yield


@pytest.fixture
def sales(make_staff):
    user = make_staff(roles.SALES_MANAGER, username="sales1")
    user.first_name, user.last_name = "Wei", "Sales"
    user.save()
    return user


@pytest.fixture
def am_with_mail(am):
    am.email = "am1@suanli.example"
    am.save()
    return am


@pytest.fixture
def customer():
    return CustomerFactory(code="acme")


def big_discount(am, customer):
    # 15 % term × 10 % negotiated = 23.5 % combined > 20 %
    return draft(customer, am, [p_line(ServerFactory(), discount_percent=Decimal("10"))])


def test_contract_within_threshold_is_auto_approved_on_activation_and_says_so(am, customer):
    contract = draft(customer, am, [card_line(ServerFactory(), 2, discount="10")])
    needed, why = services.contract_approval_rule(contract=contract)
    assert not needed
    assert why == "No approval needed: the largest discount (10%, line 1) is within the 20% threshold."
    contract = services.contract_activate(contract=contract, actor=am, now=NOW)
    assert (contract.approved_by, contract.approved_at) == (am, NOW)
    assert contract.history.first().history_change_reason == "activated; auto-approved: under the threshold"


def test_submitted_contract_within_threshold_activated_by_its_manager_records_auto_approval(am, customer):
    contract = draft(customer, am, [card_line(ServerFactory(), 2, discount="10")])
    services.contract_submit(contract=contract, actor=am, now=NOW)
    contract = services.contract_activate(contract=contract, actor=am, now=NOW)
    assert contract.status == ContractStatus.ACTIVE and contract.approved_at == NOW
    reasons = list(contract.history.values_list("history_change_reason", flat=True))
    assert reasons[:2] == [
        "activated; auto-approved: under the threshold",
        "submitted for approval (discounts within 20%, no approval needed)",
    ]


def test_contract_needing_approval_cannot_be_activated_without_it(am, customer):
    contract = big_discount(am, customer)
    needed, why = services.contract_approval_rule(contract=contract)
    assert needed
    assert why == ("Needs a sales manager's approval: line 1 has a 23.5% discount, above the 20% threshold.")
    services.contract_submit(contract=contract, actor=am, now=NOW)
    with pytest.raises(InvalidState, match="need a sales manager's approval"):
        services.contract_activate(contract=contract, actor=am, now=NOW)
    contract.refresh_from_db()
    assert contract.status == ContractStatus.PENDING_APPROVAL and contract.approved_by is None


def test_approve_records_who_and_when_and_mails_the_account_manager_after_commit(
    am_with_mail, sales, customer, django_capture_on_commit_callbacks
):
    contract = big_discount(am_with_mail, customer)
    services.contract_submit(contract=contract, actor=am_with_mail, now=NOW)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        services.contract_approve(contract=contract, actor=sales, now=NOW)
    assert mail.outbox == []  # nothing before commit
    for callback in callbacks:
        callback()
    assert [m.to for m in mail.outbox] == [["am1@suanli.example"]]
    assert mail.outbox[0].subject == f"Contract {contract} approved"
    assert "Wei Sales approved the discounts" in mail.outbox[0].body
    record = contract.history.first()
    assert (record.history_user, record.history_change_reason) == (sales, "approved by sales1")
    assert record.approved_at == NOW


def test_reject_needs_a_reason_returns_to_draft_and_mails_the_reason(
    am_with_mail, sales, customer, django_capture_on_commit_callbacks
):
    contract = big_discount(am_with_mail, customer)
    services.contract_submit(contract=contract, actor=am_with_mail, now=NOW)
    with pytest.raises(DomainError, match="Give a reason"):
        services.contract_reject(contract=contract, actor=sales, now=NOW, reason="  ")
    with pytest.raises(DomainError, match="Only a sales manager"):
        services.contract_reject(contract=contract, actor=am_with_mail, now=NOW, reason="no")
    with django_capture_on_commit_callbacks(execute=True):
        contract = services.contract_reject(
            contract=contract, actor=sales, now=NOW, reason="23.5% is too deep for a 1-month term"
        )
    assert contract.status == ContractStatus.DRAFT and contract.submitted_at is None
    assert contract.history.first().history_change_reason == (
        "rejected by sales1: 23.5% is too deep for a 1-month term"
    )
    assert mail.outbox[0].subject == f"Contract {contract} rejected"
    assert "Reason: 23.5% is too deep for a 1-month term" in mail.outbox[0].body


def test_change_page_states_the_rule_and_history_shows_changes_and_reasons(am, am_client, sales, customer):
    contract = big_discount(am, customer)
    page = am_client.get(reverse("admin:contracts_contract_change", args=[contract.pk])).content.decode()
    assert "line 1 has a 23.5% discount, above the 20% threshold" in page
    services.contract_submit(contract=contract, actor=am, now=NOW)
    services.contract_approve(contract=contract, actor=sales, now=NOW)
    history = am_client.get(reverse("admin:contracts_contract_history", args=[contract.pk])).content.decode()
    assert "approved by sales1" in history
    assert "submitted for approval (discount above 20%)" in history
    assert "Pending approval" in history and "&rarr;" in history  # status: Draft → Pending approval
    assert "<td>\n          None\n        </td>" not in history
    assert "<strong>Approved by:</strong>" in history


def test_approval_queue_lists_and_decides(am, sales, customer, client, django_capture_on_commit_callbacks):
    contract = big_discount(am, customer)
    other = big_discount(am, customer)
    for c in (contract, other):
        services.contract_submit(contract=c, actor=am, now=NOW)
    client.force_login(sales)
    url = reverse("admin:contracts_contract_approvals")
    page = client.get(url).content.decode()
    assert "2 contract(s) wait for approval" in page
    assert str(contract) in page and "23.5%" in page
    assert re.search(r"CNY \d{1,3}(,\d{3})+\.\d\d</td>", page)  # grouped, to the fen
    with django_capture_on_commit_callbacks(execute=True):
        client.post(url, {"contract": contract.pk, "decision": "approve"})
        client.post(url, {"contract": other.pk, "decision": "reject", "reason": "price too low"})
    assert Contract.objects.get(pk=contract.pk).approved_by == sales
    assert Contract.objects.get(pk=other.pk).status == ContractStatus.DRAFT
    assert "0 contract(s) wait for approval" in client.get(url).content.decode()


def test_approval_queue_refuses_account_managers(am_client):
    assert am_client.get(reverse("admin:contracts_contract_approvals")).status_code == 403


def test_reject_action_asks_for_a_reason_first(am, sales, customer, client):
    contract = big_discount(am, customer)
    services.contract_submit(contract=contract, actor=am, now=NOW)
    client.force_login(sales)
    url = reverse("admin:contracts_contract_changelist")
    page = client.post(url, {"action": "reject_selected", "_selected_action": [contract.pk]})
    assert "Reason 驳回理由" in page.content.decode()
    assert Contract.objects.get(pk=contract.pk).status == ContractStatus.PENDING_APPROVAL
    client.post(
        url, {"action": "reject_selected", "_selected_action": [contract.pk], "confirm": "1", "reason": "no"}
    )
    assert Contract.objects.get(pk=contract.pk).status == ContractStatus.DRAFT
