"""The dashboard on the demo world (acme, 2026-11-28 10:00): what is due, this month so far, the
card-hours chart and the efficiency table."""

from __future__ import annotations

import datetime
import re

import pytest
import time_machine

from apps.contracts.models import Contract

pytestmark = pytest.mark.django_db


@pytest.fixture
def acme_client(client, demo):
    assert client.login(username="acme-user", password="suanli-demo")
    return client


def test_amount_due_and_month_so_far(acme_client):
    body = acme_client.get("/portal/").content.decode()
    # INV-2026-000016: 186,325.00 − 9,102.50 paid by vouchers, nothing overdue (due 2026-12-31)
    assert re.search(r'data-testid="amount-due">177,222.50<', body)
    assert 'data-testid="overdue-warning"' not in body
    assert "This month so far (2026-11)" in body
    assert re.search(r'data-testid="month-so-far">[\d,]+\.\d\d<', body)


def test_chart_of_card_hours_per_day(acme_client):
    body = acme_client.get("/portal/").content.decode()
    svg = body[body.index('data-testid="usage-chart-svg"') : body.index("</svg>")]
    assert svg.count("<rect") > 20
    assert "Card-hours per day by GPU model" in svg
    legend = body[body.index('data-testid="chart-legend"') :]
    assert "A100-SXM4-40GB" in legend and "card-hours" in legend


def test_efficiency_per_contract_last_month(acme_client):
    body = acme_client.get("/portal/").content.decode()
    assert "Efficiency, 2026-10" in body
    rows = body.count('data-testid="efficiency-row"')
    assert (
        rows == Contract.objects.filter(customer__code="acme", start_at__lt="2026-11-01T00:00+08:00").count()
    )
    assert "Average GPU utilisation" in body


def test_overdue_warning(client, demo):
    from apps.accounts.models import User

    with time_machine.travel(datetime.datetime(2027, 1, 5, 10, tzinfo=datetime.UTC), tick=False):
        client.force_login(User.objects.get(username="acme-user"))
        body = client.get("/portal/").content.decode()
    assert "1 invoice is overdue: CNY 177,222.50." in body


def test_dashboard_queries_do_not_grow_with_invoices(acme_client, django_assert_max_num_queries):
    from apps.customers.models import Customer
    from tests.portal.test_invoices import add_invoices

    with django_assert_max_num_queries(40) as before:
        acme_client.get("/portal/")
    add_invoices(Customer.objects.get(code="acme"), 18)
    with django_assert_max_num_queries(len(before.captured_queries)):
        assert acme_client.get("/portal/").status_code == 200
