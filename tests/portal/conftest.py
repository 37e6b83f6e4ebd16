"""Portal fixtures: two customers with one issued invoice each (made through the services), and
portal users of every role; the clock frozen on 2026-12-02 (the invoices were issued on the 1st)."""

from __future__ import annotations

import datetime
from types import SimpleNamespace

import pytest
import time_machine

from apps.accounts import roles
from apps.accounts.models import CustomerMembership
from tests.factories.billing_flows import issued_invoice
from tests.factories.catalogue import CustomerFactory, ServerFactory

SH = datetime.timezone(datetime.timedelta(hours=8))
DEC_2 = datetime.datetime(2026, 12, 2, 9, tzinfo=SH)
PASSWORD = "pw-Portal-2026"


@pytest.fixture
def clock():
    with time_machine.travel(DEC_2, tick=False):
        yield DEC_2


def member(django_user_model, customer, username: str, role: str):
    user = django_user_model.objects.create_user(
        username=username, password=PASSWORD, email=f"{username}@example.com", display_name=username.title()
    )
    CustomerMembership.objects.create(user=user, customer=customer, role=role)
    return user


@pytest.fixture
def world(clock, make_staff, django_user_model):
    am = make_staff(roles.ACCOUNT_MANAGER, username="am1")
    acme = CustomerFactory(code="acme-t", name="Acme Test 有限公司")
    other = CustomerFactory(code="other-t", name="Other Test 有限公司")
    acme_server, other_server = ServerFactory(), ServerFactory()
    acme_invoice = issued_invoice(acme, am, acme_server)  # 100 h × 10.00 = 1,000.00, due 2026-12-31
    other_invoice = issued_invoice(other, am, other_server, hours=50)
    return SimpleNamespace(
        am=am,
        acme=acme,
        other=other,
        acme_server=acme_server,
        other_server=other_server,
        acme_invoice=acme_invoice,
        other_invoice=other_invoice,
        acme_contract=acme.contracts.get(),
        other_contract=other.contracts.get(),
        admin=member(django_user_model, acme, "alice", CustomerMembership.Role.ADMIN),
        billing=member(django_user_model, acme, "carol", CustomerMembership.Role.BILLING),
        viewer=member(django_user_model, acme, "bob", CustomerMembership.Role.VIEWER),
        outsider=member(django_user_model, other, "eve", CustomerMembership.Role.ADMIN),
    )


@pytest.fixture
def portal_client(client, world):
    """A client signed in as Acme's admin."""
    client.force_login(world.admin)
    return client
