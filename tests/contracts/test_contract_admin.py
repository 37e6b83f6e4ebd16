"""The account manager's path through the admin: draft, quote, find capacity, allocate, activate."""

from __future__ import annotations

import datetime
import io
from decimal import Decimal

import pytest
from django.urls import reverse
from pypdf import PdfReader

from apps.accounts import roles
from apps.contracts import services
from apps.contracts.models import Allocation, Contract, ContractStatus
from apps.inventory.models import GpuModel
from apps.providers.models import SupplyAgreement
from tests.factories.catalogue import CustomerFactory, ServerFactory, SiteFactory
from tests.factories.contracts import NOW, card_line, draft, p_line, server_line

pytestmark = pytest.mark.django_db

CHANGELIST = "admin:contracts_contract_changelist"


def _header_post(customer):
    return {
        "customer": customer.pk,
        "account_manager": "",
        "price_list": "",
        "currency": "CNY",
        "prices_include_tax": "on",
        "start_at_0": "2026-11-01",
        "start_at_1": "00:00:00",
        "end_at_0": "",
        "end_at_1": "",
        "minimum_monthly_amount": "",
        "notes": "",
    }


def _lines_post(lines, *, initial=0):
    """The drafting screen's form: ``lines`` are new rows after ``initial`` existing ones."""
    data = {
        "lines-TOTAL_FORMS": str(initial + len(lines)),
        "lines-INITIAL_FORMS": str(initial),
        "lines-MIN_NUM_FORMS": "0",
        "lines-MAX_NUM_FORMS": "1000",
    }
    for index, line in enumerate(lines, start=initial):
        for key, value in line.items():
            data[f"lines-{index}-{key}"] = value
    return data


def _draft_via_screens(client, customer, lines):
    """Header on the add page, then the lines on the drafting screen, as an account manager does."""
    response = client.post(reverse("admin:contracts_contract_add"), _header_post(customer))
    assert response.status_code == 302, response.context["adminform"].form.errors if response.context else ""
    contract = Contract.objects.get(customer=customer)
    assert response["Location"] == reverse("admin:contracts_contract_lines", args=[contract.pk])
    return contract, client.post(response["Location"], _lines_post(lines))


def _line(
    resource,
    model,
    quantity,
    term,
    price,
    term_discount="",
    discount="0",
    yearly="monthly_instalments",
):
    return {
        "resource": resource,
        "gpu_model": str(model.pk),
        "quantity": quantity,
        "term": term,
        "list_unit_price": price,
        "term_discount_percent": term_discount,
        "discount_percent": discount,
        "tax_category": "",
        "start_at": "",
        "end_at": "",
        "yearly_billing": yearly,
    }


def test_draft_three_lines_quote_allocate_with_capacity_finder_and_activate(am_client, am):
    a100_40 = GpuModel.objects.get(name="A100-SXM4-40GB")
    a100_80 = GpuModel.objects.get(name="A100-SXM4-80GB")
    site = SiteFactory(hub="chengyu")
    card_server = ServerFactory(site=site, gpu_model=a100_40)
    big_servers = [ServerFactory(site=site, gpu_model=a100_80) for _ in range(2)]
    SupplyAgreement.objects.create(
        provider=site.provider,
        gpu_model=a100_80,
        resource="server",
        term="monthly",
        cost_unit_price=Decimal("90000.00"),
        valid_from=datetime.date(2026, 1, 1),
    )
    customer = CustomerFactory(code="acme")

    # 1. Draft the contract: the header, then three lines on the drafting screen.
    contract, response = _draft_via_screens(
        am_client,
        customer,
        [
            _line("card", a100_40, "2", "hourly", "22.70", discount="10"),
            _line("server", a100_80, "1", "monthly", "144000.00", term_discount="15"),
            _line("p_unit", a100_80, "2.496", "yearly", "200000.00", term_discount="15"),
        ],
    )
    assert response.status_code == 302, response.context["formset"].errors if response.context else ""
    assert contract.number == "C-2026-000001" and contract.status == ContractStatus.DRAFT
    assert contract.account_manager == am
    card_l, server_l, p_l = contract.lines.order_by("position")
    assert server_l.tax_category.code == "equipment_lease"  # from the reference price list
    assert card_l.tax_category.code == "it_service"

    # 2. Quote preview: the docs/rating.md#worked-examples figures for a full month (November 2026).
    response = am_client.get(reverse("admin:contracts_contract_quote", args=[contract.pk]))
    assert response.status_code == 200
    quote = response.context["quote"]
    by_position = {q.line.position: q for q in quote.lines}
    # 2 cards × 720 h × 22.70 × 0.9
    assert by_position[1].amount == Decimal("29419.20")
    assert by_position[2].amount == Decimal("122400.00")
    assert by_position[2].term_discount_amount == Decimal("21600.00")
    # 2.496 P × 200,000 × 0.85 / 12
    assert by_position[3].amount == Decimal("35360.00")
    assert quote.amount == Decimal("187179.20")
    assert b"187,179.20" in response.content
    assert "1440 card-hour 卡时 × 20.43" in response.content.decode()  # no 1440.000000 card_hour
    half = am_client.get(reverse("admin:contracts_contract_quote", args=[contract.pk]), {"utilisation": "50"})
    assert half.context["quote"].lines[0].amount == Decimal("14709.60")

    pdf = am_client.get(reverse("admin:contracts_contract_quote_pdf", args=[contract.pk]))
    assert pdf["Content-Type"] == "application/pdf"
    text = "".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf.content)).pages)
    assert "报价单" in text and contract.number in text and "187,179.20" in text
    assert "壹拾捌万柒仟壹佰柒拾玖元贰角" in text

    # 3. Capacity finder lists free hardware with cost and margin; one click allocates.
    url = reverse("admin:contracts_contract_capacity", args=[contract.pk])
    found = am_client.get(url, {"line": server_l.pk, "hubs": ["chengyu"]})
    options = found.context["options"]
    assert {o.server.serial for o in options} == {s.serial for s in big_servers}
    net = Decimal("122400") / Decimal("1.13")
    assert options[0].margin_unit == net - Decimal("90000.00")
    for line in (card_l, server_l):
        response = am_client.post(url, {"line": line.pk, "fill": "1"})
        assert response.status_code == 302
    # the P line takes the other A100-80G server (2.496 P)
    response = am_client.post(url, {"line": p_l.pk, "fill": "1"})
    assert response.status_code == 302
    assert set(Allocation.objects.filter(line=card_l).values_list("server", flat=True)) == {card_server.pk}
    assert Allocation.objects.filter(line=card_l).count() == 2
    assert Allocation.objects.filter(line=server_l).count() == 1
    assert Allocation.objects.filter(line=p_l).count() == 1
    after = am_client.get(url, {"line": server_l.pk})
    assert after.context["options"] == []

    # 4. Activate through the admin action.
    response = am_client.post(
        reverse(CHANGELIST), {"action": "activate_selected", "_selected_action": [contract.pk]}, follow=True
    )
    contract.refresh_from_db()
    assert contract.status == ContractStatus.ACTIVE, [str(m) for m in response.context["messages"]]
    assert Allocation.objects.filter(line__contract=contract, firm=True).count() == 4

    # 5. Not a draft any more: the change page is read-only.
    page = am_client.get(reverse("admin:contracts_contract_change", args=[contract.pk]))
    assert page.status_code == 200
    assert 'name="customer"' not in page.content.decode()


def test_admin_form_errors_name_the_field_and_save_nothing(am_client):
    a100 = GpuModel.objects.get(name="A100-SXM4-40GB")
    customer = CustomerFactory()
    contract, response = _draft_via_screens(
        am_client,
        customer,
        [
            _line("card", a100, "0", "hourly", "22.70"),
            _line("p_unit", a100, "1.1234567", "yearly", "200000"),
            _line("card", a100, "1", "hourly", "22.70", discount="100"),
        ],
    )
    assert response.status_code == 200
    formset = response.context["formset"]
    assert formset.forms[0].errors["quantity"] == ["Quantity must be greater than zero."]
    assert formset.forms[1].errors["quantity"] == ["Ensure that there are no more than 6 decimal places."]
    assert "Discount must be at least 0 and below 100." in formset.forms[2].errors["discount_percent"]
    assert "Quantity must be greater than zero." in response.content.decode()
    assert contract.lines.count() == 0


def test_account_manager_cannot_approve_or_activate_over_threshold(am_client, am):
    contract = draft(CustomerFactory(), am, [p_line(ServerFactory(), discount_percent=Decimal("10"))])
    url = reverse(CHANGELIST)
    page = am_client.get(url)
    actions = [value for value, _ in page.context["action_form"].fields["action"].choices]
    assert "approve_selected" not in actions
    am_client.post(url, {"action": "approve_selected", "_selected_action": [contract.pk]})
    response = am_client.post(
        url, {"action": "activate_selected", "_selected_action": [contract.pk]}, follow=True
    )
    assert "need a sales manager" in " ".join(str(m) for m in response.context["messages"])
    contract.refresh_from_db()
    assert contract.status == ContractStatus.DRAFT and contract.approved_by is None


def test_sales_manager_approves_from_the_admin(client, am, make_staff):
    sales = make_staff(roles.SALES_MANAGER, username="sales1")
    contract = draft(CustomerFactory(), am, [p_line(ServerFactory(), discount_percent=Decimal("10"))])
    services.contract_submit(contract=contract, actor=am, now=NOW)
    client.force_login(sales)
    client.post(reverse(CHANGELIST), {"action": "approve_selected", "_selected_action": [contract.pk]})
    contract.refresh_from_db()
    assert contract.approved_by == sales


def test_finance_cannot_edit_a_drafts_prices(client, am, make_staff):
    finance = make_staff(roles.FINANCE, username="finance1")
    contract = draft(CustomerFactory(), am, [server_line(ServerFactory())])
    client.force_login(finance)
    page = client.get(reverse("admin:contracts_contract_change", args=[contract.pk]))
    assert page.status_code == 200
    assert 'name="lines-0-list_unit_price"' not in page.content.decode()
    screen = reverse("admin:contracts_contract_lines", args=[contract.pk])
    assert 'name="lines-0-list_unit_price"' not in client.get(screen).content.decode()
    line = contract.lines.get()
    post = _lines_post([], initial=1) | {"lines-0-id": str(line.pk), "lines-0-list_unit_price": "1"}
    assert client.post(screen, post).status_code == 403
    response = client.post(
        reverse("admin:contracts_contractline_change", args=[line.pk]), {"list_unit_price": "1"}
    )
    assert response.status_code == 403
    line.refresh_from_db()
    assert line.list_unit_price == Decimal("144000.000000")


@pytest.mark.parametrize(
    ("role", "action"),
    [
        (roles.FINANCE, "activate_selected"),
        (roles.FINANCE, "approve_selected"),
        (roles.SALES_MANAGER, "activate_selected"),
        (roles.SALES_MANAGER, "terminate_selected"),
        (roles.OPERATIONS, "suspend_selected"),
        (roles.ACCOUNT_MANAGER, "approve_selected"),
    ],
)
def test_every_action_refuses_a_user_without_its_permission(client, make_staff, am, role, action):
    user = make_staff(role, username=f"u-{role}")
    contract = draft(CustomerFactory(), am, [server_line(ServerFactory())])
    if action != "approve_selected":
        services.contract_activate(contract=contract, actor=am, now=NOW)
    before = Contract.objects.get(pk=contract.pk)
    client.force_login(user)
    client.post(reverse(CHANGELIST), {"action": action, "_selected_action": [contract.pk]})
    after = Contract.objects.get(pk=contract.pk)
    assert (after.status, after.approved_by_id) == (before.status, before.approved_by_id)


def test_account_managers_see_only_their_own_contracts(client, make_staff, am):
    other = make_staff(roles.ACCOUNT_MANAGER, username="am2")
    mine = draft(CustomerFactory(), am, [server_line(ServerFactory())])
    theirs = draft(CustomerFactory(), other, [server_line(ServerFactory())])
    client.force_login(am)
    listed = list(client.get(reverse(CHANGELIST)).context["cl"].result_list)
    assert listed == [mine]
    assert client.get(reverse("admin:contracts_contract_change", args=[theirs.pk])).status_code == 302
    finance = make_staff(roles.FINANCE, username="fin")
    client.force_login(finance)
    assert len(client.get(reverse(CHANGELIST)).context["cl"].result_list) == 2


def test_changelist_queries_do_not_grow_with_contracts(client, make_staff, am, django_assert_max_num_queries):
    admin_user = make_staff(superuser=True)
    client.force_login(admin_user)
    for _ in range(3):
        draft(CustomerFactory(), am, [server_line(ServerFactory())])
    with django_assert_max_num_queries(12):
        client.get(reverse(CHANGELIST))
    for _ in range(10):
        draft(CustomerFactory(), am, [server_line(ServerFactory())])
    with django_assert_max_num_queries(12):
        response = client.get(reverse(CHANGELIST), {"q": "C-2026"})
    assert response.context["cl"].result_count == 13


def test_search_by_card_uuid_and_server_serial(client, make_staff, am):
    client.force_login(make_staff(superuser=True))
    server, card_server = ServerFactory(), ServerFactory()
    by_server = draft(CustomerFactory(), am, [server_line(server)])
    by_card = draft(CustomerFactory(), am, [card_line(card_server, 1)])
    draft(CustomerFactory(), am, [server_line(ServerFactory())])
    searches = {server.serial: [by_server], card_server.cards.get(slot=0).uuid: [by_card]}
    for term, expected in searches.items():
        assert list(client.get(reverse(CHANGELIST), {"q": term}).context["cl"].result_list) == expected


def test_an_empty_list_price_takes_the_price_lists_and_is_refused_where_there_is_none(am_client):
    a100 = GpuModel.objects.get(name="A100-SXM4-40GB")
    h800 = GpuModel.objects.get(name="H800-SXM5-80GB")
    customer = CustomerFactory()
    contract, refused = _draft_via_screens(am_client, customer, [_line("card", h800, "1", "hourly", "")])
    assert refused.status_code == 200
    assert refused.context["formset"].forms[0].errors["list_unit_price"] == [
        "No list price for H800-SXM5-80GB card/hourly; give one."
    ]
    assert contract.lines.count() == 0
    url = reverse("admin:contracts_contract_lines", args=[contract.pk])
    response = am_client.post(url, _lines_post([_line("card", a100, "1", "hourly", "")]))
    assert response.status_code == 302
    assert contract.lines.get().list_unit_price == Decimal("22.700000")  # market reference
