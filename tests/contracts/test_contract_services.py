"""Drafting, approval, allocation and the contract lifecycle through the services, on PostgreSQL."""

from __future__ import annotations

import datetime
import threading
from decimal import Decimal

import pytest
from django.db import IntegrityError, connection, transaction

from apps.accounts import roles
from apps.contracts import services
from apps.contracts.models import Allocation, Contract, ContractStatus
from apps.core.errors import Conflict, DomainError, InvalidState
from apps.inventory.models import HardwareStatus
from tests.factories.catalogue import CustomerFactory, ServerFactory
from tests.factories.contracts import NOV_1, NOW, card_line, draft, p_line, server_line

pytestmark = pytest.mark.django_db


@pytest.fixture
def sales(make_staff):
    return make_staff(roles.SALES_MANAGER, username="sales1")


@pytest.fixture
def customer():
    return CustomerFactory(code="acme")


def test_draft_gets_a_number_from_the_series_and_defaults_from_the_price_list(am, customer):
    server = ServerFactory()
    first = draft(customer, am, [card_line(server, 2)])
    second = draft(customer, am, [server_line(ServerFactory(), price="106000.00", term="yearly")])
    assert (first.number, second.number) == ("C-2026-000001", "C-2026-000002")
    assert first.status == ContractStatus.DRAFT and first.account_manager == am
    line = second.lines.get()
    # market reference: A100-SXM4-40GB server/yearly carries a 17 % term discount, 13 % equipment lease
    assert line.term_discount_percent == Decimal("17.00")
    assert line.tax_category.code == "equipment_lease"
    assert first.lines.get().tax_category.code == "it_service"


def test_draft_within_threshold_activates_directly(am, customer):
    server = ServerFactory()
    contract = draft(customer, am, [card_line(server, 2, discount="10")])
    contract = services.contract_activate(contract=contract, actor=am, now=NOW)
    assert contract.status == ContractStatus.ACTIVE
    assert Allocation.objects.filter(line__contract=contract, firm=True).count() == 2
    assert contract.history.count() >= 2
    assert contract.history.first().history_user == am


def test_discount_above_threshold_needs_sales_manager_approval(am, sales, customer):
    server = ServerFactory()
    # 15 % term × 10 % negotiated = 23.5 % combined > 20 %
    contract = draft(customer, am, [p_line(server, discount_percent=Decimal("10"))])
    with pytest.raises(InvalidState) as exc:
        services.contract_activate(contract=contract, actor=am, now=NOW)
    assert exc.value.code == "approval_required" and exc.value.http_status == 409
    services.contract_submit(contract=contract, actor=am, now=NOW)
    with pytest.raises(DomainError, match="Only a sales manager"):
        services.contract_approve(contract=contract, actor=am, now=NOW)
    services.contract_approve(contract=contract, actor=sales, now=NOW)
    contract = services.contract_activate(contract=contract, actor=am, now=NOW)
    assert contract.status == ContractStatus.ACTIVE and contract.approved_by == sales


def test_own_account_manager_cannot_approve_even_as_sales_manager(make_staff, customer):
    both = make_staff(roles.ACCOUNT_MANAGER, roles.SALES_MANAGER, username="both")
    contract = draft(customer, both, [p_line(ServerFactory(), discount_percent=Decimal("10"))])
    services.contract_submit(contract=contract, actor=both, now=NOW)
    with pytest.raises(DomainError, match="own account manager"):
        services.contract_approve(contract=contract, actor=both, now=NOW)


def test_activation_requires_coverage(am, customer):
    server = ServerFactory()
    line = card_line(server, 2)
    line.quantity = Decimal(3)
    contract = draft(customer, am, [line])
    with pytest.raises(DomainError) as exc:
        services.contract_activate(contract=contract, actor=am, now=NOW)
    assert exc.value.code == "insufficient_allocation"
    assert "needs 3 cards, allocations cover 2 cards" in exc.value.message
    assert Contract.objects.get(pk=contract.pk).status == ContractStatus.DRAFT


def test_p_unit_coverage_uses_dense_tflops(am, customer):
    server = ServerFactory()  # 8 × A100 = 2.496 P
    too_much = draft(customer, am, [p_line(server, "2.5", term_discount="0")])
    with pytest.raises(DomainError, match=r"needs 2\.5 P, allocations cover 2\.496 P"):
        services.contract_activate(contract=too_much, actor=am, now=NOW)
    exact = draft(customer, am, [p_line(ServerFactory(), "2.496", term_discount="0")])
    assert services.contract_activate(contract=exact, actor=am, now=NOW).status == ContractStatus.ACTIVE


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        ({"quantity": Decimal("0")}, "quantity", "greater than zero"),
        ({"quantity": Decimal("-1")}, "quantity", "greater than zero"),
        ({"quantity": Decimal("1.5")}, "quantity", "whole number"),
        ({"discount_percent": Decimal("100")}, "discount_percent", "below 100"),
        ({"discount_percent": Decimal("-1")}, "discount_percent", "at least 0"),
        ({"end_at": NOV_1 - datetime.timedelta(days=1)}, "end", "after start"),
    ],
)
def test_bad_lines_are_refused_and_nothing_is_saved(am, customer, change, field, message):
    line = card_line(ServerFactory(), 1)
    for key, value in change.items():
        setattr(line, key, value)
    with pytest.raises(DomainError) as exc:
        draft(customer, am, [line])
    assert message in exc.value.fields["lines"][0][field][0]
    assert Contract.objects.count() == 0


def test_p_quantity_with_more_than_six_decimals_is_refused(am, customer):
    with pytest.raises(DomainError) as exc:
        draft(customer, am, [p_line(ServerFactory(), "2.4960001")])
    assert exc.value.fields["lines"][0]["quantity"] == ["Quantity may have at most 6 decimal places."]


def test_allocation_of_another_model_or_retired_hardware_is_refused(am, customer):
    from tests.factories.catalogue import gpu_model

    h800 = ServerFactory(gpu_model=gpu_model("H800-SXM5-80GB"))
    line = card_line(ServerFactory(), 1)
    line.allocations[0].card = h800.cards.first()
    with pytest.raises(DomainError, match="is a H800-SXM5-80GB, but the line is for A100-SXM4-40GB"):
        draft(customer, am, [line])
    retired = ServerFactory(status=HardwareStatus.RETIRED)
    with pytest.raises(DomainError, match="is retired and cannot be allocated"):
        draft(customer, am, [server_line(retired)])
    assert Contract.objects.count() == 0


def test_double_booking_names_the_card_and_the_other_contract(am, customer):
    server = ServerFactory()
    first = draft(customer, am, [card_line(server, 2)])
    services.contract_activate(contract=first, actor=am, now=NOW)
    card = server.cards.get(slot=0)
    with pytest.raises(Conflict) as exc:
        draft(customer, am, [card_line(server, 1)])
    assert exc.value.code == "double_booking"
    assert f"Card {card.uuid} is already allocated to contract {first.number}" in exc.value.message
    # the whole server overlaps its allocated cards, too
    with pytest.raises(
        Conflict, match=f"Server {server.serial} is already allocated to contract {first.number}"
    ):
        draft(customer, am, [server_line(server)])


def test_exclusion_constraint_is_the_last_word(am, customer):
    server = ServerFactory()
    contract = draft(customer, am, [card_line(server, 1)])
    line = contract.lines.get()
    card = server.cards.get(slot=0)
    Allocation.objects.filter(line=line).update(firm=True)
    with pytest.raises(IntegrityError, match="allocation_no_double_booking"), transaction.atomic():
        Allocation.objects.create(line=line, server=server, card=None, slot=None, start_at=NOV_1, firm=True)
    with pytest.raises(IntegrityError), transaction.atomic():
        Allocation.objects.create(
            line=line, server=server, card=card, slot=card.slot, start_at=NOV_1, firm=True
        )
    # a different card of the same server over the same time is fine
    other = server.cards.get(slot=1)
    Allocation.objects.create(
        line=line, server=server, card=other, slot=other.slot, start_at=NOV_1, firm=True
    )


def test_terminate_frees_the_hardware_after_the_end(am, customer):
    server = ServerFactory()
    contract = draft(customer, am, [server_line(server)])
    services.contract_activate(contract=contract, actor=am, now=NOW)
    at = NOV_1 + datetime.timedelta(days=10)
    services.contract_terminate(contract=contract, actor=am, now=at, reason="customer left")
    contract.refresh_from_db()
    assert contract.status == ContractStatus.TERMINATED and contract.end_at == at
    assert Allocation.objects.get(line__contract=contract).end_at == at
    later = draft(customer, am, [server_line(server)], start=at)
    assert services.contract_activate(contract=later, actor=am, now=at).status == ContractStatus.ACTIVE
    with pytest.raises(InvalidState, match="it is terminated"):
        services.contract_suspend(contract=contract, actor=am)


def test_suspend_resume_and_only_drafts_are_deleted(am, customer):
    contract = draft(customer, am, [server_line(ServerFactory())])
    services.contract_activate(contract=contract, actor=am, now=NOW)
    assert services.contract_suspend(contract=contract, actor=am).status == ContractStatus.SUSPENDED
    assert services.contract_resume(contract=contract, actor=am).status == ContractStatus.ACTIVE
    with pytest.raises(InvalidState, match="Cannot delete"):
        services.contract_delete(contract=contract, actor=am)
    other = draft(customer, am, [server_line(ServerFactory())])
    services.contract_delete(contract=other, actor=am)
    assert not Contract.objects.filter(pk=other.pk).exists()


def test_amendment_is_a_new_version_and_the_old_one_stays_readable(am, customer):
    server = ServerFactory()
    contract = draft(customer, am, [server_line(server)])
    services.contract_activate(contract=contract, actor=am, now=NOW)
    effective = NOV_1 + datetime.timedelta(days=15)
    amendment = services.contract_amend(contract=contract, actor=am, effective_at=effective)
    assert (amendment.number, amendment.version, amendment.status) == (
        contract.number,
        2,
        ContractStatus.DRAFT,
    )
    line = amendment.lines.get()
    line.list_unit_price = Decimal("150000.00")
    line.save()
    services.contract_activate(contract=amendment, actor=am, now=effective)
    contract.refresh_from_db()
    assert contract.status == ContractStatus.TERMINATED and contract.end_at == effective
    assert contract.lines.get().list_unit_price == Decimal("144000.000000")
    assert Allocation.objects.get(line__contract=contract).end_at == effective
    assert Allocation.objects.get(line__contract=amendment, firm=True).start_at == effective


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_two_concurrent_activations_of_the_same_card_exactly_one_wins(make_staff):
    am = make_staff(roles.ACCOUNT_MANAGER, username="am-c")
    customer = CustomerFactory()
    server = ServerFactory()
    a = draft(customer, am, [card_line(server, 1)])
    b = draft(customer, am, [card_line(server, 1)])
    barrier = threading.Barrier(2)
    outcomes: dict[str, str] = {}

    def activate(contract):
        try:
            barrier.wait(timeout=10)
            services.contract_activate(contract=contract, actor=am, now=NOW)
            outcomes[contract.number] = "active"
        except Conflict as exc:
            outcomes[contract.number] = exc.code
        finally:
            connection.close()

    threads = [threading.Thread(target=activate, args=(c,)) for c in (a, b)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert sorted(outcomes.values()) == ["active", "double_booking"]
    statuses = sorted(Contract.objects.values_list("status", flat=True))
    assert statuses == ["active", "draft"]
    assert Allocation.objects.filter(firm=True).count() == 1


def test_the_same_card_cannot_serve_two_lines_of_one_contract(am, customer):
    server = ServerFactory()
    with pytest.raises(DomainError) as exc:
        draft(customer, am, [card_line(server, 1), card_line(server, 1)])
    card = server.cards.get(slot=0)
    assert exc.value.message == f"Card {card.uuid} is already allocated to line 1 of this contract."
    assert Contract.objects.count() == 0
