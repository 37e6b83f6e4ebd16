"""The contract admin keeps the capacity finder's filters when allocating, and shows a service's
refusal on the form (status 200, the service's words) instead of a 403 page."""

from __future__ import annotations

import datetime
from decimal import Decimal

import pytest
import time_machine
from django.urls import reverse

from apps.contracts import services
from apps.contracts.models import Allocation, Contract, ContractStatus
from apps.contracts.services import LineData
from apps.providers.models import SupplyAgreement
from tests.factories.catalogue import CustomerFactory, ServerFactory, SiteFactory, gpu_model
from tests.factories.contracts import NOW, draft, server_line

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def frozen_clock():
    with time_machine.travel(NOW, tick=False):
        yield


def _site_with_cost(cost: str, hub: str):
    site = SiteFactory(hub=hub)
    ServerFactory(site=site)
    SupplyAgreement.objects.create(
        provider=site.provider,
        gpu_model=gpu_model(),
        resource="card",
        term="hourly",
        cost_unit_price=Decimal(cost),
        valid_from=datetime.date(2026, 1, 1),
    )
    return site


def test_allocating_the_best_after_filtering_by_site_takes_only_that_sites_cards(am_client, am):
    wanted = _site_with_cost("15.00", hub="chengyu")
    _site_with_cost("5.00", hub="chengyu")  # cheaper supply: a better margin, ranked first unfiltered
    line = LineData(
        resource="card",
        gpu_model=gpu_model(),
        quantity=Decimal(3),
        term="hourly",
        list_unit_price=Decimal("22.70"),
        discount_percent=Decimal(0),
        allocations=[],
    )
    contract = draft(CustomerFactory(), am, [line])
    line = contract.lines.get()
    url = reverse("admin:contracts_contract_capacity", args=[contract.pk])

    found = am_client.get(url, {"line": line.pk, "hubs": ["chengyu"], "sites": [wanted.pk]})
    assert {o.site_name for o in found.context["options"]} == {wanted.name}
    page = found.content.decode()
    assert f'<input type="hidden" name="sites" value="{wanted.pk}">' in page

    response = am_client.post(
        url, {"line": line.pk, "hubs": ["chengyu"], "sites": [wanted.pk], "fill": "1"}, follow=True
    )

    allocated = Allocation.objects.filter(line=line).select_related("card__server__site")
    assert allocated.count() == 3
    assert {a.card.server.site_id for a in allocated} == {wanted.pk}
    assert "Allocated 3 to line 1" in " ".join(str(m) for m in response.context["messages"])
    # back on the same search: the site filter is still on
    assert response.context["form"].cleaned_data["sites"][0] == wanted


def test_saving_a_contract_activated_meanwhile_shows_the_services_message_on_the_form(am_client, am):
    contract = draft(CustomerFactory(), am, [server_line(ServerFactory())])
    url = reverse("admin:contracts_contract_change", args=[contract.pk])
    assert am_client.get(url).status_code == 200
    # Someone activates it while the account manager still has the draft's page open.
    services.contract_activate(contract=contract, actor=am, now=NOW)

    line = contract.lines.get()
    response = am_client.post(
        url,
        {
            "notes": "late edit",
            "lines-TOTAL_FORMS": "1",
            "lines-INITIAL_FORMS": "1",
            "lines-MIN_NUM_FORMS": "0",
            "lines-MAX_NUM_FORMS": "1000",
            "lines-0-id": str(line.pk),
            "lines-0-contract": str(contract.pk),
            "_save": "Save",
        },
    )

    assert response.status_code == 200
    page = response.content.decode()
    message = f"Cannot edit contract {contract.number}: it is active, not draft."
    assert message in page
    assert [message] == response.context["adminform"].form.non_field_errors()
    assert Contract.objects.get(pk=contract.pk).status == ContractStatus.ACTIVE
    assert Contract.objects.get(pk=contract.pk).notes == ""
