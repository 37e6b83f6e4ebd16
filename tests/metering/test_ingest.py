"""``usage_ingest``: validation bounds, duplicates and conflicts, atomic batches, own hardware only."""

from __future__ import annotations

import datetime
from decimal import Decimal

import pytest

from apps.core.errors import DomainError
from apps.metering import services
from apps.metering.models import UsageRecord
from apps.metering.services import IngestResult, UsageRejected
from tests.factories.catalogue import ProviderFactory, ServerFactory, SiteFactory
from tests.factories.metering import HOUR, MINUTE, NOW, SHANGHAI, UTC, card_record, server_record

pytestmark = pytest.mark.django_db

DAY = datetime.timedelta(days=1)
SECOND = datetime.timedelta(seconds=1)


@pytest.fixture
def server():
    return ServerFactory(serial="SRV-BJ-0001")


@pytest.fixture
def provider(server):
    return server.provider


@pytest.fixture
def uuid(server):
    return server.cards.get(slot=0).uuid


def ingest(provider, records, *, now=NOW) -> IngestResult:
    return services.usage_ingest(provider=provider, payload_records=records, received_at=now)


def rejected(provider, records, *, now=NOW) -> list[dict]:
    with pytest.raises(UsageRejected) as info:
        ingest(provider, records, now=now)
    return info.value.errors


def only_error(provider, record, *, now=NOW) -> dict[str, list[str]]:
    errors = rejected(provider, [record], now=now)
    assert len(errors) == 1 and errors[0]["index"] == 0 and errors[0]["code"] == "invalid", errors
    return errors[0]["errors"]


START = NOW - 10 * MINUTE


# -- storing ---------------------------------------------------------------------------------------
def test_a_card_record_is_stored_with_its_telemetry(provider, server, uuid):
    record = card_record(
        uuid,
        START,
        telemetry={"utilization_percent": 87.5, "memory_used_bytes": 42 * 1024**3, "energy_mj": 123456789},
    )
    result = ingest(provider, [record])
    assert result == IngestResult(accepted=1, duplicates=0)
    stored = UsageRecord.objects.get()
    assert (stored.provider, stored.card, stored.server) == (provider, server.cards.get(slot=0), None)
    assert stored.event_id == record["event_id"]
    assert (stored.start_at, stored.end_at) == (START, START + MINUTE)
    assert stored.utilization_percent == Decimal("87.50")
    assert stored.memory_used_bytes == 42 * 1024**3
    assert stored.energy_mj == 123456789
    assert stored.telemetry is None  # the three known values live in their columns
    assert stored.received_at == NOW
    assert stored.voided_at is None and stored.void_reason == ""
    assert len(stored.content_hash) == 32


def test_a_server_record_keeps_the_server_row(provider, server):
    result = ingest(provider, [server_record(server.serial, START - 2 * MINUTE, START)])
    assert result.accepted == 1
    stored = UsageRecord.objects.get()
    assert (stored.server, stored.card) == (server, None)
    assert stored.telemetry is None and stored.utilization_percent is None


def test_extra_telemetry_keys_are_kept_as_evidence(provider, uuid):
    telemetry = {"utilization_percent": 10, "temperature_c": 71, "driver": "550.54", "throttled": False}
    ingest(provider, [card_record(uuid, START, telemetry=telemetry)])
    stored = UsageRecord.objects.get()
    assert stored.telemetry == {"temperature_c": 71, "driver": "550.54", "throttled": False}
    assert stored.utilization_percent == Decimal("10.00")
    changed = {**telemetry, "temperature_c": 72}  # extra keys are part of the content
    assert [e["code"] for e in rejected(provider, [card_record(uuid, START, telemetry=changed)])] == [
        "conflict"
    ]


def test_upper_case_uuid_and_other_offsets_name_the_same_card(provider, uuid):
    record = card_record(uuid.upper(), START.astimezone(SHANGHAI))
    assert ingest(provider, [record]).accepted == 1
    assert UsageRecord.objects.get().card.uuid == uuid


# -- duplicates and conflicts ----------------------------------------------------------------------
def test_a_resent_record_is_a_duplicate_counted_not_stored(provider, uuid):
    record = card_record(uuid, START, telemetry={"utilization_percent": 50})
    assert ingest(provider, [record]) == IngestResult(accepted=1, duplicates=0)
    assert ingest(provider, [record]) == IngestResult(accepted=0, duplicates=1)
    assert UsageRecord.objects.count() == 1


def test_the_hash_is_of_the_content_not_of_its_spelling(provider, uuid):
    record = card_record(uuid, START, telemetry={"utilization_percent": 50, "energy_mj": 7})
    ingest(provider, [record])
    respelt = {
        "telemetry": {"energy_mj": 7.0, "utilization_percent": 50.0},  # other key order, whole floats
        "end": (START + MINUTE).astimezone(SHANGHAI).isoformat(),  # other offset, same instant
        "start": START.isoformat().replace("+00:00", "Z"),
        "card": uuid.upper().replace("GPU-", "gpu-"),
        "event_id": record["event_id"],
    }
    assert ingest(provider, [respelt]) == IngestResult(accepted=0, duplicates=1)


def test_agent_telemetry_as_whole_floats_is_the_same_content(provider, uuid):
    """Integers take a fast path, other numbers the general one: both give the same hash."""
    telemetry = {"utilization_percent": 87, "memory_used_bytes": 2**34, "energy_mj": 5}
    ingest(provider, [card_record(uuid, START, telemetry=telemetry)])
    as_floats = {key: float(value) for key, value in reversed(telemetry.items())}
    assert ingest(provider, [card_record(uuid, START, telemetry=as_floats)]) == IngestResult(0, 1)
    changed = {**telemetry, "energy_mj": 6}
    assert [e["code"] for e in rejected(provider, [card_record(uuid, START, telemetry=changed)])] == [
        "conflict"
    ]


def test_an_event_id_with_other_content_is_a_conflict_and_nothing_is_stored(provider, uuid):
    first = card_record(uuid, START, telemetry={"utilization_percent": 50})
    ingest(provider, [first])
    changed = {**first, "telemetry": {"utilization_percent": 51}}
    fresh = card_record(uuid, START + MINUTE)
    errors = rejected(provider, [fresh, changed])
    assert [(e["index"], e["code"], e["event_id"]) for e in errors] == [(1, "conflict", first["event_id"])]
    assert "different content" in errors[0]["errors"]["event_id"][0]
    assert UsageRecord.objects.count() == 1  # the fresh record was not stored either


def test_conflicts_are_reported_together_with_invalid_records(provider, uuid):
    first = card_record(uuid, START)
    ingest(provider, [first])
    changed = {**first, "end": (START + 2 * MINUTE).isoformat()}
    bad = {**card_record(uuid, START + MINUTE), "end": "yesterday"}
    errors = rejected(provider, [changed, bad])
    assert [(e["index"], e["code"]) for e in errors] == [(0, "conflict"), (1, "invalid")]


def test_the_same_event_twice_in_a_batch_counts_once(provider, uuid):
    record = card_record(uuid, START)
    assert ingest(provider, [record, dict(record), card_record(uuid, START + MINUTE)]) == IngestResult(
        accepted=2, duplicates=1
    )
    assert UsageRecord.objects.count() == 2


def test_the_same_event_id_twice_in_a_batch_with_other_content_is_a_conflict(provider, uuid):
    record = card_record(uuid, START)
    other = {**record, "end": (START + 2 * MINUTE).isoformat()}
    errors = rejected(provider, [record, other])
    assert [(e["index"], e["code"], e["event_id"]) for e in errors] == [(1, "conflict", record["event_id"])]
    assert "index 0" in errors[0]["errors"]["event_id"][0]
    assert UsageRecord.objects.count() == 0


def test_event_ids_are_per_provider(provider, uuid):
    other_server = ServerFactory()
    record = card_record(uuid, START, event_id="shared-id")
    ingest(provider, [record])
    theirs = card_record(other_server.cards.first().uuid, START, event_id="shared-id")
    assert ingest(other_server.provider, [theirs]).accepted == 1
    assert UsageRecord.objects.count() == 2


# -- atomic batches and own hardware -------------------------------------------------------------
def test_one_bad_record_stores_nothing_of_the_batch(provider, uuid):
    good = [card_record(uuid, START + i * MINUTE) for i in range(5)]
    bad = {**card_record(uuid, START + 6 * MINUTE), "end": (START + 6 * MINUTE).isoformat()}
    errors = rejected(provider, [*good, bad])
    assert [(e["index"], e["event_id"]) for e in errors] == [(5, bad["event_id"])]
    assert errors[0]["errors"] == {"end": ["Must be after start."]}
    assert UsageRecord.objects.count() == 0


def test_a_provider_reports_only_its_own_hardware(provider, uuid):
    foreign = ServerFactory(site=SiteFactory(provider=ProviderFactory(code="rival")))
    foreign_card = foreign.cards.first().uuid
    unknown_card = "GPU-00000000-0000-0000-0000-00000000dead"
    errors = rejected(
        provider,
        [
            card_record(uuid, START),
            card_record(foreign_card, START),
            card_record(unknown_card, START),
            server_record(foreign.serial, START, START + MINUTE),
            server_record("NO-SUCH-SERIAL", START, START + MINUTE),
        ],
    )
    by_index = {e["index"]: e["errors"] for e in errors}
    assert sorted(by_index) == [1, 2, 3, 4]
    # The same words whether the hardware is unknown or someone else's: nothing leaks.
    assert by_index[1] == by_index[2] == {"card": ["No card with this UUID among your provider's hardware."]}
    assert (
        by_index[3]
        == by_index[4]
        == {"server": ["No server with this serial among your provider's hardware."]}
    )
    assert "rival" not in str(errors)
    assert UsageRecord.objects.count() == 0


# -- validation bounds ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("end_offset", "ok"),
    [
        (datetime.timedelta(minutes=5), True),
        (datetime.timedelta(minutes=5, seconds=1), False),
        (datetime.timedelta(minutes=5, microseconds=1), False),
        (-MINUTE, True),
    ],
)
def test_a_record_may_end_at_most_5_minutes_in_the_future(provider, uuid, end_offset, ok):
    end = NOW + end_offset
    record = card_record(uuid, end - MINUTE, end)
    if ok:
        assert ingest(provider, [record]).accepted == 1
    else:
        errors = only_error(provider, record)
        assert list(errors) == ["end"] and "5 minutes in the future" in errors["end"][0]


@pytest.mark.parametrize(
    ("duration", "ok"),
    [
        (31 * DAY, True),
        (31 * DAY + SECOND, False),
        (SECOND, True),
        (datetime.timedelta(microseconds=1), True),
        (datetime.timedelta(0), False),
        (-MINUTE, False),
    ],
)
def test_duration_bounds(provider, uuid, duration, ok):
    end = NOW - HOUR
    record = card_record(uuid, end - duration, end)
    if ok:
        assert ingest(provider, [record]).accepted == 1
    else:
        errors = only_error(provider, record)
        assert list(errors) == ["end"]
        expected = "at most 31 days" if duration > datetime.timedelta(0) else "Must be after start."
        assert expected in errors["end"][0]


@pytest.mark.parametrize(
    "value",
    ["2026-11-20T09:00:00", "2026-11-20", "2026-11-20 09:00", "20261120T090000"],
)
def test_naive_timestamps_are_refused(provider, uuid, value):
    record = {**card_record(uuid, START), "start": value}
    errors = only_error(provider, record)
    assert list(errors) == ["start"] and "UTC offset" in errors["start"][0]


@pytest.mark.parametrize(
    "value", ["", "yesterday", "2026-13-01T00:00:00+00:00", "2026-11-20T09:00:00+25:00", "x" * 1000]
)
def test_unparsable_timestamps_are_refused(provider, uuid, value):
    errors = only_error(provider, {**card_record(uuid, START), "end": value})
    assert list(errors) == ["end"]


def test_a_timestamp_at_the_edge_of_the_calendar_is_an_error_not_a_crash(provider, uuid):
    record = {**card_record(uuid, START), "start": "0001-01-01T00:00:00+08:00"}
    assert list(only_error(provider, record)) == ["start"]


def test_exactly_one_of_card_and_server(provider, server, uuid):
    both = {**card_record(uuid, START), "server": server.serial}
    neither = {k: v for k, v in card_record(uuid, START).items() if k != "card"}
    assert "not both" in only_error(provider, both)["non_field_errors"][0]
    assert "card" in only_error(provider, neither)["non_field_errors"][0]


@pytest.mark.parametrize("missing", ["event_id", "start", "end"])
def test_required_fields(provider, uuid, missing):
    record = {k: v for k, v in card_record(uuid, START).items() if k != missing}
    assert only_error(provider, record) == {missing: ["This field is required."]}


def test_unknown_fields_are_named(provider, uuid):
    errors = only_error(provider, {**card_record(uuid, START), "stop": "2026-11-20T10:00:00+08:00"})
    assert errors == {"stop": ["Unknown field."]}


@pytest.mark.parametrize("event_id", ["", "x" * 129, "a\x00b", "line\nbreak", 42, None, ["a"], True])
def test_bad_event_ids(provider, uuid, event_id):
    errors = only_error(provider, {**card_record(uuid, START), "event_id": event_id})
    assert list(errors) == ["event_id"]


def test_an_event_id_of_128_characters_with_a_backslash_is_fine(provider, uuid):
    event_id = "a\\b\t".replace("\t", "") + "x" * 125
    assert len(event_id) == 128
    ingest(provider, [card_record(uuid, START, event_id=event_id)])
    assert UsageRecord.objects.get().event_id == event_id


WRONG_TYPES = [
    42,
    1.5,
    True,
    [1, 2],
    {"nested": {"deeper": [None]}},
    "x" * 100_000,
]


@pytest.mark.parametrize("field", ["event_id", "card", "server", "start", "end", "telemetry"])
@pytest.mark.parametrize("value", WRONG_TYPES, ids=lambda v: type(v).__name__)
def test_wrong_types_are_per_record_errors(provider, server, uuid, field, value):
    record = (
        card_record(uuid, START) if field != "server" else server_record(server.serial, START, START + MINUTE)
    )
    record[field] = value
    errors = only_error(provider, record)
    assert field in errors or "non_field_errors" in errors, errors


@pytest.mark.parametrize("card", ["GPU-\x00", "GPU-0000\n", "\u200bGPU"])
def test_unprintable_hardware_names_are_per_record_errors(provider, server, card):
    assert only_error(provider, {**card_record(server.cards.first().uuid, START), "card": card}) == {
        "card": ["No card with this UUID among your provider's hardware."]
    }
    serial_record = {**server_record(server.serial, START, START + MINUTE), "server": "S\x00"}
    assert list(only_error(provider, serial_record)) == ["server"]


@pytest.mark.parametrize("record", [None, 1, "a string", [], ["nested"], True])
def test_a_record_that_is_not_an_object(provider, record):
    errors = rejected(provider, [record])
    assert errors == [
        {
            "index": 0,
            "event_id": None,
            "code": "invalid",
            "errors": {"non_field_errors": ["Expected a JSON object."]},
        }
    ]


@pytest.mark.parametrize(
    ("telemetry", "ok"),
    [
        ({"utilization_percent": 0}, True),
        ({"utilization_percent": 100}, True),
        ({"utilization_percent": 99.99}, True),
        ({"utilization_percent": -0.01}, False),
        ({"utilization_percent": 100.01}, False),
        ({"utilization_percent": True}, False),
        ({"utilization_percent": "87"}, False),
        ({"memory_used_bytes": 0, "energy_mj": 0}, True),
        ({"memory_used_bytes": 2**63 - 1}, True),
        ({"memory_used_bytes": 2**63}, False),
        ({"memory_used_bytes": -1}, False),
        ({"memory_used_bytes": 1.5}, False),
        ({"energy_mj": 10**30}, False),
        ({"energy_mj": "12"}, False),
        ({"energy_mj": None, "utilization_percent": None}, True),
        ({}, True),
        ({"fan": [1, 2]}, False),
        ({"note": "x" * 257}, False),
        ({f"k{i}": i for i in range(33)}, False),
    ],
)
def test_telemetry_bounds(provider, uuid, telemetry, ok):
    record = card_record(uuid, START, telemetry=telemetry)
    if ok:
        assert ingest(provider, [record]).accepted == 1
    else:
        assert list(only_error(provider, record)) == ["telemetry"]


def test_more_than_10000_records_is_refused(provider, uuid):
    records = [card_record(uuid, START, event_id=f"e{i}") for i in range(10_001)]
    with pytest.raises(DomainError) as info:
        ingest(provider, records)
    assert (info.value.code, info.value.http_status) == ("batch_too_large", 413)
    assert UsageRecord.objects.count() == 0


def test_a_batch_of_10000_is_stored(provider, server):
    cards = list(server.cards.values_list("uuid", flat=True))
    start = NOW - 2 * 24 * HOUR
    records = [card_record(cards[i % 8], start + (i // 8) * MINUTE) for i in range(10_000)]
    assert ingest(provider, records) == IngestResult(accepted=10_000, duplicates=0)
    assert UsageRecord.objects.count() == 10_000
    again = records[:5000] + [card_record(cards[0], start - (i + 1) * MINUTE) for i in range(10)]
    assert ingest(provider, again) == IngestResult(accepted=10, duplicates=5000)


def test_the_stored_times_are_the_instants_sent(provider, uuid):
    start = datetime.datetime(2026, 11, 20, 9, 30, 15, 250000, tzinfo=SHANGHAI)
    ingest(provider, [card_record(uuid, start, start + MINUTE)])
    stored = UsageRecord.objects.get()
    assert stored.start_at == start and stored.start_at.astimezone(UTC).hour == 1


# -- a concurrent batch between the look-up and the COPY -------------------------------------------
def _lookup_misses_first_call(monkeypatch):
    """The stored-hash look-up answers as if a concurrent batch had not committed yet (once)."""
    real = services.selectors.usage_stored_hashes
    calls = []

    def lookup(**kwargs):
        calls.append(kwargs)
        return {} if len(calls) == 1 else real(**kwargs)

    monkeypatch.setattr(services.selectors, "usage_stored_hashes", lookup)
    return calls


def test_a_record_stored_after_the_look_up_is_a_duplicate(provider, uuid, monkeypatch):
    ingest(provider, [card_record(uuid, START)])
    calls = _lookup_misses_first_call(monkeypatch)

    result = ingest(provider, [card_record(uuid, START), card_record(uuid, START + MINUTE)])

    assert result == IngestResult(accepted=1, duplicates=1)
    assert len(calls) == 2  # the direct COPY failed on the unique key; the careful way counted it
    assert UsageRecord.objects.count() == 2


def test_a_record_stored_after_the_look_up_with_other_content_is_a_conflict(provider, uuid, monkeypatch):
    ingest(provider, [card_record(uuid, START, event_id="e-1")])
    _lookup_misses_first_call(monkeypatch)

    errors = rejected(
        provider, [card_record(uuid, START + MINUTE), card_record(uuid, START + 2 * MINUTE, event_id="e-1")]
    )

    assert [(e["index"], e["code"]) for e in errors] == [(1, "conflict")]
    assert UsageRecord.objects.count() == 1
