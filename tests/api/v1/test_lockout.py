"""Brute force (docs/api.md#throttling-and-lockout): after AXES_FAILURE_LIMIT wrong passwords for a
username from one address, django-axes refuses even the right password on the token endpoint and
on the admin login, until the cool-off (1 hour) has passed or the lock is reset."""

from __future__ import annotations

import datetime

import pytest
import time_machine
from axes.utils import reset
from django.conf import settings
from django.test import Client
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from apps.accounts import roles
from tests.api.helpers import assert_error

pytestmark = pytest.mark.django_db

TOKEN = "/api/v1/auth/token/"
ADMIN_LOGIN = "/admin/login/"
PASSWORD = "pw-Secret-123"  # the make_staff fixture's password
NOW = datetime.datetime(2026, 11, 20, 2, 0, tzinfo=datetime.UTC)


@pytest.fixture(autouse=True)
def clock():
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller


@pytest.fixture
def finance(make_staff):
    return make_staff(roles.FINANCE, username="finance")


def token_login(password: str, *, ip: str = "10.0.0.1", username: str = "finance", **headers):
    return APIClient().post(TOKEN, {"username": username, "password": password}, REMOTE_ADDR=ip, **headers)


def test_thirty_wrong_passwords_then_the_right_one_is_refused_on_the_token_endpoint(finance, clock):
    answers = [token_login(f"guess-{n}") for n in range(30)]

    limit = settings.AXES_FAILURE_LIMIT
    assert {a.json()["code"] for a in answers[: limit - 1]} == {"invalid_credentials"}
    assert {(a.status_code, a.json()["code"]) for a in answers[limit - 1 :]} == {(429, "locked_out")}

    right = token_login(PASSWORD)

    body = assert_error(right, 429, "locked_out")
    assert body["message"] == "Too many failed logins for this username: try again in 60 minutes."
    assert right["Retry-After"] == "3600"
    assert "token" not in right.json()
    assert not Token.objects.filter(user=finance).exists()

    # Every refused attempt during the lock starts its hour again (axes' default).
    clock.shift(datetime.timedelta(minutes=59))
    assert_error(token_login(PASSWORD), 429, "locked_out")
    clock.shift(datetime.timedelta(minutes=59))
    assert_error(token_login(PASSWORD), 429, "locked_out")

    clock.shift(datetime.timedelta(hours=1, seconds=1))
    after_cool_off = token_login(PASSWORD)
    assert after_cool_off.status_code == 200, after_cool_off.content
    assert after_cool_off.json()["token"] == Token.objects.get(user=finance).key


def test_the_lock_holds_for_that_username_on_that_address_only(finance, make_staff):
    make_staff(roles.FINANCE, username="colleague")
    for n in range(settings.AXES_FAILURE_LIMIT):
        token_login(f"guess-{n}")

    assert_error(token_login(PASSWORD), 429, "locked_out")
    assert token_login(PASSWORD, ip="10.0.0.2").status_code == 200
    assert token_login(PASSWORD, username="colleague").status_code == 200


def test_an_axes_reset_lifts_the_lock(finance):
    for n in range(settings.AXES_FAILURE_LIMIT):
        token_login(f"guess-{n}")
    assert_error(token_login(PASSWORD), 429, "locked_out")

    reset(username="finance")

    assert token_login(PASSWORD).status_code == 200


def test_the_lockout_speaks_chinese_when_asked(finance):
    for n in range(settings.AXES_FAILURE_LIMIT):
        token_login(f"guess-{n}")

    locked = token_login(PASSWORD, HTTP_ACCEPT_LANGUAGE="zh-CN")

    body = assert_error(locked, 429, "locked_out")
    assert locked["Content-Language"] == "zh-hans"
    assert "60" in body["message"] and "登录" in body["message"]


def test_fewer_failures_than_the_limit_do_not_lock_and_a_success_clears_them(finance):
    for n in range(settings.AXES_FAILURE_LIMIT - 1):
        assert_error(token_login(f"guess-{n}"), 400, "invalid_credentials")
    assert token_login(PASSWORD).status_code == 200

    for n in range(settings.AXES_FAILURE_LIMIT - 1):
        assert_error(token_login(f"again-{n}"), 400, "invalid_credentials")
    assert token_login(PASSWORD).status_code == 200


def admin_login(client: Client, password: str):
    return client.post(
        ADMIN_LOGIN, {"username": "finance", "password": password, "next": "/admin/"}, REMOTE_ADDR="10.0.0.1"
    )


def test_thirty_wrong_passwords_then_the_right_one_is_refused_on_the_admin_login(finance, clock):
    client = Client()
    answers = [admin_login(client, f"guess-{n}") for n in range(30)]
    assert {a.status_code for a in answers[: settings.AXES_FAILURE_LIMIT - 1]} == {200}  # the form again
    assert {a.status_code for a in answers[settings.AXES_FAILURE_LIMIT :]} == {429}

    right = admin_login(client, PASSWORD)

    assert right.status_code == 429
    assert "Too many failed sign-in attempts" in right.content.decode()
    assert "_auth_user_id" not in client.session
    assert client.get("/admin/").status_code == 302  # still sent to the login page

    clock.shift(datetime.timedelta(hours=1, seconds=1))
    after_cool_off = admin_login(client, PASSWORD)
    assert after_cool_off.status_code == 302 and after_cool_off["Location"] == "/admin/"
    assert client.session["_auth_user_id"] == str(finance.pk)


def test_an_axes_reset_lifts_the_admin_lock(finance):
    client = Client()
    for n in range(30):
        admin_login(client, f"guess-{n}")
    assert admin_login(client, PASSWORD).status_code == 429

    reset(ip="10.0.0.1", username="finance")

    assert admin_login(client, PASSWORD).status_code == 302
