"""``POST /api/v1/usage/`` and ``DELETE /api/v1/usage/{event_id}/`` with partner API keys
(docs/usage-api.md)."""

from __future__ import annotations

import datetime
import threading
from collections import Counter
from decimal import Decimal
from urllib.parse import quote

import orjson
import pytest
import time_machine
from django.db import connection
from django.test import Client

from apps.billing.models import Invoice, InvoiceStatus
from apps.contracts import services as contract_services
from apps.metering.agent.collector import build_records
from apps.metering.agent.nvml import CardSample
from apps.metering.agent.sender import Sender, batches
from apps.metering.models import PartnerAPIKey, UsageRecord
from tests.api.helpers import assert_error
from tests.factories.catalogue import CustomerFactory, ServerFactory
from tests.factories.contracts import NOW as CONTRACT_NOW
from tests.factories.contracts import card_line, draft
from tests.factories.metering import MINUTE, NOW, SHANGHAI, card_record, partner_key, server_record

pytestmark = pytest.mark.django_db

URL = "/api/v1/usage/"
START = NOW - 10 * MINUTE


@pytest.fixture(autouse=True)
def frozen_clock():
    with time_machine.travel(NOW, tick=False):
        yield


@pytest.fixture
def server():
    return ServerFactory(serial="SRV-BJ-0001")


@pytest.fixture
def key(server) -> str:
    return partner_key(server.provider)[1]


@pytest.fixture
def uuid(server) -> str:
    return server.cards.get(slot=0).uuid


def post(body, key: str | None, *, content_type: str = "application/json", client: Client | None = None):
    data = body if isinstance(body, bytes) else orjson.dumps(body)
    headers = {"HTTP_AUTHORIZATION": f"Api-Key {key}"} if key else {}
    return (client or Client()).post(URL, data=data, content_type=content_type, **headers)


def assert_batch_error(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.content
    body = response.json()
    assert set(body) == {"code", "message", "fields", "errors"}, body
    assert body["code"] == code and body["message"]
    return body


# -- authentication ------------------------------------------------------------------------------
def test_without_a_key_the_answer_is_401(uuid):
    response = post(card_record(uuid, START), None)
    body = assert_error(response, 401, "not_authenticated")
    assert response["WWW-Authenticate"] == "Api-Key"
    assert "Api-Key" in body["message"]
    assert UsageRecord.objects.count() == 0


@pytest.mark.parametrize("header", ["Api-Key nonsense", "Api-Key abc.def", "Api-Key ", "Api-Key   "])
def test_an_invalid_key_is_refused(uuid, header):
    response = Client().post(
        URL,
        data=orjson.dumps(card_record(uuid, START)),
        content_type="application/json",
        HTTP_AUTHORIZATION=header,
    )
    assert response.status_code == 401
    assert response.json()["code"] in {"authentication_failed", "not_authenticated"}


def test_a_wrong_secret_with_a_real_prefix_is_refused(key, uuid):
    prefix = key.split(".")[0]
    response = post(card_record(uuid, START), f"{prefix}.{'x' * 32}")
    assert assert_error(response, 401, "authentication_failed")["message"] == "Invalid API key."


def test_a_revoked_key_is_refused(server, uuid):
    api_key, key = partner_key(server.provider)
    assert post(card_record(uuid, START), key).status_code == 201
    PartnerAPIKey.objects.filter(pk=api_key.pk).update(revoked=True)
    response = post(card_record(uuid, START + MINUTE), key)
    assert assert_error(response, 401, "authentication_failed")["message"] == "This API key has been revoked."
    assert UsageRecord.objects.count() == 1


def test_an_expired_key_is_refused(server, uuid):
    api_key, key = partner_key(server.provider)
    PartnerAPIKey.objects.filter(pk=api_key.pk).update(expiry_date=NOW - MINUTE)
    response = post(card_record(uuid, START), key)
    assert assert_error(response, 401, "authentication_failed")["message"] == "This API key has expired."


def test_a_staff_token_is_not_a_partner_key(uuid, make_staff):
    from rest_framework.authtoken.models import Token

    token = Token.objects.create(user=make_staff(superuser=True))
    response = Client().post(
        URL,
        data=orjson.dumps(card_record(uuid, START)),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Token {token.key}",
    )
    assert response.status_code == 401


def test_a_partner_key_opens_no_other_endpoint(key):
    response = Client().get("/api/v1/servers/", HTTP_AUTHORIZATION=f"Api-Key {key}")
    assert response.status_code in (401, 403)


# -- ingestion -------------------------------------------------------------------------------------
def test_one_record_is_accepted_then_a_resend_is_a_duplicate(key, uuid):
    record = card_record(
        uuid, START, telemetry={"utilization_percent": 87, "memory_used_bytes": 1, "energy_mj": 2}
    )
    first = post(record, key)
    assert first.status_code == 201, first.content
    assert first.json() == {"accepted": 1, "duplicates": 0}
    second = post(record, key)
    assert second.status_code == 200
    assert second.json() == {"accepted": 0, "duplicates": 1}
    assert UsageRecord.objects.count() == 1


def test_a_batch_mixes_new_records_and_duplicates(key, uuid, server):
    old = card_record(uuid, START)
    post([old], key)
    batch = [old, card_record(uuid, START + MINUTE), server_record(server.serial, START, START + MINUTE), old]
    response = post(batch, key)
    assert response.status_code == 201
    assert response.json() == {"accepted": 2, "duplicates": 2}


def test_a_single_conflicting_record_is_409(key, uuid):
    record = card_record(uuid, START, telemetry={"utilization_percent": 50})
    post(record, key)
    response = post({**record, "telemetry": {"utilization_percent": 60}}, key)
    body = assert_batch_error(response, 409, "usage_conflict")
    assert body["errors"] == [
        {
            "index": 0,
            "event_id": record["event_id"],
            "code": "conflict",
            "errors": {"event_id": [body["fields"]["event_id"][0]]},
        }
    ]
    assert "different content" in body["message"]
    assert UsageRecord.objects.get().utilization_percent == Decimal("50.00")


def test_a_conflict_in_a_batch_is_a_per_record_error_and_nothing_is_stored(key, uuid):
    record = card_record(uuid, START)
    post(record, key)
    fresh = card_record(uuid, START + MINUTE)
    response = post([fresh, {**record, "end": (START + 2 * MINUTE).isoformat()}], key)
    body = assert_batch_error(response, 400, "invalid_batch")
    assert body["fields"] == {}
    assert [(e["index"], e["event_id"], e["code"]) for e in body["errors"]] == [
        (1, record["event_id"], "conflict")
    ]
    assert UsageRecord.objects.count() == 1


def test_an_invalid_batch_lists_every_bad_record_and_stores_nothing(key, uuid):
    good = card_record(uuid, START)
    naive = {**card_record(uuid, START + MINUTE), "start": "2026-11-20T09:00:00"}
    empty = {**card_record(uuid, START + 2 * MINUTE), "end": (START + 2 * MINUTE).isoformat()}
    response = post([good, naive, "junk", empty], key)
    body = assert_batch_error(response, 400, "invalid_batch")
    assert "3 records" in body["message"]
    assert [(e["index"], e["event_id"], list(e["errors"])) for e in body["errors"]] == [
        (1, naive["event_id"], ["start"]),
        (2, None, ["non_field_errors"]),
        (3, empty["event_id"], ["end"]),
    ]
    assert UsageRecord.objects.count() == 0


def test_a_single_invalid_record_names_its_fields(key, uuid):
    response = post({**card_record(uuid, START), "end": (NOW + 6 * MINUTE).isoformat()}, key)
    body = assert_batch_error(response, 400, "invalid")
    assert list(body["fields"]) == ["end"]
    assert body["message"].startswith("end: Ends more than 5 minutes in the future")


@pytest.mark.parametrize(
    ("offset", "status"),
    [(datetime.timedelta(minutes=5), 201), (datetime.timedelta(minutes=5, seconds=1), 400)],
)
def test_the_clock_of_the_server_bounds_the_end(key, uuid, offset, status):
    end = NOW + offset
    assert post(card_record(uuid, end - MINUTE, end), key).status_code == status


def test_another_providers_card_is_named_but_not_described(key, uuid):
    foreign = ServerFactory()
    response = post([card_record(foreign.cards.first().uuid, START)], key)
    body = assert_batch_error(response, 400, "invalid_batch")
    assert body["errors"][0]["errors"] == {"card": ["No card with this UUID among your provider's hardware."]}
    assert foreign.provider.code not in response.content.decode()


# -- bodies that are not a batch -----------------------------------------------------------------
def test_10001_records_are_too_many(key, uuid):
    records = [card_record(uuid, START, event_id=f"e{i}") for i in range(10_001)]
    assert_error(post(records, key), 413, "batch_too_large")
    assert UsageRecord.objects.count() == 0


def test_a_body_over_the_limit_is_413(key, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    response = post(b"[" + b'"x",' * 400 + b'"x"]', key)
    assert_error(response, 413, "payload_too_large")


def test_the_real_limit_fits_10000_agent_records_and_refuses_a_huge_body(key, uuid, server):
    from django.conf import settings

    records = [
        card_record(
            uuid.replace(uuid[-12:], f"{i:012x}"),
            START,
            telemetry={"utilization_percent": 100, "memory_used_bytes": 85 * 1024**3, "energy_mj": 10**12},
        )
        for i in range(10_000)
    ]
    assert len(orjson.dumps(records)) < settings.DATA_UPLOAD_MAX_MEMORY_SIZE / 2
    huge = b"[" + b" " * settings.DATA_UPLOAD_MAX_MEMORY_SIZE + b"]"
    assert_error(post(huge, key), 413, "payload_too_large")


@pytest.mark.parametrize(
    "body",
    [
        b"{",
        b"[1, 2",
        b"not json",
        b"{'single': 'quotes'}",
        b"[NaN]",
        b"\xef\xbb\xbf[]",
        b"[" * 100_000,
        b"",
        b"   ",
    ],
    ids=["open", "unclosed", "text", "quotes", "nan", "bom", "deep", "empty", "blank"],
)
def test_malformed_json_is_400(key, body):
    assert_error(post(body, key), 400, "malformed_request")


def test_a_body_that_is_not_utf8_is_400(key):
    body = assert_error(post('[{"event_id": "é"}]'.encode("latin-1"), key), 400, "malformed_request")
    assert "UTF-8" in body["message"]


def test_integers_beyond_64_bits_are_per_record_errors(key, uuid):
    body = orjson.dumps([card_record(uuid, START)])[:-2] + b',"telemetry":{"energy_mj":' + b"9" * 40 + b"}}]"
    response = post(body, key)
    payload = assert_batch_error(response, 400, "invalid_batch")
    assert list(payload["errors"][0]["errors"]) == ["telemetry"]


@pytest.mark.parametrize("body", [[], "a string", 42, None, True])
def test_a_body_that_is_not_a_record_or_a_list(key, body):
    assert_error(post(body, key), 400, "invalid")


def test_only_json_is_accepted(key, uuid):
    response = post(orjson.dumps(card_record(uuid, START)), key, content_type="text/csv")
    assert_error(response, 415, "unsupported_media_type")


@pytest.mark.parametrize(
    "value", [None, True, 1e308, 10**18, -1, "", "x" * 10_000, [], {}, [1, 2], {"nested": {"deeper": [None]}}]
)
@pytest.mark.parametrize("field", ["event_id", "card", "start", "end", "telemetry"])
def test_wrong_types_anywhere_are_per_record_errors_never_500(key, uuid, field, value):
    response = post([{**card_record(uuid, START), field: value}], key)
    assert response.status_code in (201, 400), response.content
    if response.status_code == 400:
        errors = assert_batch_error(response, 400, "invalid_batch")["errors"]
        assert errors[0]["index"] == 0


# -- void ------------------------------------------------------------------------------------------
def delete(event_id: str, key: str | None, **extra):
    headers = {"HTTP_AUTHORIZATION": f"Api-Key {key}"} if key else {}
    return Client().delete(f"{URL}{quote(event_id, safe='')}/", **headers, **extra)


@pytest.fixture
def leased(server, make_staff):
    """Cards 0 and 1 of the server leased to a customer from Nov 1."""
    am = make_staff("account_manager", username="am")
    customer = CustomerFactory()
    contract = draft(customer, am, [card_line(server, 2)])
    contract_services.contract_activate(contract=contract, actor=am, now=CONTRACT_NOW)
    return customer


def test_a_record_is_voided_until_it_is_invoiced(key, uuid, leased):
    first, second = card_record(uuid, START), card_record(uuid, START + MINUTE)
    post([first, second], key)

    response = delete(first["event_id"], key, QUERY_STRING="reason=sent+twice")
    assert response.status_code == 204, response.content
    voided = UsageRecord.objects.get(event_id=first["event_id"])
    assert voided.voided_at == NOW and voided.void_reason == "sent twice"
    assert delete(first["event_id"], key).status_code == 204  # again: nothing changes
    assert UsageRecord.objects.get(event_id=first["event_id"]).void_reason == "sent twice"
    resent = post(first, key)  # a resend does not bring it back
    assert (resent.status_code, resent.json()) == (200, {"accepted": 0, "duplicates": 1})
    assert UsageRecord.objects.get(event_id=first["event_id"]).voided_at == NOW

    Invoice.objects.create(
        customer=leased,
        period="2026-11",
        status=InvoiceStatus.ISSUED,
        number="INV-2026-000001",
        usage_cutoff_at=NOW + MINUTE,
        total_amount=Decimal("10.00"),
    )
    body = assert_error(delete(second["event_id"], key), 409, "already_invoiced")
    assert "INV-2026-000001" in body["message"]
    assert UsageRecord.objects.get(event_id=second["event_id"]).voided_at is None


def test_a_record_received_after_the_cutoff_can_still_be_voided(key, uuid, leased):
    Invoice.objects.create(
        customer=leased,
        period="2026-11",
        status=InvoiceStatus.ISSUED,
        number="INV-2026-000001",
        usage_cutoff_at=NOW - MINUTE,
    )
    record = card_record(uuid, START)
    post(record, key)
    assert (
        delete(
            record["event_id"], key, data=b'{"reason": "wrong card"}', content_type="application/json"
        ).status_code
        == 204
    )
    assert UsageRecord.objects.get().void_reason == "wrong card"


def test_voiding_needs_the_providers_own_key(key, uuid):
    record = card_record(uuid, START)
    post(record, key)
    other_key = partner_key(ServerFactory().provider)[1]
    assert_error(delete(record["event_id"], other_key), 404, "not_found")
    assert_error(delete("no-such-event", key), 404, "not_found")
    assert delete(record["event_id"], None).status_code == 401
    assert UsageRecord.objects.get().voided_at is None


def test_an_event_id_with_slashes_and_plus_signs_can_be_voided(key, uuid):
    record = card_record(uuid, START, event_id="host/a+b:2026-11-20T01:50:00+00:00")
    post(record, key)
    assert delete(record["event_id"], key).status_code == 204


# -- concurrency and the agent ---------------------------------------------------------------------
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_fifty_concurrent_posts_of_the_same_records_store_each_once():
    server = ServerFactory()
    key = partner_key(server.provider)[1]
    uuids = list(server.cards.values_list("uuid", flat=True))
    records = [card_record(uuids[i % 8], START - (i // 8) * MINUTE) for i in range(100)]
    body = orjson.dumps(records)
    barrier = threading.Barrier(50)
    outcomes: list[tuple[int, dict]] = []
    lock = threading.Lock()

    def send():
        try:
            client = Client()
            barrier.wait(timeout=30)
            response = post(body, key, client=client)
            with lock:
                outcomes.append((response.status_code, response.json()))
        finally:
            connection.close()

    threads = [threading.Thread(target=send) for _ in range(50)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    assert len(outcomes) == 50
    statuses = Counter(status for status, _ in outcomes)
    assert set(statuses) <= {200, 201}, outcomes
    assert sum(b["accepted"] for _, b in outcomes) == 100
    assert sum(b["duplicates"] for _, b in outcomes) == 4900
    assert UsageRecord.objects.count() == 100
    assert UsageRecord.objects.values("event_id").distinct().count() == 100


class FakeReader:
    """NVML as the agent sees it: every card busy."""

    def __init__(self, uuids: list[str]) -> None:
        self.uuids = uuids

    def open(self) -> None: ...

    def close(self) -> None: ...

    def read_cards(self, *, query_processes: bool = True) -> list[CardSample]:
        return [
            CardSample(
                index=i,
                uuid=u.upper(),
                compute_processes=1,
                utilization_percent=90 - i,
                memory_used_bytes=2**30,
                energy_mj=10**9 + i,
            )
            for i, u in enumerate(self.uuids)
        ]


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_the_agents_sender_posts_to_the_real_endpoint(live_server, frozen_clock):
    server = ServerFactory()
    key = partner_key(server.provider)[1]
    samples = FakeReader(list(server.cards.values_list("uuid", flat=True))).read_cards()
    # 30 one-minute windows of 8 cards, the last one ending now.
    records = []
    for minutes_ago in range(30, 0, -1):
        records += build_records(samples, at=NOW - minutes_ago * MINUTE, interval=60, mode="busy")
    sender = Sender(url=live_server.url, api_key=key, timeout=30)
    (batch,) = list(batches(records))

    first = sender.post(batch)
    assert (first.outcome, first.status, first.accepted, first.duplicates) == ("delivered", 201, 240, 0)
    again = sender.post(batch)
    assert (again.outcome, again.status, again.accepted, again.duplicates) == ("delivered", 200, 0, 240)
    assert UsageRecord.objects.count() == 240
    assert UsageRecord.objects.filter(card__server=server).count() == 240

    changed = [{**batch[0], "telemetry": {"utilization_percent": 1}}, *batch[1:3]]
    refused = sender.post(changed)
    assert (refused.outcome, refused.status) == ("rejected", 400)
    assert refused.response["errors"][0]["index"] == 0 and refused.response["errors"][0]["code"] == "conflict"

    bad_key = Sender(url=live_server.url, api_key="nope.nope", timeout=30).post(batch)
    assert (bad_key.outcome, bad_key.status) == ("retry", 401)


def test_the_schema_documents_the_usage_endpoints(api_client):
    response = api_client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    paths = response.json()["paths"]
    assert {"201", "400", "409", "413"} <= set(paths["/api/v1/usage/"]["post"]["responses"])
    assert "delete" in paths["/api/v1/usage/{event_id}/"]
    schemes = response.json()["components"]["securitySchemes"]
    assert schemes["partnerApiKey"]["name"] == "Authorization"


def test_event_ids_of_the_agent_and_the_server_timezone(key, uuid):
    """A record given in Shanghai time is stored as the same instant."""
    start = START.astimezone(SHANGHAI)
    post(card_record(uuid, start), key)
    assert UsageRecord.objects.get().start_at == START
