"""``/api/v1/contracts/``: drafting with nested lines and allocations, the lifecycle, the quote."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from django.db import transaction
from rest_framework.test import APIClient

from apps.accounts import roles
from apps.contracts import services
from apps.contracts.models import Allocation, Contract, ContractLine, ContractStatus
from apps.core.models import NumberSeries
from apps.inventory.models import HardwareStatus
from tests.api.helpers import assert_error
from tests.factories.catalogue import CustomerFactory, ServerFactory, gpu_model
from tests.factories.contracts import NOW, card_line, draft, p_line, server_line

pytestmark = pytest.mark.django_db

URL = "/api/v1/contracts/"
A100_40 = "A100-SXM4-40GB"
A100_80 = "A100-SXM4-80GB"


def _client(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


@pytest.fixture
def am(make_staff):
    return make_staff(roles.ACCOUNT_MANAGER, username="am1")


@pytest.fixture
def am_client(am) -> APIClient:
    return _client(am)


@pytest.fixture
def sales(make_staff):
    return make_staff(roles.SALES_MANAGER, username="sales1")


@pytest.fixture
def sales_client(sales) -> APIClient:
    return _client(sales)


@pytest.fixture
def acme():
    return CustomerFactory(code="acme")


@pytest.fixture
def hardware():
    """The servers of the §9.1 example: A100-40GB cards, two A100-80GB servers, spares."""
    return {
        "cards": ServerFactory(serial="SRV-BJ-0001", gpu_model=gpu_model(A100_40)),
        "monthly": ServerFactory(serial="SRV-BJ-0002", gpu_model=gpu_model(A100_80)),
        "p_unit": ServerFactory(serial="SRV-BJ-0003", gpu_model=gpu_model(A100_80)),
        "spare_80": ServerFactory(serial="SRV-BJ-0004", gpu_model=gpu_model(A100_80)),
        "retired_80": ServerFactory(
            serial="SRV-BJ-0005", gpu_model=gpu_model(A100_80), status=HardwareStatus.RETIRED
        ),
    }


def uuids(server, count: int) -> list[str]:
    return list(server.cards.order_by("slot").values_list("uuid", flat=True)[:count])


def spec_payload(hardware) -> dict:
    """The ``POST /api/v1/contracts/`` example of docs/api.md#shapes, with this test's hardware."""
    first, second = uuids(hardware["cards"], 2)
    return {
        "customer": "acme",
        "currency": "CNY",
        "prices_include_tax": True,
        "start": "2026-11-01T00:00:00+08:00",
        "end": None,
        "minimum_monthly_amount": None,
        "lines": [
            {
                "resource": "card",
                "gpu_model": A100_40,
                "quantity": "2",
                "term": "hourly",
                "list_unit_price": "22.70",
                "term_discount_percent": "0",
                "discount_percent": "10",
                "tax_category": "it_service",
                "start": None,
                "end": None,
                "allocations": [{"card": first}, {"card": second}],
            },
            {
                "resource": "server",
                "gpu_model": A100_80,
                "quantity": "1",
                "term": "monthly",
                "list_unit_price": "144000.00",
                "allocations": [{"server": "SRV-BJ-0002"}],
            },
            {
                "resource": "p_unit",
                "gpu_model": A100_80,
                "quantity": "2.496",
                "term": "yearly",
                "list_unit_price": "200000.00",
                "term_discount_percent": "15",
                "yearly_billing": "monthly_instalments",
                "allocations": [{"server": "SRV-BJ-0003"}],
            },
        ],
    }


def post(client, url, body):
    return client.post(url, json.dumps(body), content_type="application/json")


def counts() -> tuple[int, ...]:
    series = NumberSeries.objects.filter(prefix="C").values_list("last_value", flat=True)
    return (Contract.objects.count(), ContractLine.objects.count(), Allocation.objects.count(), sum(series))


def create(client, body) -> dict:
    response = post(client, URL, body)
    assert response.status_code == 201, response.content
    return response.json()


# ------------------------------------------------------------------------------------ drafting


def test_the_spec_payload_creates_a_three_line_draft_with_defaults(am_client, acme, hardware):
    body = create(am_client, spec_payload(hardware))

    assert body["number"] == "C-2026-000001"
    assert (body["version"], body["status"], body["customer"]) == (1, "draft", "acme")
    assert body["account_manager"] == "am1"
    assert body["start"] == "2026-11-01T00:00:00+08:00" and body["end"] is None
    assert body["combined_discount_percent"] == "15"
    assert body["needs_approval"] is False
    cards, monthly, p_unit = body["lines"]

    assert [c["card"] for c in cards["allocations"]] == uuids(hardware["cards"], 2)
    assert (cards["resource"], cards["quantity"], cards["unit"]) == ("card", "2", "card_hour")
    assert (cards["list_unit_price"], cards["discount_percent"], cards["unit_price"]) == (
        "22.70",
        "10",
        "20.43",
    )
    # Omitted: start/end the contract's, negotiated discount 0, term discount and tax category the
    # price list's (market reference: A100-80GB server/monthly, no term discount, equipment lease).
    assert (monthly["start"], monthly["end"]) == ("2026-11-01T00:00:00+08:00", None)
    assert (monthly["discount_percent"], monthly["term_discount_percent"]) == ("0", "0")
    assert (monthly["tax_category"], monthly["tax_rate"]) == ("equipment_lease", "0.13")
    assert [a["server"] for a in monthly["allocations"]] == ["SRV-BJ-0002"]
    assert monthly["allocations"][0]["card"] is None
    # No price list item for A100 P-units: the tax category falls back to it_service.
    assert (p_unit["quantity"], p_unit["term_discount_percent"], p_unit["tax_category"]) == (
        "2.496",
        "15",
        "it_service",
    )
    assert p_unit["yearly_billing"] == "monthly_instalments" and p_unit["p_basis"] == "fp16_dense"
    assert not any(a["firm"] for line in body["lines"] for a in line["allocations"])

    contract = Contract.objects.get()
    assert contract.lines.count() == 3 and Allocation.objects.filter(line__contract=contract).count() == 4
    assert contract.history.first().history_user.username == "am1"

    activated = post(am_client, f"{URL}{body['id']}/activate/", {})
    assert activated.status_code == 200, activated.content
    assert activated.json()["status"] == "active"
    assert activated.json()["activated_at"] is not None
    assert all(a["firm"] for line in activated.json()["lines"] for a in line["allocations"])
    assert Allocation.objects.filter(firm=True).count() == 4


def test_defaults_term_discount_from_the_price_list_and_start_from_the_contract(am_client, acme, hardware):
    payload = {
        "customer": "acme",
        "start": "2026-11-01T00:00:00+08:00",
        "end": "2027-11-01T00:00:00+08:00",
        "lines": [
            {
                "resource": "server",
                "gpu_model": A100_80,
                "quantity": "1",
                "term": "yearly",
                "allocations": [{"server": "SRV-BJ-0002"}],
            }
        ],
    }
    body = create(am_client, payload)
    (line,) = body["lines"]
    # market reference A100-80GB server/yearly: 12 × the mean monthly 143,500, 17 % term discount
    assert (line["list_unit_price"], line["term_discount_percent"]) == ("1722000.00", "17")
    assert (line["start"], line["end"]) == ("2026-11-01T00:00:00+08:00", "2027-11-01T00:00:00+08:00")
    assert (body["currency"], body["prices_include_tax"], body["price_list"]) == ("CNY", True, None)
    assert body["lines"][0]["allocations"][0]["end"] == "2027-11-01T00:00:00+08:00"


def test_a_draft_grows_line_by_line_and_allocation_by_allocation(am_client, acme, hardware):
    payload = spec_payload(hardware)
    extra = payload["lines"].pop()
    contract = create(am_client, payload)
    url = f"{URL}{contract['id']}/lines/"

    response = post(am_client, url, extra)
    assert response.status_code == 201, response.content
    line = response.json()
    assert (line["position"], line["resource"], line["quantity"]) == (3, "p_unit", "2.496")

    allocations = f"{url}{line['id']}/allocations/"
    added = post(am_client, allocations, {"server": "SRV-BJ-0004"})
    assert added.status_code == 201, added.content
    assert (added.json()["server"], added.json()["card"], added.json()["firm"]) == (
        "SRV-BJ-0004",
        None,
        False,
    )
    assert Allocation.objects.filter(line_id=line["id"]).count() == 2

    removed = am_client.delete(f"{allocations}{added.json()['id']}/")
    assert removed.status_code == 204, removed.content
    assert Allocation.objects.filter(line_id=line["id"]).count() == 1
    assert_error(am_client.delete(f"{allocations}{added.json()['id']}/"), 404, "not_found")

    # An allocation the service refuses names its place in the line.
    card_of_another_model = uuids(hardware["cards"], 1)[0]
    bad_line = {**extra, "allocations": [{"server": "SRV-BJ-0004"}, {"card": card_of_another_model}]}
    before = counts()
    body = assert_error(post(am_client, url, bad_line), 400, "invalid", "allocations.1.card")
    assert "is a A100-SXM4-40GB, but the line is for A100-SXM4-80GB" in body["message"]
    assert_error(post(am_client, allocations, {"server": "SRV-BJ-0005"}), 400, "invalid", "server")
    assert_error(post(am_client, f"{url}999999/allocations/", {"server": "SRV-BJ-0004"}), 404, "not_found")
    assert counts() == before

    post(am_client, f"{URL}{contract['id']}/activate/", {})
    assert_error(post(am_client, url, extra), 409, "invalid_state")
    assert_error(post(am_client, allocations, {"server": "SRV-BJ-0004"}), 409, "invalid_state")
    first_allocation = Allocation.objects.filter(line_id=line["id"]).first()
    assert_error(am_client.delete(f"{allocations}{first_allocation.pk}/"), 409, "invalid_state")
    assert counts() == before


# ------------------------------------------------------------------------------------ bad input


def _set(body: dict, path: str, value) -> dict:
    """A copy of ``body`` with ``value`` at ``lines.0.quantity``-style ``path`` (None removes it)."""
    body = json.loads(json.dumps(body))
    *parents, last = path.split(".")
    target = body
    for key in parents:
        target = target[int(key)] if key.isdigit() else target[key]
    if value is _REMOVE:
        del target[last]
    else:
        target[int(last) if last.isdigit() else last] = value
    return body


_REMOVE = object()


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        ("lines.0.quantity", "-1", "greater than zero"),
        ("lines.0.quantity", "0", "greater than zero"),
        ("lines.0.quantity", "1.5", "whole number"),
        ("lines.0.discount_percent", "100", "below 100"),
        ("lines.0.discount_percent", "-1", "at least 0"),
        ("lines.2.term_discount_percent", "100", "below 100"),
        ("lines.2.quantity", "2.4960001", "6 decimal places"),
        ("end", "2026-10-01T00:00:00+08:00", "after start"),
        ("lines.1.end", "2026-10-31T00:00:00+08:00", "after start"),
        ("start", "2026-11-01T00:00:00", "UTC offset"),
        ("lines.0.gpu_model", "A100-SXM9-1TB", "Unknown GPU model 'A100-SXM9-1TB'"),
        ("lines.0.allocations.1.card", "GPU-00000000-0000-0000-0000-00000000dead", "Unknown card"),
        ("lines.1.allocations.0.server", "SRV-NOPE", "Unknown server 'SRV-NOPE'"),
        ("customer", "nobody", "Unknown customer 'nobody'"),
        ("lines.0.allocations.0", {}, "a card or a server"),
        ("lines.0.resource", "gpu", "not a valid choice"),
        ("lines.2.yearly_billing", "weekly", "not a valid choice"),
        ("lines.2.list_unit_price", "-1", "must not be negative"),
        ("minimum_monthly_amount", "-0.01", "must not be negative"),
        ("lines.0.quantity", "NaN", "valid number"),
        ("lines.0.quantity", "Infinity", "valid number"),
        ("start", "9999-12-31T23:59:59-14:00", "out of range"),
        ("start", "0001-01-01T00:00:00+14:00", "out of range"),
        ("start", "1999-12-31T00:00:00+08:00", "between the years 2000 and 2999"),
        ("start", "2026-13-01T00:00:00+08:00", "wrong format"),
        ("lines.0.allocations.0.end", "2026-11-01T00:00", "UTC offset"),
    ],
)
def test_bad_input_answers_400_naming_the_field_and_saves_nothing(
    am_client, acme, hardware, path, value, message
):
    field = f"{path}.card" if isinstance(value, dict) else path
    before = counts()
    body = assert_error(
        post(am_client, URL, _set(spec_payload(hardware), path, value)), 400, "invalid", field
    )
    assert message in " ".join(body["fields"][field]), body
    assert body["message"].startswith(field), body
    assert counts() == before


def test_hardware_the_service_refuses_is_named_by_its_place_in_the_payload(am_client, acme, hardware):
    payload = spec_payload(hardware)
    before = counts()

    other_model = uuids(hardware["spare_80"], 1)[0]
    body = assert_error(
        post(am_client, URL, _set(payload, "lines.0.allocations.1.card", other_model)),
        400,
        "invalid",
        "lines.0.allocations.1.card",
    )
    assert "is a A100-SXM4-80GB, but the line is for A100-SXM4-40GB" in body["message"]

    body = assert_error(
        post(am_client, URL, _set(payload, "lines.1.allocations.0.server", "SRV-BJ-0005")),
        400,
        "invalid",
        "lines.1.allocations.0.server",
    )
    assert "SRV-BJ-0005 is retired" in body["message"]

    card_on_a_server_line = _set(payload, "lines.1.allocations.0", {"card": other_model})
    assert_error(post(am_client, URL, card_on_a_server_line), 400, "invalid", "lines.1.allocations.0.card")

    both = _set(payload, "lines.0.allocations.1.server", "SRV-BJ-0001")
    body = assert_error(post(am_client, URL, both), 400, "invalid", "lines.0.allocations.1.card")
    assert "Give a card or a server (one of the two)." in body["message"]

    twice = _set(payload, "lines.0.allocations.1.card", uuids(hardware["cards"], 1)[0])
    body = assert_error(post(am_client, URL, twice), 400, "invalid", "lines.0.allocations.1.card")
    assert "already allocated to this line" in body["message"]

    # No list price given and none in the price list (A100 P-units): the line is named.
    no_price = _set(payload, "lines.2.list_unit_price", _REMOVE)
    body = assert_error(post(am_client, URL, no_price), 400, "invalid", "lines.2.list_unit_price")
    assert "No list price for A100-SXM4-80GB p_unit/yearly" in body["message"]

    outside = _set(payload, "lines.1.allocations.0.start", "2026-10-01T00:00:00+08:00")
    assert_error(post(am_client, URL, outside), 400, "invalid", "lines.1.allocations.0.start")
    assert counts() == before


def test_hardware_of_an_active_contract_answers_409_naming_the_card_and_the_contract(
    am, am_client, acme, hardware
):
    taken = draft(acme, am, [card_line(hardware["cards"], 1)])
    services.contract_activate(contract=taken, actor=am, now=NOW)
    card = uuids(hardware["cards"], 1)[0]
    before = counts()

    body = assert_error(post(am_client, URL, spec_payload(hardware)), 409, "double_booking")
    assert f"Card {card} is already allocated to contract {taken.number}" in body["message"]
    assert list(body["fields"]) == ["lines.0.allocations.0.card"]
    assert counts() == before

    # The whole server overlaps its allocated card, too.
    whole = _set(spec_payload(hardware), "lines.1", server_line_payload("SRV-BJ-0001", A100_40))
    whole["lines"][0]["allocations"] = [{"card": c} for c in uuids(hardware["cards"], 3)[1:]]
    body = assert_error(post(am_client, URL, whole), 409, "double_booking", "lines.1.allocations.0.server")
    assert f"Server SRV-BJ-0001 is already allocated to contract {taken.number}" in body["message"]
    assert counts() == before


def server_line_payload(serial: str, model: str, **extra) -> dict:
    return {
        "resource": "server",
        "gpu_model": model,
        "quantity": "1",
        "term": "monthly",
        "list_unit_price": "100000.00",
        "allocations": [{"server": serial}],
        **extra,
    }


# ------------------------------------------------------------------------------------ lifecycle


def test_above_the_threshold_a_sales_manager_approves_before_activation(
    am_client, sales_client, acme, hardware
):
    payload = spec_payload(hardware)
    payload["lines"][2]["discount_percent"] = "10"  # 15 % term × 10 % negotiated = 23.5 % > 20 %
    contract = create(am_client, payload)
    assert (contract["combined_discount_percent"], contract["needs_approval"]) == ("23.5", True)
    url = f"{URL}{contract['id']}/"

    body = assert_error(post(am_client, url + "activate/", {}), 409, "approval_required")
    assert "20%" in body["message"]
    submitted = post(am_client, url + "submit/", {})
    assert submitted.status_code == 200, submitted.content
    assert submitted.json()["status"] == "pending_approval" and submitted.json()["submitted_at"]

    assert_error(post(am_client, url + "approve/", {}), 403, "permission_denied")
    assert_error(post(am_client, url + "activate/", {}), 409, "approval_required")
    assert_error(post(sales_client, url + "activate/", {}), 403, "permission_denied")

    approved = post(sales_client, url + "approve/", {})
    assert approved.status_code == 200, approved.content
    assert approved.json()["approved_by"] == "sales1" and approved.json()["approved_at"]

    activated = post(am_client, url + "activate/", {})
    assert activated.status_code == 200, activated.content
    assert activated.json()["status"] == "active"
    assert Contract.objects.get().status == ContractStatus.ACTIVE


def test_the_contracts_own_account_manager_cannot_approve_it(make_staff, acme, hardware):
    both = _client(make_staff(roles.ACCOUNT_MANAGER, roles.SALES_MANAGER, username="both"))
    payload = spec_payload(hardware)
    payload["lines"][0]["discount_percent"] = "25"
    contract = create(both, payload)
    post(both, f"{URL}{contract['id']}/submit/", {})
    body = assert_error(post(both, f"{URL}{contract['id']}/approve/", {}), 403, "permission_denied")
    assert "own account manager" in body["message"]


def test_suspend_resume_terminate_and_amend(make_staff, am_client, acme, hardware):
    contract = create(am_client, spec_payload(hardware))
    url = f"{URL}{contract['id']}/"
    assert_error(post(am_client, url + "suspend/", {}), 409, "invalid_state")
    post(am_client, url + "activate/", {})

    suspended = post(am_client, url + "suspend/", {"reason": "unpaid invoice"})
    assert suspended.status_code == 200, suspended.content
    assert (suspended.json()["status"], suspended.json()["end_reason"]) == ("suspended", "unpaid invoice")
    resumed = post(am_client, url + "resume/", {})
    assert resumed.json()["status"] == "active"

    amended = post(am_client, url + "amend/", {"effective_at": "2026-12-01T00:00:00+08:00"})
    assert amended.status_code == 201, amended.content
    new = amended.json()
    assert (new["number"], new["version"], new["status"], new["amends"]) == (
        contract["number"],
        2,
        "draft",
        contract["id"],
    )
    assert new["start"] == "2026-12-01T00:00:00+08:00" and len(new["lines"]) == 3
    assert_error(
        post(am_client, url + "amend/", {"effective_at": "2026-12-01T00:00:00+08:00"}), 409, "invalid_state"
    )
    assert_error(post(am_client, url + "amend/", {}), 400, "invalid", "effective_at")

    finance = _client(make_staff(roles.FINANCE, username="finance1"))
    assert_error(post(finance, url + "suspend/", {}), 403, "permission_denied")
    terminated = post(finance, url + "terminate/", {"at": "2027-01-01T00:00:00+08:00", "reason": "moved"})
    assert terminated.status_code == 200, terminated.content
    body = terminated.json()
    assert (body["status"], body["end"], body["end_reason"]) == (
        "terminated",
        "2027-01-01T00:00:00+08:00",
        "moved",
    )
    assert all(a["end"] == "2027-01-01T00:00:00+08:00" for line in body["lines"] for a in line["allocations"])
    assert_error(post(finance, url + "terminate/", {}), 409, "invalid_state")


def test_only_drafts_are_deleted(am_client, acme, hardware):
    first = create(am_client, spec_payload(hardware))
    response = am_client.delete(f"{URL}{first['id']}/")
    assert response.status_code == 204, response.content
    assert counts()[:3] == (0, 0, 0)

    second = create(am_client, spec_payload(hardware))
    assert second["number"] == "C-2026-000002"  # a deleted draft's number is not reused
    post(am_client, f"{URL}{second['id']}/activate/", {})
    body = assert_error(am_client.delete(f"{URL}{second['id']}/"), 409, "invalid_state")
    assert "Cannot delete contract C-2026-000002: it is active" in body["message"]
    assert Contract.objects.filter(pk=second["id"]).exists()


# ------------------------------------------------------------------------------------ reading


def test_account_managers_see_their_own_contracts_and_managers_all(make_staff, am, am_client, acme):
    other_am = make_staff(roles.ACCOUNT_MANAGER, username="am2")
    mine = draft(acme, am, [server_line(ServerFactory())])
    theirs = draft(acme, other_am, [server_line(ServerFactory())])

    assert [c["number"] for c in am_client.get(URL).json()["results"]] == [mine.number]
    assert_error(am_client.get(f"{URL}{theirs.pk}/"), 404, "not_found")
    assert_error(post(am_client, f"{URL}{theirs.pk}/activate/", {}), 404, "not_found")
    finance = _client(make_staff(roles.FINANCE, username="finance1"))
    assert finance.get(URL).json()["count"] == 2
    assert finance.get(f"{URL}{theirs.pk}/").json()["account_manager"] == "am2"
    assert_error(post(finance, URL, {}), 403, "permission_denied")


def test_list_filters_and_search(make_staff, am, acme):
    other = CustomerFactory(code="other")
    a100 = ServerFactory(gpu_model=gpu_model(A100_40))
    h800 = ServerFactory(gpu_model=gpu_model("H800-SXM5-80GB"))
    first = draft(acme, am, [card_line(a100, 2)])
    second = draft(other, am, [server_line(h800, term="yearly", price="2400000.00")])
    third = draft(other, make_staff(roles.ACCOUNT_MANAGER, username="am2"), [p_line(h800, "7.9152")])
    services.contract_activate(contract=first, actor=am, now=NOW)
    client = _client(make_staff(roles.SALES_MANAGER, username="sales1"))

    def numbers(query: str) -> list[str]:
        response = client.get(URL + query)
        assert response.status_code == 200, response.content
        return sorted(c["number"] for c in response.json()["results"])

    assert numbers("") == sorted([first.number, second.number, third.number])
    assert numbers("?customer=acme") == [first.number]
    assert numbers("?status=active") == [first.number]
    assert numbers("?status=draft&customer=other") == [second.number, third.number]
    assert numbers("?account_manager=am2") == [third.number]
    assert numbers("?gpu_model=H800-SXM5-80GB") == [second.number, third.number]
    assert numbers("?term=yearly") == [second.number, third.number]
    assert numbers("?term=hourly") == [first.number]
    assert numbers("?resource=p_unit") == [third.number]
    assert numbers(f"?search={second.number}") == [second.number]
    assert numbers(f"?number={third.number}") == [third.number]
    assert_error(client.get(URL + "?status=signed"), 400, "invalid", "status")
    assert_error(client.get(URL + "?term=weekly"), 400, "invalid", "term")


@pytest.mark.parametrize("how_many", [2, 20])
def test_list_queries_do_not_grow_with_contracts(
    make_staff, am, acme, django_assert_max_num_queries, how_many
):
    cards, servers = ServerFactory(), ServerFactory()
    for _ in range(how_many):  # drafts may share hardware: their allocations are tentative
        draft(acme, am, [card_line(cards, 4), server_line(servers, term_discount="5")])
    client = _client(make_staff(roles.FINANCE, username="finance1"))
    with django_assert_max_num_queries(8):
        response = client.get(URL)
    assert response.json()["count"] == how_many
    assert all(len(c["lines"]) == 2 for c in response.json()["results"])
    assert len(response.json()["results"][0]["lines"][0]["allocations"]) == 4


def test_a_portal_user_reads_only_their_customers_contracts_and_writes_nothing(portal_client, am, acme):
    foreign = CustomerFactory(code="foreign")
    own = draft(acme, am, [server_line(ServerFactory(), price="144000.00")], notes="internal: margin is thin")
    services.contract_activate(contract=own, actor=am, now=NOW)
    own_draft = draft(acme, am, [server_line(ServerFactory())])
    other = draft(foreign, am, [server_line(ServerFactory())])
    services.contract_activate(contract=other, actor=am, now=NOW)
    client = portal_client(acme)

    listed = client.get(URL)
    assert listed.status_code == 200, listed.content
    assert [c["number"] for c in listed.json()["results"]] == [own.number]
    detail = client.get(f"{URL}{own.pk}/").json()
    assert (detail["customer"], detail["status"]) == ("acme", "active")
    assert "notes" not in detail
    assert_error(client.get(f"{URL}{other.pk}/"), 404, "not_found")
    assert_error(client.get(f"{URL}{own_draft.pk}/"), 404, "not_found")  # drafts are internal
    assert client.get(URL + "?customer=foreign").json()["count"] == 0

    before = counts()
    assert_error(post(client, URL, {"customer": "acme"}), 403, "permission_denied")
    for action in ("suspend", "terminate", "amend"):
        assert_error(post(client, f"{URL}{own.pk}/{action}/", {}), 403, "permission_denied")
    assert_error(client.delete(f"{URL}{own_draft.pk}/"), 403, "permission_denied")
    assert_error(post(client, f"{URL}{own_draft.pk}/lines/", {}), 403, "permission_denied")
    assert_error(client.get(f"{URL}{own.pk}/quote/"), 403, "permission_denied")  # costs and margins
    assert counts() == before
    assert Contract.objects.get(pk=own.pk).status == ContractStatus.ACTIVE

    assert_error(portal_client(None, username="nobody").get(URL), 403, "permission_denied")
    assert_error(APIClient().get(URL), 401, "not_authenticated")


# ------------------------------------------------------------------------------------ quote


def test_the_quote_prices_a_full_month_per_line_and_in_total(am_client, acme):
    two_servers = [ServerFactory(gpu_model=gpu_model(A100_40)) for _ in range(2)]  # 2 × 2.496 = 4.992 P
    monthly = ServerFactory(gpu_model=gpu_model(A100_80))
    payload = {
        "customer": "acme",
        "start": "2026-11-01T00:00:00+08:00",
        "lines": [
            server_line_payload(
                monthly.serial,
                A100_80,
                list_unit_price="144000.00",
                term_discount_percent="15",
                tax_category="it_service",
            ),
            {
                "resource": "p_unit",
                "gpu_model": A100_40,
                "quantity": "2.5",
                "term": "yearly",
                "list_unit_price": "200000.00",
                "term_discount_percent": "15",
                "allocations": [{"server": s.serial} for s in two_servers],
            },
        ],
    }
    contract = create(am_client, payload)

    response = am_client.get(f"{URL}{contract['id']}/quote/?utilisation=100")
    assert response.status_code == 200, response.content
    quote = response.json()
    assert (quote["contract"], quote["period"], quote["utilisation_percent"]) == (
        contract["number"],
        "2026-11",
        "100",
    )
    server, p_unit = quote["lines"]
    assert (server["list_amount"], server["term_discount_amount"], server["amount"]) == (
        "144000.00",
        "21600.00",
        "122400.00",
    )
    assert (server["tax_amount"], server["net_amount"], server["gross_amount"]) == (
        "6928.30",
        "115471.70",
        "122400.00",
    )
    assert p_unit["amount"] == "35416.67"
    assert p_unit["negotiated_discount_amount"] == "0.00"
    totals = quote["totals"]
    assert totals["amount"] == "157816.67"
    assert Decimal(totals["net_amount"]) + Decimal(totals["tax_amount"]) == Decimal("157816.67")
    assert totals["cost_amount"] is None and totals["margin_amount"] is None  # no supply agreements

    default = am_client.get(f"{URL}{contract['id']}/quote/").json()
    assert default["totals"] == totals
    assert_error(
        am_client.get(f"{URL}{contract['id']}/quote/?utilisation=abc"), 400, "invalid", "utilisation"
    )
    assert_error(
        am_client.get(f"{URL}{contract['id']}/quote/?utilisation=101"), 400, "invalid", "utilisation"
    )
    assert_error(am_client.get(f"{URL}999999/quote/"), 404, "not_found")


# ------------------------------------------------------------------------------------ garbage

ALWAYS_WRONG = [[1, 2], {"nested": {"deeper": [None, {"x": []}]}}]
GARBAGE = [*ALWAYS_WRONG, None, True, 1e308, 10**30, -(10**30), "x" * 100_000, "\x00", "a\x00b", "", [], {}]
BODIES_OF_THE_WRONG_SHAPE = [[], [{"customer": "acme"}], "a string", 42, None, True]
MALFORMED = ['{"customer": ', "{'single': 'quotes'}", "not json at all", '{"a": NaN}', "\xff\xfe"]


@pytest.fixture
def endpoints(am, acme, hardware, make_staff):
    """Every write endpoint with a valid body, and the client allowed to call it."""
    admin = _client(make_staff(superuser=True))
    payload = spec_payload(hardware)
    draft_contract = draft(acme, am, [server_line(hardware["spare_80"])])
    line = draft_contract.lines.get()
    allocation = line.allocations.get()
    active = draft(acme, am, [p_line(ServerFactory(gpu_model=gpu_model(A100_80)), "2.496")])
    services.contract_activate(contract=active, actor=am, now=NOW)
    extra = dict(payload["lines"][1], allocations=[{"server": hardware["monthly"].serial}])
    return admin, {
        ("post", URL): payload,
        ("post", f"{URL}{draft_contract.pk}/lines/"): extra,
        ("post", f"{URL}{draft_contract.pk}/lines/{line.pk}/allocations/"): {"server": "SRV-BJ-0002"},
        ("delete", f"{URL}{draft_contract.pk}/lines/{line.pk}/allocations/{allocation.pk}/"): {},
        ("post", f"{URL}{draft_contract.pk}/submit/"): {},
        ("post", f"{URL}{draft_contract.pk}/activate/"): {},
        ("post", f"{URL}{active.pk}/suspend/"): {"reason": "unpaid"},
        ("post", f"{URL}{active.pk}/terminate/"): {"at": "2027-01-01T00:00:00+08:00", "reason": "moved"},
        ("post", f"{URL}{active.pk}/amend/"): {"effective_at": "2026-12-01T00:00:00+08:00"},
        ("delete", f"{URL}{draft_contract.pk}/"): {},
    }


def _send(client, method, url, body):
    return getattr(client, method)(url, json.dumps(body), content_type="application/json")


def _send_and_undo(client, method, url, body):
    with transaction.atomic():
        response = _send(client, method, url, body)
        transaction.set_rollback(True)
    return response


def _names(fields: dict, path: str) -> bool:
    return any(key == path or key.startswith(path + ".") for key in fields) or "non_field_errors" in fields


def _assert_json_4xx_or_success(response, path: str | None = None) -> None:
    assert response.status_code < 500, response.content
    if response.status_code >= 400:
        body = response.json()
        assert set(body) == {"code", "message", "fields"}, body
        if path is not None and response.status_code == 400 and body["code"] == "invalid":
            assert _names(body["fields"], path), (path, body)


def test_every_endpoint_takes_its_valid_body(endpoints):
    admin, calls = endpoints
    for (method, url), body in calls.items():
        response = _send_and_undo(admin, method, url, body)
        assert response.status_code in (200, 201, 204), (url, response.content)


def test_garbage_in_any_field_answers_4xx_json_never_500(endpoints):
    admin, calls = endpoints
    before = counts()
    paths = []
    for (method, url), body in calls.items():
        paths += [(method, url, body, key) for key in body]
    payload = calls[("post", URL)]
    for index, line in enumerate(payload["lines"]):
        paths += [("post", URL, payload, f"lines.{index}.{key}") for key in line]
        paths += [
            ("post", URL, payload, f"lines.{index}.allocations.0.{key}") for key in line["allocations"][0]
        ]
    for method, url, body, path in paths:
        for garbage in GARBAGE:
            response = _send_and_undo(admin, method, url, _set(body, path, garbage))
            _assert_json_4xx_or_success(response, path)
            if garbage in ALWAYS_WRONG:
                assert response.status_code == 400, (path, garbage, response.content)
                assert _names(response.json()["fields"], path), (path, response.json())
    assert counts() == before


@pytest.mark.parametrize("body", BODIES_OF_THE_WRONG_SHAPE)
def test_bodies_that_are_not_objects_answer_400(endpoints, body):
    admin, calls = endpoints
    for method, url in calls:
        if method == "delete":
            continue  # DELETE reads no body
        assert_error(_send(admin, method, url, body), 400, "invalid")


@pytest.mark.parametrize("raw", MALFORMED)
def test_malformed_json_answers_malformed_request(endpoints, raw):
    admin, calls = endpoints
    for method, url in calls:
        if method == "delete":
            continue
        response = getattr(admin, method)(url, raw, content_type="application/json")
        assert_error(response, 400, "malformed_request")


@pytest.mark.parametrize("pk", ["0", "-1", "abc", "1.5", "99999999999999999999999", "%00"])
def test_odd_ids_answer_404_json(endpoints, pk):
    admin, _ = endpoints
    assert_error(admin.get(f"{URL}{pk}/"), 404, "not_found")
    if "." in pk:
        return  # not an id at all: no route of an action matches it
    assert_error(post(admin, f"{URL}{pk}/activate/", {}), 404, "not_found")
    line_url = f"{URL}{Contract.objects.filter(status='draft').first().pk}/lines/{pk}/allocations/"
    assert_error(post(admin, line_url, {"server": "SRV-BJ-0002"}), 404, "not_found")


@pytest.mark.parametrize(
    "query",
    ["?search=%00", "?customer=%00", "?page=abc", "?page=99999", "?ordering=-nope", "?gpu_model=a%00b"],
)
def test_garbage_query_parameters_never_crash(endpoints, query):
    admin, _ = endpoints
    response = admin.get(URL + query)
    assert response.status_code in (200, 400, 404), response.content
    if response.status_code != 200:
        assert set(response.json()) == {"code", "message", "fields"}


def test_the_schema_documents_the_contract_endpoints(api_client):
    paths = api_client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()["paths"]
    for path in (
        "/api/v1/contracts/",
        "/api/v1/contracts/{id}/",
        "/api/v1/contracts/{id}/activate/",
        "/api/v1/contracts/{id}/quote/",
        "/api/v1/contracts/{id}/lines/",
        "/api/v1/contracts/{id}/lines/{line_pk}/allocations/",
        "/api/v1/contracts/{id}/lines/{line_pk}/allocations/{allocation_pk}/",
    ):
        assert path in paths, path
    create_op = paths["/api/v1/contracts/"]["post"]
    assert create_op["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "/ContractCreate"
    )
    assert {"400", "409"} <= set(create_op["responses"])
    assert "put" not in paths["/api/v1/contracts/{id}/"] and "patch" not in paths["/api/v1/contracts/{id}/"]
