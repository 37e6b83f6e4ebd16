"""The API never answers 500 or HTML to a client's mistake: lone UTF-16 surrogates in JSON text are a
400 ``invalid_text``, ``application/json; charset=utf-8`` is JSON, and unknown URLs under ``/api/``
answer the JSON error shape."""

from __future__ import annotations

import pytest
import time_machine
from django.test import Client

from tests.factories.catalogue import ServerFactory
from tests.factories.metering import NOW, partner_key

pytestmark = pytest.mark.django_db

URL = "/api/v1/usage/"


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


def _record(server, **changes) -> dict:
    record = {
        "event_id": "probe-1",
        "card": server.cards.get(slot=0).uuid,
        "start": "2026-11-20T08:00:00+08:00",
        "end": "2026-11-20T09:00:00+08:00",
    }
    return record | changes


def _body(value) -> bytes:
    """JSON text as a client may send it, with ``\\ud800``-style escapes kept as written."""
    import json

    return json.dumps(value).encode()  # ensure_ascii: a lone surrogate stays an escape


def assert_error(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert set(body) >= {"code", "message", "fields"} and body["code"] == code, body
    assert body["message"]
    return body


def test_a_lone_surrogate_in_an_event_id_is_a_400_not_a_500(server, key):
    for body in ([_record(server, event_id="probe-\ud800")], _record(server, event_id="probe-\ud800")):
        response = Client().post(
            URL, _body(body), content_type="application/json", HTTP_AUTHORIZATION=f"Api-Key {key}"
        )
        error = assert_error(response, 400, "invalid_text")
        assert "surrogate" in error["message"]
    chinese = Client().post(
        URL,
        _body([_record(server, event_id="probe-\ud800")]),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Api-Key {key}",
        HTTP_ACCEPT_LANGUAGE="zh-CN",
    )
    assert "代理字符" in assert_error(chinese, 400, "invalid_text")["message"]


def test_a_lone_surrogate_in_a_telemetry_value_is_a_400(server, key):
    body = [_record(server, telemetry={"note": "\udc00"})]
    response = Client().post(
        URL, _body(body), content_type="application/json", HTTP_AUTHORIZATION=f"Api-Key {key}"
    )
    assert_error(response, 400, "invalid_text")


def test_a_lone_surrogate_in_a_void_reason_is_a_400(server, key):
    stored = Client().post(
        URL, _body([_record(server)]), content_type="application/json", HTTP_AUTHORIZATION=f"Api-Key {key}"
    )
    assert stored.status_code == 201, stored.content
    response = Client().delete(
        f"{URL}probe-1/",
        _body({"reason": "\ud800"}),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Api-Key {key}",
    )
    assert_error(response, 400, "invalid_text")
    # nothing was voided
    from apps.metering.models import UsageRecord

    assert UsageRecord.objects.get(event_id="probe-1").voided_at is None


def test_a_lone_surrogate_in_a_staff_write_is_a_400_naming_the_field(client_as):
    client = client_as(superuser=True)
    response = client.generic(
        "POST",
        "/api/v1/providers/",
        _body({"code": "p-1", "name": "\ud800", "type": "idc"}),
        content_type="application/json",
    )
    body = assert_error(response, 400, "invalid")  # Django REST framework's own check, per field
    assert body["fields"] == {"name": ["Surrogate characters are not allowed: U+D800."]}


@pytest.mark.parametrize(
    "content_type", ["application/json; charset=utf-8", "application/json;charset=UTF-8", "Application/JSON"]
)
def test_json_with_a_charset_parameter_is_accepted(server, key, content_type):
    response = Client().post(
        URL, _body([_record(server)]), content_type=content_type, HTTP_AUTHORIZATION=f"Api-Key {key}"
    )
    assert response.status_code == 201, response.content
    assert response.json() == {"accepted": 1, "duplicates": 0}


def test_another_charset_or_media_type_is_still_415(server, key):
    for content_type in ("application/json; charset=latin-1", "text/plain"):
        response = Client().post(
            URL, _body([_record(server)]), content_type=content_type, HTTP_AUTHORIZATION=f"Api-Key {key}"
        )
        assert_error(response, 415, "unsupported_media_type")


@pytest.mark.parametrize("path", ["/api/v1/nope/", "/api/v1/invoices/1/nope/", "/api/v2/invoices/", "/api/"])
def test_unknown_urls_under_api_answer_the_json_error_shape(client_as, path):
    client = client_as(superuser=True)
    body = assert_error(client.get(path), 404, "not_found")
    assert body == {"code": "not_found", "message": "Not found.", "fields": {}}
    chinese = assert_error(client.get(path, HTTP_ACCEPT_LANGUAGE="zh-CN"), 404, "not_found")
    assert chinese["message"] == "未找到。"
    # anonymous callers too, and other methods
    assert assert_error(Client().post(path, {}), 404, "not_found")["fields"] == {}
