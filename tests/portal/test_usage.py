"""Usage: the customer's records with filters and paging, and the streamed CSV export."""

from __future__ import annotations

import csv
import datetime
import io

import pytest
from django.http import StreamingHttpResponse

from tests.factories.metering import stored_usage
from tests.portal.conftest import SH

pytestmark = pytest.mark.django_db


def add_records(server, count: int, *, day: int = 10, utilization="50.00"):
    """``count`` one-hour records on the first card, on November ``day`` from 00:00, received on the
    20th (before the invoice's cutoff of December 1st: invoiced)."""
    card = server.cards.get(slot=0)
    start = datetime.datetime(2026, 11, day, tzinfo=SH)
    for i in range(count):
        stored_usage(
            card=card,
            start=start + datetime.timedelta(hours=i),
            end=start + datetime.timedelta(hours=i + 1),
            received_at=datetime.datetime(2026, 11, 20, tzinfo=SH),
            utilization=utilization,
        )


def test_the_list_shows_the_customers_records(portal_client, world):
    body = portal_client.get("/portal/usage/").content.decode()
    assert "1 record" in body
    assert body.count('data-testid="usage-row"') == 1
    assert world.acme_server.cards.get(slot=0).uuid in body


def test_filters_period_contract_hardware_invoiced(portal_client, world):
    add_records(world.acme_server, 3)
    assert "4 records" in portal_client.get("/portal/usage/?period=2026-11").content.decode()
    assert "0 records" in portal_client.get("/portal/usage/?period=2026-10").content.decode()
    contract = world.acme_contract.pk
    assert "4 records" in portal_client.get(f"/portal/usage/?contract={contract}").content.decode()
    # another customer's contract is not a choice
    foreign = portal_client.get(f"/portal/usage/?contract={world.other_contract.pk}").content.decode()
    assert "Select a valid choice" in foreign
    serial = world.acme_server.serial
    assert "4 records" in portal_client.get(f"/portal/usage/?hardware={serial}").content.decode()
    assert "0 records" in portal_client.get("/portal/usage/?hardware=nothing-like-it").content.decode()
    assert "4 records" in portal_client.get("/portal/usage/?invoiced=yes").content.decode()
    stored_usage(  # arrived after the invoice's cutoff: not invoiced yet (late usage)
        card=world.acme_server.cards.get(slot=0),
        start=datetime.datetime(2026, 11, 30, 20, tzinfo=SH),
        end=datetime.datetime(2026, 11, 30, 22, tzinfo=SH),
        received_at=datetime.datetime(2026, 12, 2, 8, tzinfo=SH),
    )
    assert "1 record" in portal_client.get("/portal/usage/?invoiced=no").content.decode()


def test_paging(portal_client, world):
    add_records(world.acme_server, 60)
    body = portal_client.get("/portal/usage/").content.decode()
    assert body.count('data-testid="usage-row"') == 50 and "Page 1 of 2" in body
    assert portal_client.get("/portal/usage/?page=2").content.decode().count('data-testid="usage-row"') == 11


@pytest.mark.parametrize("count", [2, 20])
def test_the_list_runs_a_constant_number_of_queries(
    portal_client, world, count, django_assert_max_num_queries
):
    add_records(world.acme_server, count)
    # 10: the customer's cards and servers are read first, so the usage indexes pick the records
    with django_assert_max_num_queries(10):
        body = portal_client.get("/portal/usage/").content.decode()
    assert f"{count + 1} records" in body


def test_csv_streams_the_filtered_records(portal_client, world):
    add_records(world.acme_server, 2, utilization="40.00")
    response = portal_client.get("/portal/usage.csv?period=2026-11&hardware=" + world.acme_server.serial)
    assert isinstance(response, StreamingHttpResponse)
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert 'filename="usage-acme-t.csv"' in response["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert rows[0][:4] == ["event_id", "hardware", "gpu_model", "cards"]
    assert len(rows) == 1 + 3
    first_card = world.acme_server.cards.get(slot=0).uuid
    by_start = {row[4]: row for row in rows[1:]}
    row = by_start["2026-11-09T16:00:00+00:00"]  # Nov 10 00:00 Shanghai
    assert row[1] == first_card and row[3] == "1" and row[6] == "1.0000" and row[7] == "40.00"
    assert by_start["2026-11-01T16:00:00+00:00"][6] == "100.0000"  # the invoiced 100 h record
