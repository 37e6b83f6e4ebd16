"""The metering agent's endpoints and keys (docs/hardware-truth.md#sources-and-incidents): the agent
key cannot post partner usage, the partner key cannot post agent records, and incidents are
idempotent by the agent's event id."""

from __future__ import annotations

import io

import orjson
import pytest
import time_machine
from django.core.management import call_command
from django.test import Client

from apps.inventory.models import CardIncident, IncidentKind
from apps.metering import services
from apps.metering.models import AgentAPIKey, UsageRecord, UsageSource
from tests.api.helpers import assert_error
from tests.factories.catalogue import ServerFactory
from tests.factories.metering import HOUR, MINUTE, NOW, card_record, partner_key

pytestmark = pytest.mark.django_db

USAGE = "/api/v1/usage/"
AGENT_USAGE = "/api/v1/agent/usage/"
INCIDENTS = "/api/v1/agent/incidents/"
START = NOW - 10 * MINUTE


@pytest.fixture(autouse=True)
def frozen_clock():
    with time_machine.travel(NOW, tick=False):
        yield


@pytest.fixture
def server():
    return ServerFactory(serial="SRV-BJ-0001")


@pytest.fixture
def other_server(server):
    """A second server of the same provider."""
    return ServerFactory(serial="SRV-BJ-0002", site=server.site)


@pytest.fixture
def agent_key(server) -> str:
    return services.agent_key_create(server=server, name="host agent")[1]


@pytest.fixture
def partner(server) -> str:
    return partner_key(server.provider)[1]


def post(url: str, body, key: str | None):
    headers = {"HTTP_AUTHORIZATION": f"Api-Key {key}"} if key else {}
    return Client().post(url, data=orjson.dumps(body), content_type="application/json", **headers)


def uuid_of(server, slot: int = 0) -> str:
    return server.cards.get(slot=slot).uuid


# -- usage: two sources, two keys ------------------------------------------------------------------
def test_the_agent_key_posts_its_servers_usage_stored_with_source_agent(server, agent_key):
    response = post(AGENT_USAGE, [card_record(uuid_of(server, s), START) for s in range(3)], agent_key)
    assert response.status_code == 201, response.content
    assert response.json() == {"accepted": 3, "duplicates": 0}
    records = UsageRecord.objects.filter(source=UsageSource.AGENT)
    assert records.count() == 3
    assert {r.provider_id for r in records} == {server.provider_id}
    # resent: duplicates, not doubles
    again = post(AGENT_USAGE, [card_record(uuid_of(server, s), START) for s in range(3)], agent_key)
    assert again.status_code == 200 and again.json() == {"accepted": 0, "duplicates": 3}


def test_the_agent_key_cannot_post_partner_usage(server, agent_key):
    response = post(USAGE, card_record(uuid_of(server), START), agent_key)
    body = assert_error(response, 403, "agent_key_not_allowed")
    assert "/api/v1/agent/usage/" in body["message"]
    assert UsageRecord.objects.count() == 0


def test_the_partner_key_cannot_post_agent_records(server, partner):
    response = post(AGENT_USAGE, card_record(uuid_of(server), START), partner)
    body = assert_error(response, 403, "permission_denied")
    assert "agent API key" in body["message"]
    claimed = post(USAGE, {**card_record(uuid_of(server), START), "source": "agent"}, partner)
    body = assert_error(claimed, 403, "source_not_allowed")
    assert '"agent"' in body["message"]
    assert UsageRecord.objects.count() == 0
    # saying "partner" is allowed, and is what is stored
    ok = post(USAGE, {**card_record(uuid_of(server), START), "source": "partner"}, partner)
    assert ok.status_code == 201, ok.content
    assert list(UsageRecord.objects.values_list("source", flat=True)) == ["partner"]


def test_the_agent_endpoint_refuses_records_claiming_the_partner_source(server, agent_key):
    response = post(AGENT_USAGE, [{**card_record(uuid_of(server), START), "source": "partner"}], agent_key)
    assert_error(response, 403, "source_not_allowed")
    assert UsageRecord.objects.count() == 0


def test_an_agent_key_reports_only_its_own_servers_cards(server, other_server, agent_key):
    response = post(
        AGENT_USAGE,
        [card_record(uuid_of(server), START), card_record(uuid_of(other_server), START)],
        agent_key,
    )
    assert response.status_code == 400, response.content
    body = response.json()
    assert body["code"] == "invalid_batch"
    assert [(e["index"], list(e["errors"])) for e in body["errors"]] == [(1, ["card"])]
    assert UsageRecord.objects.count() == 0


def test_partner_and_agent_records_of_the_same_card_are_both_kept_and_told_apart(server, agent_key, partner):
    uuid = uuid_of(server)
    partner_record = card_record(uuid, START - HOUR, START, event_id="sched-job-1")
    assert post(USAGE, partner_record, partner).status_code == 201
    assert post(AGENT_USAGE, card_record(uuid, START), agent_key).status_code == 201
    by_source = dict(UsageRecord.objects.values_list("source", "event_id"))
    assert by_source == {"partner": "sched-job-1", "agent": f"{uuid}:{START.isoformat()}"}


def test_an_agent_key_reaches_nothing_else(agent_key):
    for url in ("/api/v1/invoices/", "/api/v1/servers/", USAGE):
        response = Client().get(url, HTTP_AUTHORIZATION=f"Api-Key {agent_key}")
        assert_error(response, 403, "agent_key_not_allowed")


def test_a_revoked_agent_key_is_refused(server, agent_key):
    AgentAPIKey.objects.update(revoked=True)
    response = post(AGENT_USAGE, card_record(uuid_of(server), START), agent_key)
    assert assert_error(response, 401, "authentication_failed")["message"] == "This API key has been revoked."


def test_without_a_key_the_agent_endpoints_answer_401(server):
    for url in (AGENT_USAGE, INCIDENTS):
        assert_error(post(url, {}, None), 401, "not_authenticated")


def test_create_agent_key_prints_a_working_key_once(server):
    out = io.StringIO()
    call_command("create_agent_key", server.serial, stdout=out)
    key = out.getvalue().strip().splitlines()[-1]
    assert AgentAPIKey.objects.get().server == server
    assert post(AGENT_USAGE, card_record(uuid_of(server), START), key).status_code == 201


# -- incidents -------------------------------------------------------------------------------------
def xid(uuid: str, *, end=None, event_id: str = "xid-79-1", start=NOW - 2 * HOUR) -> dict:
    return {
        "event_id": event_id,
        "card": uuid,
        "kind": "xid",
        "xid_code": 79,
        "detail": "GPU has fallen off the bus",
        "start": start.isoformat(),
        "end": end.isoformat() if end else None,
    }


def test_an_incident_is_stored_ongoing_then_ended_and_resends_change_nothing(server, agent_key):
    uuid = uuid_of(server, 3)
    first = post(INCIDENTS, [xid(uuid)], agent_key)
    assert first.status_code == 201 and first.json() == {"created": 1, "ended": 0, "unchanged": 0}
    incident = CardIncident.objects.get()
    assert (incident.card.slot, incident.kind, incident.xid_code, incident.ended_at) == (3, "xid", 79, None)
    assert incident.reported_at == NOW
    resend = post(INCIDENTS, xid(uuid), agent_key)
    assert resend.status_code == 200 and resend.json() == {"created": 0, "ended": 0, "unchanged": 1}
    ended = post(INCIDENTS, [xid(uuid, end=NOW - HOUR)], agent_key)
    assert ended.status_code == 201 and ended.json() == {"created": 0, "ended": 1, "unchanged": 0}
    incident.refresh_from_db()
    assert incident.ended_at == NOW - HOUR
    assert post(INCIDENTS, [xid(uuid, end=NOW - HOUR)], agent_key).json()["unchanged"] == 1
    # another end for an ended incident is a conflict, nothing changes
    conflict = post(INCIDENTS, [xid(uuid, end=NOW - MINUTE)], agent_key)
    assert conflict.status_code == 400 and conflict.json()["errors"][0]["code"] == "conflict"
    incident.refresh_from_db()
    assert incident.ended_at == NOW - HOUR and CardIncident.objects.count() == 1


def test_incidents_of_another_servers_card_are_refused_and_nothing_is_stored(server, other_server, agent_key):
    body = [xid(uuid_of(server)), xid(uuid_of(other_server), event_id="xid-2")]
    response = post(INCIDENTS, body, agent_key)
    assert response.status_code == 400
    assert [(e["index"], list(e["errors"])) for e in response.json()["errors"]] == [(1, ["card"])]
    assert CardIncident.objects.count() == 0


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"kind": "melted"}, "kind"),
        ({"xid_code": None}, "xid_code"),
        ({"end": (NOW - 3 * HOUR).isoformat()}, "end"),
        ({"start": (NOW + HOUR).isoformat()}, "start"),
        ({"detail": "x" * 301}, "detail"),
    ],
)
def test_invalid_incidents_are_refused_per_field(server, agent_key, change, field):
    response = post(INCIDENTS, [{**xid(uuid_of(server)), **change}], agent_key)
    assert response.status_code == 400, response.content
    assert field in response.json()["errors"][0]["errors"]
    assert CardIncident.objects.count() == 0


def test_every_kind_is_taken(server, agent_key):
    body = [
        {
            "event_id": f"e-{kind}",
            "card": uuid_of(server, i),
            "kind": kind,
            "start": (NOW - HOUR).isoformat(),
            **({"xid_code": 48} if kind == IncidentKind.XID else {}),
        }
        for i, kind in enumerate(IncidentKind.values)
    ]
    assert post(INCIDENTS, body, agent_key).json() == {"created": 5, "ended": 0, "unchanged": 0}
    assert sorted(CardIncident.objects.values_list("kind", flat=True)) == sorted(IncidentKind.values)


def test_the_partner_key_cannot_post_incidents(server, partner):
    assert_error(post(INCIDENTS, [xid(uuid_of(server))], partner), 403, "permission_denied")
    assert CardIncident.objects.count() == 0


def test_usage_reads_show_the_source_and_filter_by_it(server, agent_key, partner):
    uuid = uuid_of(server)
    post(USAGE, card_record(uuid, START - HOUR, START, event_id="sched-job-1"), partner)
    post(AGENT_USAGE, card_record(uuid, START), agent_key)
    headers = {"HTTP_AUTHORIZATION": f"Api-Key {partner}"}
    both = Client().get(USAGE, **headers).json()["results"]
    assert sorted((r["event_id"], r["source"]) for r in both) == [
        (f"{uuid}:{START.isoformat()}", "agent"),
        ("sched-job-1", "partner"),
    ]
    agent_only = Client().get(USAGE, {"source": "agent"}, **headers).json()["results"]
    assert [r["source"] for r in agent_only] == ["agent"]
    assert Client().get(USAGE, {"source": "nvml"}, **headers).status_code == 400


def test_a_partner_key_cannot_void_what_the_agent_observed(server, agent_key, partner):
    record = card_record(uuid_of(server), START)
    assert post(AGENT_USAGE, record, agent_key).status_code == 201
    url = f"{USAGE}{record['event_id']}/"
    response = Client().delete(url, HTTP_AUTHORIZATION=f"Api-Key {partner}")
    assert_error(response, 404, "not_found")
    assert UsageRecord.objects.get().voided_at is None
