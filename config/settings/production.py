"""Production: every secret and address comes from the environment; nothing embedded."""

from django.core.exceptions import ImproperlyConfigured

from .base import *  # noqa: F403
from .base import DATABASE_URL, env, env_bool

if not DATABASE_URL:
    raise ImproperlyConfigured("DATABASE_URL must point at PostgreSQL in production")
if not env("SECRET_KEY"):
    raise ImproperlyConfigured("SECRET_KEY must be set in production")
if not env("CELERY_BROKER_URL"):
    raise ImproperlyConfigured("CELERY_BROKER_URL must point at Redis or RabbitMQ in production")

DEBUG = False
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", True)
CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", True)
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_CONTENT_TYPE_NOSNIFF = True
EMAIL_BACKEND = env("EMAIL_BACKEND", "django.core.mail.backends.smtp.EmailBackend")
