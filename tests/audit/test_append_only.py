"""Audit events cannot be edited or deleted: not in the admin (superusers included), not by SQL."""

from __future__ import annotations

import pytest
from django.db import IntegrityError, connection, transaction
from django.urls import reverse

from apps.accounts import roles
from apps.audit.models import AuditAction, AuditEvent
from apps.audit.services import audit_context, audit_record
from tests.factories.catalogue import CustomerFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def event(make_staff):
    finance = make_staff(roles.FINANCE, username="finance1")
    customer = CustomerFactory(code="acme-x", name="Acme X")
    with audit_context(actor=finance, reason="credit limit agreed"):
        return audit_record(
            obj=customer, action=AuditAction.CHANGED, changes={"payment_terms_days": [30, 45]}
        )


@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE audit_auditevent SET reason = 'nothing happened' WHERE id = %s",
        "UPDATE audit_auditevent SET actor_label = 'someone else' WHERE id = %s",
        "DELETE FROM audit_auditevent WHERE id = %s",
    ],
)
def test_sql_update_and_delete_are_refused_by_the_database(event, sql):
    with (
        pytest.raises(IntegrityError, match="append-only"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute(sql, [event.pk])
    event.refresh_from_db()
    assert (event.reason, event.actor_label) == ("credit limit agreed", "finance1")


def test_orm_update_and_delete_are_refused_too(event):
    with pytest.raises(IntegrityError), transaction.atomic():
        AuditEvent.objects.filter(pk=event.pk).update(reason="")
    with pytest.raises(IntegrityError), transaction.atomic():
        AuditEvent.objects.filter(pk=event.pk).delete()
    assert AuditEvent.objects.filter(pk=event.pk, reason="credit limit agreed").exists()


def test_admin_shows_the_trail_read_only_even_to_superusers(client, make_staff, event):
    superuser = make_staff(username="root", superuser=True)
    client.force_login(superuser)
    changelist = client.get(reverse("admin:audit_auditevent_changelist"))
    assert changelist.status_code == 200
    assert "finance1" in changelist.content.decode()
    assert "credit limit agreed" in changelist.content.decode()
    change_url = reverse("admin:audit_auditevent_change", args=[event.pk])
    page = client.get(change_url)
    assert page.status_code == 200
    assert 'name="_save"' not in page.content.decode()  # no save button: nothing to edit
    assert "payment_terms_days" in page.content.decode()
    assert client.post(change_url, {"reason": "edited"}).status_code == 403
    delete_url = reverse("admin:audit_auditevent_delete", args=[event.pk])
    assert client.get(delete_url).status_code == 403
    assert client.post(delete_url, {"post": "yes"}).status_code == 403
    assert client.get(reverse("admin:audit_auditevent_add")).status_code == 403
    bulk = client.post(
        reverse("admin:audit_auditevent_changelist"),
        {"action": "delete_selected", "_selected_action": [event.pk], "post": "yes"},
    )
    assert bulk.status_code in (200, 302)
    event.refresh_from_db()
    assert event.reason == "credit limit agreed"
    assert AuditEvent.objects.count() >= 1


def test_finance_reads_and_filters_the_trail_account_managers_do_not(client, make_staff, event):
    client.force_login(make_staff(roles.FINANCE, username="finance2"))
    url = reverse("admin:audit_auditevent_changelist")
    by_actor = client.get(url, {"actor__id__exact": event.actor_id})
    assert by_actor.status_code == 200 and "credit limit agreed" in by_actor.content.decode()
    by_model = client.get(url, {"content_type__id__exact": event.content_type_id})
    assert "credit limit agreed" in by_model.content.decode()
    by_search = client.get(url, {"q": "Acme X"})
    assert "credit limit agreed" in by_search.content.decode()
    assert "credit limit agreed" not in client.get(url, {"q": "nobody-here"}).content.decode()
    client.force_login(make_staff(roles.ACCOUNT_MANAGER, username="am9"))
    assert client.get(url).status_code == 403
