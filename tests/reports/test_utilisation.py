"""Utilisation and idle capacity per provider and site (docs/reports.md#utilisation-and-idle-capacity),
hand-computed on three cards: one retired mid-range, one added mid-range; one query."""

from __future__ import annotations

import csv
import datetime
import io
from decimal import Decimal

import pytest
import time_machine

from apps.accounts import roles
from apps.contracts.models import Allocation
from apps.core.periods import Period
from apps.inventory.models import Card
from apps.reports import utilisation
from apps.reports.selectors import PeriodRange
from tests.factories.catalogue import CustomerFactory, ProviderFactory, ServerFactory, SiteFactory
from tests.factories.contracts import card_line, draft

pytestmark = pytest.mark.django_db

D = Decimal
SH = datetime.timezone(datetime.timedelta(hours=8))
NOVEMBER = PeriodRange(Period(2026, 11), Period(2026, 11))
AFTER = datetime.datetime(2026, 12, 5, tzinfo=SH)


def at(month: int, day: int) -> datetime.datetime:
    return datetime.datetime(2026, month, day, tzinfo=SH)


@pytest.fixture
def fleet(make_staff):
    """Provider util-p: site north (server u1, 2 × A100-40G, 0.312 P a card), site west (server u2,
    1 card). u1's cards exist from Oct 1; slot 1 is retired on Nov 11; u2's card is added on Nov
    21. Firm allocations: u1 slot 0 from Nov 16 (open), the whole u2 from Oct 1 to Nov 26."""
    with time_machine.travel(at(9, 20), tick=False):
        provider = ProviderFactory(code="util-p", name="Util provider")
        north = SiteFactory(provider=provider, name="North", hub="jingjinji")
        west = SiteFactory(provider=provider, name="West", hub="chengyu")
        u1 = ServerFactory(site=north, card_count=2)
        u2 = ServerFactory(site=west, card_count=1)
        # a draft contract elsewhere only lends its line to the allocations below
        line = draft(
            CustomerFactory(code="util-c"),
            make_staff(roles.ACCOUNT_MANAGER, username="am-util"),
            [card_line(ServerFactory(), 1)],
        ).lines.get()
    Card.objects.filter(server=u1).update(created_at=at(10, 1))
    Card.objects.filter(server=u2).update(created_at=at(11, 21))
    with time_machine.travel(at(11, 11), tick=False):
        retired = u1.cards.get(slot=1)
        retired.status = "retired"
        retired.save()  # the history records when
    first = u1.cards.get(slot=0)
    Allocation.objects.create(line=line, server=u1, card=first, slot=0, start_at=at(11, 16), firm=True)
    Allocation.objects.create(line=line, server=u2, start_at=at(10, 1), end_at=at(11, 26), firm=True)
    return provider


def mine(rows):
    return [
        (
            r["site"],
            r["cards"],
            r["available_hours"],
            r["allocated_hours"],
            r["utilisation_percent"],
            r["idle_hours"],
            r["idle_p_hours"],
            r["idle_cards_now"],
        )
        for r in rows
        if r["provider_code"] == "util-p"
    ]


def test_november_per_site_and_provider(fleet, django_assert_max_num_queries):
    with django_assert_max_num_queries(1):
        rows = utilisation.utilisation(period_range=NOVEMBER, now=AFTER)
    assert mine(rows) == [
        # 720 h (slot 0) + 240 h (slot 1 until Nov 11); slot 0 allocated Nov 16 → Dec 1: 360 h
        ("North", 2, D("960.0000"), D("360.0000"), D("37.5"), D("600.0000"), D("187.2000"), 0),
        # the card added Nov 21: 240 h, under the server's allocation until Nov 26: 120 h; idle now
        ("West", 1, D("240.0000"), D("120.0000"), D("50.0"), D("120.0000"), D("37.4400"), 1),
        ("", 3, D("1200.0000"), D("480.0000"), D("40.0"), D("720.0000"), D("224.6400"), 1),
    ]
    north = next(r for r in rows if r["site"] == "North")
    assert north["hub"] == "京津冀 Jing-Jin-Ji"


def test_october_counts_the_cards_that_existed_then(fleet):
    october = PeriodRange(Period(2026, 10), Period(2026, 10))
    assert mine(utilisation.utilisation(period_range=october, now=AFTER)) == [
        ("North", 2, D("1488.0000"), D("0.0000"), D("0.0"), D("1488.0000"), D("464.2560"), 0),  # 2 × 744 h
        ("West", 0, D("0.0000"), D("0.0000"), None, D("0.0000"), D("0.0000"), 1),  # not there yet
        ("", 2, D("1488.0000"), D("0.0000"), D("0.0"), D("1488.0000"), D("464.2560"), 1),
    ]


def test_the_range_ends_now(fleet):
    now = at(11, 21)
    assert mine(utilisation.utilisation(period_range=NOVEMBER, now=now)) == [
        # slot 0: 480 h to Nov 21, allocated from Nov 16: 120 h; slot 1: 240 h
        ("North", 2, D("720.0000"), D("120.0000"), D("16.7"), D("600.0000"), D("187.2000"), 0),
        ("West", 0, D("0.0000"), D("0.0000"), None, D("0.0000"), D("0.0000"), 0),  # allocated now
        ("", 2, D("720.0000"), D("120.0000"), D("16.7"), D("600.0000"), D("187.2000"), 0),
    ]
    future = PeriodRange(Period(2027, 1), Period(2027, 1))
    assert [r[2] for r in mine(utilisation.utilisation(period_range=future, now=now))] == [D("0")] * 3


def test_a_retired_server_takes_its_cards_out(fleet):
    with time_machine.travel(at(11, 6), tick=False):
        server = Card.objects.get(server__site__name="West").server
        server.status = "retired"
        server.save()
    rows = mine(utilisation.utilisation(period_range=NOVEMBER, now=AFTER))
    assert rows[1] == ("West", 0, D("0.0000"), D("0.0000"), None, D("0.0000"), D("0.0000"), 0)


def test_still_one_query_with_more_servers(fleet, django_assert_max_num_queries):
    for _ in range(10):
        ServerFactory(site=SiteFactory(provider=fleet))
    with django_assert_max_num_queries(1):
        rows = utilisation.utilisation(period_range=NOVEMBER, now=AFTER)
    assert len([r for r in rows if r["provider_code"] == "util-p"]) == 13  # 12 sites + the provider


def test_the_page_csv_and_permissions(fleet, client, make_staff):
    with time_machine.travel(AFTER, tick=False):
        client.force_login(make_staff(roles.FINANCE, username="fin-util"))
        page = client.get("/admin/reports/utilisation/?from=2026-11&to=2026-11")
        export = client.get("/admin/reports/utilisation/?from=2026-11&to=2026-11&format=csv")
    html = page.content.decode()
    assert page.status_code == 200 and "<svg" in html and "Utilisation and idle capacity" in html
    assert "40.0 %" in html  # the provider's bar
    rows = list(csv.reader(io.StringIO(export.content.decode())))
    assert [row for row in rows if row[0].startswith("util-p")] == [
        [
            "util-p Util provider",
            "North",
            "京津冀 Jing-Jin-Ji",
            "2",
            "960",
            "360",
            "37.5",
            "600",
            "187.2",
            "0",
        ],
        ["util-p Util provider", "West", "成渝 Cheng-Yu", "1", "240", "120", "50", "120", "37.44", "1"],
        ["util-p Util provider", "all sites 全部站点", "", "3", "1200", "480", "40", "720", "224.64", "1"],
    ]
    # with the draft contract's server of another provider: 8 idle cards, 8 × 720 h more
    assert rows[-1] == [
        "all providers 全部供应商",
        "",
        "",
        "11",
        "6960",
        "480",
        "6.9",
        "6480",
        "2021.76",
        "9",
    ]
    client.force_login(make_staff(roles.SALES_MANAGER, username="sales-util"))
    assert client.get("/admin/reports/utilisation/").status_code == 200
    client.force_login(make_staff(roles.OPERATIONS, username="ops-util"))
    assert client.get("/admin/reports/utilisation/").status_code == 403


def test_a_whole_server_allocation_counts_each_of_its_cards(make_staff, django_assert_max_num_queries):
    """Cards created together are summed together: a 4-card server allocated whole for ten days
    (4 × 240 h) and one of its cards alone from Nov 21 (240 h) of 4 × 720 h available."""
    with time_machine.travel(at(9, 20), tick=False):
        east = SiteFactory(provider=ProviderFactory(code="util-q", name="Quad"), name="East", hub="chengyu")
        server = ServerFactory(site=east, card_count=4)
        line = draft(
            CustomerFactory(code="util-d"),
            make_staff(roles.ACCOUNT_MANAGER, username="am-quad"),
            [card_line(ServerFactory(), 1)],
        ).lines.get()
    Card.objects.filter(server=server).update(created_at=at(10, 1))
    Allocation.objects.create(line=line, server=server, start_at=at(11, 1), end_at=at(11, 11), firm=True)
    Allocation.objects.create(
        line=line, server=server, card=server.cards.get(slot=2), slot=2, start_at=at(11, 21), firm=True
    )
    with django_assert_max_num_queries(1):
        rows = utilisation.utilisation(period_range=NOVEMBER, now=AFTER)
    assert [
        (
            r["site"],
            r["cards"],
            r["available_hours"],
            r["allocated_hours"],
            r["utilisation_percent"],
            r["idle_p_hours"],
            r["idle_cards_now"],
        )
        for r in rows
        if r["provider_code"] == "util-q"
    ] == [
        # 1680 idle card-hours × 0.312 P; now, slot 2 is held and the other three idle
        ("East", 4, D("2880.0000"), D("1200.0000"), D("41.7"), D("524.1600"), 3),
        ("", 4, D("2880.0000"), D("1200.0000"), D("41.7"), D("524.1600"), 3),
    ]


def test_a_retired_card_keeps_its_own_allocation_until_its_retirement(fleet):
    with time_machine.travel(at(11, 21), tick=False):
        card = Card.objects.get(server__site__name="North", slot=0)
        card.status = "retired"
        card.save()
    rows = mine(utilisation.utilisation(period_range=NOVEMBER, now=AFTER))
    # slot 0: 480 h to Nov 21, allocated from Nov 16: 120 h; slot 1: 240 h to Nov 11
    assert rows[0] == ("North", 2, D("720.0000"), D("120.0000"), D("16.7"), D("600.0000"), D("187.2000"), 0)
