"""Fixtures of the API tests: clients acting as a role, as a customer portal user, or anonymously."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from apps.accounts.models import CustomerMembership


@pytest.fixture
def client_as(make_staff):
    """``client_as("finance")``: an API client authenticated as a staff user in those roles."""

    def make(*role_names: str, superuser: bool = False) -> APIClient:
        client = APIClient()
        client.force_authenticate(make_staff(*role_names, superuser=superuser))
        return client

    return make


@pytest.fixture
def portal_client(django_user_model):
    """``portal_client(customer)``: a non-staff portal user who is a member of ``customer``."""

    def make(customer, *, username: str = "portal") -> APIClient:
        user = django_user_model.objects.create_user(username=username, password="pw-Secret-123")
        if customer is not None:
            CustomerMembership.objects.create(user=user, customer=customer)
        client = APIClient()
        client.force_authenticate(user)
        return client

    return make
