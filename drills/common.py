"""What every drill shares: a scratch database, a real Celery worker, stopping what was started."""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = ROOT / ".venv" / "bin"
PG_ADMIN_URL = os.environ.get("DRILLS_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres")
REDIS_DB = int(os.environ.get("DRILLS_REDIS_DB", "13"))
BROKER_URL = f"redis://127.0.0.1:6379/{REDIS_DB}"
LOG_DIR = ROOT / "var" / "drills"
STRIPE_WEBHOOK_SECRET = os.environ.get("STRIPE_WEBHOOK_SECRET") or "whsec_drill_" + secrets.token_hex(8)


def env_int(name: str, default: int) -> int:
    return int(os.environ.get(name, str(default)))


def admin_sql(sql: str) -> None:
    import psycopg

    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(sql)


def scratch_database() -> tuple[str, str]:
    """Create ``suanli_drill_<random>`` and return (name, url)."""
    name = f"suanli_drill_{secrets.token_hex(4)}"
    admin_sql(f"CREATE DATABASE {name}")
    return name, PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name


def drop_database(name: str) -> None:
    assert name.startswith("suanli_drill_")
    admin_sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def process_env(database_url: str) -> dict[str, str]:
    """The production settings, pointed at the drill's database and broker."""
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.production",
        "DATABASE_URL": database_url,
        "CELERY_BROKER_URL": BROKER_URL,
        "SECRET_KEY": os.environ.get("DRILLS_SECRET_KEY", "drills-" + secrets.token_hex(24)),
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "SECURE_SSL_REDIRECT": "false",
        "STRIPE_WEBHOOK_SECRET": STRIPE_WEBHOOK_SECRET,
        "STRIPE_SECRET_KEY": "sk_test_drill",  # the webhook answers only when Stripe is configured
        "STRIPE_API_BASE": "http://127.0.0.1:9",  # nothing in the drills calls Stripe; never the internet
    }


def migrate(database_url: str) -> None:
    subprocess.run(
        [str(BIN / "python"), "manage.py", "migrate", "--noinput", "-v", "0"],
        cwd=ROOT,
        env=process_env(database_url),
        check=True,
    )


def redis_flush() -> None:
    import redis

    redis.Redis.from_url(BROKER_URL).flushdb()


class Worker:
    """``celery -A config worker`` as production starts it, in its own process group."""

    def __init__(self, database_url: str, name: str):
        self.env = process_env(database_url)
        self.name = name
        self.proc: subprocess.Popen | None = None
        self.starts = 0

    def start(self) -> None:
        LOG_DIR.mkdir(parents=True, exist_ok=True)
        self.starts += 1
        log = open(LOG_DIR / f"{self.name}-worker.log", "a")
        concurrency = os.environ.get("DRILLS_WORKER_CONCURRENCY", "2")
        self.proc = subprocess.Popen(
            [
                str(BIN / "celery"),
                "-A",
                "config",
                "worker",
                "-l",
                "info",
                "-c",
                concurrency,
                "-n",
                f"drill-{self.name}-{self.starts}@%h",
            ],
            cwd=ROOT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()

    def wait_ready(self, timeout: float = 60) -> bool:
        """Until the worker logs ``<node> ready.`` (connected to the broker, consuming)."""
        node = f"drill-{self.name}-{self.starts}@"
        path = LOG_DIR / f"{self.name}-worker.log"

        def ready() -> bool:
            return any(node in line and " ready." in line for line in path.read_text().splitlines())

        return wait_until(ready, timeout=timeout)

    def kill9(self) -> None:
        """SIGKILL the worker and its pool children at once (a machine that dies)."""
        if self.proc and self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait()
        self.proc = None

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
            except ProcessLookupError:
                pass
        self.proc = None


def wait_until(predicate, timeout: float, step: float = 0.25) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return predicate()


def log(message: str) -> None:
    print(f"  [{time.strftime('%H:%M:%S', time.gmtime())} UTC] {message}", file=sys.stderr, flush=True)
