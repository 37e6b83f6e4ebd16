"""Settings shared by every environment. Everything secret or host-specific comes from the environment."""

from __future__ import annotations

import datetime
import os
from decimal import Decimal
from pathlib import Path

import dj_database_url

BASE_DIR = Path(__file__).resolve().parent.parent.parent
VAR_DIR = Path(os.environ.get("SUANLI_VAR_DIR", BASE_DIR / "var"))


def env(name: str, default: str | None = None) -> str | None:
    return os.environ.get(name, default)


def env_bool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


SECRET_KEY = env("SECRET_KEY", "insecure-local-only-key-change-me")
DEBUG = env_bool("DEBUG", False)
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "rest_framework",
    "rest_framework.authtoken",
    "rest_framework_api_key",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_celery_beat",
    "simple_history",
    "import_export",
    "axes",
    "apps.core",
    "apps.accounts",
    "apps.providers",
    "apps.inventory",
    "apps.customers",
    "apps.contracts",
    "apps.metering",
    "apps.billing",
    "apps.webhooks",
    "apps.api",
    "apps.portal",
    "apps.audit",
    "apps.reports",
    "apps.demo",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # Under /api/: one language per response, from Accept-Language or the caller (docs/api.md#language).
    "apps.api.language.ApiLanguageMiddleware",
    # Bodies over the limits answer 413 before anything reads them (docs/api.md#request-size-limits).
    "apps.api.throttling.RequestSizeLimitMiddleware",
    "apps.api.middleware.ApiNotFoundMiddleware",  # unknown /api/ URLs answer JSON, not HTML
    # POSTs with an Idempotency-Key run once per principal and key (docs/api.md#idempotency-keys).
    "apps.api.idempotency.IdempotencyMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "simple_history.middleware.HistoryRequestMiddleware",
    # Last, as django-axes asks: it turns a locked-out login into the lockout answer.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "django.template.context_processors.i18n",
            ],
        },
    },
]

# Database: PostgreSQL everywhere. DATABASE_URL wins; local settings fall back to an embedded server.
DATABASE_URL = env("DATABASE_URL")
# The application's PostgreSQL sessions: JIT compilation off — its heaviest reads (the finance
# reports) aggregate a few hundred thousand rows, where compiling a plan costs 100–250 ms and saves
# less — and 64 MB for a sort or hash table, so a report grouping tens of thousands of rows (AR
# aging's customers × buckets, margin by customer) does not spill to disk as with the default
# 4 MB (docs/reports.md#measured-benchreportspy).
CONNECTION_OPTIONS = "-c jit=off -c work_mem=64MB"


def database_settings(url: str, *, conn_max_age: int = 60) -> dict:
    """Django's DATABASES entry of ``url``, with ``CONNECTION_OPTIONS`` (after any ``options`` the URL gives)."""
    parsed = dj_database_url.parse(url, conn_max_age=conn_max_age)
    options = parsed.setdefault("OPTIONS", {})
    options["options"] = f"{options.get('options', '')} {CONNECTION_OPTIONS}".strip()
    return parsed


DATABASES = {"default": database_settings(DATABASE_URL)} if DATABASE_URL else {}
# A streaming replica of it: report views, portal pages and exports read there when set
# (apps/core/db_router.py, docs/scaling.md#read-replicas); writes and everything else stay on default.
DATABASE_REPLICA_URL = env("DATABASE_REPLICA_URL")
if DATABASE_URL and DATABASE_REPLICA_URL:
    DATABASES["replica"] = database_settings(DATABASE_REPLICA_URL)
REPLICA_READS = bool(DATABASE_URL and DATABASE_REPLICA_URL)
DATABASE_ROUTERS = ["apps.core.db_router.ReplicaRouter"]

AUTH_USER_MODEL = "accounts.User"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
LOGIN_URL = "/admin/login/"
# django-axes first: it refuses a locked-out username+IP before the password is checked
# (docs/portal.md#login-and-lockout).
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = 5
AXES_COOLOFF_TIME = datetime.timedelta(hours=1)
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "portal/locked_out.html"
# Sessions end after 8 hours or when the browser closes, whichever comes first.
SESSION_COOKIE_AGE = 8 * 60 * 60
SESSION_EXPIRE_AT_BROWSER_CLOSE = True
SESSION_COOKIE_HTTPONLY = True
PASSWORD_RESET_TIMEOUT = 3 * 24 * 60 * 60  # invitation and reset links: 3 days

LANGUAGE_CODE = "zh-hans"
LANGUAGES = [("zh-hans", "简体中文"), ("en", "English")]
BILLING_TIME_ZONE = env("BILLING_TIME_ZONE", "Asia/Shanghai")
# Stored in UTC (USE_TZ); shown and entered in the billing time zone in admin and portal forms.
TIME_ZONE = BILLING_TIME_ZONE
USE_I18N = True
LOCALE_PATHS = [BASE_DIR / "locale"]
FORMAT_MODULE_PATH = ["config.formats"]
USE_TZ = True

# Request bodies Django reads into memory. A usage batch of 10,000 records (docs/usage-api.md#limits) is about
# 3 MB from the agent; this leaves room for long event ids, serials and extra telemetry. Larger
# bodies are refused before they are read (the usage API answers 413 payload_too_large).
DATA_UPLOAD_MAX_MEMORY_SIZE = 8 * 1024 * 1024
# Usage ending before the billing period this many months before the current one is refused
# (usage_too_old): billing's late-usage look-back (docs/usage-api.md#answers-and-error-codes).
USAGE_MAX_AGE_MONTHS = int(env("USAGE_MAX_AGE_MONTHS", "12"))
# Every other API request body (docs/api.md#request-size-limits): 413 request_too_large above it.
API_MAX_BODY_SIZE = int(env("API_MAX_BODY_SIZE", str(1024 * 1024)))
# Outside /api/ (admin uploads, portal forms): any request body above it answers 413.
MAX_REQUEST_BODY_SIZE = int(env("MAX_REQUEST_BODY_SIZE", str(32 * 1024 * 1024)))

STATIC_URL = "/static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = BASE_DIR / "staticfiles"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Product policy.
DISCOUNT_APPROVAL_THRESHOLD = Decimal(env("DISCOUNT_APPROVAL_THRESHOLD", "20"))
DEFAULT_CURRENCY = "CNY"
SELLER = {
    "name": env("SELLER_NAME", "算力租赁平台有限公司 Suanli Compute Leasing Co., Ltd."),
    "tax_id": env("SELLER_TAX_ID", "91110108MA01A2B3C4"),
    "address": env("SELLER_ADDRESS", "北京市海淀区中关村大街1号 010-88886666"),
    "bank": env("SELLER_BANK", "中国工商银行北京中关村支行 0200001234567890123"),
}

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
        # Partner API keys: 403 except where a view serves partners (docs/security.md#roles).
        "apps.api.permissions.PartnerKeyGate",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["apps.api.permissions.StaffModelPermissions"],
    "DEFAULT_FILTER_BACKENDS": [
        "django_filters.rest_framework.DjangoFilterBackend",
        "rest_framework.filters.SearchFilter",
        "rest_framework.filters.OrderingFilter",
    ],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "apps.api.exceptions.exception_handler",
    "COERCE_DECIMAL_TO_STRING": True,
    # Fair shares per partner key, user and anonymous IP (docs/api.md#throttling-and-lockout).
    "DEFAULT_THROTTLE_CLASSES": ["apps.api.throttling.PrincipalRateThrottle"],
    # Proxies in front of the web processes that append to X-Forwarded-For (0: REMOTE_ADDR is the client).
    "NUM_PROXIES": int(env("API_NUM_PROXIES", "0")),
}
# Requests per principal ("600/min", "20/s", "10000/h"); counted in the cache (CACHES).
API_THROTTLE_RATES = {
    "user": env("API_THROTTLE_USER", "600/min"),
    "partner": env("API_THROTTLE_PARTNER", "1200/min"),
    "anon": env("API_THROTTLE_ANON", "60/min"),
    "login": env("API_THROTTLE_LOGIN", "10/min"),
}
# Idempotency keys: how long a racing duplicate waits for the first answer, and after how long
# a key whose request never answered (a killed worker) may be taken over.
API_IDEMPOTENCY_WAIT_SECONDS = float(env("API_IDEMPOTENCY_WAIT_SECONDS", "2"))
API_IDEMPOTENCY_LOCK_SECONDS = int(env("API_IDEMPOTENCY_LOCK_SECONDS", "300"))
SPECTACULAR_SETTINGS = {
    "TITLE": "Suanli API",
    "DESCRIPTION": "Billing and contracts for GPU compute leasing: catalogue, contracts, usage, invoices.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # Swagger UI and ReDoc served from the installed sidecar package: /api/docs/ works offline.
    # The partner-key gate (apps.api.permissions.PartnerKeyGate) only refuses keys: not a scheme.
    "AUTHENTICATION_WHITELIST": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
        "apps.api.authentication.PartnerAPIKeyAuthentication",
    ],
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # A writable string field that refuses an empty value says minLength 1.
    "ENFORCE_NON_BLANK_FIELDS": True,
    # Every operation's error answers (400 filters, 401, 403, 404, 413, 415, 429) with the error body.
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "apps.api.v1.schema.add_common_answers",
        "apps.api.idempotency.document_idempotency_key",  # the Idempotency-Key header on POSTs
    ],
    # Several models have a ``status``; name each choice set so they do not clash.
    "ENUM_NAME_OVERRIDES": {
        "HardwareStatusEnum": "apps.inventory.models.HardwareStatus",
        "ContractStatusEnum": "apps.contracts.models.ContractStatus",
        "VoucherStatusEnum": "apps.billing.models.VoucherStatus",
        "SettlementStatusEnum": "apps.billing.models.SettlementStatus",
        "CreditKindEnum": "apps.billing.payments.models.CreditKind",
    },
}

# Celery: broker from the environment (Redis or RabbitMQ in production).
CELERY_BROKER_URL = env("CELERY_BROKER_URL", "memory://")
CELERY_RESULT_BACKEND = env("CELERY_RESULT_BACKEND") or None
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TIMEZONE = BILLING_TIME_ZONE
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)

EMAIL_BACKEND = env("EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
DEFAULT_FROM_EMAIL = env("DEFAULT_FROM_EMAIL", "billing@suanli.example")
# SMTP, with EMAIL_BACKEND=django.core.mail.backends.smtp.EmailBackend (README: production).
EMAIL_HOST = env("EMAIL_HOST", "localhost")
EMAIL_PORT = int(env("EMAIL_PORT", "25"))
EMAIL_HOST_USER = env("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = env("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
# Where the customer portal is reached from outside: the links in customer e-mails
# (docs/invoices.md#e-mail) are built on it.
PORTAL_BASE_URL = env("PORTAL_BASE_URL", "http://127.0.0.1:8000")
# The portal dashboard's usage figures (month so far, 90-day chart, efficiency) are kept this long
# per customer (docs/portal.md#dashboard); 0 computes them on every request.
PORTAL_DASHBOARD_CACHE_SECONDS = int(env("PORTAL_DASHBOARD_CACHE_SECONDS", "300"))
# Shared by every web process with CACHE_URL=redis://…; without it, each process keeps its own.
CACHES = {
    "default": (
        {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": env("CACHE_URL")}
        if env("CACHE_URL")
        else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
    )
}

# Stripe (docs/invoices.md#stripe): card payments for customers of an offshore selling entity.
# Both keys empty (the default): no pay button, and the webhook answers 404.
STRIPE_SECRET_KEY = env("STRIPE_SECRET_KEY", "")
STRIPE_WEBHOOK_SECRET = env("STRIPE_WEBHOOK_SECRET", "")
STRIPE_API_BASE = env("STRIPE_API_BASE", "")  # where the client sends requests; empty: Stripe itself

# Outgoing webhooks (docs/webhooks.md#rotation): after a secret is rotated, the previous one keeps
# signing deliveries (a second v1= in Suanli-Signature) for this many hours.
WEBHOOK_SECRET_ROTATION_GRACE_HOURS = int(env("WEBHOOK_SECRET_ROTATION_GRACE_HOURS", "24"))
# Whether deliveries may go to loopback, private, link-local or reserved addresses (a receiver on
# this machine or the office network). Off: such a delivery fails without being sent, so an
# endpoint cannot reach the platform's own network (docs/webhooks.md#endpoints).
WEBHOOK_ALLOW_PRIVATE_ADDRESSES = env_bool("WEBHOOK_ALLOW_PRIVATE_ADDRESSES", False)

IMPORT_EXPORT_USE_TRANSACTIONS = True
IMPORT_EXPORT_SKIP_ADMIN_LOG = False
IMPORT_EXPORT_IMPORT_PERMISSION_CODE = "add"
IMPORT_EXPORT_EXPORT_PERMISSION_CODE = "view"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", "INFO")},
    # Django's own loggers go through the root handler only (no duplicate lines).
    "loggers": {"django": {"handlers": [], "propagate": True, "level": "INFO"}},
}
