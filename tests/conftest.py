"""Shared fixtures. Tests run on PostgreSQL (config.settings.test)."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group
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
