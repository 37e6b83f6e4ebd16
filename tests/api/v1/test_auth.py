"""``POST /api/v1/auth/token/``: username and password for a token, then ``Authorization: Token …``."""

from __future__ import annotations

import pytest
from rest_framework.authtoken.models import Token

from apps.accounts import roles
from tests.api.helpers import assert_error

pytestmark = pytest.mark.django_db

URL = "/api/v1/auth/token/"
PASSWORD = "pw-Secret-123"  # the make_staff fixture's password


def test_a_staff_user_gets_a_token_and_uses_it(api_client, make_staff):
    user = make_staff(roles.OPERATIONS)

    response = api_client.post(URL, {"username": user.username, "password": PASSWORD}, format="json")

    assert response.status_code == 200, response.content
    token = response.json()["token"]
    assert set(response.json()) == {"token"}
    assert Token.objects.get(user=user).key == token
    api_client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    assert api_client.get("/api/v1/servers/").status_code == 200


def test_asking_again_returns_the_same_token(api_client, make_staff):
    user = make_staff(roles.FINANCE)
    first = api_client.post(URL, {"username": user.username, "password": PASSWORD}, format="json")
    second = api_client.post(URL, {"username": user.username, "password": PASSWORD}, format="json")
    assert first.json()["token"] == second.json()["token"]
    assert Token.objects.count() == 1


def test_a_form_encoded_request_works_too(api_client, make_staff):
    user = make_staff(roles.FINANCE)
    response = api_client.post(URL, {"username": user.username, "password": PASSWORD})
    assert response.status_code == 200


@pytest.mark.parametrize(
    ("username", "password"),
    [("operations", "wrong"), ("nobody", PASSWORD), ("inactive", PASSWORD)],
)
def test_bad_credentials_answer_400_and_create_no_token(api_client, make_staff, username, password):
    make_staff(roles.OPERATIONS)
    inactive = make_staff(roles.OPERATIONS, username="inactive")
    inactive.is_active = False
    inactive.save()

    response = api_client.post(URL, {"username": username, "password": password}, format="json")

    body = assert_error(response, 400, "invalid_credentials")
    assert body["message"] == "Unable to log in with the username and password given."
    assert Token.objects.count() == 0


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"password": PASSWORD}, "username"),
        ({"username": "x"}, "password"),
        ({"username": ["x"], "password": 1}, "username"),
    ],
)
def test_missing_or_wrong_typed_fields_are_named(api_client, body, field):
    assert_error(api_client.post(URL, body, format="json"), 400, "invalid", field)


def test_malformed_json_answers_malformed_request(api_client):
    response = api_client.post(URL, '{"username": "x",', content_type="application/json")
    assert_error(response, 400, "malformed_request")


def test_a_browser_session_does_not_turn_the_token_request_into_a_csrf_failure(make_staff):
    from rest_framework.test import APIClient

    user = make_staff(roles.FINANCE)
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(user)
    response = client.post(URL, {"username": user.username, "password": PASSWORD}, format="json")
    assert response.status_code == 200, response.content


def test_a_wrong_token_answers_401(api_client):
    api_client.credentials(HTTP_AUTHORIZATION="Token not-a-real-token")
    assert_error(api_client.get("/api/v1/servers/"), 401, "authentication_failed")


def test_no_credentials_answer_401(api_client):
    response = api_client.get("/api/v1/servers/")
    assert_error(response, 401, "not_authenticated")
    assert response["WWW-Authenticate"] == "Token"
