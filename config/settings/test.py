"""Tests: the real PostgreSQL server (DATABASE_URL, default the local one on 127.0.0.1:5432)."""

import dj_database_url

from .base import *  # noqa: F403
from .base import env

DATABASES = {
    "default": dj_database_url.parse(
        env("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/suanli"), conn_max_age=0
    )
}
# The replica alias always exists in tests, as a mirror of default (the same test database over a
# second connection); reads go there only where a test turns REPLICA_READS on (tests/core/test_db_router.py).
DATABASES["replica"] = {**DATABASES["default"], "TEST": {"MIRROR": "default"}}
REPLICA_READS = False
SECRET_KEY = "test-only-secret-key"
DEBUG = False
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
CELERY_BROKER_URL = "memory://"
CELERY_TASK_ALWAYS_EAGER = True
CELERY_TASK_EAGER_PROPAGATES = True
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
BILLING_TIME_ZONE = "Asia/Shanghai"
LANGUAGE_CODE = "en"
# django-axes stays on for every request (the portal's lockout tests log in through the login
# page); the test client's ``login()`` calls ``authenticate()`` without a request, which axes
# refuses, so that one call goes through a backend that skips the lockout check.
AUTHENTICATION_BACKENDS = [
    "tests.axes_backend.AxesTestClientBackend",
    "django.contrib.auth.backends.ModelBackend",
]

# Stripe off unless a test turns it on (override_settings) or the browser tests' server process is
# started with the fake's keys (tests/browser/conftest.py); never the real Stripe.
STRIPE_SECRET_KEY = env("STRIPE_SECRET_KEY", "")
STRIPE_WEBHOOK_SECRET = env("STRIPE_WEBHOOK_SECRET", "")
STRIPE_API_BASE = env("STRIPE_API_BASE", "")
if STRIPE_SECRET_KEY and not STRIPE_API_BASE.startswith("http://127.0.0.1:"):
    raise RuntimeError("Tests talk to the local fake Stripe only: set STRIPE_API_BASE to it.")
# Dashboard figures computed on every request, so a test sees what it just wrote.
PORTAL_DASHBOARD_CACHE_SECONDS = int(env("PORTAL_DASHBOARD_CACHE_SECONDS", "0"))
# API throttles out of the way of the rest of the suite (one demo user makes thousands of calls);
# tests/api/v1/test_throttling.py sets low rates with override_settings.
API_THROTTLE_RATES = {
    "user": "100000/min",
    "partner": "100000/min",
    "anon": "100000/min",
    "login": "100000/min",
}
