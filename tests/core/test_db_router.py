"""Read replicas (apps/core/db_router.py, docs/scaling.md#read-replicas).

The test settings always define a ``replica`` alias mirroring ``default`` (the same test database
over a second connection); these tests turn ``REPLICA_READS`` on and count the statements each
connection runs. They commit what they write (``transaction=True``), so the replica connection
sees it, as a real replica would once it has caught up.
"""

from __future__ import annotations

import csv
import datetime
import io

import pytest
import time_machine
from django.db import connections, router, transaction
from django.test import Client, override_settings
from django.test.utils import CaptureQueriesContext
from rest_framework.authtoken.models import Token

from apps.accounts import roles
from apps.accounts.models import CustomerMembership
from apps.billing.models import Invoice
from apps.core.db_router import use_replica
from apps.customers.models import Customer
from tests.factories.billing_flows import issued_invoice
from tests.factories.catalogue import CustomerFactory, ServerFactory

pytestmark = pytest.mark.django_db(
    databases=["default", "replica"], transaction=True, serialized_rollback=True
)

REPLICA_ON = override_settings(REPLICA_READS=True)
DEC_2 = datetime.datetime(2026, 12, 2, 9, tzinfo=datetime.timezone(datetime.timedelta(hours=8)))


def writes(captured) -> list[str]:
    found = []
    for query in captured.captured_queries:
        sql = query["sql"].lstrip().upper()
        if sql.startswith(("INSERT", "UPDATE", "DELETE")) or " FOR UPDATE" in sql:
            found.append(query["sql"])
    return found


def touches(captured, table: str) -> bool:
    return any(f'"{table}"' in query["sql"] for query in captured.captured_queries)


@pytest.fixture
def world(make_staff, django_user_model):
    with time_machine.travel(DEC_2, tick=False):
        yield _world(make_staff, django_user_model)


def _world(make_staff, django_user_model):
    am = make_staff(roles.ACCOUNT_MANAGER, username="am1")
    acme = CustomerFactory(code="acme-r", name="Acme Replica")
    invoice = issued_invoice(acme, am, ServerFactory())  # 100 h × 10.00, issued 2026-12-01
    user = django_user_model.objects.create_user(username="alice", password="pw-Portal-2026")
    CustomerMembership.objects.create(user=user, customer=acme, role=CustomerMembership.Role.ADMIN)
    finance = make_staff(roles.FINANCE, username="fin1")
    return acme, invoice, user, finance


def test_reads_stay_on_the_primary_unless_replica_reads_are_on():
    with use_replica():
        assert Customer.objects.all().db == "default"
    with REPLICA_ON:
        assert Customer.objects.all().db == "default"  # outside a replica scope


@REPLICA_ON
def test_in_a_replica_scope_reads_go_to_the_replica_but_locks_transactions_and_writes_do_not():
    with use_replica():
        assert Customer.objects.all().db == "replica"
        assert Customer.objects.select_for_update().db == "default"
        with transaction.atomic():  # a transaction reads its own writes
            assert Customer.objects.all().db == "default"
        assert router.db_for_write(Customer) == "default"
        # after a write the scope reads on the primary: it must see what it wrote
        assert Customer.objects.all().db == "default"
    with use_replica():  # a new scope starts on the replica again
        assert Customer.objects.all().db == "replica"


@REPLICA_ON
def test_a_write_in_a_replica_scope_lands_on_the_primary_and_later_reads_see_it():
    with use_replica():
        with CaptureQueriesContext(connections["replica"]) as on_replica:
            assert Customer.objects.filter(code="new-r").count() == 0
            CustomerFactory(code="new-r")
            assert Customer.objects.filter(code="new-r").count() == 1
    assert len(on_replica) == 1  # the first count only
    assert writes(on_replica) == []
    assert Customer.objects.using("default").filter(code="new-r").exists()


@REPLICA_ON
def test_portal_pages_and_the_usage_export_read_on_the_replica(world):
    _, invoice, user, _ = world
    client = Client()
    client.force_login(user)
    for url in ("/portal/invoices/", f"/portal/invoices/{invoice.pk}/", "/portal/usage/", "/portal/"):
        with (
            CaptureQueriesContext(connections["replica"]) as on_replica,
            CaptureQueriesContext(connections["default"]) as on_primary,
        ):
            response = client.get(url)
        assert response.status_code == 200, url
        assert len(on_replica) > 0, url
        assert writes(on_replica) == [], url
        # the session and the user are read where they are written: the primary
        assert touches(on_primary, "django_session") and not touches(on_replica, "django_session"), url
    assert invoice.number in client.get("/portal/invoices/").content.decode()

    with CaptureQueriesContext(connections["replica"]) as on_replica:
        response = client.get("/portal/usage.csv")
        rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert response.streaming
    assert len(rows) == 2  # the header and the one record of 100 hours
    assert rows[1][6] == "100.0000"
    assert touches(on_replica, "metering_usagerecord")  # read while the body streamed
    assert writes(on_replica) == []


@REPLICA_ON
def test_api_lists_read_on_the_replica_after_authenticating_on_the_primary(world):
    _, invoice, _, finance = world
    token = Token.objects.create(user=finance)
    client = Client(HTTP_AUTHORIZATION=f"Token {token.key}")
    for url in ("/api/v1/invoices/", f"/api/v1/invoices/{invoice.pk}/", "/api/v1/usage/"):
        with (
            CaptureQueriesContext(connections["replica"]) as on_replica,
            CaptureQueriesContext(connections["default"]) as on_primary,
        ):
            response = client.get(url)
        assert response.status_code == 200, (url, response.content[:300])
        assert touches(on_primary, "authtoken_token") and not touches(on_replica, "authtoken_token"), url
        assert len(on_replica) > 0 and writes(on_replica) == [], url
    assert client.get("/api/v1/invoices/").json()["results"][0]["number"] == invoice.number


@REPLICA_ON
def test_writes_and_the_admin_never_touch_the_replica(world):
    acme, invoice, user, finance = world
    admin = Client()
    admin.force_login(finance)
    portal = Client()
    portal.force_login(user)
    with CaptureQueriesContext(connections["replica"]) as on_replica:
        assert admin.get("/admin/billing/invoice/").status_code == 200
        assert admin.get(f"/admin/billing/invoice/{invoice.pk}/change/").status_code == 200
        # a portal POST (switching customer) and an API write run on the primary only
        portal.post("/portal/customer/", {"customer": acme.pk})
        token = Token.objects.create(user=finance)
        api = Client(HTTP_AUTHORIZATION=f"Token {token.key}")
        api.post(f"/api/v1/invoices/{invoice.pk}/void/", {"reason": "test"}, content_type="application/json")
    assert len(on_replica) == 0
    assert Invoice.objects.using("default").get(pk=invoice.pk).status == "void"


@REPLICA_ON
def test_a_template_response_renders_its_lazy_reads_on_the_replica():
    from django.template import engines
    from django.template.response import SimpleTemplateResponse
    from django.test import RequestFactory

    from apps.core.db_router import replica_view

    CustomerFactory(code="lazy-r")
    template = engines["django"].from_string("{% for c in customers %}{{ c.code }}{% endfor %}")

    @replica_view
    def view(request):  # the queryset is evaluated only when the template renders
        return SimpleTemplateResponse(template, {"customers": Customer.objects.filter(code="lazy-r")})

    with CaptureQueriesContext(connections["replica"]) as on_replica:
        response = view(RequestFactory().get("/"))
    assert response.content == b"lazy-r"
    assert touches(on_replica, "customers_customer")


@REPLICA_ON
def test_finance_reports_read_on_the_replica(world):
    _, _, _, finance = world
    client = Client()
    client.force_login(finance)
    with (
        CaptureQueriesContext(connections["replica"]) as on_replica,
        time_machine.travel(DEC_2, tick=False),
    ):
        response = client.get("/admin/reports/revenue/")
    assert response.status_code == 200
    assert touches(on_replica, "billing_invoice")
    assert writes(on_replica) == []
