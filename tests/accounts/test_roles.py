import pytest
from django.contrib.auth.models import Group

from apps.accounts import roles


@pytest.mark.django_db
def test_the_four_roles_exist_with_their_permissions():
    names = set(Group.objects.values_list("name", flat=True))
    assert {"account_manager", "sales_manager", "finance", "operations"} <= names

    ops = set(Group.objects.get(name=roles.OPERATIONS).permissions.values_list("codename", flat=True))
    assert {"add_server", "change_card", "add_provider", "add_supplyagreement"} <= ops
    assert "add_customer" not in ops

    am = set(Group.objects.get(name=roles.ACCOUNT_MANAGER).permissions.values_list("codename", flat=True))
    assert {"add_customer", "view_pricelist"} <= am
    assert "change_pricelist" not in am and "add_server" not in am

    finance = set(Group.objects.get(name=roles.FINANCE).permissions.values_list("codename", flat=True))
    assert "change_taxcategory" in finance and "change_pricelistitem" not in finance


@pytest.mark.django_db
def test_sync_roles_is_idempotent():
    from django.apps import apps

    before = {g.name: g.permissions.count() for g in Group.objects.all()}
    roles.sync_roles(apps)
    after = {g.name: g.permissions.count() for g in Group.objects.all()}
    assert before == after
