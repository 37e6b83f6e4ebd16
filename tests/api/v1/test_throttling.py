"""Throttles (docs/api.md#throttling-and-lockout): each user, each partner key and each IP address
on the token login has its own budget; over it, 429 ``throttled`` with ``Retry-After``."""

from __future__ import annotations

import orjson
import pytest
import time_machine
from django.core.cache import cache
from django.test import Client, override_settings
from rest_framework.test import APIClient

from apps.accounts import roles
from tests.api.helpers import assert_error
from tests.factories.catalogue import ServerFactory
from tests.factories.metering import MINUTE, NOW, card_record, partner_key

pytestmark = pytest.mark.django_db

RATES = {"user": "3/min", "partner": "3/min", "anon": "3/min", "login": "2/min"}
PASSWORD = "pw-Secret-123"  # the make_staff fixture's password


@pytest.fixture(autouse=True)
def low_rates():
    cache.clear()
    with override_settings(API_THROTTLE_RATES=RATES), time_machine.travel(NOW, tick=False) as traveller:
        yield traveller
    cache.clear()


@pytest.fixture
def manager(make_staff):
    return make_staff(roles.ACCOUNT_MANAGER)


def client_of(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def post_usage(api_key: str, record: dict):
    return Client().post(
        "/api/v1/usage/",
        data=orjson.dumps(record),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Api-Key {api_key}",
    )


def assert_throttled(response) -> int:
    body = assert_error(response, 429, "throttled")
    retry_after = int(response["Retry-After"])
    assert 0 < retry_after <= 60
    assert str(retry_after) in body["message"]
    return retry_after


def test_a_user_over_the_rate_gets_429_with_retry_after_until_the_minute_is_over(manager, low_rates):
    client = client_of(manager)
    for _ in range(3):
        assert client.get("/api/v1/customers/").status_code == 200

    assert assert_throttled(client.get("/api/v1/customers/")) == 60

    low_rates.shift(30)
    assert assert_throttled(client.get("/api/v1/customers/")) == 30
    low_rates.shift(31)
    assert client.get("/api/v1/customers/").status_code == 200


def test_the_429_speaks_the_callers_language(manager):
    client = client_of(manager)
    for _ in range(3):
        client.get("/api/v1/customers/")

    response = client.get("/api/v1/customers/", HTTP_ACCEPT_LANGUAGE="zh-CN")

    body = assert_error(response, 429, "throttled")
    assert response["Content-Language"] == "zh-hans"
    assert "60" in body["message"] and "请求" in body["message"]


def test_two_users_do_not_share_a_budget(manager, make_staff):
    other = make_staff(roles.ACCOUNT_MANAGER, username="other_manager")
    mine = client_of(manager)
    for _ in range(3):
        mine.get("/api/v1/customers/")
    assert_throttled(mine.get("/api/v1/customers/"))

    assert client_of(other).get("/api/v1/customers/").status_code == 200


def test_two_partner_keys_do_not_share_a_budget():
    server = ServerFactory(serial="SRV-BJ-0001")
    uuid = server.cards.get(slot=0).uuid
    busy_key = partner_key(server.provider, name="busy")[1]
    quiet_key = partner_key(server.provider, name="quiet")[1]
    record = card_record(uuid, NOW - 10 * MINUTE)

    assert [post_usage(busy_key, record).status_code for _ in range(3)] == [201, 200, 200]
    assert_throttled(post_usage(busy_key, record))

    assert post_usage(quiet_key, record).status_code == 200  # a duplicate, answered: its own budget


def test_a_user_and_a_partner_key_do_not_share_a_budget(manager):
    server = ServerFactory(serial="SRV-BJ-0001")
    key = partner_key(server.provider)[1]
    record = card_record(server.cards.get(slot=0).uuid, NOW - 10 * MINUTE)
    client = client_of(manager)
    for _ in range(3):
        client.get("/api/v1/customers/")
    assert_throttled(client.get("/api/v1/customers/"))

    assert post_usage(key, record).status_code == 201


def test_the_token_login_has_a_budget_per_ip_address(manager):
    def login(ip: str):
        return APIClient().post(
            "/api/v1/auth/token/", {"username": manager.username, "password": PASSWORD}, REMOTE_ADDR=ip
        )

    assert [login("10.0.0.1").status_code for _ in range(2)] == [200, 200]
    assert_throttled(login("10.0.0.1"))

    assert login("10.0.0.2").status_code == 200


@override_settings(API_THROTTLE_RATES=RATES | {"user": "1000/min"})
def test_the_rates_come_from_the_settings(manager):
    client = client_of(manager)

    assert {client.get("/api/v1/customers/").status_code for _ in range(10)} == {200}


def test_anonymous_callers_have_a_budget_per_ip_address():
    assert [Client(REMOTE_ADDR="10.0.0.1").get("/api/docs/").status_code for _ in range(3)] == [200] * 3

    refused = Client(REMOTE_ADDR="10.0.0.1").get("/api/docs/")
    assert refused.status_code == 429
    assert refused["Retry-After"] == "60"

    assert Client(REMOTE_ADDR="10.0.0.2").get("/api/docs/").status_code == 200


def test_a_forwarded_for_header_does_not_buy_a_fresh_budget(manager):
    def login(forwarded_for: str):
        return APIClient().post(
            "/api/v1/auth/token/",
            {"username": manager.username, "password": PASSWORD},
            REMOTE_ADDR="10.0.0.1",
            HTTP_X_FORWARDED_FOR=forwarded_for,
        )

    assert [login(f"192.0.2.{n}").status_code for n in range(2)] == [200, 200]
    assert_throttled(login("192.0.2.99"))
