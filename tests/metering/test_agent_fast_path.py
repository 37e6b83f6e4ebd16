"""The agent's batches take a fast way (``decode_agent_batch`` + ``validate_agent_records``): it
must give exactly what the general way (orjson + ``validate_records``) gives — the same rows and
hashes, duplicates and, for any doubtful batch, the same errors."""

from __future__ import annotations

import dataclasses
import datetime
import json

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from apps.metering import validation

NOW = datetime.datetime(2026, 11, 20, 2, 0, tzinfo=datetime.UTC)
UUIDS = ["GPU-0000aaaa-0000-4000-8000-000000000001", "GPU-0000AAAA-0000-4000-8000-000000000002", "GPU-x\t"]
TIMES = [
    "2026-11-20T01:50:00+00:00",
    "2026-11-20T09:51:00+08:00",
    "2026-11-20T01:52:00Z",
    "2026-11-20T02:06:00+00:00",  # beyond now + 5 minutes
    "2026-11-20T01:50:00",  # no offset
    "not a time",
    "2026-10-01T00:00:00+00:00",  # more than 31 days before the others
]
WHOLE = st.one_of(st.integers(-2, 102), st.sampled_from([2**63 - 1, 2**63, 2**64 + 5]))
TELEMETRY = st.one_of(
    st.none(),
    st.fixed_dictionaries({"utilization_percent": WHOLE, "memory_used_bytes": WHOLE, "energy_mj": WHOLE}),
    st.just({"utilization_percent": 5.0, "memory_used_bytes": 1, "energy_mj": 2}),  # a whole float
    st.just({"utilization_percent": True, "memory_used_bytes": 1, "energy_mj": 2}),
    st.just({}),
)
RECORD = st.builds(
    lambda event_id, card, start, end, telemetry, omit: {
        k: v
        for k, v in {
            "event_id": event_id,
            "card": card,
            "start": start,
            "end": end,
            "telemetry": telemetry,
        }.items()
        if not (k == "telemetry" and omit)
    },
    event_id=st.sampled_from(["e-1", "e-2", "e-3", "", "x" * 129, "line\nbreak"]),
    card=st.sampled_from(UUIDS),
    start=st.sampled_from(TIMES),
    end=st.sampled_from(TIMES),
    telemetry=TELEMETRY,
    omit=st.booleans(),
)


def general(body: bytes) -> validation.Batch:
    """As the view parses a body: orjson, and the standard library where orjson refuses."""
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError:
        parsed = json.loads(body)
    return validation.validate_records(parsed, now=NOW)


def fast(body: bytes) -> validation.Batch | None:
    records = validation.decode_agent_batch(body)
    return None if records is None else validation.validate_agent_records(records, now=NOW)


def as_plain(batch: validation.Batch):
    return [dataclasses.astuple(row) for row in batch.rows], batch.error_list(), batch.in_batch_duplicates


@settings(max_examples=300, deadline=None)
@given(st.lists(RECORD, max_size=6))
def test_the_fast_way_gives_what_the_general_way_gives(records):
    body = json.dumps(records).encode()
    quick = fast(body)
    if quick is not None:
        assert as_plain(quick) == as_plain(general(body))


def test_an_agent_batch_takes_the_fast_way_and_keeps_its_hashes():
    records = [
        {
            "event_id": f"e-{i}",
            "card": UUIDS[i % 2],
            "start": TIMES[0],
            "end": TIMES[2],
            "telemetry": {"utilization_percent": 40, "memory_used_bytes": 10, "energy_mj": 20},
        }
        for i in range(3)
    ] + [
        {
            "event_id": "e-0",
            "card": UUIDS[0],
            "start": "2026-11-20T09:50:00+08:00",
            "end": TIMES[2],
            "telemetry": {"utilization_percent": 40, "memory_used_bytes": 10, "energy_mj": 20},
        }
    ]
    body = orjson.dumps(records)

    assert validation.decode_agent_batch(body) is not None
    quick = fast(body)
    assert as_plain(quick) == as_plain(general(body))
    assert not quick.errors
    assert len(quick.rows) == 3 and quick.in_batch_duplicates == 1  # +08:00 is the same instant
    assert quick.rows[1].ident == "GPU-0000aaaa-0000-4000-8000-000000000002"  # lower-cased


def test_other_shapes_take_the_general_way():
    for body in (
        b'{"event_id": "e", "card": "c", "start": "s", "end": "e"}',  # one object
        b'[{"event_id": "e", "server": "SRV-1", "start": "s", "end": "e"}]',
        b'[{"event_id": "e", "card": "c", "start": "s", "end": "e", "note": 1}]',
        b'[{"event_id": 5, "card": "c", "start": "s", "end": "e"}]',
        b"[1, 2]",
        b"not json",
        b'["\xff"]',
        '[{"event_id": "\u00e9", "card": "c", "start": "s", "end": "e"}]'.encode("latin-1"),
        b"[" * 10_000 + b"]" * 10_000,
    ):
        assert validation.decode_agent_batch(body) is None, body
