"""The contract drafting screen: one row per line, live figures, saving through the services."""

from __future__ import annotations

import datetime
import re
from decimal import Decimal

import pytest
from django.urls import reverse

from apps.accounts import roles
from apps.contracts import services
from apps.contracts.models import Contract, ContractStatus
from apps.contracts.services import LineData
from apps.inventory.models import GpuModel
from apps.providers.models import SupplyAgreement
from tests.factories.catalogue import CustomerFactory, ServerFactory, SiteFactory
from tests.factories.contracts import NOV_1, NOW, card_line, draft, p_line, server_line

pytestmark = pytest.mark.django_db


def _management(total, initial):
    return {
        "lines-TOTAL_FORMS": str(total),
        "lines-INITIAL_FORMS": str(initial),
        "lines-MIN_NUM_FORMS": "0",
        "lines-MAX_NUM_FORMS": "1000",
    }


def _row(index, model, resource, quantity, term, price="", **extra):
    row = {
        "resource": resource,
        "gpu_model": str(model.pk),
        "quantity": quantity,
        "term": term,
        "list_unit_price": price,
        "term_discount_percent": "",
        "discount_percent": "",
        "tax_category": "",
        "start_at": "",
        "end_at": "",
        "yearly_billing": "monthly_instalments",
        **extra,
    }
    return {f"lines-{index}-{key}": value for key, value in row.items()}


def _existing(contract):
    """The screen's POST for the contract's lines as they are."""
    data = _management(contract.lines.count(), contract.lines.count())
    for index, line in enumerate(contract.lines.order_by("position")):
        data |= _row(
            index,
            line.gpu_model,
            line.resource,
            str(line.quantity),
            line.term,
            str(line.list_unit_price),
            term_discount_percent=str(line.term_discount_percent),
            discount_percent=str(line.discount_percent),
            tax_category=str(line.tax_category_id),
            yearly_billing=line.yearly_billing,
        )
        data[f"lines-{index}-id"] = str(line.pk)
    return data


@pytest.fixture
def three_lines(am):
    """Card hourly, server monthly (with a supply price) and P-unit yearly, from November 1."""
    site = SiteFactory(hub="chengyu")
    a100_40 = GpuModel.objects.get(name="A100-SXM4-40GB")
    a100_80 = GpuModel.objects.get(name="A100-SXM4-80GB")
    server = ServerFactory(site=site, gpu_model=a100_80)
    SupplyAgreement.objects.create(
        provider=site.provider,
        gpu_model=a100_80,
        resource="server",
        term="monthly",
        cost_unit_price=Decimal("90000.00"),
        valid_from=datetime.date(2026, 1, 1),
    )
    return draft(
        CustomerFactory(code="acme"),
        am,
        [
            card_line(ServerFactory(site=site, gpu_model=a100_40)),
            server_line(server, term_discount="15"),
            p_line(ServerFactory(site=site, gpu_model=a100_80)),
        ],
        end_at=datetime.datetime(2027, 11, 1, tzinfo=NOV_1.tzinfo),
    )


def test_the_screen_shows_each_lines_effective_price_monthly_estimate_and_margin(am_client, three_lines):
    response = am_client.get(reverse("admin:contracts_contract_lines", args=[three_lines.pk]))
    assert response.status_code == 200
    rows = response.context["figures_json"]["rows"]
    # The same figures the quote prices with the rating engine for November (docs/rating.md).
    assert [r["effective_unit_price"] for r in rows] == [
        "20.43 / card-hour 卡时",  # 22.70 × 0.9
        "122400 / server-month 台月",  # 144,000 × 0.85
        "170000 / P-year P年",  # 200,000 × 0.85
    ]
    assert [r["monthly_amount"] for r in rows] == ["29,419.20", "122,400.00", "35,360.00"]
    # Server line: 122,400 incl. 13 % VAT → net 108,318.58, supply 90,000 → margin 18,318.58.
    assert rows[1]["monthly_margin"] == "18,318.58" and rows[1]["margin_percent"] == "16.9%"
    assert rows[0]["monthly_margin"] == "—"  # no supply price for A100-40GB cards
    totals = response.context["figures_json"]["totals"]
    assert totals["monthly_amount"] == "187,179.20"
    assert totals["rows_without_cost"] == 2
    assert totals["monthly_margin"] == "18,318.58"  # the known rows, not blanked by the others
    assert totals["term_value"] == "2,246,150.40"  # 12 months × 187,179.20
    page = response.content.decode()
    assert "No approval needed: the largest discount (15%, line 2)" in page
    assert "line(s) without a supply price" in page
    # Yearly billing only on the yearly line; dates hidden where they are the contract's.
    assert page.count('class="yearly-billing" hidden') == 3  # two lines and the new-row template
    assert page.count('<tr class="line-extra" data-prefix="lines-0" hidden>') == 1
    # The capacity finder one click away per line.
    line_ids = list(three_lines.lines.order_by("position").values_list("pk", flat=True))
    finder = reverse("admin:contracts_contract_capacity", args=[three_lines.pk])
    assert all(f"{finder}?line={pk}" in page for pk in line_ids)


def test_preview_answers_the_typed_rows_figures_and_approval_and_saves_nothing(am_client, three_lines):
    data = _existing(three_lines)
    data["lines-2-discount_percent"] = "10"  # 1 − 0.85 × 0.9 = 23.5 % combined, above 20 %
    data |= _management(4, 3) | _row(3, GpuModel.objects.get(name="A100-SXM4-40GB"), "card", "1", "hourly")
    response = am_client.post(reverse("admin:contracts_contract_lines_preview", args=[three_lines.pk]), data)
    assert response.status_code == 200
    body = response.json()
    assert body["approval"] == {
        "needed": True,
        "text": "Needs a sales manager's approval: line 3 has a 23.5% discount, above the 20% threshold.",
    }
    assert body["rows"][2]["monthly_amount"] == "31,824.00"  # 2.496 × 153,000 / 12
    # The new row takes the price list's A100 card-hour price and says so as the placeholder.
    assert body["rows"][3]["price_list_price"] == body["rows"][3]["list_unit_price"] == "22.7"
    assert body["rows"][3]["monthly_amount"] == "16,344.00"  # 720 h × 22.70
    three_lines.refresh_from_db()
    assert three_lines.lines.count() == 3
    assert three_lines.lines.get(position=3).discount_percent == Decimal("0")


def test_saving_numbers_new_lines_in_order_and_keeps_yearly_billing_to_yearly_lines(am_client, am):
    contract = draft(CustomerFactory(), am, [])
    a100 = GpuModel.objects.get(name="A100-SXM4-80GB")
    url = reverse("admin:contracts_contract_lines", args=[contract.pk])
    data = _management(3, 0)
    data |= _row(0, a100, "card", "2", "hourly", "30.00", yearly_billing="upfront")
    data |= _row(1, a100, "server", "1", "monthly", "150000")
    data |= _row(2, a100, "p_unit", "2.496", "yearly", "200000", yearly_billing="upfront")
    response = am_client.post(url, data)
    assert response.status_code == 302 and response["Location"] == url
    lines = list(contract.lines.order_by("position"))
    assert [(line.position, line.resource) for line in lines] == [(1, "card"), (2, "server"), (3, "p_unit")]
    assert [line.yearly_billing for line in lines] == [
        "monthly_instalments",
        "monthly_instalments",
        "upfront",
    ]
    assert lines[0].discount_percent == Decimal("0")
    # Two more rows later: positions 4 and 5, in the order typed.
    data = _existing(contract) | _management(5, 3)
    data |= _row(3, a100, "card", "1", "daily", "700") | _row(4, a100, "card", "1", "hourly", "31")
    assert am_client.post(url, data).status_code == 302
    assert list(contract.lines.order_by("position").values_list("position", "term")) == [
        (1, "hourly"),
        (2, "monthly"),
        (3, "yearly"),
        (4, "daily"),
        (5, "hourly"),
    ]


def test_dates_per_line_only_when_given_and_in_the_billing_zone(am_client, am):
    contract = draft(CustomerFactory(), am, [])
    a100 = GpuModel.objects.get(name="A100-SXM4-80GB")
    url = reverse("admin:contracts_contract_lines", args=[contract.pk])
    data = _management(2, 0) | _row(0, a100, "card", "1", "hourly", "30")
    data |= _row(1, a100, "card", "1", "hourly", "30", start_at="2026-12-01T00:00")
    assert am_client.post(url, data).status_code == 302
    first, second = contract.lines.order_by("position")
    assert first.start_at is None and first.end_at is None
    assert second.start_at == datetime.datetime(2026, 12, 1, tzinfo=NOV_1.tzinfo)
    page = am_client.get(url).content.decode()
    assert '<tr class="line-extra" data-prefix="lines-1">' in page  # shown: it differs
    assert 'value="2026-12-01T00:00"' in page


def test_removing_a_line_and_a_refusal_rolls_every_row_back(am_client, am, three_lines):
    url = reverse("admin:contracts_contract_lines", args=[three_lines.pk])
    h800 = GpuModel.objects.get(name="H800-SXM5-80GB")
    data = _existing(three_lines) | {"lines-0-DELETE": "on", "lines-1-discount_percent": "5"}
    data |= _management(4, 3) | _row(3, h800, "card", "1", "hourly")  # no list price anywhere
    response = am_client.post(url, data)
    assert response.status_code == 200
    assert "No list price for H800-SXM5-80GB card/hourly; give one." in response.content.decode()
    assert three_lines.lines.count() == 3
    assert three_lines.lines.get(position=2).discount_percent == Decimal("0")
    del data["lines-3-gpu_model"], data["lines-3-resource"], data["lines-3-term"], data["lines-3-quantity"]
    data |= _management(3, 3)
    assert am_client.post(url, data).status_code == 302
    assert list(three_lines.lines.order_by("position").values_list("position", "discount_percent")) == [
        (2, Decimal("5.00")),
        (3, Decimal("0.00")),
    ]


def test_save_and_submit_goes_to_pending_approval(am_client, three_lines):
    url = reverse("admin:contracts_contract_lines", args=[three_lines.pk])
    response = am_client.post(url, _existing(three_lines) | {"_submit": "1"})
    assert response.status_code == 302
    three_lines.refresh_from_db()
    assert three_lines.status == ContractStatus.PENDING_APPROVAL


def test_a_contract_past_drafting_is_read_only_and_others_contracts_are_hidden(
    client, make_staff, am, three_lines
):
    url = reverse("admin:contracts_contract_lines", args=[three_lines.pk])
    other = make_staff(roles.ACCOUNT_MANAGER, username="am2")
    client.force_login(other)
    assert client.get(url).status_code == 404
    assert (
        client.post(reverse("admin:contracts_contract_lines_preview", args=[three_lines.pk])).status_code
        == 404
    )
    services.contract_submit(contract=three_lines, actor=am, now=NOW)
    client.force_login(am)
    page = client.get(url)
    assert page.status_code == 200
    assert re.search(r'<input[^>]*name="lines-0-quantity"[^>]*disabled', page.content.decode())
    assert "its lines can no longer change" in page.content.decode()
    assert client.post(url, _existing(three_lines)).status_code == 403


def test_new_drafts_go_to_the_lines_screen_and_the_contract_page_lists_lines(am_client, three_lines):
    page = am_client.get(reverse("admin:contracts_contract_change", args=[three_lines.pk])).content.decode()
    assert 'id="contract-lines"' in page and "Edit lines 编辑合同行" in page
    assert "lines-TOTAL_FORMS" not in page  # no wide inline table any more
    assert "Monthly instalments" in page or "monthly instalments" in page.lower()


@pytest.mark.parametrize("count", [2, 20])
def test_screen_and_contract_page_queries_do_not_grow_with_lines(
    am_client, am, count, django_assert_max_num_queries
):
    a100 = GpuModel.objects.get(name="A100-SXM4-40GB")
    one_card = LineData(resource="card", gpu_model=a100, quantity=Decimal(1), term="hourly")
    contract = draft(CustomerFactory(), am, [one_card] * count)
    assert contract.lines.count() == count
    with django_assert_max_num_queries(16):
        assert am_client.get(reverse("admin:contracts_contract_lines", args=[contract.pk])).status_code == 200
    with django_assert_max_num_queries(22):
        assert (
            am_client.get(reverse("admin:contracts_contract_change", args=[contract.pk])).status_code == 200
        )
    data = _existing(contract)
    with django_assert_max_num_queries(14):
        preview = reverse("admin:contracts_contract_lines_preview", args=[contract.pk])
        assert am_client.post(preview, data).status_code == 200
    assert Contract.objects.count() == 1


def test_a_lines_own_page_offers_yearly_billing_only_on_yearly_lines(am_client, three_lines):
    card, _server, p_unit = three_lines.lines.order_by("position")
    card_page = am_client.get(reverse("admin:contracts_contractline_change", args=[card.pk])).content.decode()
    p_page = am_client.get(reverse("admin:contracts_contractline_change", args=[p_unit.pk])).content.decode()
    assert 'name="yearly_billing"' not in card_page
    assert 'name="yearly_billing"' in p_page
