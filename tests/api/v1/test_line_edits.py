"""``PATCH`` / ``DELETE /api/v1/contracts/{id}/lines/{line_pk}/``: a draft's line changed or removed
with the admin's permissions (docs/api.md#draft-line-edits)."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
import time_machine
from rest_framework.test import APIClient

from apps.accounts import roles
from apps.contracts import services
from apps.contracts.models import Allocation, ContractLine, ContractStatus
from tests.api.helpers import assert_error
from tests.factories.catalogue import CustomerFactory, ServerFactory, gpu_model
from tests.factories.contracts import NOW, card_line, draft, server_line

pytestmark = pytest.mark.django_db

A100_40 = "A100-SXM4-40GB"
A100_80 = "A100-SXM4-80GB"


@pytest.fixture(autouse=True)
def _clock():
    with time_machine.travel(NOW, tick=False):
        yield


def _client(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def _patch(client, url, body):
    return client.patch(url, data=json.dumps(body), content_type="application/json")


@pytest.fixture
def am(make_staff):
    return make_staff(roles.ACCOUNT_MANAGER, username="am1")


@pytest.fixture
def acme():
    return CustomerFactory(code="acme")


@pytest.fixture
def contract(am, acme):
    cards = ServerFactory(gpu_model=gpu_model(A100_40))
    whole = ServerFactory(gpu_model=gpu_model(A100_80))
    return draft(acme, am, [card_line(cards, 2), server_line(whole)])


def _url(contract, line) -> str:
    return f"/api/v1/contracts/{contract.pk}/lines/{line.pk}/"


def test_an_account_manager_changes_the_price_of_a_drafts_line(am, contract):
    line = contract.lines.get(position=1)

    response = _patch(
        _client(am), _url(contract, line), {"list_unit_price": "21.50", "discount_percent": "5"}
    )

    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["id"], body["list_unit_price"], body["discount_percent"]) == (line.pk, "21.50", "5")
    assert body["unit_price"] == "20.425"  # 21.50 × 0.95, unit prices keep their places
    assert body["quantity"] == "2" and len(body["allocations"]) == 2  # untouched fields stay
    line.refresh_from_db()
    assert (line.list_unit_price, line.discount_percent) == (Decimal("21.50"), Decimal("5"))
    assert line.history.latest().history_user == am


def test_a_null_list_price_takes_the_price_lists_and_bad_values_are_refused(am, contract):
    line = contract.lines.get(position=2)
    client = _client(am)

    assert_error(_patch(client, _url(contract, line), {"quantity": "1.5"}), 400, "invalid", "quantity")
    assert_error(
        _patch(client, _url(contract, line), {"discount_percent": "100"}), 400, "invalid", "discount_percent"
    )
    assert_error(_patch(client, _url(contract, line), {"quantity": "abc"}), 400, "invalid", "quantity")
    assert_error(
        _patch(client, _url(contract, line), {"end": "2026-10-01T00:00:00+08:00"}), 400, "invalid", "end"
    )
    line.refresh_from_db()
    assert (line.quantity, line.discount_percent) == (Decimal(1), Decimal(0))


def test_an_account_manager_removes_a_drafts_line_with_its_allocations(am, contract):
    line = contract.lines.get(position=1)

    response = _client(am).delete(_url(contract, line))

    assert response.status_code == 204, response.content
    assert list(contract.lines.values_list("position", flat=True)) == [2]
    assert not Allocation.objects.filter(line_id=line.pk).exists()
    assert_error(_client(am).delete(_url(contract, line)), 404, "not_found")


def test_lines_of_a_contract_out_of_draft_answer_409(am, contract):
    services.contract_activate(contract=contract, actor=am, now=NOW)
    contract.refresh_from_db()
    assert contract.status == ContractStatus.ACTIVE
    line = contract.lines.get(position=1)

    assert_error(_patch(_client(am), _url(contract, line), {"discount_percent": "5"}), 409, "invalid_state")
    assert_error(_client(am).delete(_url(contract, line)), 409, "invalid_state")
    line.refresh_from_db()
    assert line.discount_percent == Decimal("10")
    assert ContractLine.objects.filter(contract=contract).count() == 2


def test_only_the_contracts_account_manager_edits_its_lines(make_staff, portal_client, acme, contract):
    line = contract.lines.get(position=1)
    other_am = make_staff(roles.ACCOUNT_MANAGER, username="am2")
    finance = make_staff(roles.FINANCE, username="finance1")
    body = {"discount_percent": "5"}

    assert_error(_patch(_client(other_am), _url(contract, line), body), 404, "not_found")
    assert_error(_client(other_am).delete(_url(contract, line)), 404, "not_found")
    assert_error(_patch(_client(finance), _url(contract, line), body), 403, "permission_denied")
    assert_error(portal_client(acme).delete(_url(contract, line)), 403, "permission_denied")
    assert_error(APIClient().delete(_url(contract, line)), 401, "not_authenticated")
    assert_error(_client(other_am).delete(f"/api/v1/contracts/{contract.pk}/lines/x/"), 404, "not_found")
    line.refresh_from_db()
    assert line.discount_percent == Decimal("10")


def test_a_line_of_another_contract_is_not_found_under_this_one(am, acme, contract):
    other = draft(acme, am, [card_line(ServerFactory(gpu_model=gpu_model(A100_40)), 1)])
    foreign_line = other.lines.get()

    assert_error(_patch(_client(am), _url(contract, foreign_line), {"quantity": "1"}), 404, "not_found")
