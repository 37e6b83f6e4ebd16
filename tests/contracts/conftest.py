"""Fixtures shared by the contract tests: the account manager ``am1`` and a client logged in as them."""

from __future__ import annotations

import pytest

from apps.accounts import roles


@pytest.fixture
def am(make_staff):
    return make_staff(roles.ACCOUNT_MANAGER, username="am1")


@pytest.fixture
def am_client(client, am):
    client.force_login(am)
    return client
