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
    # October's invoice: 136,325.00 − 40,897.50 paid by the voucher − 50,000.00 transferred, due
    # 2026-11-16 and so overdue; November is not billed before it ends
    assert re.search(r'data-testid="amount-due">45,427.50<', body)
    assert "1 invoice is overdue: CNY 45,427.50." in body
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
    assert "1 invoice is overdue: CNY 45,427.50." in body


def test_dashboard_queries_do_not_grow_with_invoices(acme_client, django_assert_max_num_queries):
    from apps.customers.models import Customer
    from tests.portal.test_invoices import add_invoices

    with django_assert_max_num_queries(40) as before:
        acme_client.get("/portal/")
    add_invoices(Customer.objects.get(code="acme"), 18)
    with django_assert_max_num_queries(len(before.captured_queries)):
        assert acme_client.get("/portal/").status_code == 200


# -- the chart's numbers, hand-computed, and the cache ------------------------------------------------


@pytest.fixture
def card_customer(make_staff):
    """A customer leasing cards 0 and 1 of an 8-card server by the hour from 1 November."""
    from apps.accounts import roles
    from tests.factories.billing_flows import card_contract
    from tests.factories.catalogue import CustomerFactory, ServerFactory

    am = make_staff(roles.ACCOUNT_MANAGER, username="am-chart")
    customer, server = CustomerFactory(), ServerFactory()
    card_contract(customer, am, server, cards=2)
    return customer, server


def test_each_day_gets_the_card_hours_that_fell_in_it(card_customer):
    from decimal import Decimal

    from apps.portal.selectors import customer_daily_card_hours
    from tests.factories.billing_flows import at
    from tests.factories.usage import usage

    customer, server = card_customer
    card0, card1 = server.cards.order_by("slot")[:2]
    usage(card=card0, start=at(2, 22), end=at(3, 2))  # across midnight: 2 h on the 2nd, 2 h on the 3rd
    usage(card=card1, start=at(3, 10), end=at(3, 13) + datetime.timedelta(minutes=30))  # 3.5 h
    usage(card=server.cards.get(slot=5), start=at(3, 10), end=at(3, 20))  # not leased: not shown
    daily = customer_daily_card_hours(customer=customer, now=at(28, 10))
    model = server.gpu_model.name
    assert daily.models == [model]
    assert daily.hours == {
        (datetime.date(2026, 11, 2), model): Decimal("2.0"),
        (datetime.date(2026, 11, 3), model): Decimal("5.5"),
    }
    assert len(daily.days) == 90 and daily.days[-1] == datetime.date(2026, 11, 28)


def test_the_usage_figures_are_kept_for_the_configured_time(
    acme_client, settings, django_assert_max_num_queries
):
    from django.core.cache import cache

    settings.PORTAL_DASHBOARD_CACHE_SECONDS = 300
    cache.clear()
    first = acme_client.get("/portal/").content.decode()
    with django_assert_max_num_queries(8):  # session, membership, amounts due: not the usage figures
        second = acme_client.get("/portal/").content.decode()
    chart = re.compile(r'data-testid="usage-chart-svg".*?</svg>', re.S)
    assert chart.search(first).group() == chart.search(second).group()
    assert re.search(r'data-testid="month-so-far">([\d,.]+)<', first).group(1) == re.search(
        r'data-testid="month-so-far">([\d,.]+)<', second
    ).group(1)
    cache.clear()
