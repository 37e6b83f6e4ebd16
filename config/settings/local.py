"""Local development and `make run`: embedded PostgreSQL and a file-system broker, no servers needed."""

from .base import *  # noqa: F403
from .base import DATABASE_URL, VAR_DIR, env, env_bool

DEBUG = env_bool("DEBUG", True)

if not DATABASE_URL:
    from apps.core.embedded import embedded_database

    DATABASES = {"default": embedded_database(VAR_DIR / "pgdata")}

if not env("CELERY_BROKER_URL"):
    _broker_dir = VAR_DIR / "broker"
    for _sub in ("in", "processed", "control"):
        (_broker_dir / _sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_URL = "filesystem://"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir / "in"),
        "data_folder_out": str(_broker_dir / "in"),
        "processed_folder": str(_broker_dir / "processed"),
        "store_processed": False,
        "control_folder": str(_broker_dir / "control"),
    }

EMAIL_BACKEND = "django.core.mail.backends.console.EmailBackend"
