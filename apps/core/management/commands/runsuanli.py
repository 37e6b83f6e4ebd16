"""Start the whole system for a local try-out: a Celery worker with beat, then the web server."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand

DEMO_LOGIN = ("admin", "suanli-demo")


class Command(BaseCommand):
    help = "Run the web server and a Celery worker with beat (embedded defaults; for `make run`)."

    def add_arguments(self, parser):
        parser.add_argument("--addr", default=os.environ.get("SUANLI_ADDR", "127.0.0.1:8000"))
        parser.add_argument("--no-worker", action="store_true", help="Start only the web server.")

    def handle(self, *args, addr: str, no_worker: bool, **options):
        worker = None
        if not no_worker:
            settings.VAR_DIR.mkdir(parents=True, exist_ok=True)
            worker = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "celery",
                    "-A",
                    "config",
                    "worker",
                    "--beat",
                    "--loglevel=INFO",
                    "--concurrency=2",
                    "--schedule",
                    str(settings.VAR_DIR / "celerybeat-schedule"),
                ],
                env={
                    **os.environ,
                    "DJANGO_SETTINGS_MODULE": os.environ.get(
                        "DJANGO_SETTINGS_MODULE", "config.settings.local"
                    ),
                },
            )
        username, password = DEMO_LOGIN
        worker_text = f"celery worker + beat (pid {worker.pid})" if worker else "not started"
        banner = (
            f"\n  Suanli is starting.\n"
            f"  Admin:    http://{addr}/admin/\n"
            f"  Portal:   http://{addr}/portal/   (customer acme-user)\n"
            f"  API docs: http://{addr}/api/docs/\n"
            f"  Login:    {username} / {password}   (demo data; staff by role: am1, am2, sales1, finance1, ops1;\n"
            f"            customer portal user: acme-user; all with the same password)\n"
            f"  Stop:     Ctrl-C (stops the web server, the worker and the embedded PostgreSQL)\n"
            f"  Worker:   {worker_text}\n"
        )
        self.stdout.write(self.style.SUCCESS(banner))

        def stop(signum, frame):
            raise SystemExit(0)

        # SIGTERM (and SIGINT where the shell left it ignored) stop everything like Ctrl-C does.
        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        try:
            call_command("runserver", addr, use_reloader=False)
        finally:
            if worker and worker.poll() is None:
                worker.send_signal(signal.SIGTERM)
                try:
                    worker.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    worker.kill()
            if not settings.DATABASE_URL:
                # The embedded PostgreSQL started for this run stops with it.
                from django.db import connections

                from apps.core.embedded import embedded_stop

                connections.close_all()
                if embedded_stop(settings.VAR_DIR / "pgdata"):
                    self.stdout.write("Embedded PostgreSQL stopped.")
