"""Usage selectors: rated/unrated (docs/rating.md#unrated-usage), invoiced and late usage, a contract's
utilisation; and the usage admin built on them."""

from __future__ import annotations

import datetime
from decimal import Decimal

import pytest

from apps.accounts import roles
from apps.billing.models import Invoice, InvoiceStatus
from apps.contracts import services as contract_services
from apps.contracts.services import AllocationData
from apps.metering import selectors
from tests.factories.catalogue import CustomerFactory, ServerFactory
from tests.factories.contracts import NOV_1, card_line, draft, server_line
from tests.factories.contracts import NOW as CONTRACT_NOW
from tests.factories.metering import HOUR, SHANGHAI, stored_usage

pytestmark = pytest.mark.django_db


def at(day: int, hour: int = 10, month: int = 11, year: int = 2026) -> datetime.datetime:
    return datetime.datetime(year, month, day, hour, tzinfo=SHANGHAI)


@pytest.fixture
def am(make_staff):
    return make_staff(roles.ACCOUNT_MANAGER, username="am")


def activate(customer, am, lines, **kwargs):
    contract = draft(customer, am, lines, **kwargs)
    return contract_services.contract_activate(contract=contract, actor=am, now=CONTRACT_NOW)


def card(server, slot: int):
    return server.cards.get(slot=slot)


def issued_invoice(customer, period: str, cutoff: datetime.datetime, number: str) -> Invoice:
    """Issued in one insert (a trigger freezes issued invoices against later updates)."""
    return Invoice.objects.create(
        customer=customer,
        period=period,
        status=InvoiceStatus.ISSUED,
        number=number,
        usage_cutoff_at=cutoff,
        issued_at=cutoff,
        total_amount=Decimal("100.00"),
    )


# -- rated and unrated ---------------------------------------------------------------------------
@pytest.fixture
def fleet(am):
    """S: card 0 leased from Nov 1; T: leased whole from Nov 1; U: only a draft (not firm)."""
    s, t, u = ServerFactory(), ServerFactory(), ServerFactory()
    customer = CustomerFactory()
    activate(customer, am, [card_line(s, 1)])
    activate(customer, am, [server_line(t)])
    draft(customer, am, [card_line(u, 1)])
    return s, t, u


def test_unrated_usage_is_what_no_firm_allocation_covers(fleet):
    s, t, u = fleet
    rated = [
        stored_usage(card=card(s, 0), start=at(10), end=at(11)),
        stored_usage(server=s, start=at(10), end=at(11)),  # one of its cards is leased
        stored_usage(card=card(t, 3), start=at(10), end=at(11)),  # the whole server is leased
        stored_usage(server=t, start=at(10), end=at(11)),
        stored_usage(card=card(s, 0), start=at(31, 23, month=10), end=at(1, 1)),  # partly before Nov 1
    ]
    unrated = [
        stored_usage(card=card(s, 1), start=at(10), end=at(11)),  # a card of S not leased
        stored_usage(card=card(s, 0), start=at(20, month=10), end=at(20, 11, month=10)),  # before the lease
        stored_usage(card=card(u, 0), start=at(10), end=at(11)),  # a draft allocation is not firm
        stored_usage(server=u, start=at(10), end=at(11)),
    ]
    stored_usage(card=card(u, 1), start=at(12), end=at(13), voided=True)  # voided: out of billing

    assert set(selectors.unrated_usage()) == set(unrated)
    assert set(selectors.unrated_usage(provider=u.provider)) == {unrated[2], unrated[3]}
    assert set(selectors.unrated_usage(start=at(1), end=at(1, month=12))) == {
        unrated[0],
        unrated[2],
        unrated[3],
    }
    from apps.metering.models import UsageRecord

    assert set(UsageRecord.objects.filter(selectors.rated_usage_condition())) == set(rated)


def test_unrated_counts_per_provider(fleet):
    s, t, u = fleet
    stored_usage(card=card(s, 1), start=at(10), end=at(11))
    stored_usage(card=card(u, 0), start=at(10), end=at(11))
    stored_usage(card=card(u, 1), start=at(10), end=at(11))
    stored_usage(card=card(t, 1), start=at(10), end=at(11))  # rated
    assert selectors.unrated_usage_counts() == sorted(
        [
            {"provider_id": s.provider_id, "provider_code": s.provider.code, "records": 1},
            {"provider_id": u.provider_id, "provider_code": u.provider.code, "records": 2},
        ],
        key=lambda row: row["provider_code"],
    )


def test_an_ended_allocation_covers_only_its_time(am):
    server = ServerFactory()
    customer = CustomerFactory()
    line = card_line(server, 1)
    line.allocations = [AllocationData(card=card(server, 0), start_at=NOV_1, end_at=at(15, 0))]
    activate(customer, am, [line])
    inside = stored_usage(card=card(server, 0), start=at(14, 23), end=at(15, 1))
    after = stored_usage(card=card(server, 0), start=at(15, 0), end=at(15, 1))  # [start, end) touch only
    assert list(selectors.unrated_usage()) == [after]
    assert inside not in selectors.unrated_usage()


# -- invoiced and late ---------------------------------------------------------------------------
@pytest.fixture
def leased(am):
    """Cards 0 and 1 of a server leased to ``customer`` from Nov 1 (hourly)."""
    server = ServerFactory()
    customer = CustomerFactory(code="acme")
    contract = activate(customer, am, [card_line(server, 2)])
    return customer, server, contract


NOV_CUTOFF = at(1, 2, month=12)  # the November run, Dec 1 02:00


def test_late_usage_is_what_arrived_after_the_invoice_of_its_period(leased):
    customer, server, _ = leased
    issued_invoice(customer, "2026-11", NOV_CUTOFF, "INV-2026-000001")
    stored_usage(card=card(server, 0), start=at(10), end=at(11), received_at=at(10, 11))  # billed
    late = [
        stored_usage(card=card(server, 0), start=at(28), end=at(29), received_at=at(3, month=12)),
        stored_usage(server=server, start=at(27), end=at(27, 12), received_at=at(3, month=12)),
        # Crosses into December; it is late for its November part.
        stored_usage(
            card=card(server, 1), start=at(30, 23), end=at(1, 1, month=12), received_at=at(2, month=12)
        ),
    ]
    stored_usage(card=card(server, 5), start=at(28), end=at(29), received_at=at(3, month=12))  # not leased
    stored_usage(card=card(server, 1), start=at(29), end=at(29, 12), received_at=at(3, month=12), voided=True)
    stored_usage(
        card=card(server, 0), start=at(5, month=12), end=at(6, month=12), received_at=at(6, month=12)
    )
    stored_usage(card=card(server, 1), start=at(20), end=at(21), received_at=at(20, month=12))  # after as_of
    other = CustomerFactory()
    assert list(selectors.late_usage(customer=other, as_of=at(15, month=12))) == []

    found = list(selectors.late_usage(customer=customer, as_of=at(15, month=12)))

    assert sorted(found, key=lambda r: r.pk) == sorted(late, key=lambda r: r.pk)


def test_late_usage_billed_on_a_later_invoice_is_no_longer_pending(leased):
    customer, server, _ = leased
    issued_invoice(customer, "2026-11", NOV_CUTOFF, "INV-2026-000001")
    record = stored_usage(card=card(server, 0), start=at(28), end=at(29), received_at=at(3, month=12))
    assert list(selectors.late_usage(customer=customer, as_of=at(31, month=12))) == [record]
    # The December run (Jan 1) billed it as "late usage for 2026-11".
    issued_invoice(customer, "2026-12", at(1, 2, month=1, year=2027), "INV-2027-000001")
    assert list(selectors.late_usage(customer=customer, as_of=at(15, month=1, year=2027))) == []
    arrived_later = stored_usage(
        card=card(server, 1), start=at(28), end=at(29), received_at=at(5, month=1, year=2027)
    )
    assert list(selectors.late_usage(customer=customer, as_of=at(15, month=1, year=2027))) == [arrived_later]


def test_no_issued_invoice_means_nothing_is_late(leased):
    customer, server, _ = leased
    stored_usage(card=card(server, 0), start=at(28), end=at(29), received_at=at(3, month=12))
    Invoice.objects.create(customer=customer, period="2026-11", usage_cutoff_at=NOV_CUTOFF)  # a draft
    assert list(selectors.late_usage(customer=customer, as_of=at(15, month=12))) == []


def test_the_invoice_covering_a_record(leased):
    customer, server, _ = leased
    billed = stored_usage(card=card(server, 0), start=at(10), end=at(11), received_at=at(10, 11))
    late = stored_usage(card=card(server, 0), start=at(28), end=at(29), received_at=at(3, month=12))
    unleased = stored_usage(card=card(server, 7), start=at(10), end=at(11), received_at=at(10, 11))
    server_wide = stored_usage(server=server, start=at(9), end=at(9, 11), received_at=at(9, 11))
    assert selectors.usage_invoice_covering(record=billed) is None  # nothing issued yet
    invoice = issued_invoice(customer, "2026-11", NOV_CUTOFF, "INV-2026-000001")
    assert selectors.usage_invoice_covering(record=billed) == invoice
    assert selectors.usage_invoice_covering(record=server_wide) == invoice
    assert selectors.usage_invoice_covering(record=late) is None
    assert selectors.usage_invoice_covering(record=unleased) is None


# -- utilisation ---------------------------------------------------------------------------------
def test_contract_utilisation(leased):
    _, server, contract = leased
    c0, c1 = card(server, 0), card(server, 1)
    stored_usage(card=c0, start=at(10, 10), end=at(10, 11), utilization="80")
    stored_usage(card=c0, start=at(10, 10) + HOUR / 2, end=at(10, 11) + HOUR / 2, utilization="40")
    stored_usage(server=server, start=at(10, 12), end=at(10, 13))  # counts for cards 0 and 1, no telemetry
    stored_usage(card=c1, start=at(10, 14), end=at(10, 16), utilization="50")
    # Half inside November: only [Nov 1 00:00, 01:00) counts, util weighted by that hour.
    stored_usage(card=c1, start=at(31, 23, month=10), end=at(1, 1), utilization="10")
    stored_usage(card=card(server, 5), start=at(10, 10), end=at(10, 20), utilization="99")  # not leased
    stored_usage(card=c0, start=at(11, 10), end=at(11, 20), utilization="99", voided=True)

    result = selectors.contract_utilisation(contract=contract, period="2026-11")

    assert result.allocated_card_seconds == 2 * 30 * 24 * 3600
    assert result.allocated_card_hours == Decimal("1440.0000")
    # card 0: [10:00, 11:30) + [12:00, 13:00) = 2.5 h; card 1: 1 h + 2 h + 1 h = 4 h.
    assert result.used_card_seconds == int(6.5 * 3600)
    assert result.used_card_hours == Decimal("6.5000")
    # (80 × 1 + 40 × 1 + 50 × 2 + 10 × 1) / 5 h
    assert result.utilisation_percent == Decimal("46.00")
    assert result.usage_percent == Decimal("0.45")


def test_contract_utilisation_of_a_whole_server_lease_and_an_empty_month(am):
    server = ServerFactory()
    contract = activate(CustomerFactory(), am, [server_line(server)], start=at(16, 0))
    stored_usage(server=server, start=at(20, 0), end=at(20, 1))
    result = selectors.contract_utilisation(contract=contract, period="2026-11")
    assert result.allocated_card_seconds == 8 * 15 * 24 * 3600
    assert result.used_card_seconds == 8 * 3600
    assert result.utilisation_percent is None
    empty = selectors.contract_utilisation(contract=contract, period="2026-10")
    assert (empty.allocated_card_seconds, empty.used_card_seconds, empty.usage_percent) == (0, 0, None)


# -- admin ---------------------------------------------------------------------------------------
URL = "/admin/metering/usagerecord/"


@pytest.fixture
def ops_client(client, make_staff):
    client.force_login(make_staff(roles.OPERATIONS, username="ops"))
    return client


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("", 5),
        ("?rating=unrated", 2),
        ("?rating=rated", 3),
        ("?period=2026-11", 4),
        ("?period=2026-10", 1),
        ("?period=garbage", 0),
        ("?hardware=server", 1),
        ("?voided=yes", 0),
        ("?rating=unrated&period=2026-11", 1),
    ],
)
def test_the_usage_admin_filters(ops_client, fleet, query, expected, django_assert_max_num_queries):
    s, t, _ = fleet
    stored_usage(card=card(s, 0), start=at(10), end=at(11))
    stored_usage(server=t, start=at(10), end=at(11))
    stored_usage(card=card(t, 2), start=at(12), end=at(13))
    stored_usage(card=card(s, 1), start=at(10), end=at(11))
    stored_usage(card=card(s, 0), start=at(20, month=10), end=at(20, 11, month=10))
    with django_assert_max_num_queries(12):
        response = ops_client.get(URL + query)
    assert response.status_code == 200
    assert response.context["cl"].result_count == expected


def test_the_usage_admin_searches_exact_ids(ops_client, fleet):
    s, t, _ = fleet
    a = stored_usage(card=card(s, 0), start=at(10), end=at(11), event_id="evt-1")
    b = stored_usage(server=t, start=at(10), end=at(11))
    c = stored_usage(card=card(s, 1), start=at(10), end=at(11))
    for term, expected in [
        ("evt-1", {a}),
        (card(s, 1).uuid.upper(), {c}),
        (t.serial, {b}),
        ("nothing", set()),
    ]:
        response = ops_client.get(URL, {"q": term})
        assert response.status_code == 200
        assert set(response.context["cl"].result_list) == expected, term


def test_the_usage_admin_is_read_only(ops_client, fleet):
    s, _, _ = fleet
    record = stored_usage(card=card(s, 0), start=at(10), end=at(11))
    assert ops_client.get(f"{URL}{record.pk}/change/").status_code == 200
    assert ops_client.get(f"{URL}add/").status_code == 403
    assert ops_client.post(f"{URL}{record.pk}/delete/", {"post": "yes"}).status_code == 403


def test_the_usage_admin_names_utilisation_as_the_api_knows_it(ops_client, fleet):
    s, _, _ = fleet
    record = stored_usage(card=card(s, 0), start=at(10), end=at(11))
    listing = ops_client.get(URL).content.decode()
    page = ops_client.get(f"{URL}{record.pk}/change/").content.decode()
    for html in (listing, page):
        assert "telemetry.utilization_percent" in html
        assert "Utilization percent" not in html
