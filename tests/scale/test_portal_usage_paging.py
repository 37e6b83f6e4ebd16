"""The portal's usage list at scale: newest-first pages looked up in widening time windows are
the same pages as the full ordering's, and the count stops at a cap (docs/scaling.md#pages)."""

from __future__ import annotations

import datetime

import pytest
import time_machine
from django.core.paginator import Paginator
from django.test import Client

from apps.accounts import roles
from apps.accounts.models import CustomerMembership
from apps.portal.selectors import customer_usage
from apps.portal.views.usage import RecentFirstPaginator
from tests.factories.billing_flows import card_contract
from tests.factories.catalogue import CustomerFactory, ServerFactory
from tests.factories.usage import usage

pytestmark = pytest.mark.django_db

SH = datetime.timezone(datetime.timedelta(hours=8))
NOW = datetime.datetime(2026, 11, 28, 10, tzinfo=SH)
# days before NOW: inside the week, the month, the quarter, the year, and older than a year
AGES = [0.5, 1, 2, 3, 6, 10, 20, 25, 40, 50, 80, 100, 150, 200, 300, 380, 400]


@pytest.fixture
def world(make_staff, django_user_model):
    with time_machine.travel(NOW, tick=False):
        am = make_staff(roles.ACCOUNT_MANAGER, username="am1")
        customer, other = CustomerFactory(code="acme-p"), CustomerFactory(code="other-p")
        server, other_server = ServerFactory(), ServerFactory()
        start = datetime.datetime(2025, 10, 1, tzinfo=SH)
        card_contract(customer, am, server, start=start, end=None)
        card_contract(other, am, other_server, start=start, end=None)
        card, other_card = server.cards.get(slot=0), other_server.cards.get(slot=0)
        for age in AGES:
            begin = NOW - datetime.timedelta(days=age)
            usage(card=card, start=begin, end=begin + datetime.timedelta(minutes=30))
            usage(card=other_card, start=begin, end=begin + datetime.timedelta(minutes=30))
        user = django_user_model.objects.create_user(username="alice", password="pw-Portal-2026")
        CustomerMembership.objects.create(user=user, customer=customer, role=CustomerMembership.Role.ADMIN)
        yield customer, user


@pytest.mark.parametrize("per_page", [1, 2, 3, 5, 17, 50])
def test_windowed_pages_are_the_pages_of_the_full_ordering(world, per_page):
    customer, _ = world
    records = customer_usage(customer=customer)
    plain = Paginator(records, per_page)
    windowed = RecentFirstPaginator(records, per_page, now=NOW)
    assert windowed.count == plain.count == len(AGES)  # the other customer's records are not counted
    assert windowed.num_pages == plain.num_pages
    for number in plain.page_range:
        assert [r.pk for r in windowed.page(number)] == [r.pk for r in plain.page(number)], number


def test_the_count_stops_at_the_cap_and_the_page_says_so(world, monkeypatch):
    customer, user = world
    monkeypatch.setattr(RecentFirstPaginator, "cap", 5)
    paginator = RecentFirstPaginator(customer_usage(customer=customer), 2, now=NOW)
    assert (paginator.count, paginator.capped, paginator.num_pages) == (6, True, 3)
    client = Client()
    client.force_login(user)
    with time_machine.travel(NOW, tick=False):
        body = client.get("/portal/usage/").content.decode()
    assert "More than 5 records: choose a period to see them all" in body
    assert body.count('data-testid="usage-row"') == len(AGES)  # the count is capped, the page is not
