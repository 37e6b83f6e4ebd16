"""Server admin as operations sees it: a bounded changelist, search by card UUID, cards inline."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from apps.inventory.models import Server
from tests.factories.catalogue import ProviderFactory, ServerFactory, SiteFactory, gpu_model

pytestmark = pytest.mark.django_db

CHANGELIST_MAX_QUERIES = 10


@pytest.fixture
def ops_client(client, operations_user):
    client.force_login(operations_user)
    return client


@pytest.fixture
def make_servers():
    sites = [
        SiteFactory(provider=ProviderFactory(code="bj-idc"), name="Yizhuang", hub="jingjinji"),
        SiteFactory(provider=ProviderFactory(code="gy-infra"), name="Gui'an", hub="guizhou"),
    ]
    models = [gpu_model("A100-SXM4-80GB"), gpu_model("H20-96GB")]

    def make(count: int, start: int = 0) -> list[Server]:
        return [
            ServerFactory(site=sites[n % 2], gpu_model=models[n % 2], serial=f"SRV-A-{start + n:04d}")
            for n in range(count)
        ]

    return make


def test_the_changelist_of_20_servers_takes_a_bounded_number_of_queries(
    ops_client, make_servers, django_assert_max_num_queries
):
    make_servers(20)
    url = reverse("admin:inventory_server_changelist")

    with django_assert_max_num_queries(CHANGELIST_MAX_QUERIES):
        response = ops_client.get(url)

    assert response.status_code == 200
    page = response.content.decode()
    assert "SRV-A-0000" in page and "SRV-A-0019" in page
    assert "贵州 Guizhou" in page  # the hub column
    assert reverse("admin:inventory_server_import") in page  # the import button

    # Twice the servers, the same queries: nothing runs per row.
    with CaptureQueriesContext(connection) as twenty:
        ops_client.get(url)
    make_servers(20, start=20)
    with CaptureQueriesContext(connection) as forty:
        ops_client.get(url)
    assert len(forty) == len(twenty), [q["sql"] for q in forty]


def test_search_by_card_uuid_finds_the_server(ops_client, make_servers):
    servers = make_servers(5)
    wanted = servers[3]
    card = wanted.cards.get(slot=6)

    response = ops_client.get(reverse("admin:inventory_server_changelist"), {"q": card.uuid})

    assert [s.serial for s in response.context["cl"].result_list] == [wanted.serial]


def test_the_change_page_shows_the_cards_inline(ops_client, make_servers):
    server = make_servers(1)[0]

    response = ops_client.get(reverse("admin:inventory_server_change", args=[server.pk]))

    assert response.status_code == 200
    page = response.content.decode()
    for card in server.cards.all():
        assert f'value="{card.uuid}"' in page
    formset = response.context["inline_admin_formsets"][0].formset
    assert [form.instance.slot for form in formset.forms] == list(range(8))
