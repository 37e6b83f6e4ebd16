"""Hardware incidents in the metering agent (docs/hardware-truth.md#sources-and-incidents): health
read from a fake NVML, incidents with a start and an end, kept across restarts, sent to the agent
endpoint. The agent imports no Django; these tests need no database."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from apps.metering.agent.cli import main
from apps.metering.agent.incidents import IncidentTracker
from apps.metering.agent.nvml import CardHealth, Nvml
from tests.fakes.clock import FakeClock
from tests.fakes.nvml import POWER_BRAKE, SW_POWER_CAP, THERMAL, FakeGpu, FakePynvml
from tests.fakes.usage_api import API_KEY, FakeUsageApi

GPU_A = "GPU-aaaaaaaa-1111-2222-3333-000000000001"
GPU_B = "GPU-bbbbbbbb-1111-2222-3333-000000000002"
T0 = datetime(2026, 11, 1, 0, 15, 30, tzinfo=UTC)
MIN = timedelta(minutes=1)


def iso(at: datetime) -> str:
    return at.replace(microsecond=0).isoformat()


# -- the tracker (pure) ----------------------------------------------------------------------------
def test_an_xid_opens_an_incident_that_ends_at_the_next_healthy_read():
    tracker = IncidentTracker()
    first = tracker.observe([CardHealth(0, GPU_A, xid_codes=(79, 79)), CardHealth(1, GPU_B)], T0)
    assert first == [
        {
            "event_id": f"{GPU_A}:xid-79:{iso(T0)}",
            "card": GPU_A,
            "kind": "xid",
            "xid_code": 79,
            "detail": "Xid 79: GPU has fallen off the bus",
            "start": iso(T0),
            "end": None,
        }
    ]
    assert tracker.observe([CardHealth(0, GPU_A, xid_codes=(79,))], T0 + MIN) == []  # still erring
    assert IncidentTracker().observe([CardHealth(1, GPU_B, xid_codes=(1234,))], T0)[0]["detail"] == "Xid 1234"
    ended = tracker.observe([CardHealth(0, GPU_A)], T0 + 2 * MIN)
    assert [(r["event_id"], r["end"]) for r in ended] == [(first[0]["event_id"], iso(T0 + 2 * MIN))]
    assert tracker.open == {}


def test_a_lost_card_is_one_incident_until_it_answers_again_and_its_xid_waits_for_it():
    tracker = IncidentTracker()
    began = tracker.observe([CardHealth(0, GPU_A, xid_codes=(79,))], T0)
    lost = tracker.observe([CardHealth(0, GPU_A, lost=True)], T0 + MIN)
    assert [r["kind"] for r in lost] == ["fell_off_bus"] and lost[0]["end"] is None
    assert tracker.observe([CardHealth(0, GPU_A, lost=True)], T0 + 30 * MIN) == []  # xid not healthy yet
    back = tracker.observe([CardHealth(0, GPU_A)], T0 + 60 * MIN)
    assert sorted((r["kind"], r["start"], r["end"]) for r in back) == [
        ("fell_off_bus", iso(T0 + MIN), iso(T0 + 60 * MIN)),
        ("xid", began[0]["start"], iso(T0 + 60 * MIN)),
    ]


def test_throttling_is_reported_only_past_its_duration_and_a_short_spell_is_forgotten():
    tracker = IncidentTracker(throttle_seconds=300)
    hot = CardHealth(0, GPU_A, thermal_throttle=True)
    assert tracker.observe([hot], T0) == []
    assert tracker.observe([hot], T0 + 4 * MIN) == []
    assert tracker.observe([CardHealth(0, GPU_A)], T0 + 5 * MIN - timedelta(seconds=1)) == []  # 299 s
    assert tracker.open == {}
    assert tracker.observe([hot], T0 + 10 * MIN) == []
    long = tracker.observe([hot], T0 + 15 * MIN)
    assert [(r["kind"], r["start"], r["end"]) for r in long] == [
        ("thermal_throttle", iso(T0 + 10 * MIN), None)
    ]
    ended = tracker.observe([CardHealth(0, GPU_A)], T0 + 40 * MIN)
    assert [(r["event_id"], r["end"]) for r in ended] == [(long[0]["event_id"], iso(T0 + 40 * MIN))]


def test_a_double_bit_ecc_error_is_seen_by_its_event_or_by_the_counter_growing():
    tracker = IncidentTracker()
    assert tracker.observe([CardHealth(0, GPU_A, ecc_uncorrected=2)], T0) == []  # the first count is the base
    grew = tracker.observe([CardHealth(0, GPU_A, ecc_uncorrected=3)], T0 + MIN)
    assert [r["kind"] for r in grew] == ["ecc_double_bit"]
    # the state is JSON: a restarted agent carries on
    restarted = IncidentTracker(state=json.loads(json.dumps(tracker.state())))
    ended = restarted.observe([CardHealth(0, GPU_A, ecc_uncorrected=3)], T0 + 2 * MIN)
    assert [(r["kind"], r["end"]) for r in ended] == [("ecc_double_bit", iso(T0 + 2 * MIN))]
    event = restarted.observe([CardHealth(0, GPU_B, ecc_double_bit_event=True)], T0 + 3 * MIN)
    assert [(r["card"], r["kind"]) for r in event] == [(GPU_B, "ecc_double_bit")]


# -- NVML health -----------------------------------------------------------------------------------
def test_nvml_health_reads_xid_events_throttle_reasons_and_a_lost_card():
    gpus = [FakeGpu(GPU_A, throttle=THERMAL), FakeGpu(GPU_B, throttle=SW_POWER_CAP)]
    fake = FakePynvml(gpus)
    nvml = Nvml(module=fake)
    nvml.open()
    gpus[0].xid(48)
    gpus[0].xid(63)
    first = nvml.read_health()
    assert [(h.uuid, h.xid_codes, h.thermal_throttle, h.power_throttle, h.lost) for h in first] == [
        (GPU_A, (48, 63), True, False, False),
        (GPU_B, (), False, False, False),  # the software power cap is a card at its limit, not a fault
    ]
    gpus[1].throttle = POWER_BRAKE
    gpus[1].lost = False
    gpus[0].lost = True
    second = nvml.read_health()
    assert [(h.uuid, h.lost, h.xid_codes, h.power_throttle) for h in second] == [
        (GPU_A, True, (), False),  # named by the UUID read before
        (GPU_B, False, (), True),
    ]
    nvml.close()


# -- the agent, end to end -------------------------------------------------------------------------
@pytest.fixture
def api():
    server = FakeUsageApi().start()
    yield server
    server.stop()


def run_once(tmp_path, api, fake, clock, *extra) -> int:
    argv = [
        "--once",
        "--url",
        api.url,
        "--api-key",
        API_KEY,
        "--spool",
        str(tmp_path / "spool.jsonl"),
        *extra,
    ]
    return main(argv, reader=Nvml(module=fake), now=clock)


def test_the_agent_posts_usage_to_the_agent_endpoint_and_an_incident_with_its_start_then_its_end(
    tmp_path, api, caplog
):
    gpus = [FakeGpu(GPU_A, pids=(1,), util=90), FakeGpu(GPU_B, pids=(2,), util=80)]
    fake = FakePynvml(gpus)
    clock = FakeClock(T0)
    gpus[1].xid(79)

    assert run_once(tmp_path, api, fake, clock) == 0
    assert set(api.paths) == {"/api/v1/agent/usage/"} and len(api.stored) == 2
    assert "incidents: 1 new reports, 1 sent, 0 waiting" in caplog.text
    (incident,) = api.incidents.values()
    assert (incident["card"], incident["kind"], incident["xid_code"], incident["end"]) == (
        GPU_B,
        "xid",
        79,
        None,
    )

    clock.advance(60)  # a new process: the daemon would be the same, the state is in P.incidents
    assert run_once(tmp_path, api, fake, clock) == 0
    (incident,) = api.incidents.values()
    assert incident["end"] == iso(T0 + MIN)
    assert [len(body) for body in api.incident_requests] == [1, 1]
    saved = json.loads((tmp_path / "spool.jsonl.incidents").read_text())
    assert saved["pending"] == [] and saved["tracker"]["open"] == {}


def test_incidents_wait_in_the_file_while_the_api_is_down(tmp_path, api):
    gpus = [FakeGpu(GPU_A, pids=(1,))]
    fake = FakePynvml(gpus)
    clock = FakeClock(T0)
    assert run_once(tmp_path, api, fake, clock) == 0
    gpus[0].lost = True  # a new process (--once) names the lost card from the state file
    clock.advance(60)
    down = FakeUsageApi().start()
    down.stop()  # a URL where nothing answers
    argv = ["--once", "--url", down.url, "--api-key", API_KEY, "--spool", str(tmp_path / "spool.jsonl")]
    assert main(argv, reader=Nvml(module=fake), now=clock) == 1
    saved = json.loads((tmp_path / "spool.jsonl.incidents").read_text())
    assert [r["kind"] for r in saved["pending"]] == ["fell_off_bus"]
    gpus[0].lost = False
    clock.advance(60)
    assert run_once(tmp_path, api, fake, clock) == 0
    (incident,) = api.incidents.values()
    # the start never reached the API; the end did, and it says when the card fell off
    assert (incident["kind"], incident["start"], incident["end"]) == (
        "fell_off_bus",
        iso(T0 + MIN),
        iso(T0 + 2 * MIN),
    )


def test_with_a_partner_key_the_agent_posts_partner_usage_and_no_incidents(tmp_path, api):
    gpus = [FakeGpu(GPU_A, pids=(1,))]
    gpus[0].xid(79)
    assert run_once(tmp_path, api, FakePynvml(gpus), FakeClock(T0), "--key", "partner") == 0
    assert api.paths == ["/api/v1/usage/"] and api.incidents == {}


def test_an_incident_never_ends_in_the_second_it_began():
    tracker = IncidentTracker()
    tracker.observe([CardHealth(0, GPU_A, xid_codes=(13,))], T0)
    assert tracker.observe([CardHealth(0, GPU_A)], T0 + timedelta(milliseconds=400)) == []
    (ended,) = tracker.observe([CardHealth(0, GPU_A)], T0 + timedelta(seconds=1))
    assert ended["end"] > ended["start"]
