"""Production hardening: ``check --deploy`` is clean with the production settings, the
Content-Security-Policy leaves the admin, the portal and Swagger UI working, and the schema and
docs pages need a login where ``API_DOCS_REQUIRE_LOGIN`` says so (docs/security.md#hardening)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings
from django.test import override_settings
from rest_framework.authtoken.models import Token

from config.csp import CONTENT_SECURITY_POLICY

ROOT = Path(__file__).resolve().parents[2]


def deploy_check(**extra_env: str) -> subprocess.CompletedProcess:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("SECURE_", "SESSION_", "CSRF_", "DJANGO_", "DEBUG"))
    }
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings.production",
        SECRET_KEY="k7Q!v2^zP9#wL4@xR8$mT1&nB6*cY3(hJ5)fD0_gS-eA+uK=oI~pZ|qW",
        ALLOWED_HOSTS="billing.suanli.example",
        DATABASE_URL="postgres://suanli@db.internal:5432/suanli",
        CELERY_BROKER_URL="redis://redis.internal:6379/0",
    )
    env.update(extra_env)
    return subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_check_deploy_is_clean_with_the_production_settings():
    result = deploy_check()
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout


def test_check_deploy_fails_when_hsts_is_switched_off():
    result = deploy_check(SECURE_HSTS_SECONDS="0", SECURE_SSL_REDIRECT="false")
    assert result.returncode == 1
    assert "security.W004" in result.stderr and "security.W008" in result.stderr


def test_production_refuses_to_start_without_its_secrets():
    result = deploy_check(SECRET_KEY="")
    assert result.returncode == 1
    assert "SECRET_KEY must be set in production" in result.stderr


# -- Content-Security-Policy ----------------------------------------------------------------------

CSP = override_settings(
    MIDDLEWARE=[*settings.MIDDLEWARE, "csp.middleware.CSPMiddleware"],
    CONTENT_SECURITY_POLICY=CONTENT_SECURITY_POLICY,
)
INLINE_SCRIPT = re.compile(r"<script(?![^>]*\bsrc=)[^>]*>", re.IGNORECASE)
INLINE_HANDLER = re.compile(r"\son[a-z]+\s*=\s*\"([^\"]*)\"", re.IGNORECASE)
HASHED_HANDLERS = {"window.print();return false;", "this.form.submit()"}  # config/csp.py


def assert_runs_under_csp(response):
    assert response.status_code == 200
    policy = response["Content-Security-Policy"]
    assert (
        "script-src 'self'" in policy and "'unsafe-inline'" not in policy.split("script-src")[1].split(";")[0]
    )
    html = response.content.decode()
    assert not INLINE_SCRIPT.findall(html), "an inline <script> the policy would block"
    assert set(INLINE_HANDLER.findall(html)) <= HASHED_HANDLERS


def test_our_templates_have_no_inline_script_but_the_hashed_print_link():
    for path in (ROOT / "templates").rglob("*.html"):
        if "email" in path.parts:
            continue  # e-mails are read in mail clients, never served under the policy
        text = path.read_text()
        assert not INLINE_SCRIPT.findall(text), path
        assert set(INLINE_HANDLER.findall(text)) <= HASHED_HANDLERS, path


@pytest.mark.django_db
@CSP
def test_admin_portal_and_swagger_ui_work_under_the_policy(client, make_staff):
    assert_runs_under_csp(client.get("/admin/login/"))
    assert_runs_under_csp(client.get("/portal/login/"))
    client.force_login(make_staff(superuser=True))
    assert_runs_under_csp(client.get("/admin/"))
    assert_runs_under_csp(client.get("/admin/contracts/contract/"))
    docs = client.get("/api/docs/")
    assert_runs_under_csp(docs)
    script = re.search(r'<script src="([^"]*\?script=[^"]*)"', docs.content.decode()).group(1)
    js = client.get(script)
    assert js.status_code == 200 and js["Content-Type"].startswith("application/javascript")
    assert "SwaggerUIBundle" in js.content.decode()
    assert client.get("/api/schema/").status_code == 200


# -- the schema and docs behind a login --------------------------------------------------------


@pytest.mark.django_db
@override_settings(API_DOCS_REQUIRE_LOGIN=True)
def test_schema_and_docs_need_a_login_in_production(client, api_client, make_staff):
    schema = api_client.get("/api/schema/")
    assert schema.status_code == 401
    assert b"not_authenticated" in schema.content
    docs = client.get("/api/docs/")
    assert docs.status_code == 302 and docs["Location"].startswith("/admin/login/?next=/api/docs/")
    user = make_staff(username="integrator")
    api_client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    assert api_client.get("/api/schema/").status_code == 200
    client.force_login(user)
    assert client.get("/api/docs/").status_code == 200


@pytest.mark.django_db
@override_settings(API_DOCS_REQUIRE_LOGIN=False)
def test_schema_and_docs_are_open_where_the_setting_is_off(client):
    assert client.get("/api/schema/").status_code == 200
    assert client.get("/api/docs/").status_code == 200


def test_production_turns_the_docs_login_on():
    text = (ROOT / "config" / "settings" / "production.py").read_text()
    assert 'API_DOCS_REQUIRE_LOGIN = env_bool("API_DOCS_REQUIRE_LOGIN", True)' in text
