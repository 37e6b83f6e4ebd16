"""Production: every secret and address comes from the environment; nothing embedded.

Passes ``manage.py check --deploy --fail-level WARNING`` (tests/config/test_deploy_check.py;
docs/security.md#hardening). TLS ends at the reverse proxy, which sets ``X-Forwarded-Proto``.
"""

from django.core.exceptions import ImproperlyConfigured

from config.csp import CONTENT_SECURITY_POLICY  # noqa: F401 (a setting)

from .base import *  # noqa: F403
from .base import DATABASE_URL, MIDDLEWARE, env, env_bool

if not DATABASE_URL:
    raise ImproperlyConfigured("DATABASE_URL must point at PostgreSQL in production")
if not env("SECRET_KEY"):
    raise ImproperlyConfigured("SECRET_KEY must be set in production")
if not env("CELERY_BROKER_URL"):
    raise ImproperlyConfigured("CELERY_BROKER_URL must point at Redis or RabbitMQ in production")

DEBUG = False

# HTTPS only. The proxy terminates TLS and says so in X-Forwarded-Proto (it must set or strip the
# header itself, never pass on the client's); plain HTTP is redirected to HTTPS.
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
# HSTS: a year by default (the browser then refuses plain HTTP for that long; start lower, e.g.
# 3600, the first time a host is switched over). ``preload`` only marks the header as eligible for
# the browsers' preload list; submitting the domain there is a separate, deliberate step.
SECURE_HSTS_SECONDS = int(env("SECURE_HSTS_SECONDS", str(365 * 24 * 60 * 60)))
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", True)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", True)
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"

# Cookies only over HTTPS; the session cookie never reaches JavaScript.
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", True)
CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", True)
SESSION_COOKIE_HTTPONLY = True

# Content-Security-Policy (config/csp.py): scripts from our own files only.
MIDDLEWARE = [*MIDDLEWARE, "csp.middleware.CSPMiddleware"]

# /api/schema/ and /api/docs/ only for signed-in users (a session or an API token).
API_DOCS_REQUIRE_LOGIN = env_bool("API_DOCS_REQUIRE_LOGIN", True)

EMAIL_BACKEND = env("EMAIL_BACKEND", "django.core.mail.backends.smtp.EmailBackend")
