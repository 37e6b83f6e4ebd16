"""A real browser (Debian's chromium, driven by Playwright) against a live server on the demo.

Playwright never downloads a browser here: it launches ``/usr/bin/chromium`` (``.ci/run``
installs it). Screenshots of the main pages are kept as test artifacts in ``var/screenshots/``.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.fakes.stripe import SECRET_KEY as STRIPE_SECRET_KEY
from tests.fakes.stripe import WEBHOOK_SECRET as STRIPE_WEBHOOK_SECRET
from tests.fakes.stripe import FakeStripe

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "var" / "screenshots"

# Playwright's sync API runs an event loop in this thread; the live server and the ORM calls the
# tests make around it are ordinary synchronous Django.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


@pytest.fixture(scope="session")
def chromium():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(chromium):
    context = chromium.new_context(viewport={"width": 1366, "height": 900}, accept_downloads=True)
    page = context.new_page()
    page.set_default_timeout(15_000)
    yield page
    context.close()


def screenshot(page, name: str) -> Path:
    """Save a full-page screenshot as ``var/screenshots/<name>.png`` and return its path."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


# -- the system under test: its own database and server process ------------------------------------


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def portal_server(tmp_path_factory):
    """``migrate`` + ``loaddemo`` into a scratch database and ``runserver`` on it, as ``make run`` does,
    with Stripe pointed at the local fake (``tests/fakes/stripe.py``), whose hosted Checkout page
    posts signed webhooks back to this server.

    The browser tests run against this separate process (the production code path: a real HTTP
    server, real sessions and static files), so nothing they do touches the test database.
    Yields an object with ``url``, ``database`` and ``env``.
    """
    import subprocess
    import sys
    import time
    import urllib.request
    import uuid
    from types import SimpleNamespace

    import psycopg
    from django.conf import settings

    root = Path(__file__).resolve().parents[2]
    db = settings.DATABASES["default"]
    host, port, user = db["HOST"] or "127.0.0.1", str(db["PORT"] or 5432), db["USER"]
    name = f"suanli_browser_{uuid.uuid4().hex[:8]}"
    admin = {"host": host, "port": port, "user": user, "dbname": "postgres", "autocommit": True}
    with psycopg.connect(**admin) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    http_port = _free_port()
    url = f"http://127.0.0.1:{http_port}"
    stripe = FakeStripe().start()
    stripe.webhook_url = f"{url}/payments/stripe/webhook/"
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "DATABASE_URL": f"postgres://{user}@{host}:{port}/{name}",
        "PYTHONUNBUFFERED": "1",
        "STRIPE_SECRET_KEY": STRIPE_SECRET_KEY,
        "STRIPE_WEBHOOK_SECRET": STRIPE_WEBHOOK_SECRET,
        "STRIPE_API_BASE": stripe.url,
        "PORTAL_BASE_URL": url,
    }
    log = tmp_path_factory.mktemp("server") / "server.log"
    server = None
    try:
        for command in (["migrate", "--noinput", "-v", "0"], ["loaddemo"]):
            subprocess.run(
                [sys.executable, "manage.py", *command], cwd=root, env=env, check=True, capture_output=True
            )
        with open(log, "w") as out:
            server = subprocess.Popen(
                [
                    sys.executable,
                    "manage.py",
                    "runserver",
                    "--noreload",
                    "--insecure",
                    f"127.0.0.1:{http_port}",
                ],
                cwd=root,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        for _ in range(120):
            try:
                urllib.request.urlopen(f"{url}/admin/login/", timeout=2)
                break
            except OSError:
                time.sleep(0.25)
        else:
            raise RuntimeError(f"the server did not answer: {log.read_text()[-2000:]}")
        yield SimpleNamespace(url=url, database=name, env=env, log=log, stripe=stripe)
    finally:
        stripe.stop()
        if server is not None:
            server.terminate()
            server.wait(timeout=10)
        with psycopg.connect(**admin) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
