"""Contracts, read-only: no drafts, lines with prices, discounts and allocations."""

from __future__ import annotations

import pytest
from django.urls import reverse

from apps.contracts.models import Contract, ContractStatus

pytestmark = pytest.mark.django_db


def test_list_and_detail(portal_client, world):
    body = portal_client.get("/portal/contracts/").content.decode()
    assert body.count('data-testid="contract-row"') == 1 and world.acme_contract.number in body
    assert "Active" in body
    detail = portal_client.get(
        reverse("portal:contract_detail", args=[world.acme_contract.pk])
    ).content.decode()
    assert "CNY 10.00 / card_hour" in detail
    assert detail.count('data-testid="allocation-row"') == 1
    assert world.acme_server.cards.get(slot=0).uuid in detail


def test_drafts_are_not_shown(portal_client, world):
    Contract.objects.filter(pk=world.acme_contract.pk).update(status=ContractStatus.DRAFT)
    assert 'data-testid="contract-row"' not in portal_client.get("/portal/contracts/").content.decode()
    assert (
        portal_client.get(reverse("portal:contract_detail", args=[world.acme_contract.pk])).status_code == 404
    )


@pytest.mark.parametrize("count", [2, 20])
def test_constant_queries(portal_client, world, count, django_assert_max_num_queries):
    from tests.factories.billing_flows import card_contract
    from tests.factories.catalogue import ServerFactory

    for _ in range(count // 2):
        card_contract(world.acme, world.am, ServerFactory())
    with django_assert_max_num_queries(9):
        body = portal_client.get("/portal/contracts/").content.decode()
    assert body.count('data-testid="contract-row"') == 1 + count // 2
