"""Request size limits (docs/api.md#request-size-limits): API bodies over ``API_MAX_BODY_SIZE``
answer 413 ``request_too_large`` before they are read; the usage endpoints keep their own, larger
limit; everywhere else ``MAX_REQUEST_BODY_SIZE`` applies."""

from __future__ import annotations

import orjson
import pytest
from django.conf import settings
from django.test import Client, override_settings
from rest_framework.test import APIClient

from apps.accounts import roles
from apps.customers.models import Customer
from apps.metering.models import UsageRecord
from tests.api.helpers import assert_error
from tests.factories.catalogue import ServerFactory, valid_uscc
from tests.factories.metering import partner_key

pytestmark = pytest.mark.django_db

MIB = 1024 * 1024


@pytest.fixture
def manager_client(make_staff) -> APIClient:
    client = APIClient()
    client.force_authenticate(make_staff(roles.ACCOUNT_MANAGER))
    return client


def customer_body(name_length: int) -> bytes:
    return orjson.dumps({"code": "acme", "name": "A" * name_length, "tax_id": valid_uscc(424242)})


def test_the_limits_have_sensible_defaults():
    assert settings.API_MAX_BODY_SIZE == 1 * MIB
    assert settings.DATA_UPLOAD_MAX_MEMORY_SIZE == 8 * MIB  # the usage endpoints' own limit
    assert settings.MAX_REQUEST_BODY_SIZE == 32 * MIB


def test_an_api_body_over_one_mib_answers_413_and_creates_nothing(manager_client):
    body = customer_body(MIB)

    response = manager_client.post("/api/v1/customers/", body, content_type="application/json")

    error = assert_error(response, 413, "request_too_large")
    assert error["message"] == f"The request body is too large: {len(body):,} bytes, at most 1,048,576."
    assert Customer.objects.count() == 0


@override_settings(API_MAX_BODY_SIZE=4096)
def test_the_limit_comes_from_the_settings_and_a_body_at_the_limit_passes(manager_client):
    over = customer_body(4096)
    assert_error(
        manager_client.post("/api/v1/customers/", over, content_type="application/json"),
        413,
        "request_too_large",
    )

    small = customer_body(20)
    response = manager_client.post("/api/v1/customers/", small, content_type="application/json")
    assert response.status_code != 413, response.content


@override_settings(API_MAX_BODY_SIZE=1024)
def test_patch_and_the_token_login_are_limited_too(manager_client):
    patched = manager_client.patch(
        "/api/v1/customers/1/", customer_body(2048), content_type="application/json"
    )
    assert_error(patched, 413, "request_too_large")

    login = Client().post(
        "/api/v1/auth/token/",
        orjson.dumps({"username": "x", "password": "p" * 2048}),
        content_type="application/json",
    )
    assert_error(login, 413, "request_too_large")


def test_the_413_speaks_chinese_when_asked(manager_client):
    response = manager_client.post(
        "/api/v1/customers/", customer_body(MIB), content_type="application/json", HTTP_ACCEPT_LANGUAGE="zh"
    )

    body = assert_error(response, 413, "request_too_large")
    assert response["Content-Language"] == "zh-hans"
    assert "1,048,576" in body["message"] and "请求" in body["message"]


def test_usage_batches_keep_their_own_larger_limit():
    server = ServerFactory(serial="SRV-BJ-0001")
    key = partner_key(server.provider)[1]
    # 2 MiB: over the API's limit, under usage's. It reaches the ingestion, which names the bad field.
    body = orjson.dumps({"event_id": "e" * 2 * MIB, "card": "GPU-none", "start": "x", "end": "y"})

    response = Client().post(
        "/api/v1/usage/", body, content_type="application/json", HTTP_AUTHORIZATION=f"Api-Key {key}"
    )

    assert response.status_code == 400, response.content[:300]
    assert response.json()["code"] == "invalid"
    assert "event_id" in response.json()["fields"]
    assert UsageRecord.objects.count() == 0


@override_settings(DATA_UPLOAD_MAX_MEMORY_SIZE=MIB)
def test_usage_over_its_own_limit_answers_its_own_413():
    server = ServerFactory(serial="SRV-BJ-0001")
    key = partner_key(server.provider)[1]

    response = Client().post(
        "/api/v1/usage/",
        orjson.dumps([{"event_id": "e" * MIB}]),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Api-Key {key}",
    )

    assert_error(response, 413, "payload_too_large")


@override_settings(MAX_REQUEST_BODY_SIZE=4096)
def test_outside_the_api_a_body_over_the_limit_answers_413():
    response = Client().post("/admin/login/", {"username": "finance", "password": "p" * 5000})

    assert response.status_code == 413
    assert response.content.decode() == "Request body too large 请求内容过大"

    assert Client().post("/admin/login/", {"username": "finance", "password": "p"}).status_code == 200
