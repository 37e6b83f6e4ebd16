"""The metering agent (docs/usage-api.md#metering-agent) with a fake NVML, a frozen clock and a
local fake usage API.

No Django here: run alone with ``pytest -p no:django tests/metering/test_agent.py``.
"""

from __future__ import annotations

import ctypes
import json
import os
import subprocess
import sys
import threading
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from apps.metering.agent.agent import Agent
from apps.metering.agent.cli import main
from apps.metering.agent.collector import build_records, event_id, window_containing
from apps.metering.agent.nvml import Nvml
from apps.metering.agent.sender import Sender, batches, encode
from apps.metering.agent.spool import Spool
from tests.fakes.clock import FakeClock
from tests.fakes.nvml import (
    GIB,
    GPU_IS_LOST,
    LIBRARY_NOT_FOUND,
    NOT_SUPPORTED,
    FakeGpu,
    FakeNVMLError,
    FakePynvml,
)
from tests.fakes.usage_api import API_KEY, FakeUsageApi, free_port

REPO_ROOT = Path(__file__).resolve().parents[2]
GPU_A = "GPU-aaaaaaaa-1111-2222-3333-000000000001"
GPU_B = "GPU-bbbbbbbb-1111-2222-3333-000000000002"
GPU_C = "GPU-cccccccc-1111-2222-3333-000000000003"
# 08:15:42.5 in Shanghai is 00:15:42.5 UTC: the window is [00:15:00, 00:16:00) UTC.
T0 = datetime(2026, 11, 1, 8, 15, 42, 500000, tzinfo=ZoneInfo("Asia/Shanghai"))
W0 = "2026-11-01T00:15:00+00:00"
W1 = "2026-11-01T00:16:00+00:00"
W2 = "2026-11-01T00:17:00+00:00"
W3 = "2026-11-01T00:18:00+00:00"


# -- samples --------------------------------------------------------------------------------------
def three_gpus() -> list[FakeGpu]:
    """A: one training process; B: idle; C: two processes, no energy counter (NOT_SUPPORTED)."""
    return [
        FakeGpu(GPU_A, pids=(101,), util=87, mem=40 * GIB, energy=123_456_789),
        FakeGpu(GPU_B, util=0, mem=0, energy=5_000),
        FakeGpu(GPU_C, pids=(7, 8), util=100, mem=80 * GIB, energy=None),
    ]


def record_a(start: str = W0, end: str = W1) -> dict[str, Any]:
    return {
        "event_id": f"{GPU_A}:{start}",
        "card": GPU_A,
        "start": start,
        "end": end,
        "telemetry": {
            "utilization_percent": 87,
            "memory_used_bytes": 42_949_672_960,
            "energy_mj": 123_456_789,
        },
    }


def record_b(start: str = W0, end: str = W1) -> dict[str, Any]:
    return {
        "event_id": f"{GPU_B}:{start}",
        "card": GPU_B,
        "start": start,
        "end": end,
        "telemetry": {"utilization_percent": 0, "memory_used_bytes": 0, "energy_mj": 5_000},
    }


def record_c(start: str = W0, end: str = W1) -> dict[str, Any]:
    return {
        "event_id": f"{GPU_C}:{start}",
        "card": GPU_C,
        "start": start,
        "end": end,
        "telemetry": {"utilization_percent": 100, "memory_used_bytes": 85_899_345_920},
    }


@pytest.fixture
def api():
    server = FakeUsageApi().start()
    yield server
    server.stop()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(T0)


@pytest.fixture
def gpus() -> list[FakeGpu]:
    return three_gpus()


@pytest.fixture(autouse=True)
def no_agent_env(monkeypatch):
    monkeypatch.delenv("SUANLI_API_KEY", raising=False)
    monkeypatch.delenv("SUANLI_URL", raising=False)


def make_agent(
    tmp_path: Path, gpus: list[FakeGpu], clock: FakeClock, url: str, *, mode: str = "busy", interval: int = 60
) -> Agent:
    reader = Nvml(module=FakePynvml(gpus))
    reader.open()
    return Agent(
        reader=reader,
        now=clock,
        interval=interval,
        mode=mode,
        spool=Spool(tmp_path / "spool.jsonl"),
        sender=Sender(url=url, api_key=API_KEY, timeout=2.0),
    )


def spooled(tmp_path: Path) -> list[dict[str, Any]]:
    records, _ = Spool(tmp_path / "spool.jsonl").read()
    return records


def rejected(tmp_path: Path) -> list[dict[str, Any]]:
    path = tmp_path / "spool.jsonl.rejected"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


# -- records from samples --------------------------------------------------------------------------
def test_busy_mode_reports_exactly_the_cards_running_compute_processes(gpus):
    samples = Nvml(module=FakePynvml(gpus)).read_cards(query_processes=True)

    assert build_records(samples, at=T0, interval=60, mode="busy") == [record_a(), record_c()]


def test_always_mode_reports_every_card_busy_or_not(gpus):
    samples = Nvml(module=FakePynvml(gpus)).read_cards(query_processes=False)

    assert build_records(samples, at=T0, interval=60, mode="always") == [record_a(), record_b(), record_c()]


def test_cards_nvml_cannot_vouch_for_are_not_billed_and_unreadable_telemetry_is_left_out():
    gpus = [
        FakeGpu(GPU_A, pids=(1,), util=None, util_error=GPU_IS_LOST, mem=None, energy=None),
        FakeGpu(GPU_B, pids=(2,), processes_error=NOT_SUPPORTED, util=50, mem=GIB, energy=1),
    ]
    nvml = Nvml(module=FakePynvml(gpus))

    busy = build_records(nvml.read_cards(query_processes=True), at=T0, interval=60, mode="busy")
    always = build_records(nvml.read_cards(query_processes=False), at=T0, interval=60, mode="always")

    assert busy == [{"event_id": f"{GPU_A}:{W0}", "card": GPU_A, "start": W0, "end": W1, "telemetry": {}}]
    assert [record["card"] for record in always] == [GPU_A, GPU_B]


def test_the_same_window_sampled_twice_gives_the_same_event_ids_and_the_next_window_new_ones(gpus):
    fake = FakePynvml(gpus)
    nvml = Nvml(module=fake)
    first = build_records(nvml.read_cards(query_processes=True), at=T0, interval=60, mode="busy")
    gpus[0].util, gpus[0].energy = 12, 123_999_999  # the load changed; the window did not
    again = build_records(
        nvml.read_cards(query_processes=True), at=T0 + timedelta(seconds=17), interval=60, mode="busy"
    )
    later = build_records(
        nvml.read_cards(query_processes=True), at=T0 + timedelta(seconds=18), interval=60, mode="busy"
    )

    assert (
        [r["event_id"] for r in again] == [r["event_id"] for r in first] == [f"{GPU_A}:{W0}", f"{GPU_C}:{W0}"]
    )
    assert [r["event_id"] for r in later] == [f"{GPU_A}:{W1}", f"{GPU_C}:{W1}"]


@given(
    at=st.datetimes(
        min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.sampled_from([UTC])
    ),
    offset_hours=st.integers(-12, 14),
    interval=st.sampled_from([1, 7, 60, 300, 900, 3600, 86400]),
)
def test_windows_are_aligned_half_open_and_independent_of_the_offset(at, offset_hours, interval):
    local = at.astimezone(timezone(timedelta(hours=offset_hours)))
    start, end = window_containing(local, interval)

    assert start <= at < end
    assert end - start == timedelta(seconds=interval)
    assert start.tzinfo is UTC and int(start.timestamp()) % interval == 0
    assert window_containing(start, interval) == (start, end)
    assert event_id("GPU-x", start) == f"GPU-x:{start.isoformat()}"


# -- delivery: nothing lost, nothing doubled ---------------------------------------------------------
def test_records_are_posted_as_a_json_list_with_the_api_key(tmp_path, gpus, clock, api):
    report = make_agent(tmp_path, gpus, clock, api.url).cycle()

    headers, body = api.requests[0]
    assert headers["Authorization"] == "Api-Key test-key"
    assert headers["Content-Type"] == "application/json"
    assert body == [record_a(), record_c()]
    assert (report.accepted, report.duplicates, report.pending, report.ok) == (2, 0, 0, True)
    assert spooled(tmp_path) == []


def test_api_down_spools_records_and_api_back_resends_each_event_exactly_once(tmp_path, gpus, clock):
    port = free_port()
    agent = make_agent(tmp_path, gpus, clock, f"http://127.0.0.1:{port}")

    down1 = agent.cycle()
    clock.advance(60)
    down2 = agent.cycle()

    assert down1.delivery_failed and down2.delivery_failed
    assert spooled(tmp_path) == [record_a(W0, W1), record_c(W0, W1), record_a(W1, W2), record_c(W1, W2)]

    api = FakeUsageApi(port=port).start()
    try:
        clock.advance(60)
        back = agent.cycle()
    finally:
        api.stop()

    expected = [f"{card}:{w}" for w in (W0, W1, W2) for card in (GPU_A, GPU_C)]
    assert (back.accepted, back.duplicates, back.pending, back.ok) == (6, 0, 0, True)
    assert spooled(tmp_path) == []
    assert sorted(api.stored) == sorted(expected)
    assert sorted(api.posted_ids()) == sorted(expected)  # each sent once, none lost
    assert (api.accepted, api.duplicates, api.conflicts) == (6, 0, 0)


def test_a_lost_response_is_resent_and_counted_as_a_duplicate_not_a_second_record(tmp_path, gpus, clock, api):
    agent = make_agent(tmp_path, gpus, clock, api.url)
    api.script = ["drop"]  # the API stores the batch, then the connection breaks

    lost = agent.cycle()
    clock.advance(60)
    resent = agent.cycle()

    assert lost.delivery_failed and lost.pending == 2
    assert (resent.accepted, resent.duplicates, resent.pending) == (2, 2, 0)
    assert sorted(api.stored) == sorted(f"{card}:{w}" for w in (W0, W1) for card in (GPU_A, GPU_C))
    assert (api.accepted, api.duplicates, api.conflicts) == (4, 2, 0)
    assert spooled(tmp_path) == []


@pytest.mark.parametrize(
    "answer",
    [
        (500, {"code": "server_error"}),
        (502, b"<html>Bad Gateway</html>"),
        (503, {"code": "unavailable"}),
        (429, {"code": "throttled"}),
        (401, {"code": "not_authenticated"}),  # a key the operator will fix: keep the records
        (302, b""),  # never let urllib turn the POST into a GET
        (200, b"<html>a captive portal</html>"),  # not the Suanli API: do not count as sent
    ],
    ids=lambda answer: str(answer[0]),
)
def test_server_errors_keep_the_batch_in_the_spool_and_it_is_retried(tmp_path, gpus, clock, api, answer):
    agent = make_agent(tmp_path, gpus, clock, api.url)
    api.script = [answer]

    failed = agent.cycle()

    assert failed.delivery_failed and not failed.ok
    assert spooled(tmp_path) == [record_a(), record_c()]
    assert rejected(tmp_path) == []

    clock.advance(60)
    retried = agent.cycle()

    assert (retried.accepted, retried.pending, retried.ok) == (4, 0, True)
    assert sorted(api.stored) == sorted(f"{card}:{w}" for w in (W0, W1) for card in (GPU_A, GPU_C))
    assert spooled(tmp_path) == []


def test_a_timeout_keeps_the_batch_in_the_spool(tmp_path, gpus, clock, api):
    agent = make_agent(tmp_path, gpus, clock, api.url)
    agent.sender = Sender(url=api.url, api_key=API_KEY, timeout=0.2)
    api.script = ["hang"]

    report = agent.cycle()

    assert report.delivery_failed
    assert spooled(tmp_path) == [record_a(), record_c()]


def test_a_400_moves_the_batch_to_the_rejected_file_and_it_is_never_sent_again(tmp_path, gpus, clock, api):
    agent = make_agent(tmp_path, gpus, clock, api.url)
    api.script = [(400, {"code": "parse_error", "message": "JSON parse error"})]

    refused = agent.cycle()
    clock.advance(60)
    next_cycle = agent.cycle()

    assert (refused.rejected, refused.pending, refused.ok) == (2, 0, False)
    assert [(line["status"], line["record"]) for line in rejected(tmp_path)] == [
        (400, record_a()),
        (400, record_c()),
    ]
    assert rejected(tmp_path)[0]["response"] == {"code": "parse_error", "message": "JSON parse error"}
    assert (next_cycle.accepted, next_cycle.pending, next_cycle.ok) == (2, 0, True)
    assert api.posted_ids() == [f"{GPU_A}:{W0}", f"{GPU_C}:{W0}", f"{GPU_A}:{W1}", f"{GPU_C}:{W1}"]
    assert spooled(tmp_path) == []


def test_a_400_naming_bad_records_rejects_only_those_and_sends_the_rest_at_once(tmp_path, gpus, clock, api):
    api.known_cards = {GPU_A}  # card C is not this provider's
    agent = make_agent(tmp_path, gpus, clock, api.url)

    report = agent.cycle()

    assert [body for _, body in api.requests] == [[record_a(), record_c()], [record_a()]]
    assert (report.accepted, report.rejected, report.pending) == (1, 1, 0)
    assert [line["record"] for line in rejected(tmp_path)] == [record_c()]
    assert list(api.stored) == [f"{GPU_A}:{W0}"]


def test_a_window_sampled_twice_is_sent_once_with_its_first_telemetry(tmp_path, gpus, clock, api):
    agent = make_agent(tmp_path, gpus, clock, api.url)
    first = agent.cycle()
    gpus[0].util = 3  # a second --once in the same minute, or a restart
    clock.advance(10)
    second = agent.cycle()

    assert (first.sampled, second.sampled, second.already_reported) == (2, 0, 2)
    assert api.posted_ids() == [f"{GPU_A}:{W0}", f"{GPU_C}:{W0}"]
    assert api.stored[f"{GPU_A}:{W0}"] == record_a()
    assert api.conflicts == 0


def test_records_of_a_long_window_wait_in_the_spool_until_it_nearly_ends(tmp_path, gpus, api):
    clock = FakeClock(datetime(2026, 11, 1, 0, 15, tzinfo=UTC))
    agent = make_agent(tmp_path, gpus, clock, api.url, interval=3600)

    early = agent.cycle()  # the window [00:00, 01:00) ends in 45 minutes: the API would refuse it
    posted_early = list(api.requests)
    clock.at = datetime(2026, 11, 1, 0, 56, 30, tzinfo=UTC)
    late = agent.cycle()

    hour = ("2026-11-01T00:00:00+00:00", "2026-11-01T01:00:00+00:00")
    assert (early.sampled, early.pending, early.ok, posted_early) == (2, 2, True, [])
    assert (late.sampled, late.accepted, late.pending) == (0, 2, 0)
    assert [body for _, body in api.requests] == [[record_a(*hour), record_c(*hour)]]


# -- the spool survives a crash -------------------------------------------------------------------
def test_a_torn_last_line_does_not_lose_the_earlier_lines(tmp_path, gpus, clock, api):
    spool = Spool(tmp_path / "spool.jsonl")
    earlier = [record_a(W0, W1), record_c(W0, W1), record_a(W1, W2)]
    spool.append(earlier)
    with open(spool.path, "ab") as handle:  # the agent died in the middle of an append
        handle.write(json.dumps(record_c(W1, W2)).encode()[:37])

    assert spool.read() == (earlier, 1)

    clock.advance(120)  # window W2
    report = make_agent(tmp_path, gpus, clock, api.url).cycle()

    assert (report.accepted, report.pending) == (5, 0)
    assert api.posted_ids() == [r["event_id"] for r in earlier] + [f"{GPU_A}:{W2}", f"{GPU_C}:{W2}"]
    assert spool.read() == ([], 0)


@given(count=st.integers(1, 6), cut=st.floats(0, 1, exclude_max=True))
def test_a_crash_anywhere_in_an_append_keeps_every_earlier_record(tmp_path_factory, count, cut):
    spool = Spool(tmp_path_factory.mktemp("spool") / "spool.jsonl")
    records = [record_a(f"2026-11-01T00:{minute:02d}:00+00:00") for minute in range(count)]
    spool.append(records[:-1])
    intact = spool.path.stat().st_size if spool.path.exists() else 0
    spool.append(records[-1:])
    torn_at = intact + int(cut * (spool.path.stat().st_size - intact))
    os.truncate(spool.path, torn_at)

    survivors, _ = spool.read()
    spool.append([record_b()])
    after, _ = spool.read()

    assert survivors[: count - 1] == records[:-1]
    assert after[: count - 1] == records[:-1] and after[-1] == record_b()


# -- batching --------------------------------------------------------------------------------------
def test_batches_hold_at_most_the_record_count_and_byte_size():
    records = [record_a(f"2026-11-01T{h:02d}:{m:02d}:00+00:00") for h in range(2) for m in range(60)]

    by_count = list(batches(records, max_records=50))
    by_size = list(batches(records, max_bytes=2_000))

    assert [len(b) for b in by_count] == [50, 50, 20]
    assert all(len(encode(b)) <= 2_000 for b in by_size) and len(by_size) > 1
    assert [r for b in by_size for r in b] == records
    assert list(batches(records[:2], max_bytes=10)) == [[records[0]], [records[1]]]


# -- the command line --------------------------------------------------------------------------------
def test_once_dry_run_prints_the_records_and_sends_and_writes_nothing(tmp_path, gpus, clock, api, capsys):
    spool = tmp_path / "spool.jsonl"

    code = main(
        ["--once", "--dry-run", "--mode", "busy", "--url", api.url, "--spool", str(spool)],
        reader=Nvml(module=FakePynvml(gpus)),
        now=clock,
    )

    assert code == 0
    assert json.loads(capsys.readouterr().out) == [record_a(), record_c()]
    assert api.requests == []
    assert list(tmp_path.iterdir()) == []


def test_once_dry_run_in_always_mode_prints_every_card(gpus, clock, capsys):
    code = main(["--once", "--dry-run", "--mode", "always"], reader=Nvml(module=FakePynvml(gpus)), now=clock)

    assert code == 0
    assert json.loads(capsys.readouterr().out) == [record_a(), record_b(), record_c()]


def test_once_sends_with_the_key_and_url_from_the_environment(tmp_path, gpus, clock, api, monkeypatch):
    monkeypatch.setenv("SUANLI_URL", api.url)
    monkeypatch.setenv("SUANLI_API_KEY", API_KEY)
    fake = FakePynvml(gpus)

    code = main(
        ["--once", "--mode", "busy", "--spool", str(tmp_path / "spool.jsonl")],
        reader=Nvml(module=fake),
        now=clock,
    )

    assert code == 0
    assert sorted(api.stored) == [f"{GPU_A}:{W0}", f"{GPU_C}:{W0}"]
    assert fake.shut_down


def test_once_exits_1_when_the_api_cannot_be_reached_and_keeps_the_records(
    tmp_path, gpus, clock, monkeypatch
):
    monkeypatch.setenv("SUANLI_API_KEY", API_KEY)
    url = f"http://127.0.0.1:{free_port()}"

    code = main(
        ["--once", "--mode", "busy", "--url", url, "--spool", str(tmp_path / "spool.jsonl")],
        reader=Nvml(module=FakePynvml(gpus)),
        now=clock,
    )

    assert code == 1
    assert spooled(tmp_path) == [record_a(), record_c()]


def test_missing_nvml_exits_2_with_a_one_line_message(gpus, capsys):
    fake = FakePynvml(gpus, init_error=FakeNVMLError(LIBRARY_NOT_FOUND, "NVML Shared Library Not Found"))

    code = main(["--once", "--dry-run"], reader=Nvml(module=fake))

    out, err = capsys.readouterr()
    assert code == 2
    assert out == ""
    assert err == (
        "suanli-agent: error: NVML unavailable: NVML Shared Library Not Found "
        "(is the NVIDIA driver installed and loaded on this host?)\n"
    )


def test_missing_nvidia_ml_py_exits_2_with_a_one_line_message(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "pynvml", None)  # import pynvml now raises ImportError

    code = main(["--once", "--dry-run"])

    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and "nvidia-ml-py" in err and "Traceback" not in err


def test_no_api_key_exits_2_before_touching_nvml(gpus, capsys):
    fake = FakePynvml(gpus)

    code = main(["--once"], reader=Nvml(module=fake))

    assert code == 2
    assert (
        capsys.readouterr().err == "suanli-agent: error: no API key: pass --api-key or set SUANLI_API_KEY\n"
    )
    assert not fake.initialised


def _nvml_library_present() -> bool:
    try:
        ctypes.CDLL("libnvidia-ml.so.1")
    except OSError:
        return False
    return True


@pytest.mark.skipif(_nvml_library_present(), reason="this host has an NVIDIA driver")
def test_the_module_entry_point_without_a_driver_exits_2_without_a_traceback(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "apps.metering.agent", "--once", "--dry-run"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr.startswith("suanli-agent: error: NVML unavailable") and done.stderr.count("\n") == 1


def test_the_agent_imports_nothing_from_django():
    code = (
        "import sys, apps.metering.agent.cli, apps.metering.agent.agent;"
        "print(sorted(m for m in sys.modules if m == 'django' or m.startswith('django.')))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, timeout=60, check=True
    )

    assert done.stdout.strip() == "[]"


# -- the daemon ------------------------------------------------------------------------------------
def run_daemon(
    agent: Agent, clock: FakeClock, *, sleeps: int, late_by: list[float] | None = None
) -> list[float]:
    """Run the loop; each sleep moves the clock (plus ``late_by``), the ``sleeps``-th one stops it."""
    stop = threading.Event()
    slept: list[float] = []
    late = list(late_by or [])

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        clock.advance(seconds + (late.pop(0) if late else 0))
        if len(slept) >= sleeps:
            stop.set()

    agent.run(stop, sleep)
    return slept


def test_the_daemon_samples_every_window_once_just_before_it_ends(tmp_path, gpus, api):
    clock = FakeClock(datetime(2026, 11, 1, 0, 15, 10, tzinfo=UTC))

    slept = run_daemon(make_agent(tmp_path, gpus, clock, api.url), clock, sleeps=4)

    assert slept == [48, 60, 60, 60]
    assert api.posted_ids() == [f"{card}:{w}" for w in (W0, W1, W2) for card in (GPU_A, GPU_C)]


def test_the_daemon_woken_a_little_late_still_reports_the_window_it_aimed_at(tmp_path, gpus, api):
    clock = FakeClock(datetime(2026, 11, 1, 0, 15, 10, tzinfo=UTC))

    run_daemon(make_agent(tmp_path, gpus, clock, api.url), clock, sleeps=4, late_by=[5, 5, 5])

    assert api.posted_ids() == [f"{card}:{w}" for w in (W0, W1, W2) for card in (GPU_A, GPU_C)]


def test_the_daemon_first_resends_what_an_earlier_run_left_in_the_spool(tmp_path, gpus, api):
    Spool(tmp_path / "spool.jsonl").append(
        [record_a("2026-11-01T00:10:00+00:00", "2026-11-01T00:11:00+00:00")]
    )
    clock = FakeClock(datetime(2026, 11, 1, 0, 15, 10, tzinfo=UTC))

    run_daemon(make_agent(tmp_path, gpus, clock, api.url), clock, sleeps=1)

    assert api.posted_ids() == [f"{GPU_A}:2026-11-01T00:10:00+00:00"]
    assert spooled(tmp_path) == []


def test_the_daemon_skips_windows_it_slept_through_and_reports_each_other_window_once(tmp_path, gpus, api):
    clock = FakeClock(datetime(2026, 11, 1, 0, 15, 10, tzinfo=UTC))

    run_daemon(make_agent(tmp_path, gpus, clock, api.url), clock, sleeps=4, late_by=[0, 100])

    assert api.posted_ids() == [f"{card}:{w}" for w in (W0, W3) for card in (GPU_A, GPU_C)]
    assert api.conflicts == 0


def test_the_daemon_keeps_going_after_a_failed_nvml_read_or_an_unreadable_spool(tmp_path, gpus, api):
    clock = FakeClock(datetime(2026, 11, 1, 0, 15, 10, tzinfo=UTC))
    agent = make_agent(tmp_path, gpus, clock, api.url)
    real_read = agent.reader.read_cards
    failures = iter([FakeNVMLError(GPU_IS_LOST)])

    def read_cards(*, query_processes: bool) -> list:
        failure = next(failures, None)
        if failure:
            raise failure
        return real_read(query_processes=query_processes)

    agent.reader.read_cards = read_cards  # type: ignore[method-assign]
    broken = make_agent(tmp_path / "spool-is-a-directory", gpus, clock, api.url)
    (tmp_path / "spool-is-a-directory" / "spool.jsonl").mkdir(parents=True)

    run_daemon(broken, clock, sleeps=2)  # every cycle fails: logged, the loop goes on (to 00:16:58)
    run_daemon(agent, clock, sleeps=3)  # W1: NVML fails; W2, W3 reported

    assert api.posted_ids() == [f"{card}:{w}" for w in (W2, W3) for card in (GPU_A, GPU_C)]


def test_the_daemon_through_main_stops_on_the_stop_event(tmp_path, gpus, api, monkeypatch):
    monkeypatch.setenv("SUANLI_API_KEY", API_KEY)
    clock = FakeClock(datetime(2026, 11, 1, 0, 15, 10, tzinfo=UTC))
    stop = threading.Event()

    def sleep(seconds: float) -> None:
        clock.advance(seconds)
        if clock.at >= datetime(2026, 11, 1, 0, 17, tzinfo=UTC):
            stop.set()

    code = main(
        ["--mode", "busy", "--url", api.url, "--spool", str(tmp_path / "spool.jsonl")],
        reader=Nvml(module=FakePynvml(gpus)),
        now=clock,
        sleep=sleep,
        stop=stop,
    )

    assert code == 0
    assert api.posted_ids() == [f"{card}:{w}" for w in (W0, W1) for card in (GPU_A, GPU_C)]


def test_with_the_agent_key_the_default_mode_is_always(tmp_path, gpus, clock, api, monkeypatch):
    """Reconciliation reads a card present as observed: the agent key reports every card."""
    monkeypatch.setenv("SUANLI_API_KEY", API_KEY)
    code = main(
        ["--once", "--url", api.url, "--spool", str(tmp_path / "spool.jsonl")],
        reader=Nvml(module=FakePynvml(gpus)),
        now=clock,
    )
    assert code == 0
    assert sorted(api.stored) == [f"{GPU_A}:{W0}", f"{GPU_B}:{W0}", f"{GPU_C}:{W0}"]
    assert api.paths == ["/api/v1/agent/usage/"]
