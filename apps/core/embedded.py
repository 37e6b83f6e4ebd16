"""Embedded PostgreSQL for `make run` on a machine with no database server (the pgserver wheel)."""

from __future__ import annotations

from pathlib import Path


def embedded_database(pgdata: Path) -> dict:
    """Start (or reuse) a PostgreSQL 16 server in ``pgdata`` and return Django's DATABASES entry."""
    import pgserver

    pgdata.parent.mkdir(parents=True, exist_ok=True)
    server = pgserver.get_server(pgdata, cleanup_mode=None)
    socket_dir = server.get_uri().split("host=", 1)[1]
    exists = server.psql("SELECT 1 FROM pg_database WHERE datname = 'suanli';")
    if "1 row" not in exists:
        server.psql("CREATE DATABASE suanli;")
    return {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": "suanli",
        "USER": "postgres",
        "PASSWORD": "",
        "HOST": socket_dir,
        "PORT": "",
        "CONN_MAX_AGE": 60,
    }


def embedded_stop(pgdata: Path) -> bool:
    """Stop the embedded server of ``pgdata`` (fast shutdown); False when none was running."""
    import os
    import signal
    import time

    pid_file = pgdata / "postmaster.pid"
    try:
        pid = int(pid_file.read_text().splitlines()[0])
    except (OSError, ValueError, IndexError):
        return False
    try:
        os.kill(pid, signal.SIGINT)
    except ProcessLookupError:
        return False
    for _ in range(100):
        if not pid_file.exists():
            break
        time.sleep(0.1)
    return True
