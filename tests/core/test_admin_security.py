"""The admin's write holes a probe found on the demo, replayed as the requests were sent.

Each answered 302 and changed the database before the fix; now each is refused (403 or 404) and
the database keeps its values.
"""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse

from apps.contracts import services
from apps.contracts.models import Allocation, Contract, ContractLine, ContractStatus, PriceListItem
from apps.customers.models import Customer
from apps.providers.models import SupplyAgreement
from tests.admin_forms import form_fields

pytestmark = pytest.mark.django_db


def user(name):
    return get_user_model().objects.get(username=name)


def browser_form(client, obj) -> dict:
    """The change form of ``obj`` as the platform admin's browser would submit it."""
    opts = obj._meta
    client.force_login(user("admin"))
    page = client.get(reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[obj.pk]))
    assert page.status_code == 200
    client.logout()
    return form_fields(page.content.decode(), f"{opts.model_name}_form")


def history_url(obj, history_id=None) -> str:
    opts = obj._meta
    history_id = history_id or obj.history.order_by("history_id").first().history_id
    return reverse(f"admin:{opts.app_label}_{opts.model_name}_simple_history", args=[obj.pk, history_id])


def revert_as(client, username, obj, **changes):
    data = {**browser_form(client, obj), **changes}
    client.force_login(user(username))
    return client.post(history_url(obj), data)


def assert_revert_refused(client, username, obj, expect=403, **changes):
    """Reverting ``obj`` to ``changes`` through its history page answers ``expect`` and changes nothing."""
    before = [getattr(obj, name) for name in changes]
    response = revert_as(client, username, obj, **changes)
    assert response.status_code == expect
    obj.refresh_from_db()
    assert [getattr(obj, name) for name in changes] == before


def with_history(model, **filters):
    """The first row of ``model`` that has a history entry (rows made by migrations have none)."""
    return model.objects.filter(pk__in=model.history.values("id"), **filters).order_by("pk").first()


def refused(response) -> bool:
    """403, or the admin's "Cannot delete" page (the rows it may not delete or that others protect)."""
    if response.status_code == 403:
        return True
    return response.status_code == 200 and str(response.context["title"]).startswith("Cannot delete")


def am2_contract(status) -> Contract:
    return Contract.objects.filter(account_manager__username="am2", status=status).order_by("pk").first()


def am2_draft(demo) -> Contract:
    """A draft of am2's: the demo's, or one am2 starts from their customer with no lines."""
    contract = am2_contract(ContractStatus.DRAFT)
    if contract is None:
        source = Contract.objects.filter(account_manager__username="am2").order_by("pk").first()
        contract = services.contract_create(
            actor=user("am2"),
            customer=source.customer,
            start_at=source.start_at,
            lines=[],
            notes="am2's draft",
        )
    return contract


# -- 1. view-only staff writing through the history revert page ----------------------------------


def test_view_only_account_manager_cannot_revert_a_list_price(client, demo):
    item = with_history(PriceListItem)
    assert item.list_unit_price != Decimal("0.01")
    assert_revert_refused(client, "am1", item, list_unit_price="0.01")


def test_view_only_finance_cannot_revert_a_provider_cost(client, demo):
    agreement = with_history(SupplyAgreement)
    assert agreement.cost_unit_price != Decimal("1.00")
    assert_revert_refused(client, "finance1", agreement, cost_unit_price="1.00")


def test_view_only_operations_cannot_revert_bank_details(client, demo):
    customer = with_history(Customer)
    assert_revert_refused(
        client, "ops1", customer, bank_account="6222 0000 0000 0000 666", billing_email="thief@example.com"
    )


def test_sales_manager_cannot_revert_an_account_managers_draft(client, demo):
    contract = am2_draft(demo)
    assert_revert_refused(client, "sales1", contract, notes="changed by sales", minimum_monthly_amount="1")


def test_operations_cannot_rewrite_a_contract_line_through_history(client, demo):
    line = with_history(ContractLine)
    assert_revert_refused(client, "ops1", line, discount_percent="95", list_unit_price="0.01")


def test_even_the_platform_admin_changes_objects_on_their_page_not_from_history(client, demo):
    item = with_history(PriceListItem)
    assert_revert_refused(client, "admin", item, list_unit_price="0.01")


def test_a_past_version_is_shown_read_only(client, demo):
    item = with_history(PriceListItem)
    client.force_login(user("am1"))
    page = client.get(history_url(item))
    assert page.status_code == 200
    html = page.content.decode()
    assert str(item.list_unit_price) in html
    assert 'name="list_unit_price"' not in html
    assert "Revert" not in html


# -- 2. history pages outside row scoping ----------------------------------------------------------


def test_account_manager_cannot_read_another_managers_contract_history(client, demo):
    contract = am2_contract(ContractStatus.ACTIVE)
    client.force_login(user("am1"))
    opts = contract._meta
    assert client.get(history_url(contract)).status_code == 404
    assert client.get(reverse("admin:contracts_contract_history", args=[contract.pk])).status_code == 404
    assert (
        client.get(
            reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[contract.pk])
        ).status_code
        == 302
    )
    # ... while am2 reads their own
    client.force_login(user("am2"))
    assert client.get(history_url(contract)).status_code == 200
    assert client.get(reverse("admin:contracts_contract_history", args=[contract.pk])).status_code == 200


def test_account_manager_cannot_write_another_managers_contract_through_history(client, demo):
    contract = am2_draft(demo)
    assert_revert_refused(
        client, "am1", contract, expect=404, notes="mine now", minimum_monthly_amount="999999"
    )


def test_account_manager_cannot_write_another_managers_line_through_history(client, demo):
    line = with_history(ContractLine, contract__account_manager__username="am2")
    assert_revert_refused(client, "am1", line, expect=404, discount_percent="95", list_unit_price="0.01")


# -- 3. allocations: scoped, and removed only through the service ---------------------------------


def firm_allocation_of_am2() -> Allocation:
    return (
        Allocation.objects.filter(
            line__contract__account_manager__username="am2",
            line__contract__status=ContractStatus.ACTIVE,
            firm=True,
        )
        .order_by("pk")
        .first()
    )


def test_account_manager_lists_only_the_allocations_of_their_contracts(client, demo):
    client.force_login(user("am1"))
    page = client.get(reverse("admin:contracts_allocation_changelist"), {"all": ""})
    assert page.status_code == 200
    shown = list(page.context["cl"].result_list)
    assert shown, "am1 has allocations in the demo"
    assert {a.line.contract.account_manager.username for a in shown} == {"am1"}
    assert (
        page.context["cl"].full_result_count
        == Allocation.objects.filter(line__contract__account_manager__username="am1").count()
    )


def test_account_manager_cannot_delete_another_managers_firm_allocation(client, demo):
    allocation = firm_allocation_of_am2()
    client.force_login(user("am1"))
    url = reverse("admin:contracts_allocation_delete", args=[allocation.pk])
    response = client.post(url, {"post": "yes"})
    assert response.status_code == 302 and "/delete/" not in response.url
    assert Allocation.objects.filter(pk=allocation.pk).exists()


def test_no_one_deletes_a_firm_allocation_of_an_active_contract_in_the_admin(client, demo):
    allocation = firm_allocation_of_am2()
    for username in ("am2", "admin"):
        client.force_login(user(username))
        url = reverse("admin:contracts_allocation_delete", args=[allocation.pk])
        assert client.post(url, {"post": "yes"}).status_code == 403
        bulk = client.post(
            reverse("admin:contracts_allocation_changelist"),
            {"action": "delete_selected", "_selected_action": [allocation.pk], "post": "yes"},
        )
        assert refused(bulk)
        assert Allocation.objects.filter(pk=allocation.pk).exists()


def test_the_bulk_delete_confirmation_names_the_allocation_that_may_not_go(client, demo):
    allocation = firm_allocation_of_am2()
    client.force_login(user("am2"))
    page = client.post(
        reverse("admin:contracts_allocation_changelist"),
        {"action": "delete_selected", "_selected_action": [allocation.pk]},
    )
    assert page.status_code == 200
    assert str(page.context["title"]) == "Cannot delete allocation"
    assert f"allocation “{allocation}”" in {str(name) for name in page.context["perms_lacking"]}


def test_a_draft_allocation_is_deleted_through_the_service(client, demo):
    contract = Contract.objects.filter(status=ContractStatus.DRAFT, lines__allocations__isnull=False).first()
    allocation = Allocation.objects.filter(line__contract=contract).order_by("pk").first()
    owner = contract.account_manager
    client.force_login(owner)
    response = client.post(
        reverse("admin:contracts_allocation_delete", args=[allocation.pk]), {"post": "yes"}
    )
    assert response.status_code == 302
    assert not Allocation.objects.filter(pk=allocation.pk).exists()
    assert Allocation.history.filter(id=allocation.pk, history_type="-").get().history_user == owner


def test_bulk_delete_of_contracts_refuses_active_ones_and_deletes_nothing(client, demo):
    draft = am2_draft(demo)
    active = am2_contract(ContractStatus.ACTIVE)
    client.force_login(user("am2"))
    response = client.post(
        reverse("admin:contracts_contract_changelist"),
        {"action": "delete_selected", "_selected_action": [draft.pk, active.pk], "post": "yes"},
    )
    assert refused(response)
    assert Contract.objects.filter(pk__in=[draft.pk, active.pk]).count() == 2


def test_bulk_delete_of_lines_of_an_active_contract_is_refused(client, demo):
    line = ContractLine.objects.filter(
        contract__account_manager__username="am2", contract__status=ContractStatus.ACTIVE
    ).first()
    client.force_login(user("am2"))
    response = client.post(
        reverse("admin:contracts_contractline_changelist"),
        {"action": "delete_selected", "_selected_action": [line.pk], "post": "yes"},
    )
    assert refused(response)
    assert ContractLine.objects.filter(pk=line.pk).exists()
