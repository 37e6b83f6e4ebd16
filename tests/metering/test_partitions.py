"""The usage table partitioned by month (docs/partitions.md): where records land, event ids unique
across months, partitions made ahead and out of the DEFAULT one, detaching for archive."""

from __future__ import annotations

import datetime
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import IntegrityError, connection, transaction
from django_celery_beat.models import PeriodicTask

from apps.billing.models import Invoice, InvoiceStatus
from apps.core.errors import DomainError
from apps.core.periods import Period
from apps.metering import partitions, services
from apps.metering.models import UsageEvent, UsageRecord
from apps.metering.services import IngestResult, UsageRejected
from apps.metering.tasks import ensure_partitions_task
from tests.factories.catalogue import CustomerFactory, ServerFactory
from tests.factories.metering import MINUTE, NOW, UTC, card_record, stored_usage

pytestmark = pytest.mark.django_db

SHANGHAI = datetime.timezone(datetime.timedelta(hours=8))
NOV = datetime.datetime(2026, 11, 10, 9, 0, tzinfo=SHANGHAI)
OCT = datetime.datetime(2026, 10, 20, 9, 0, tzinfo=SHANGHAI)


@pytest.fixture
def server():
    return ServerFactory(serial="SRV-BJ-0001")


@pytest.fixture
def provider(server):
    return server.provider


@pytest.fixture
def card(server):
    return server.cards.get(slot=0)


@pytest.fixture
def months():
    """October 2026 through February 2027 partitioned, whatever day the test database was made."""
    with connection.cursor() as cursor:
        partitions.ensure_partitions(cursor, now=NOW, since=Period(2026, 10))


def ingest(provider, records) -> IngestResult:
    return services.usage_ingest(provider=provider, payload_records=records, received_at=NOW)


def partition_of(record: UsageRecord) -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT tableoid::regclass::text FROM metering_usagerecord WHERE id = %s", [record.pk])
        return cursor.fetchone()[0]


def rows_in(table: str) -> int:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT count(*) FROM {table}")
        return cursor.fetchone()[0]


# -- layout ----------------------------------------------------------------------------------------
def test_the_usage_table_is_partitioned_by_range_of_start_with_a_default_partition():
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT p.partstrat, a.attname FROM pg_partitioned_table p"
            " JOIN pg_attribute a ON a.attrelid = p.partrelid AND a.attnum = p.partattrs[0]"
            " WHERE p.partrelid = 'metering_usagerecord'::regclass"
        )
        assert cursor.fetchone() == ("r", "start_at")
        cursor.execute(
            "SELECT pg_get_constraintdef(oid) FROM pg_constraint"
            " WHERE conrelid = 'metering_usagerecord'::regclass AND contype = 'p'"
        )
        assert cursor.fetchone() == ("PRIMARY KEY (id, start_at)",)
    assert partitions.DEFAULT_PARTITION in partitions.attached_partitions(connection.cursor())


def test_records_land_in_the_partition_of_their_month_in_billing_time(months, card):
    last_second = datetime.datetime(2026, 11, 30, 23, 59, 59, tzinfo=SHANGHAI)
    december = datetime.datetime(2026, 12, 1, 0, 0, tzinfo=SHANGHAI)  # 2026-11-30 16:00 UTC
    november = stored_usage(card=card, start=last_second, end=last_second + MINUTE)
    first = stored_usage(card=card, start=december, end=december + MINUTE)
    assert partition_of(november) == "metering_usagerecord_p2026_11_d25"
    assert partition_of(first) == "metering_usagerecord_p2026_12_d01"
    assert rows_in(partitions.DEFAULT_PARTITION) == 0


def test_a_month_is_in_four_parts_by_day_of_the_billing_time_zone(months, card):
    """Days 1–8, 9–16, 17–24 and 25 to the end, each from 00:00 in Shanghai (docs/partitions.md#month-parts)."""
    placed = {}
    for when in [
        datetime.datetime(2026, 11, 8, 23, 59, 59, tzinfo=SHANGHAI),
        datetime.datetime(2026, 11, 9, 0, 0, tzinfo=SHANGHAI),
        datetime.datetime(2026, 11, 16, 23, 59, 59, tzinfo=SHANGHAI),
        datetime.datetime(2026, 11, 17, 0, 0, tzinfo=SHANGHAI),
        datetime.datetime(2026, 11, 24, 23, 59, 59, tzinfo=SHANGHAI),
        datetime.datetime(2026, 11, 25, 0, 0, tzinfo=SHANGHAI),
    ]:
        placed[when.day, when.hour] = partition_of(stored_usage(card=card, start=when, end=when + MINUTE))
    assert placed == {
        (8, 23): "metering_usagerecord_p2026_11_d01",
        (9, 0): "metering_usagerecord_p2026_11_d09",
        (16, 23): "metering_usagerecord_p2026_11_d09",
        (17, 0): "metering_usagerecord_p2026_11_d17",
        (24, 23): "metering_usagerecord_p2026_11_d17",
        (25, 0): "metering_usagerecord_p2026_11_d25",
    }
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname, pg_get_expr(c.relpartbound, c.oid) FROM pg_inherits i"
            " JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = 'metering_usagerecord_p2027_02'::regclass"
            " ORDER BY c.relname"
        )
        parts = cursor.fetchall()
    # February's last part ends with the month: 2027-03-01 00:00+08
    assert parts == [
        (
            "metering_usagerecord_p2027_02_d01",
            "FOR VALUES FROM ('2027-01-31 16:00:00+00') TO ('2027-02-08 16:00:00+00')",
        ),
        (
            "metering_usagerecord_p2027_02_d09",
            "FOR VALUES FROM ('2027-02-08 16:00:00+00') TO ('2027-02-16 16:00:00+00')",
        ),
        (
            "metering_usagerecord_p2027_02_d17",
            "FOR VALUES FROM ('2027-02-16 16:00:00+00') TO ('2027-02-24 16:00:00+00')",
        ),
        (
            "metering_usagerecord_p2027_02_d25",
            "FOR VALUES FROM ('2027-02-24 16:00:00+00') TO ('2027-02-28 16:00:00+00')",
        ),
    ]


def test_a_month_made_as_one_table_is_split_into_parts_with_nothing_lost(provider, card):
    """What migration 0012 does to the months an earlier release made as one plain table each."""
    month = Period(2030, 1)
    lower, upper = (moment.isoformat() for moment in month.bounds("Asia/Shanghai"))
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE TABLE metering_usagerecord_p2030_01 PARTITION OF metering_usagerecord"
            " FOR VALUES FROM (%s) TO (%s)",
            [lower, upper],
        )
    starts = [datetime.datetime(2030, 1, day, 9, 0, tzinfo=SHANGHAI) for day in (2, 12, 31)]
    before = [stored_usage(card=card, start=s, end=s + MINUTE, event_id=f"e-{s.day}") for s in starts]
    assert {partition_of(r) for r in before} == {"metering_usagerecord_p2030_01"}

    with connection.cursor() as cursor:
        split = partitions.split_whole_months(cursor)
        again = partitions.split_whole_months(cursor)

    assert split == ["metering_usagerecord_p2030_01"]
    assert again == []
    assert [partition_of(r) for r in before] == [
        "metering_usagerecord_p2030_01_d01",
        "metering_usagerecord_p2030_01_d09",
        "metering_usagerecord_p2030_01_d25",
    ]
    after = UsageRecord.objects.filter(pk__in=[r.pk for r in before]).order_by("pk")
    assert [(r.event_id, r.start_at, r.card_id) for r in after] == [
        (r.event_id, r.start_at, r.card_id) for r in before
    ]
    assert UsageEvent.objects.filter(event_id__in=["e-2", "e-12", "e-31"]).count() == 3
    # the indexes came with the parts, the event key still holds across months
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_indexes WHERE tablename = 'metering_usagerecord_p2030_01_d25'"
        )
        assert cursor.fetchone()[0] == 7
    with pytest.raises(IntegrityError, match="uniq_usage_provider_event"), transaction.atomic():
        stored_usage(card=card, start=NOV, end=NOV + MINUTE, event_id="e-12")
    info = next(p for p in partitions.partitions_list() if p.name == "metering_usagerecord_p2030_01")
    assert (info.period, info.rows) == (month, 3)
    assert info.size_bytes > 0


def test_the_ids_a_record_had_stay_its_own_and_the_orm_reads_by_id(months, card):
    record = stored_usage(card=card, start=NOV, end=NOV + MINUTE)
    assert UsageRecord.objects.get(pk=record.pk).start_at == NOV
    later = stored_usage(card=card, start=OCT, end=OCT + MINUTE)
    assert later.pk > record.pk


# -- idempotency across months -----------------------------------------------------------------------
def test_an_event_id_resent_is_a_duplicate_and_resent_in_another_month_a_conflict(months, provider, card):
    record = card_record(card.uuid, NOV, event_id="e-1")
    assert ingest(provider, [record]) == IngestResult(accepted=1, duplicates=0)
    assert ingest(provider, [record]) == IngestResult(accepted=0, duplicates=1)

    with pytest.raises(UsageRejected) as info:
        ingest(provider, [card_record(card.uuid, OCT, event_id="e-1")])

    assert [(e["index"], e["code"]) for e in info.value.errors] == [(0, "conflict")]
    stored = UsageRecord.objects.get()
    assert (stored.event_id, stored.start_at) == ("e-1", NOV)
    assert partition_of(stored) == "metering_usagerecord_p2026_11_d09"
    assert list(UsageEvent.objects.values_list("event_id", "start_at")) == [("e-1", NOV)]


def _lookup_misses_first_call(monkeypatch):
    """The stored-hash look-up answers as if a concurrent batch had not committed yet (once)."""
    real = services.selectors.usage_stored_hashes
    calls = []

    def lookup(**kwargs):
        calls.append(kwargs)
        return {} if len(calls) == 1 else real(**kwargs)

    monkeypatch.setattr(services.selectors, "usage_stored_hashes", lookup)


def test_a_record_of_another_month_stored_after_the_look_up_is_a_conflict(
    months, provider, card, monkeypatch
):
    ingest(provider, [card_record(card.uuid, NOV, event_id="e-1")])
    _lookup_misses_first_call(monkeypatch)

    with pytest.raises(UsageRejected) as info:
        ingest(provider, [card_record(card.uuid, OCT), card_record(card.uuid, OCT + MINUTE, event_id="e-1")])

    assert [(e["index"], e["code"]) for e in info.value.errors] == [(1, "conflict")]
    assert UsageRecord.objects.count() == 1


def test_a_duplicate_met_after_the_look_up_is_counted_once_whatever_its_month(
    months, provider, card, monkeypatch
):
    ingest(provider, [card_record(card.uuid, OCT, event_id="e-1")])
    _lookup_misses_first_call(monkeypatch)

    result = ingest(provider, [card_record(card.uuid, NOV), card_record(card.uuid, OCT, event_id="e-1")])

    assert result == IngestResult(accepted=1, duplicates=1)
    assert sorted(UsageRecord.objects.values_list("start_at", flat=True)) == [OCT, NOV]


def test_the_database_refuses_an_event_id_twice_in_two_months_whoever_writes(months, card):
    stored_usage(card=card, start=NOV, end=NOV + MINUTE, event_id="e-1")
    with pytest.raises(IntegrityError, match="uniq_usage_provider_event"), transaction.atomic():
        stored_usage(card=card, start=OCT, end=OCT + MINUTE, event_id="e-1")
    assert UsageRecord.objects.count() == 1


def test_a_deleted_record_frees_its_event_id_and_a_voided_one_keeps_it(months, provider, card):
    record = card_record(card.uuid, NOV, event_id="e-1")
    ingest(provider, [record, card_record(card.uuid, OCT, event_id="e-2")])
    services.usage_void(provider=provider, event_id="e-2", reason="wrong card", now=NOW)
    assert UsageRecord.objects.get(event_id="e-2").voided_at == NOW
    assert ingest(provider, [card_record(card.uuid, OCT, event_id="e-2")]) == IngestResult(0, 1)

    UsageRecord.objects.filter(event_id="e-1").delete()

    assert list(UsageEvent.objects.values_list("event_id", flat=True)) == ["e-2"]
    assert ingest(provider, [record]) == IngestResult(accepted=1, duplicates=0)


# -- making partitions -------------------------------------------------------------------------------
def test_ensure_makes_this_month_and_three_ahead_once():
    now = datetime.datetime(2031, 5, 31, 17, 0, tzinfo=UTC)  # 2031-06-01 01:00 in Shanghai
    with connection.cursor() as cursor:
        made = partitions.ensure_partitions(cursor, now=now)
        again = partitions.ensure_partitions(cursor, now=now)
    assert made == [f"metering_usagerecord_p2031_0{m}" for m in (6, 7, 8, 9)]
    assert again == []
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_get_expr(c.relpartbound, c.oid) FROM pg_class c WHERE relname = 'metering_usagerecord_p2031_06'"
        )
        bounds = cursor.fetchone()[0]
    # [2031-06-01 00:00+08, 2031-07-01 00:00+08), as PostgreSQL prints it in UTC
    assert bounds == "FOR VALUES FROM ('2031-05-31 16:00:00+00') TO ('2031-06-30 16:00:00+00')"


def test_records_of_a_month_without_partition_wait_in_default_and_the_daily_task_moves_them(provider, card):
    old = datetime.datetime(2024, 3, 5, 9, 0, tzinfo=SHANGHAI)
    record = stored_usage(card=card, start=old, end=old + MINUTE, event_id="e-old")
    assert partition_of(record) == partitions.DEFAULT_PARTITION

    made = ensure_partitions_task.apply().get()

    assert "metering_usagerecord_p2024_03" in made
    assert partition_of(record) == "metering_usagerecord_p2024_03_d01"
    assert rows_in(partitions.DEFAULT_PARTITION) == 0
    assert UsageRecord.objects.get(event_id="e-old").pk == record.pk
    # the event id stayed: the same id in another month is still refused
    with pytest.raises(IntegrityError, match="uniq_usage_provider_event"), transaction.atomic():
        stored_usage(card=card, start=NOV, end=NOV + MINUTE, event_id="e-old")


def test_the_daily_task_is_on_the_beat_schedule():
    task = PeriodicTask.objects.get(task="metering.ensure_partitions")
    assert task.enabled
    assert (task.crontab.minute, task.crontab.hour, task.crontab.day_of_month) == ("30", "3", "*")


# -- detaching ---------------------------------------------------------------------------------------
OLD = Period(2025, 6)
NOW_LATE = datetime.datetime(2026, 11, 28, 2, 0, tzinfo=UTC)


@pytest.fixture
def old_month(provider, card):
    start = datetime.datetime(2025, 6, 10, 9, 0, tzinfo=SHANGHAI)
    stored_usage(card=card, start=start, end=start + MINUTE, event_id="e-june")
    with connection.cursor() as cursor:
        partitions.ensure_partitions(cursor, now=NOW_LATE, since=OLD)
    return OLD


def invoice(period: Period, status: str) -> Invoice:
    """An invoice row of ``period`` (only its period and status matter to detaching)."""
    number = None if status == InvoiceStatus.DRAFT else f"T-{period}-{Invoice.objects.count() + 1}"
    return Invoice.objects.create(
        customer=CustomerFactory(), period=str(period), status=status, number=number
    )


def test_a_month_billed_and_issued_detaches_and_its_event_ids_stay(old_month, provider, card):
    invoice(old_month, InvoiceStatus.ISSUED)
    invoice(old_month, InvoiceStatus.PAID)

    name = partitions.partition_detach(period=old_month, now=NOW_LATE)

    assert name == "metering_usagerecord_p2025_06"
    assert name not in partitions.attached_partitions(connection.cursor())
    assert not UsageRecord.objects.filter(event_id="e-june").exists()
    assert rows_in(name) == 1  # the table stays for the archive
    assert UsageEvent.objects.filter(event_id="e-june").exists()
    with pytest.raises(IntegrityError, match="uniq_usage_provider_event"), transaction.atomic():
        stored_usage(card=card, start=NOV, end=NOV + MINUTE, event_id="e-june")

    # a record of the archived month written afterwards waits in DEFAULT; ensuring leaves the
    # archived table alone
    june = datetime.datetime(2025, 6, 11, 9, 0, tzinfo=SHANGHAI)
    late = stored_usage(card=card, start=june, end=june + MINUTE, event_id="e-june-2")
    with connection.cursor() as cursor:
        assert name not in partitions.ensure_partitions(cursor, now=NOW_LATE)
    assert partition_of(late) == partitions.DEFAULT_PARTITION
    assert rows_in(name) == 1


def test_a_month_with_a_draft_invoice_is_not_detached(old_month):
    invoice(old_month, InvoiceStatus.ISSUED)
    invoice(old_month, InvoiceStatus.DRAFT)
    with pytest.raises(DomainError, match="1 invoice\\(s\\) of 2025-06 are still drafts"):
        partitions.partition_detach(period=old_month, now=NOW_LATE)
    assert UsageRecord.objects.filter(event_id="e-june").exists()


def test_a_month_with_usage_but_no_invoice_is_not_detached(old_month):
    with pytest.raises(DomainError, match="2025-06 has usage but no invoice"):
        partitions.partition_detach(period=old_month, now=NOW_LATE)


def test_a_month_billing_may_still_read_is_not_detached(old_month):
    invoice(Period(2025, 11), InvoiceStatus.ISSUED)
    with pytest.raises(DomainError, match="2025-11 is newer than 13 months; only 2025-10 and earlier"):
        partitions.partition_detach(period=Period(2025, 11), now=NOW_LATE)
    with pytest.raises(DomainError, match="Keep at least 13 months"):
        partitions.partition_detach(period=old_month, now=NOW_LATE, keep_months=6)


# -- the command -------------------------------------------------------------------------------------
def run(*args: str) -> str:
    out = StringIO()
    call_command("usage_partitions", *args, stdout=out)
    return out.getvalue()


def test_the_command_lists_partitions_with_rows_and_detaches_an_issued_month(old_month, time_machine):
    time_machine.move_to(NOW_LATE, tick=False)
    lines = run().splitlines()
    assert lines[0].split() == ["month", "partition", "rows", "size", "bounds"]
    june = next(line for line in lines if line.startswith("2025-06"))
    assert june.split()[1:3] == ["metering_usagerecord_p2025_06", "1"]
    assert "FOR VALUES FROM ('2025-05-31 16:00:00+00') TO ('2025-06-30 16:00:00+00')" in june
    assert lines[-1].split()[:3] == ["default", "metering_usagerecord_default", "0"]

    with pytest.raises(CommandError, match="has usage but no invoice"):
        run("--detach", "2025-06")
    with pytest.raises(CommandError, match="period must look like YYYY-MM"):
        run("--detach", "June")
    invoice(old_month, InvoiceStatus.ISSUED)
    assert run("--detach", "2025-06") == (
        "Detached 2025-06: table metering_usagerecord_p2025_06 is no longer part of the usage table. "
        "Archive it with its four parts (pg_dump -t 'metering_usagerecord_p2025_06*'), then drop it.\n"
    )
    assert not any(line.startswith("2025-06") for line in run().splitlines())


def test_the_command_ensures_partitions(time_machine):
    time_machine.move_to(datetime.datetime(2032, 1, 15, tzinfo=UTC), tick=False)
    assert run("--ensure") == (
        "Made 4 partition(s): metering_usagerecord_p2032_01, metering_usagerecord_p2032_02,"
        " metering_usagerecord_p2032_03, metering_usagerecord_p2032_04.\n"
    )
    assert run("--ensure") == "Made 0 partition(s).\n"
