"""``manage.py create_partner_key PROVIDER_CODE [--name NAME]`` and the partner key admin."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from apps.accounts import roles
from apps.metering.models import PartnerAPIKey
from tests.factories.catalogue import ProviderFactory

pytestmark = pytest.mark.django_db

REPO_ROOT = Path(__file__).resolve().parents[2]


def run(*args: str) -> list[str]:
    out = io.StringIO()
    call_command("create_partner_key", *args, stdout=out)
    return out.getvalue().splitlines()


def test_the_key_is_printed_once_on_the_last_line_and_only_its_hash_is_stored():
    provider = ProviderFactory(code="bj-idc")
    lines = run("bj-idc", "--name", "rack 7 agent")
    key = lines[-1]
    assert key == key.strip() and "." in key and " " not in key
    api_key = PartnerAPIKey.objects.get()
    assert (api_key.provider, api_key.name, api_key.revoked) == (provider, "rack 7 agent", False)
    assert key.startswith(api_key.prefix + ".")
    assert PartnerAPIKey.objects.is_valid(key)
    stored = " ".join(str(v) for v in PartnerAPIKey.objects.values_list().get())
    assert key not in stored and key.split(".")[1] not in stored
    assert api_key.prefix in lines[0] and key not in lines[0]


def test_the_default_name_and_quiet_mode():
    ProviderFactory(code="sh-telecom")
    lines = run("sh-telecom", "--verbosity", "0")
    assert len(lines) == 1
    assert PartnerAPIKey.objects.get().name == "sh-telecom agent"
    assert PartnerAPIKey.objects.is_valid(lines[0])


def test_each_run_makes_a_new_key():
    ProviderFactory(code="gz-ai")
    first, second = run("gz-ai")[-1], run("gz-ai")[-1]
    assert first != second and PartnerAPIKey.objects.count() == 2


def test_an_unknown_provider_is_a_clear_error():
    with pytest.raises(CommandError, match="Unknown provider 'nope'") as info:
        run("nope")
    assert info.value.returncode == 1
    assert PartnerAPIKey.objects.count() == 0


@pytest.mark.parametrize("name", ["", "   ", "x" * 51])
def test_a_bad_name_is_refused(name):
    ProviderFactory(code="bj-idc")
    with pytest.raises(CommandError):
        run("bj-idc", "--name", name)
    assert PartnerAPIKey.objects.count() == 0


def test_from_the_shell_an_unknown_provider_exits_with_status_1():
    settings = connection.settings_dict
    url = f"postgres://{settings['USER']}@{settings['HOST']}:{settings['PORT']}/{settings['NAME']}"
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings.test", "DATABASE_URL": url}
    result = subprocess.run(
        [sys.executable, "manage.py", "create_partner_key", "no-such-provider"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1
    assert "Unknown provider 'no-such-provider'" in result.stderr
    assert result.stdout == ""


# -- admin -----------------------------------------------------------------------------------------
URL = "/admin/metering/partnerapikey/"


@pytest.fixture
def ops_client(client, make_staff):
    client.force_login(make_staff(roles.OPERATIONS, username="ops"))
    return client


def test_operations_create_a_key_in_admin_and_see_it_once(ops_client):
    provider = ProviderFactory(code="bj-idc")
    response = ops_client.post(f"{URL}add/", {"provider": provider.pk, "name": "agent"}, follow=True)
    assert response.status_code == 200
    api_key = PartnerAPIKey.objects.get()
    shown = [str(m) for m in response.context["messages"]]
    key = next(m for m in shown if "API key" in m).split(": ")[1].split(". ")[0]
    assert PartnerAPIKey.objects.is_valid(key) and key.startswith(api_key.prefix)
    listing = ops_client.get(URL)
    assert key not in listing.content.decode()
    assert api_key.prefix in listing.content.decode() and "bj-idc" in listing.content.decode()


def test_the_revoke_action(ops_client):
    provider = ProviderFactory(code="bj-idc")
    keys = [PartnerAPIKey.objects.create_key(provider=provider, name=f"k{i}")[0] for i in range(3)]
    response = ops_client.post(
        URL, {"action": "revoke", "_selected_action": [keys[0].pk, keys[1].pk]}, follow=True
    )
    assert response.status_code == 200
    assert "2 keys revoked" in " ".join(str(m) for m in response.context["messages"])
    from django.contrib.admin.models import LogEntry

    assert (
        LogEntry.objects.filter(object_id__in=[keys[0].pk, keys[1].pk], change_message="Revoked.").count()
        == 2
    )
    assert sorted(PartnerAPIKey.objects.values_list("name", "revoked")) == [
        ("k0", True),
        ("k1", True),
        ("k2", False),
    ]


def test_a_finance_user_cannot_manage_keys(client, make_staff):
    client.force_login(make_staff(roles.FINANCE, username="fin"))
    assert client.get(URL).status_code == 403
    assert client.get("/admin/metering/usagerecord/").status_code == 200
