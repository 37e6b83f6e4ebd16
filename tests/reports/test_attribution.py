"""Revenue and margin by month, customer, GPU model, provider and hub (docs/reports.md#revenue-and-margin-by-dimension),
on a small hand-built ledger: every breakdown adds up to the billed net revenue, what cannot be
attributed shows as its own row, each report is one query."""

from __future__ import annotations

import csv
import datetime
import io
from decimal import Decimal

import pytest
import time_machine

from apps.accounts import roles
from apps.billing.models import Invoice, InvoiceLine, SettlementLine, SettlementStatement
from apps.contracts import services
from apps.contracts.services import AllocationData, LineData
from apps.core.periods import Period
from apps.reports import attribution
from apps.reports.selectors import PeriodRange
from tests.factories.catalogue import CustomerFactory, ProviderFactory, ServerFactory, SiteFactory, gpu_model
from tests.factories.contracts import card_line, draft

pytestmark = pytest.mark.django_db

D = Decimal
SH = datetime.timezone(datetime.timedelta(hours=8))
OCT_1 = datetime.datetime(2026, 10, 1, tzinfo=SH)
NOV_1 = datetime.datetime(2026, 11, 1, tzinfo=SH)
DEC_1 = datetime.datetime(2026, 12, 1, tzinfo=SH)
OCT_NOV = PeriodRange(Period(2026, 10), Period(2026, 11))
NUMBERS = iter(range(1, 1000))


def invoice(customer, period, status, lines, *, currency="CNY"):
    """An invoice of ``lines`` (kind, contract line or None, net), written as a draft and then
    given ``status`` (lines of an issued invoice are frozen by the database)."""
    contract = customer.contracts.first()
    net = sum((D(amount) for _, _, amount in lines), D("0.00"))
    made = Invoice.objects.create(
        customer=customer, period=period, currency=currency, net_amount=net, total_amount=net
    )
    start = OCT_1 if period == "2026-10" else NOV_1
    created = []
    for position, (kind, line, amount) in enumerate(lines, start=1):
        created.append(
            InvoiceLine.objects.create(
                invoice=made,
                position=position,
                kind=kind,
                contract=contract,
                contract_line=line,
                description=f"{kind} {amount}",
                tax_classification="信息技术服务",
                quantity=D("1"),
                unit="card_hour",
                list_unit_price=D(amount),
                unit_price=D(amount),
                amount=D(amount),
                tax_rate=D("0"),
                tax_amount=D("0.00"),
                net_amount=D(amount),
                gross_amount=D(amount),
                service_start_at=start,
                service_end_at=NOV_1 if period == "2026-10" else DEC_1,
            )
        )
    Invoice.objects.filter(pk=made.pk).update(
        status=status, number=f"ATT-{next(NUMBERS):05d}", issued_at=start
    )
    return created


def settle(invoice_line, provider, model, allocation, *, revenue, cost):
    statement, _ = SettlementStatement.objects.get_or_create(
        provider=provider, period=invoice_line.invoice.period, currency=invoice_line.invoice.currency
    )
    cline = invoice_line.contract_line
    return SettlementLine.objects.create(
        statement=statement,
        invoice_line=invoice_line,
        kind=invoice_line.kind,
        contract=invoice_line.contract,
        contract_line=cline,
        allocation=allocation,
        gpu_model=model,
        resource=cline.resource,
        term=cline.term,
        description="cost",
        quantity=D("1"),
        unit="card_hour",
        cost_amount=D(cost),
        revenue_net_amount=D(revenue),
        margin_amount=D(revenue) - D(cost),
        service_start_at=invoice_line.service_start_at,
        service_end_at=invoice_line.service_end_at,
    )


@pytest.fixture
def ledger(make_staff):
    """Provider p1 (sites in Jing-Jin-Ji and the Yangtze delta, A100s), provider p2 (Greater Bay,
    H100s). Alpha: a card of srv1 (line L1) and a P-unit line over srv2 + srv3 in two hubs (L2);
    beta: two cards of srv4 (L3). Hand-computed figures in the tests."""
    with time_machine.travel(datetime.datetime(2026, 9, 20, 10, tzinfo=SH), tick=False):
        am = make_staff(roles.ACCOUNT_MANAGER, username="am-att")
        p1, p2 = (
            ProviderFactory(code="att-p1", name="Provider one"),
            ProviderFactory(code="att-p2", name="Two"),
        )
        north = SiteFactory(provider=p1, hub="jingjinji")
        east = SiteFactory(provider=p1, hub="yangtze_delta")
        bay = SiteFactory(provider=p2, hub="greater_bay")
        a100, h100 = gpu_model("A100-SXM4-40GB"), gpu_model("H100-SXM5-80GB")
        srv1 = ServerFactory(site=north, gpu_model=a100)
        srv2 = ServerFactory(site=east, gpu_model=a100)
        srv3 = ServerFactory(site=north, gpu_model=a100)
        srv4 = ServerFactory(site=bay, gpu_model=h100)
        alpha, beta = CustomerFactory(code="att-alpha"), CustomerFactory(code="att-beta")
        gamma = CustomerFactory(code="att-gamma")
        end = datetime.datetime(2027, 10, 1, tzinfo=SH)
        p_line = LineData(
            resource="p_unit",
            gpu_model=a100,
            quantity=D("4.992"),
            term="yearly",
            list_unit_price=D("200000.00"),
            term_discount_percent=D("0"),
            allocations=[AllocationData(server=srv2), AllocationData(server=srv3)],
        )
        for customer, lines in ((alpha, [card_line(srv1, 1), p_line]), (beta, [card_line(srv4, 2)])):
            contract = draft(customer, am, lines, start=OCT_1, end_at=end)
            services.contract_activate(
                contract=contract, actor=am, now=datetime.datetime(2026, 9, 20, tzinfo=SH)
            )
        draft(gamma, am, [card_line(srv1, 1)], start=datetime.datetime(2027, 10, 1, tzinfo=SH))
    l1, l2 = alpha.contracts.get().lines.order_by("position")
    l3 = beta.contracts.get().lines.get()
    a1, a2, _shortfall = invoice(
        alpha,
        "2026-10",
        "issued",
        [
            ("usage", l1, "1000.00"),
            ("recurring", l2, "5000.00"),
            ("minimum_commitment_shortfall", None, "200.00"),
        ],
    )
    settle(a1, p1, a100, l1.allocations.get(), revenue="1000.00", cost="600.00")
    settle(a2, p1, a100, None, revenue="5000.00", cost="3000.00")  # srv2 and srv3: two hubs
    (a4,) = invoice(alpha, "2026-11", "issued", [("usage", l1, "500.00")])
    settle(a4, p1, a100, l1.allocations.get(), revenue="500.00", cost="300.00")
    b1, _late = invoice(beta, "2026-11", "paid", [("usage", l3, "3000.00"), ("late_usage", l3, "400.00")])
    settle(b1, p2, h100, None, revenue="3000.00", cost="2000.00")  # two cards of srv4: one hub
    (void,) = invoice(beta, "2026-10", "void", [("usage", l3, "999.00")])
    settle(void, p2, h100, None, revenue="999.00", cost="1.00")  # a void invoice is not revenue
    invoice(gamma, "2026-11", "issued", [("minimum_commitment_shortfall", None, "100.00")], currency="USD")
    return p1, p2


def figures(by, period_range=OCT_NOV):
    return [
        (r.currency, r.key, r.revenue_amount, r.cost_amount, r.margin_amount, r.unsettled_amount)
        for r in attribution.revenue_margin(period_range=period_range, by=by)
    ]


def test_margin_by_month_every_month_shown_per_currency(ledger):
    assert figures("month") == [
        ("CNY", "2026-10", D("6200.00"), D("3600.00"), D("2600.00"), D("0.00")),
        ("CNY", "2026-11", D("3900.00"), D("2300.00"), D("1600.00"), D("400.00")),  # late usage not settled
        ("USD", "2026-10", D("0.00"), D("0.00"), D("0.00"), D("0.00")),
        ("USD", "2026-11", D("100.00"), D("0.00"), D("100.00"), D("0.00")),
    ]


def test_margin_by_customer_largest_first(ledger):
    assert figures("customer") == [
        ("CNY", "att-alpha", D("6700.00"), D("3900.00"), D("2800.00"), D("0.00")),
        ("CNY", "att-beta", D("3400.00"), D("2000.00"), D("1400.00"), D("400.00")),
        ("USD", "att-gamma", D("100.00"), D("0.00"), D("100.00"), D("0.00")),
    ]


def test_by_gpu_model_an_unsettled_line_keeps_its_contract_lines_model(ledger):
    assert figures("gpu-model") == [
        ("CNY", "A100-SXM4-40GB", D("6500.00"), D("3900.00"), D("2600.00"), D("0.00")),
        ("CNY", "H100-SXM5-80GB", D("3400.00"), D("2000.00"), D("1400.00"), D("400.00")),
        ("CNY", "no_hardware", D("200.00"), D("0.00"), D("200.00"), D("0.00")),
        ("USD", "no_hardware", D("100.00"), D("0.00"), D("100.00"), D("0.00")),
    ]


def test_by_provider_unsettled_and_shortfall_revenue_are_unattributed_rows(ledger):
    assert figures("provider") == [
        ("CNY", "att-p1", D("6500.00"), D("3900.00"), D("2600.00"), D("0.00")),
        ("CNY", "att-p2", D("3000.00"), D("2000.00"), D("1000.00"), D("0.00")),
        ("CNY", "no_hardware", D("200.00"), D("0.00"), D("200.00"), D("0.00")),
        ("CNY", "unsettled", D("400.00"), D("0.00"), D("400.00"), D("400.00")),
        ("USD", "no_hardware", D("100.00"), D("0.00"), D("100.00"), D("0.00")),
    ]


def test_by_hub_a_share_spread_over_two_hubs_is_unattributed_one_hub_is_kept(ledger):
    rows = attribution.revenue_margin(period_range=OCT_NOV, by="hub")
    assert figures("hub") == [
        ("CNY", "greater_bay", D("3000.00"), D("2000.00"), D("1000.00"), D("0.00")),  # two cards, one hub
        ("CNY", "jingjinji", D("1500.00"), D("900.00"), D("600.00"), D("0.00")),
        ("CNY", "no_hardware", D("200.00"), D("0.00"), D("200.00"), D("0.00")),
        ("CNY", "several_hubs", D("5000.00"), D("3000.00"), D("2000.00"), D("0.00")),
        ("CNY", "unsettled", D("400.00"), D("0.00"), D("400.00"), D("400.00")),
        ("USD", "no_hardware", D("100.00"), D("0.00"), D("100.00"), D("0.00")),
    ]
    assert rows[0].label == "粤港澳 Greater Bay"
    assert rows[3].label.startswith("unattributed: not one hub")


@pytest.mark.parametrize("by", list(attribution.DIMENSIONS))
def test_every_breakdown_adds_up_to_the_billed_net_revenue(ledger, by):
    totals = attribution.margin_totals(attribution.revenue_margin(period_range=OCT_NOV, by=by))
    assert [(t.currency, t.revenue_amount, t.cost_amount, t.margin_amount) for t in totals] == [
        ("CNY", D("10100.00"), D("5900.00"), D("4200.00")),  # 6,200 + 3,900 issued and paid; void left out
        ("USD", D("100.00"), D("0.00"), D("100.00")),
    ]
    assert totals[0].margin_percent == D("41.6")  # 4,200 / 10,100


def test_an_invoice_amount_outside_its_lines_is_its_own_row(ledger):
    customer = CustomerFactory(code="att-rest")
    Invoice.objects.create(
        customer=customer, period="2026-11", status="issued", number="ATT-REST", net_amount=D("50.00")
    )
    rows = attribution.revenue_margin(
        period_range=PeriodRange(Period(2026, 11), Period(2026, 11)), by="provider"
    )
    rest = [r for r in rows if r.key == "rest"]
    assert [(r.currency, r.revenue_amount) for r in rest] == [("CNY", D("50.00"))]
    assert attribution.margin_totals(rows)[0].revenue_amount == D("3950.00")  # 3,900 + 50


def test_the_period_filter(ledger):
    october = PeriodRange(Period(2026, 10), Period(2026, 10))
    assert figures("provider", october) == [
        ("CNY", "att-p1", D("6000.00"), D("3600.00"), D("2400.00"), D("0.00")),
        ("CNY", "no_hardware", D("200.00"), D("0.00"), D("200.00"), D("0.00")),
    ]
    assert figures("hub", PeriodRange(Period(2026, 12), Period(2026, 12))) == []


def test_one_query_whatever_the_number_of_lines(ledger, django_assert_max_num_queries):
    for by in attribution.DIMENSIONS:
        with django_assert_max_num_queries(1):
            attribution.revenue_margin(period_range=OCT_NOV, by=by)
    p1, _ = ledger
    a100 = gpu_model("A100-SXM4-40GB")
    for n in range(15):  # more customers, lines, settlement lines: still one query
        customer = CustomerFactory(code=f"att-more-{n}")
        line = (
            InvoiceLine.objects.filter(invoice__customer__code="att-alpha", kind="usage")
            .first()
            .contract_line
        )
        (made,) = invoice_with_contract(customer, line)
        settle(made, p1, a100, None, revenue="10.00", cost="4.00")
    for by in attribution.DIMENSIONS:
        with django_assert_max_num_queries(1):
            rows = attribution.revenue_margin(period_range=OCT_NOV, by=by)
        assert attribution.margin_totals(rows)[0].revenue_amount == D("10250.00")


def invoice_with_contract(customer, line):
    """A November usage invoice of 10.00 on ``line`` (another customer's contract line)."""
    made = Invoice.objects.create(customer=customer, period="2026-11", net_amount=D("10.00"))
    created = InvoiceLine.objects.create(
        invoice=made,
        kind="usage",
        contract=line.contract,
        contract_line=line,
        description="usage",
        tax_classification="信息技术服务",
        quantity=D("1"),
        unit="card_hour",
        list_unit_price=D("10"),
        unit_price=D("10"),
        amount=D("10.00"),
        tax_rate=D("0"),
        tax_amount=D("0.00"),
        net_amount=D("10.00"),
        gross_amount=D("10.00"),
        service_start_at=NOV_1,
        service_end_at=DEC_1,
    )
    Invoice.objects.filter(pk=made.pk).update(status="issued", number=f"ATT-{next(NUMBERS):05d}")
    return (created,)


# -- the pages -----------------------------------------------------------------------------------


def csv_rows(response):
    assert response["Content-Type"].startswith("text/csv")
    return list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))


@pytest.mark.parametrize("role", [roles.FINANCE, roles.SALES_MANAGER])
def test_finance_and_sales_managers_read_the_pages(ledger, client, make_staff, role):
    client.force_login(make_staff(role, username="reader"))
    for url in (
        "/admin/reports/margin/",
        "/admin/reports/margin/?by=hub",
        "/admin/reports/revenue/?by=gpu-model",
        "/admin/reports/revenue/?by=provider",
        "/admin/reports/revenue/?by=hub",
    ):
        response = client.get(url + ("&" if "?" in url else "?") + "from=2026-10&to=2026-11")
        assert response.status_code == 200, url
        html = response.content.decode()
        assert "<svg" in html and 'id="report-table"' in html and "Download CSV 导出CSV" in html, url


def test_operations_is_refused(ledger, client, make_staff):
    client.force_login(make_staff(roles.OPERATIONS, username="ops-att"))
    assert client.get("/admin/reports/margin/").status_code == 403
    assert client.get("/admin/reports/revenue/?by=hub&format=csv").status_code == 403


def test_margin_csv_by_provider(ledger, client, make_staff):
    client.force_login(make_staff(roles.FINANCE, username="fin-att"))
    rows = csv_rows(client.get("/admin/reports/margin/?by=provider&from=2026-10&to=2026-11&format=csv"))
    assert rows[0] == [
        "by 维度",
        "key 键",
        "name 名称",
        "currency 币种",
        "net revenue 净收入",
        "provider cost 供应商成本",
        "margin 毛利",
        "margin % 毛利率",
        "revenue not settled 未结算收入",
    ]
    assert [row[1:2] + row[3:] for row in rows[1:]] == [
        ["att-p1", "CNY", "6500.00", "3900.00", "2600.00", "40", "0.00"],
        ["att-p2", "CNY", "3000.00", "2000.00", "1000.00", "33.3", "0.00"],
        ["no_hardware", "CNY", "200.00", "0.00", "200.00", "100", "0.00"],
        ["unsettled", "CNY", "400.00", "0.00", "400.00", "100", "400.00"],
        ["no_hardware", "USD", "100.00", "0.00", "100.00", "100", "0.00"],
        ["total", "CNY", "10100.00", "5900.00", "4200.00", "41.6", "400.00"],
        ["total", "USD", "100.00", "0.00", "100.00", "100", "0.00"],
    ]


def test_revenue_by_hub_page_and_the_dimension_links(ledger, client, make_staff):
    client.force_login(make_staff(roles.FINANCE, username="fin-att"))
    html = client.get("/admin/reports/revenue/?by=hub&from=2026-10&to=2026-11").content.decode()
    assert "Revenue by hub 枢纽 收入" in html
    assert "粤港澳 Greater Bay" in html and "3,000.00" in html
    assert "unattributed: not one hub" in html and "5,000.00" in html
    assert 'href="?by=provider&amp;from=2026-10&amp;to=2026-11"' in html  # keeps the range
    rows = csv_rows(client.get("/admin/reports/revenue/?by=hub&from=2026-10&to=2026-10&format=csv"))
    assert [row[1] for row in rows[1:]] == ["jingjinji", "no_hardware", "several_hubs", "total"]
    assert [row[4] for row in rows[1:]] == ["1000.00", "200.00", "5000.00", "6200.00"]
    bad = client.get("/admin/reports/margin/?by=colour").content.decode()
    assert "unknown dimension &#x27;colour&#x27;" in bad


def test_the_landing_page_shows_the_closed_months_margin_and_utilisation(ledger, client, make_staff):
    with time_machine.travel(datetime.datetime(2026, 12, 2, 10, tzinfo=SH), tick=False):
        client.force_login(make_staff(roles.FINANCE, username="fin-home"))
        html = client.get("/admin/reports/").content.decode()
    # November: 3,900.00 − 2,300.00; the late usage (400.00) has no settlement line yet
    assert (
        "Margin of 2026-11 毛利</th><td>CNY 1,600.00 (41.0 %), provider cost 供应商成本 2,300.00; not settled yet 未结算收入 400.00"
        in html
    )
    assert "USD 100.00 (100.0 %)" in html
    # 32 cards × 720 h; firm allocations hold 1 + 8 + 8 + 2 cards all month: 13,680 / 23,040
    assert "Utilisation of 2026-11 利用率</th><td>59.4 % (13680.0000 / 23040.0000 card-hours 卡时)" in html
    assert "idle cards now 当前空闲卡 13" in html
    for url in ("/admin/reports/margin/", "/admin/reports/utilisation/", "/admin/reports/revenue/?by=hub"):
        assert f'href="{url}"' in html


def test_a_long_dimension_pages_its_table_and_charts_its_largest_the_csv_has_every_row(
    ledger, client, make_staff, monkeypatch
):
    from apps.reports import views

    monkeypatch.setattr(views, "PAGE_ROWS", 1)
    monkeypatch.setattr(views, "CHART_BARS", 1)
    client.force_login(make_staff(roles.FINANCE, username="fin-long"))
    url = "/admin/reports/margin/?by=customer&from=2026-10&to=2026-11"
    html = client.get(url).content.decode()
    assert "Showing the first 1 of 3 rows and the totals; the CSV has them all." in html
    table = html[html.index('id="report-table"') :]
    assert "att-alpha" in table and "att-beta" not in table and "att-gamma" not in table
    assert table.count("total 合计") == 2  # CNY and USD
    chart = html[: html.index('id="report-table"')]
    assert "att-alpha" in chart and "att-beta" not in chart  # the largest CNY customer only
    rows = csv_rows(client.get(url + "&format=csv"))
    assert [row[1] for row in rows[1:]] == ["att-alpha", "att-beta", "att-gamma", "total", "total"]
