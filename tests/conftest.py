"""Shared fixtures. Tests run on PostgreSQL (config.settings.test)."""

from __future__ import annotations

import datetime
from io import StringIO

import pytest
import time_machine
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.db import transaction
from rest_framework.test import APIClient

from apps.accounts import roles


@pytest.fixture
def api_client() -> APIClient:
    return APIClient()


@pytest.fixture
def make_staff(django_user_model):
    """A staff user in the given role groups: ``make_staff("finance")``."""

    def make(*role_names: str, username: str | None = None, superuser: bool = False):
        name = username or ("admin" if superuser else "_".join(role_names) or "staff")
        user = django_user_model.objects.create_user(
            username=name, password="pw-Secret-123", is_staff=True, is_superuser=superuser
        )
        for role in role_names:
            user.groups.add(Group.objects.get(name=role))
        return user

    return make


@pytest.fixture
def operations_user(make_staff):
    return make_staff(roles.OPERATIONS)


@pytest.fixture
def operations_client(api_client, operations_user) -> APIClient:
    api_client.force_authenticate(operations_user)
    return api_client


# The demo world, as ``make run`` shows it, on a frozen clock: loaded once per module that asks
# for it, inside a transaction rolled back after the module, so other modules find an empty
# database. Each test still runs in its own savepoint (``db``): what it writes is undone.
DEMO_NOW = datetime.datetime(2026, 11, 28, 10, 0, tzinfo=datetime.timezone(datetime.timedelta(hours=8)))


@pytest.fixture(scope="module")
def demo_world(django_db_setup, django_db_blocker):
    with django_db_blocker.unblock(), time_machine.travel(DEMO_NOW, tick=False):
        outer = transaction.atomic()
        outer.__enter__()
        try:
            call_command("loaddemo", stdout=StringIO(), stderr=StringIO())
        except BaseException:
            transaction.set_rollback(True)
            outer.__exit__(None, None, None)
            raise
    yield DEMO_NOW
    with django_db_blocker.unblock():
        transaction.set_rollback(True)
        outer.__exit__(None, None, None)


@pytest.fixture
def demo(demo_world, db):
    """The demo (loaded once for the module) with this test's writes undone after it."""
    with time_machine.travel(demo_world, tick=False):
        yield demo_world
