"""SLA policies in the admin: sales managers keep them with their tiers, account managers and
finance read them (docs/hardware-truth.md#sla-policies)."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.urls import reverse

from apps.accounts import roles
from apps.contracts.models import SlaPolicy

pytestmark = pytest.mark.django_db


def test_a_sales_manager_adds_a_policy_with_its_tiers(client, make_staff):
    client.force_login(make_staff(roles.SALES_MANAGER, username="sales1"))
    response = client.post(
        reverse("admin:contracts_slapolicy_add"),
        {
            "name": "Gold 99.5",
            "target_percent": "99.50",
            "tiers-TOTAL_FORMS": "2",
            "tiers-INITIAL_FORMS": "0",
            "tiers-0-below_percent": "99.50",
            "tiers-0-credit_percent": "10",
            "tiers-1-below_percent": "99.00",
            "tiers-1-credit_percent": "25",
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    policy = SlaPolicy.objects.get(name="Gold 99.5")
    assert policy.target_percent == Decimal("99.50")
    assert list(policy.tiers.values_list("below_percent", "credit_percent")) == [
        (Decimal("99.50"), Decimal("10.00")),
        (Decimal("99.00"), Decimal("25.00")),
    ]


@pytest.mark.parametrize("role", [roles.ACCOUNT_MANAGER, roles.FINANCE])
def test_account_managers_and_finance_read_but_do_not_add(client, make_staff, role):
    SlaPolicy.objects.create(name="Gold 99.5", target_percent=Decimal("99.50"))
    client.force_login(make_staff(role))
    assert "Gold 99.5" in client.get(reverse("admin:contracts_slapolicy_changelist")).content.decode()
    assert client.get(reverse("admin:contracts_slapolicy_add")).status_code == 403


def test_a_lines_page_sets_its_usage_source_busy_threshold_and_sla(client, make_staff):
    from tests.factories.catalogue import CustomerFactory, ServerFactory
    from tests.factories.contracts import draft, server_line

    am = make_staff(roles.ACCOUNT_MANAGER, username="am1")
    SlaPolicy.objects.create(name="Gold 99.5", target_percent=Decimal("99.50"))
    line = draft(CustomerFactory(), am, [server_line(ServerFactory())]).lines.get()
    client.force_login(am)
    body = client.get(reverse("admin:contracts_contractline_change", args=[line.pk])).content.decode()
    for name in ("usage_source", "observed_busy_threshold_percent", "sla"):
        assert f'name="{name}"' in body, name
    assert "Gold 99.5 (99.5 %)" in body
