"""The capacity finder as the account manager reads it: one server column (and a card column only
for card lines), hub names, a supply cost and margin on P-unit lines (direct or derived from the
provider's server or card agreement, with a note), totals that never go blank, numbers as people
write them (``10``, not ``1E+1``), and filters that survive allocating."""

from __future__ import annotations

import datetime
import re
from decimal import Decimal

import pytest
import time_machine
from django.template import Context, Template
from django.urls import reverse

from apps.contracts.models import Allocation
from apps.contracts.services import LineData
from apps.providers.models import SupplyAgreement
from tests.factories.catalogue import CustomerFactory, ServerFactory, SiteFactory, gpu_model
from tests.factories.contracts import NOW, draft

pytestmark = pytest.mark.django_db

A100_80 = "A100-SXM4-80GB"  # 312 TFLOPS a card: 0.312 P, 2.496 P a server of 8


@pytest.fixture(autouse=True)
def frozen_clock():
    with time_machine.travel(NOW, tick=False):
        yield


def _agreement(provider, resource: str, term: str, cost: str, model: str = A100_80):
    SupplyAgreement.objects.create(
        provider=provider,
        gpu_model=gpu_model(model),
        resource=resource,
        term=term,
        cost_unit_price=Decimal(cost),
        valid_from=datetime.date(2026, 1, 1),
    )


def _line(resource: str, quantity: str, term: str, price: str, model: str = A100_80) -> LineData:
    return LineData(
        resource=resource,
        gpu_model=gpu_model(model),
        quantity=Decimal(quantity),
        term=term,
        list_unit_price=Decimal(price),
        discount_percent=Decimal(0),
        term_discount_percent=Decimal(0),
        allocations=[],
    )


def _finder(client, contract, **params):
    url = reverse("admin:contracts_contract_capacity", args=[contract.pk])
    response = client.get(url, {"line": contract.lines.get().pk, **params})
    assert response.status_code == 200
    return response, response.content.decode()


def _results_table(page: str) -> str:
    start = page.index('<table id="capacity-results">')
    return page[start : page.index("</table>", start)]


def _headers(page: str) -> list[str]:
    return re.findall(r"<th>([^<]*)</th>", _results_table(page).split("</thead>")[0])


@pytest.fixture
def p_unit_world():
    """Three providers with a free A100-80G server each: one sells P units directly, one only
    whole servers (the P cost is derived), one has no supply price at all."""
    direct = SiteFactory(hub="chengyu", name="Chengdu DC1")
    derived = SiteFactory(hub="jingjinji", name="Langfang DC2")
    unpriced = SiteFactory(hub="guizhou", name="Gui'an DC3")
    servers = {
        name: ServerFactory(site=site, gpu_model=gpu_model(A100_80))
        for name, site in (("direct", direct), ("derived", derived), ("unpriced", unpriced))
    }
    _agreement(direct.provider, "p_unit", "yearly", "100000.00")
    _agreement(derived.provider, "server", "yearly", "299520.00")  # 120,000.00 per P over 2.496 P
    _agreement(derived.provider, "card", "yearly", "1.00")  # the server agreement wins for whole servers
    return servers


def test_p_unit_line_shows_cost_and_margin_direct_and_derived_and_totals(am_client, am, p_unit_world):
    contract = draft(
        CustomerFactory(), am, [_line("p_unit", "10", "yearly", "150000.00")], prices_include_tax=False
    )
    response, page = _finder(am_client, contract)

    options = response.context["options"]
    by_server = {o.server.serial: o for o in options}
    direct = by_server[p_unit_world["direct"].serial]
    derived = by_server[p_unit_world["derived"].serial]
    unpriced = by_server[p_unit_world["unpriced"].serial]
    assert (direct.cost_unit_price, direct.margin_unit, direct.cost_source) == (
        Decimal("100000.00"),
        Decimal("50000.00"),
        "p_unit",
    )
    assert (derived.cost_unit_price, derived.margin_unit, derived.cost_source) == (
        Decimal("120000"),
        Decimal("30000"),
        "server",
    )
    assert (unpriced.cost_unit_price, unpriced.margin_unit) == (None, None)
    # best margin first, the row without a price last
    assert [o.server.serial for o in options] == [
        p_unit_world["direct"].serial,
        p_unit_world["derived"].serial,
        p_unit_world["unpriced"].serial,
    ]

    table = _results_table(page)
    assert "100,000.00" in table and "50,000.00" in table
    assert "120,000.00 *" in table and "30,000.00" in table
    assert 'id="capacity-derived-note"' in page
    note = " ".join(page[page.index('id="capacity-derived-note"') :].split("</p>")[0].split())
    assert "derived from the provider's server agreement (cost per server ÷ P per server)" in note
    # the heading reads 10, not 1E+1
    assert "Line #1: 10 × " in page and "1E+" not in page
    assert "尚缺: <b>10</b>" in page

    # Totals over the three rows: P units and price for all; cost and margin for the two priced.
    totals = page[page.index('<tfoot id="capacity-totals">') : page.index("</tfoot>")]
    assert "7.488" in totals  # 3 × 2.496 P
    assert "1,123,200.00" in totals  # price: 7.488 P × 150,000
    assert "549,120.00" in totals  # cost: 2.496 × 100,000 + 2.496 × 120,000
    assert "199,680.00" in totals  # margin: 2.496 × 50,000 + 2.496 × 30,000
    assert "1 of 3 without a supply price" in totals


def test_p_unit_cost_derived_from_a_card_agreement(am_client, am):
    site = SiteFactory(hub="greater_bay")
    ServerFactory(site=site, gpu_model=gpu_model(A100_80))
    _agreement(site.provider, "card", "monthly", "3120.00")  # 10,000.00 per P-month over 0.312 P
    contract = draft(
        CustomerFactory(), am, [_line("p_unit", "2.496", "monthly", "12000.00")], prices_include_tax=False
    )

    response, page = _finder(am_client, contract)

    (option,) = response.context["options"]
    assert (option.cost_unit_price, option.margin_unit, option.cost_source) == (
        Decimal("10000"),
        Decimal("2000"),
        "card",
    )
    assert "10,000.00 *" in page and "2,000.00" in page
    note = " ".join(page[page.index('id="capacity-derived-note"') :].split("</p>")[0].split())
    assert "derived from the provider's card agreement (cost per card ÷ P per card)" in note
    assert "without a supply price" not in page
    totals = page[page.index('<tfoot id="capacity-totals">') : page.index("</tfoot>")]
    assert "24,960.00" in totals and "4,992.00" in totals  # 2.496 P × 10,000 cost, × 2,000 margin


def test_server_line_has_one_server_column_and_hub_names(am_client, am):
    site = SiteFactory(hub="jingjinji", name="Zhangbei DC")
    server = ServerFactory(site=site, gpu_model=gpu_model(A100_80))
    contract = draft(
        CustomerFactory(), am, [_line("server", "1", "monthly", "140000.00")], prices_include_tax=False
    )

    _response, page = _finder(am_client, contract)

    headers = _headers(page)
    assert sum("Server" in h for h in headers) == 1
    assert not any("Card" in h for h in headers)
    table = _results_table(page)
    assert table.count(f"<td>{server.serial}</td>") == 1
    assert "京津冀 Jing-Jin-Ji" in table and "<td>jingjinji</td>" not in table
    assert "Zhangbei DC" in table and site.provider.name in table
    # no supply price at all: the totals still show, with zero cost and the count of unpriced rows
    totals = page[page.index('<tfoot id="capacity-totals">') : page.index("</tfoot>")]
    assert "140,000.00" in totals and "1 of 1 without a supply price" in totals


def test_card_line_shows_the_card_column_and_the_server_once(am_client, am):
    site = SiteFactory(hub="chengyu")
    server = ServerFactory(site=site, card_count=2)
    contract = draft(CustomerFactory(), am, [_line("card", "2", "hourly", "22.70", model="A100-SXM4-40GB")])

    response, page = _finder(am_client, contract)

    headers = _headers(page)
    assert headers.count("Card 卡") == 1 and sum("Server" in h for h in headers) == 1
    table = _results_table(page)
    for card in server.cards.all():
        assert f"<td>{card.uuid}</td>" in table
    assert table.count(f"<td>{server.serial}</td>") == 2  # one row per card
    assert "成渝 Cheng-Yu" in table
    assert len(response.context["options"]) == 2


def test_allocating_from_the_finder_keeps_its_filters(am_client, am):
    wanted = SiteFactory(hub="chengyu")
    ServerFactory(site=wanted, gpu_model=gpu_model(A100_80))
    ServerFactory(site=SiteFactory(hub="chengyu"), gpu_model=gpu_model(A100_80))
    contract = draft(CustomerFactory(), am, [_line("server", "1", "monthly", "140000.00")])
    line = contract.lines.get()
    url = reverse("admin:contracts_contract_capacity", args=[contract.pk])

    response = am_client.post(url, {"line": line.pk, "hubs": ["chengyu"], "sites": [wanted.pk], "fill": "1"})

    assert response.status_code == 302
    assert response["Location"] == f"{url}?line={line.pk}&hubs=chengyu&sites={wanted.pk}"
    assert Allocation.objects.get(line=line).server.site_id == wanted.pk
    page = am_client.get(response["Location"]).content.decode()
    assert 'value="chengyu" checked' in page or "checked" in page.split('value="chengyu"')[1][:40]


@pytest.mark.parametrize(
    ("template", "value", "shown"),
    [
        ("{{ v|decimal_text }}", Decimal("10.000000"), "10"),
        ("{{ v|decimal_text }}", Decimal("1E+1"), "10"),
        ("{{ v|decimal_text }}", Decimal("2.4960"), "2.496"),
        ("{{ v|decimal_text }}", None, "—"),
        ("{{ v|percent_text }}", Decimal("0.30"), "30%"),
        ("{{ v|percent_text }}", Decimal("0.06"), "6%"),
        ("{{ v|amount_text }}", Decimal("136325"), "136,325.00"),
        ("{{ v|amount_text }}", Decimal("0.005"), "0.01"),
    ],
)
def test_money_template_filters_print_numbers_as_people_write_them(template, value, shown):
    assert Template("{% load money %}" + template).render(Context({"v": value})) == shown


def test_a_server_lines_own_server_price_is_not_marked_derived(am_client, am):
    site = SiteFactory(hub="jingjinji")
    ServerFactory(site=site, gpu_model=gpu_model(A100_80))
    SupplyAgreement.objects.create(
        provider=site.provider,
        gpu_model=gpu_model(A100_80),
        resource="server",
        term="monthly",
        cost_unit_price=Decimal("98000.00"),
        valid_from=datetime.date(2026, 1, 1),
    )
    contract = draft(
        CustomerFactory(), am, [_line("server", "1", "monthly", "140000.00")], prices_include_tax=False
    )

    response, page = _finder(am_client, contract)

    assert "98,000.00" in _results_table(page) and "98,000.00 *" not in _results_table(page)
    assert 'id="capacity-derived-note"' not in page
    assert response.context["options"][0].margin_unit == Decimal("42000.00")
