"""The finance report pages on the demo: who may read them, the chart, the table, the period
filter and the CSV export of the same rows."""

from __future__ import annotations

import csv
import io
import re
from decimal import Decimal

import pytest

from apps.accounts.models import User

pytestmark = pytest.mark.django_db

PAGES = [
    "/admin/reports/",
    "/admin/reports/revenue/",
    "/admin/reports/ar-aging/",
    "/admin/reports/payback/",
    "/admin/reports/p-year-margin/",
    "/admin/reports/unrated-usage/",
    "/admin/reports/margin/",
    "/admin/reports/utilisation/",
]


def login(client, username):
    client.force_login(User.objects.get(username=username))
    return client


def csv_rows(response):
    assert response["Content-Type"].startswith("text/csv")
    return list(csv.reader(io.StringIO(response.content.decode())))


@pytest.mark.parametrize("username", ["finance1", "sales1", "admin"])
def test_finance_sales_managers_and_superusers_read_every_report(demo, client, username):
    login(client, username)
    for url in PAGES:
        response = client.get(url)
        assert response.status_code == 200, url
        if url != "/admin/reports/":
            html = response.content.decode()
            assert "<svg" in html and 'id="report-table"' in html, url
            assert "Download CSV 导出CSV" in html


@pytest.mark.parametrize("username", ["am1", "ops1"])
def test_other_staff_are_refused(demo, client, username):
    login(client, username)
    for url in PAGES:
        assert client.get(url).status_code == 403, url
        assert client.get(url + "?format=csv").status_code == 403, url


def test_a_customer_user_is_sent_to_the_login_page(demo, client):
    login(client, "acme-user")
    response = client.get("/admin/reports/revenue/?format=csv")
    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")


def test_revenue_csv_has_the_rows_the_table_shows(demo, client):
    login(client, "finance1")
    page = client.get("/admin/reports/revenue/?from=2026-01&to=2026-11").content.decode()
    rows = csv_rows(client.get("/admin/reports/revenue/?from=2026-01&to=2026-11&format=csv"))
    assert rows[0] == [
        "by 维度",
        "period or customer 期间或客户",
        "currency 币种",
        "invoices 发票数",
        "net amount 不含税金额",
    ]
    months = [row for row in rows[1:] if row[0] == "month 月份"]
    assert [row[1] for row in months] == [f"2026-{m:02d}" for m in range(1, 12)]
    assert all(re.fullmatch(r"\d+\.\d\d", row[4]) for row in rows[1:])  # amounts with two places
    assert any(Decimal(row[4]) > 0 for row in months)
    customers = [row for row in rows[1:] if row[0] == "customer 客户"]
    # each customer total is the sum of its months, and the table shows the same figures
    assert sum(Decimal(row[4]) for row in months) == sum(Decimal(row[4]) for row in customers)
    for row in customers:
        assert row[1] in page
        assert f"{Decimal(row[4]):,.2f}" in page


def test_a_bad_period_is_reported_and_the_default_range_shown(demo, client):
    login(client, "finance1")
    html = client.get("/admin/reports/revenue/?from=2026-13").content.decode()
    assert "period must look like YYYY-MM" in html or "invalid period" in html
    assert 'value="2025-12"' in html and 'value="2026-11"' in html  # twelve months to the demo's November


def test_ar_aging_csv_lists_each_bucket_and_its_customers(demo, client):
    login(client, "finance1")
    rows = csv_rows(client.get("/admin/reports/ar-aging/?format=csv"))
    buckets = [row[0] for row in rows[1:] if row[2] == "all 全部"]
    assert buckets == [
        "Current 未到期",
        "1–30 days 1–30天",
        "31–60 days 31–60天",
        "61–90 days 61–90天",
        "Over 90 days 90天以上",
    ]


def test_the_landing_page_links_every_report_and_the_finance_home_links_it(demo, client):
    login(client, "finance1")
    html = client.get("/admin/reports/").content.decode()
    assert "Key figures of the last closed month 上月关键数据 · 2026-10" in html
    for url in PAGES[1:]:
        assert f'href="{url}"' in html
    assert 'href="/admin/reports/"' in client.get("/admin/").content.decode()


def test_ar_aging_page_lists_the_largest_customers_of_a_bucket_and_the_csv_all(
    client, make_staff, monkeypatch
):
    import datetime

    import time_machine

    from apps.accounts import roles
    from apps.billing.models import Invoice
    from apps.reports import views
    from tests.factories.catalogue import CustomerFactory

    monkeypatch.setattr(views, "PAGE_ROWS", 5)  # one customer per bucket on the page
    due = datetime.date(2026, 11, 10)  # 18 days late on Nov 28
    for n, amount in enumerate(["300.00", "100.00", "200.00"]):
        Invoice.objects.create(
            customer=CustomerFactory(code=f"age-{n}", name=f"Age {n}"),
            period="2026-10",
            status="issued",
            number=f"AGE-{n}",
            net_amount=Decimal(amount),
            total_amount=Decimal(amount),
            due_on=due,
        )
    client.force_login(make_staff(roles.FINANCE, username="fin-aging"))
    with time_machine.travel(datetime.datetime(2026, 11, 28, 12, tzinfo=datetime.UTC), tick=False):
        html = client.get("/admin/reports/ar-aging/").content.decode()
        rows = csv_rows(client.get("/admin/reports/ar-aging/?format=csv"))
    assert "Showing the 1 largest customers of each bucket; the CSV has them all." in html
    table = html[html.index('id="report-table"') :]
    assert "age-2" not in table and "age-1" not in table  # the largest of the bucket only
    assert [(row[0], row[2], row[3], row[4]) for row in rows[1:] if row[2].startswith("age-")] == [
        ("1–30 days 1–30天", "age-0 Age 0", "1", "300.00"),
        ("1–30 days 1–30天", "age-2 Age 2", "1", "200.00"),
        ("1–30 days 1–30天", "age-1 Age 1", "1", "100.00"),
    ]
