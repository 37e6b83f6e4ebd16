"""Every time a person reads is in the billing time zone with the zone shown: the contract page's
allocations and a usage record's title agree with each other and with the fields beside them."""

from __future__ import annotations

import datetime

import pytest
import time_machine
from django.urls import reverse

from apps.accounts import roles
from apps.contracts.models import Allocation
from apps.core.periods import local_range_text, local_time_text
from tests.factories.catalogue import CustomerFactory, ServerFactory
from tests.factories.contracts import card_line, draft
from tests.factories.usage import usage

UTC = datetime.UTC
SHANGHAI = "Asia/Shanghai"
TODAY = datetime.datetime(2026, 12, 2, 10, 0, tzinfo=datetime.timezone(datetime.timedelta(hours=8)))
DEC_1_LOCAL_MIDNIGHT = datetime.datetime(2026, 11, 30, 16, 0, tzinfo=UTC)  # 2026-12-01 00:00 +08


@pytest.mark.parametrize(
    ("start", "end", "text"),
    [
        (DEC_1_LOCAL_MIDNIGHT, None, "2026-12-01 00:00 – … CST (UTC+08:00)"),
        (
            datetime.datetime(2026, 11, 30, 18, 0, tzinfo=UTC),
            datetime.datetime(2026, 11, 30, 22, 0, tzinfo=UTC),
            "2026-12-01 02:00–06:00 CST (UTC+08:00)",
        ),
        (
            datetime.datetime(2026, 11, 30, 14, 0, tzinfo=UTC),
            datetime.datetime(2026, 11, 30, 18, 0, tzinfo=UTC),
            "2026-11-30 22:00 – 2026-12-01 02:00 CST (UTC+08:00)",
        ),
    ],
)
def test_ranges_read_in_the_billing_zone(start, end, text):
    assert local_range_text(start, end, SHANGHAI) == text


def test_an_instant_reads_in_the_billing_zone_with_the_zone():
    assert local_time_text(DEC_1_LOCAL_MIDNIGHT, SHANGHAI) == "2026-12-01 00:00 CST (UTC+08:00)"
    assert local_time_text(DEC_1_LOCAL_MIDNIGHT, "UTC") == "2026-11-30 16:00 UTC (UTC+00:00)"


@pytest.mark.django_db
@time_machine.travel(TODAY)
def test_contract_page_shows_allocations_in_the_billing_zone(client, make_staff):
    am = make_staff(roles.ACCOUNT_MANAGER, username="am1")
    server = ServerFactory()
    contract = draft(CustomerFactory(), am, [card_line(server, 1)], start=DEC_1_LOCAL_MIDNIGHT)
    allocation = Allocation.objects.get(line__contract=contract)
    assert allocation.start_at == DEC_1_LOCAL_MIDNIGHT
    client.force_login(am)
    page = client.get(reverse("admin:contracts_contract_change", args=[contract.pk])).content.decode()
    assert "2026-12-01 00:00 – … CST (UTC+08:00)" in page
    assert "2026-11-30 16:00" not in page


@pytest.mark.django_db
@time_machine.travel(TODAY)
def test_usage_record_title_matches_its_fields_in_the_billing_zone(client, make_staff):
    server = ServerFactory()
    record = usage(
        card=server.cards.order_by("slot").first(),
        start=datetime.datetime(2026, 11, 30, 18, 0, tzinfo=UTC),
        end=datetime.datetime(2026, 11, 30, 22, 0, tzinfo=UTC),
        event_id="evt-1",
    )
    assert str(record) == "evt-1 (2026-12-01 02:00–06:00 CST (UTC+08:00))"
    client.force_login(make_staff(roles.OPERATIONS, username="ops1"))
    page = client.get(reverse("admin:metering_usagerecord_change", args=[record.pk])).content.decode()
    assert "evt-1 (2026-12-01 02:00–06:00 CST (UTC+08:00))" in page
    assert "18:00" not in page and "22:00" not in page
