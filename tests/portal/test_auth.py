"""Signing in: the portal's login page, django-axes lockout, who may enter, password reset."""

from __future__ import annotations

import re

import pytest
from django.conf import settings
from django.core import mail

from tests.portal.conftest import PASSWORD

pytestmark = pytest.mark.django_db
LOGIN = "/portal/login/"


def test_anonymous_visitors_are_sent_to_the_portal_login(client, world):
    response = client.get("/portal/invoices/")
    assert response.status_code == 302
    assert response["Location"] == "/portal/login/?next=/portal/invoices/"


def test_a_member_signs_in_and_lands_on_the_dashboard(client, world):
    response = client.post(LOGIN, {"username": "alice", "password": PASSWORD})
    assert response.status_code == 302 and response["Location"] == "/portal/"
    page = client.get("/portal/")
    assert page.status_code == 200
    assert "Acme Test 有限公司" in page.content.decode()


def test_a_wrong_password_says_so(client, world):
    response = client.post(LOGIN, {"username": "alice", "password": "nope"})
    assert response.status_code == 200
    assert "The username or the password is wrong" in response.content.decode()


def test_five_failures_lock_the_username_on_that_address_for_an_hour(client, world):
    for _ in range(5):
        client.post(LOGIN, {"username": "alice", "password": "wrong"}, REMOTE_ADDR="10.0.0.1")
    locked = client.post(LOGIN, {"username": "alice", "password": PASSWORD}, REMOTE_ADDR="10.0.0.1")
    assert locked.status_code == 429
    assert "Too many failed sign-in attempts" in locked.content.decode()
    assert "_auth_user_id" not in client.session
    # Keyed on username + IP: the same user from another address, another user from this one.
    elsewhere = client.post(LOGIN, {"username": "alice", "password": PASSWORD}, REMOTE_ADDR="10.0.0.2")
    assert elsewhere.status_code == 302
    client.logout()
    colleague = client.post(LOGIN, {"username": "bob", "password": PASSWORD}, REMOTE_ADDR="10.0.0.1")
    assert colleague.status_code == 302
    assert settings.AXES_FAILURE_LIMIT == 5 and settings.AXES_COOLOFF_TIME.total_seconds() == 3600


def test_staff_without_membership_get_a_clear_page(client, world):
    client.force_login(world.am)
    response = client.get("/portal/")
    assert response.status_code == 403
    body = response.content.decode()
    assert "Your account is not a member of any customer" in body
    assert 'href="/admin/"' in body


def test_sessions_expire(client, world):
    assert settings.SESSION_COOKIE_AGE == 8 * 3600
    assert settings.SESSION_EXPIRE_AT_BROWSER_CLOSE is True
    client.post(LOGIN, {"username": "alice", "password": PASSWORD})
    assert client.session.get_expire_at_browser_close()


def test_password_reset_by_email(client, world):
    response = client.post("/portal/password-reset/", {"email": "alice@example.com"})
    assert response.status_code == 302 and response["Location"] == "/portal/password-reset/sent/"
    assert len(mail.outbox) == 1 and mail.outbox[0].to == ["alice@example.com"]
    link = re.search(r"http://testserver(/portal/reset/\S+/)", mail.outbox[0].body).group(1)
    form = client.get(link, follow=True)
    assert "Choose a password" in form.content.decode()
    done = client.post(
        form.redirect_chain[-1][0], {"new_password1": "New-Secret-4711", "new_password2": "New-Secret-4711"}
    )
    assert done["Location"] == "/portal/reset/done/"
    assert client.post(LOGIN, {"username": "alice", "password": "New-Secret-4711"}).status_code == 302
