"""The finance reports' figures on a small hand-computed fixture, each in a constant number of
queries."""

from __future__ import annotations

import datetime
from decimal import Decimal

import pytest
import time_machine

from apps.accounts import roles
from apps.billing.models import Invoice, SettlementStatement
from apps.core.periods import Period
from apps.inventory.models import GpuModel
from apps.reports import selectors
from apps.reports.selectors import PeriodRange
from tests.factories.billing_flows import issued_invoice
from tests.factories.catalogue import CustomerFactory, ServerFactory

pytestmark = pytest.mark.django_db

TODAY = datetime.date(2026, 11, 28)
D = Decimal
NUMBERS: list[int] = []  # invoice numbers handed out by invoice()


def rng(first: str, last: str) -> PeriodRange:
    return PeriodRange(Period.parse(first), Period.parse(last))


def invoice(customer, period, status, net, *, total=None, due_on=None, voucher="0", credited="0", paid="0"):
    NUMBERS.append(len(NUMBERS) + 1)
    return Invoice.objects.create(
        customer=customer,
        period=period,
        status=status,
        number=None if status == "draft" else f"RPT-{len(NUMBERS):05d}",
        net_amount=D(net),
        total_amount=D(total or net),
        voucher_amount=D(voucher),
        credited_amount=D(credited),
        paid_amount=D(paid),
        due_on=due_on,
    )


@pytest.fixture
def ledger():
    a = CustomerFactory(code="rpt-a", name="Alpha 甲")
    b = CustomerFactory(code="rpt-b", name="Beta 乙")
    c = CustomerFactory(code="rpt-c", name="Gamma 丙")
    invoice(
        a, "2026-09", "issued", "1000.00", total="1060.00", due_on=datetime.date(2026, 10, 15)
    )  # 44 days late
    invoice(
        a, "2026-10", "paid", "2000.00", total="2120.00", paid="2120.00", due_on=datetime.date(2026, 11, 15)
    )
    invoice(a, "2026-08", "void", "900.00", total="954.00", due_on=datetime.date(2026, 9, 15))
    invoice(
        b, "2026-07", "issued", "100.00", total="106.00", credited="6.00", due_on=datetime.date(2026, 8, 1)
    )  # 119
    invoice(
        b, "2026-10", "issued", "500.00", total="530.00", voucher="30.00", due_on=datetime.date(2026, 11, 20)
    )  # 8
    invoice(b, "2026-11", "draft", "700.00", total="742.00")
    invoice(
        c, "2026-11", "issued", "300.00", total="318.00", due_on=datetime.date(2026, 12, 10)
    )  # not yet due
    return a, b, c


def test_revenue_by_month_counts_issued_and_paid_net_amounts_and_shows_empty_months(ledger):
    rows = selectors.revenue_by_month(period_range=rng("2026-07", "2026-11"))
    assert [(r["period"], r["currency"], r["invoices"], r["net_amount"]) for r in rows] == [
        ("2026-07", "CNY", 1, D("100.00")),
        ("2026-08", "CNY", 0, D("0.00")),  # the void invoice is not revenue
        ("2026-09", "CNY", 1, D("1000.00")),
        ("2026-10", "CNY", 2, D("2500.00")),
        ("2026-11", "CNY", 1, D("300.00")),  # the draft is not revenue
    ]


def test_revenue_by_customer_largest_first_within_the_range(ledger):
    rows = selectors.revenue_by_customer(period_range=rng("2026-07", "2026-11"))
    assert [(r["customer_code"], r["invoices"], r["net_amount"]) for r in rows] == [
        ("rpt-a", 2, D("3000.00")),
        ("rpt-b", 2, D("600.00")),
        ("rpt-c", 1, D("300.00")),
    ]
    narrow = selectors.revenue_by_customer(period_range=rng("2026-09", "2026-09"))
    assert [(r["customer_code"], r["net_amount"]) for r in narrow] == [("rpt-a", D("1000.00"))]


def test_ar_aging_buckets_amount_due_by_days_past_due_with_the_customers(ledger):
    rows = selectors.ar_aging(today=TODAY)
    assert [(r["bucket"], r["invoices"], r["amount"]) for r in rows] == [
        ("current", 1, D("318.00")),
        ("1-30", 1, D("500.00")),  # 530 − 30 voucher
        ("31-60", 1, D("1060.00")),
        ("61-90", 0, D("0.00")),
        ("90+", 1, D("100.00")),  # 106 − 6 credited
    ]
    assert [c["customer_code"] for c in rows[2]["customers"]] == ["rpt-a"]
    assert [c["customer_code"] for c in rows[4]["customers"]] == ["rpt-b"]


@pytest.mark.parametrize(
    ("days_late", "bucket"),
    [
        (0, "current"),
        (1, "1-30"),
        (30, "1-30"),
        (31, "31-60"),
        (60, "31-60"),
        (61, "61-90"),
        (90, "61-90"),
        (91, "90+"),
    ],
)
def test_ar_aging_bucket_edges(days_late, bucket):
    customer = CustomerFactory(code="rpt-edge")
    invoice(customer, "2026-06", "issued", "10.00", due_on=TODAY - datetime.timedelta(days=days_late))
    rows = {r["bucket"]: r["amount"] for r in selectors.ar_aging(today=TODAY)}
    assert rows[bucket] == D("10.00")
    assert sum(rows.values()) == D("10.00")


def test_month_figures_of_the_closed_month(ledger):
    figures = selectors.month_figures(period=Period.parse("2026-10"), today=TODAY)
    assert [(r["currency"], r["invoices"], r["net_amount"]) for r in figures["revenue"]] == [
        ("CNY", 2, D("2500.00"))
    ]
    assert [
        (r["currency"], r["invoices"], r["amount"], r["overdue_amount"]) for r in figures["receivable"]
    ] == [("CNY", 4, D("1978.00"), D("1660.00"))]
    assert figures["unrated_records"] == 0


@pytest.fixture
def owned_servers(make_staff):
    with time_machine.travel(datetime.datetime(2026, 12, 2, 9, tzinfo=datetime.UTC), tick=False):
        am = make_staff(roles.ACCOUNT_MANAGER, username="am-rpt")
        earning = ServerFactory(purchase_cost_amount=D("5660.40"), annual_cash_cost_amount=D("0.00"))
        idle = ServerFactory(purchase_cost_amount=D("1800000.00"), annual_cash_cost_amount=D("240000.00"))
        ServerFactory()  # a provider's server: not platform-owned, not in the report
        # 100 card-hours at 10.00 including 6 % VAT: 1,000.00 gross, 943.40 net
        issued_invoice(CustomerFactory(code="rpt-owned"), am, earning, hours=100, price="10.00")
    return earning, idle


def test_payback_of_platform_owned_servers_from_their_billed_revenue(owned_servers):
    earning, idle = owned_servers
    rows = {r["serial"]: r for r in selectors.server_payback(period_range=rng("2026-11", "2026-11"))}
    assert set(rows) == {earning.serial, idle.serial}
    assert rows[earning.serial]["revenue_amount"] == D("943.40")
    assert rows[earning.serial]["annual_revenue_amount"] == D("11320.80")
    assert rows[earning.serial]["payback_months"] == D("6.0")  # 5,660.40 / 11,320.80 × 12
    assert rows[idle.serial]["revenue_amount"] == D("0.00")
    assert rows[idle.serial]["payback_months"] is None  # earns nothing against 240,000 a year
    before = selectors.server_payback(period_range=rng("2026-10", "2026-10"))
    assert [r["payback_months"] for r in before] == [None, None]


def test_light_asset_margin_per_p_year_per_provider_from_settlements():
    # one 8 × A100-40G server: 8 × 312 TFLOPS = 2.496 P; a month at the SPEC §4 yearly figures
    a100 = GpuModel.objects.create(vendor="NVIDIA", name="A100-RPT", memory_gb=40, fp16_dense_tflops=D("312"))
    server = ServerFactory(gpu_model=a100, card_count=8)
    SettlementStatement.objects.create(
        provider=server.provider,
        period="2026-11",
        revenue_net_amount=D("131400.00"),  # 1,576,800 / 12
        cost_amount=D("41600.00"),  # 200,000 × 2.496 / 12
        margin_amount=D("89800.00"),
    )
    rows = selectors.provider_p_year_margin(period_range=rng("2026-11", "2026-11"))
    assert len(rows) == 1
    row = rows[0]
    assert row["p_capacity"] == D("2.496")
    assert row["revenue_per_p_year"] == D("631730.77")
    assert row["cost_per_p_year"] == D("200000.00")
    assert row["margin_per_p_year"] == D("431730.77")
    assert selectors.provider_p_year_margin(period_range=rng("2026-10", "2026-10")) == []


def test_each_report_takes_a_constant_number_of_queries(ledger, owned_servers, django_assert_max_num_queries):
    for n in range(20):
        customer = CustomerFactory(code=f"rpt-more-{n}")
        invoice(customer, "2026-10", "issued", "10.00", due_on=TODAY - datetime.timedelta(days=n * 7))
        ServerFactory(purchase_cost_amount=D("1000.00"))
    period_range = rng("2026-01", "2026-12")
    with django_assert_max_num_queries(1):
        selectors.revenue_by_month(period_range=period_range)
    with django_assert_max_num_queries(1):
        selectors.revenue_by_customer(period_range=period_range)
    with django_assert_max_num_queries(1):
        assert sum(r["invoices"] for r in selectors.ar_aging(today=TODAY)) == 25
    with django_assert_max_num_queries(3):
        assert len(selectors.server_payback(period_range=period_range)) == 22
    with django_assert_max_num_queries(2):
        selectors.provider_p_year_margin(period_range=period_range)
    with django_assert_max_num_queries(1):
        selectors.unrated_by_provider(period_range=period_range)
    with django_assert_max_num_queries(3):
        selectors.month_figures(period=Period.parse("2026-10"), today=TODAY)
