"""Team: admins invite colleagues (a user with no password, a membership, a set-password link)."""

from __future__ import annotations

import re

import pytest
from django.core import mail

from apps.accounts.models import CustomerMembership, User

pytestmark = pytest.mark.django_db


def test_the_team_page_lists_the_members_with_roles(portal_client, world):
    body = portal_client.get("/portal/team/").content.decode()
    assert body.count('data-testid="member-row"') == 3
    assert "Alice" in body and "Viewer" in body and "Billing" in body
    assert "Eve" not in body
    assert 'id="invite-form"' in body


def test_an_admin_invites_a_colleague_who_sets_a_password(
    client, portal_client, world, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = portal_client.post(
            "/portal/team/",
            {"email": "Dan@Example.com", "display_name": "Dan", "role": "billing"},
            follow=True,
        )
    assert "Invitation sent to dan@example.com." in response.content.decode()
    user = User.objects.get(username="dan@example.com")
    assert not user.has_usable_password() and not user.is_staff
    assert CustomerMembership.objects.get(user=user).role == "billing"
    assert len(mail.outbox) == 1 and mail.outbox[0].to == ["dan@example.com"]
    assert "Acme Test 有限公司" in mail.outbox[0].subject
    link = re.search(r"http://testserver(/portal/reset/\S+/)", mail.outbox[0].body).group(1)
    portal_client.logout()
    form = client.get(link, follow=True)
    response = client.post(
        form.redirect_chain[-1][0], {"new_password1": "Dan-Secret-99", "new_password2": "Dan-Secret-99"}
    )
    assert response["Location"] == "/portal/reset/done/"
    assert (
        client.post(
            "/portal/login/", {"username": "dan@example.com", "password": "Dan-Secret-99"}
        ).status_code
        == 302
    )
    assert "Acme Test 有限公司" in client.get("/portal/").content.decode()
    # the link is single-use
    assert "This link has expired or was already used." in client.get(link, follow=True).content.decode()


def test_inviting_a_member_twice_is_refused(portal_client, world):
    response = portal_client.post("/portal/team/", {"email": "bob", "role": "viewer"})
    assert "Enter a valid email address." in response.content.decode()
    portal_client.post("/portal/team/", {"email": "x@example.com", "role": "viewer"})
    again = portal_client.post("/portal/team/", {"email": "x@example.com", "role": "admin"})
    assert "x@example.com is already a member of Acme Test 有限公司." in again.content.decode()
    assert CustomerMembership.objects.filter(user__username="x@example.com").count() == 1


def test_staff_accounts_are_not_invited(portal_client, world):
    world.am.email = "am1@example.com"
    world.am.save()
    response = portal_client.post("/portal/team/", {"email": "am1", "role": "viewer"})
    assert response.status_code == 200
    User.objects.filter(pk=world.am.pk).update(username="am1@example.com")
    response = portal_client.post("/portal/team/", {"email": "am1@example.com", "role": "viewer"})
    assert "belongs to a staff account" in response.content.decode()
    assert not CustomerMembership.objects.filter(user=world.am).exists()


@pytest.mark.parametrize("who", ["viewer", "billing"])
def test_only_admins_invite(client, world, who):
    client.force_login(getattr(world, who))
    body = client.get("/portal/team/").content.decode()
    assert 'id="invite-form"' not in body
    response = client.post("/portal/team/", {"email": "z@example.com", "role": "admin"})
    assert response.status_code == 403
    assert not User.objects.filter(username="z@example.com").exists()
