"""PostgreSQL restarted (``pg_ctl restart -m immediate``) while a client streams usage batches.

    python -m drills.pg_restart

Only ever against a private cluster: ``initdb`` of a temporary data directory, started on a free
port; the shared cluster on 5432 is never touched. gunicorn (production settings) points at it; a
client thread posts batches of new usage records and resends every batch that failed (same event
ids) until it is stored; meanwhile the cluster is restarted ``DRILL_PG_RESTARTS`` times. Holds when
the stored rows equal the distinct event ids sent, none doubled. Prints ``RESULT {...}`` last.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from drills.common import BIN, ROOT, env_int, log, process_env
from drills.data import PROVIDER_SQL
from drills.http_drills import CARDS_SQL, Gunicorn, free_port, partner_key, usage_batch

PG_BIN = next(
    (Path(d) for d in ("/usr/lib/postgresql/15/bin", "/usr/local/bin") if (Path(d) / "pg_ctl").exists()),
    Path("/usr/lib/postgresql/15/bin"),
)

LOAD_SQL = (
    PROVIDER_SQL
    + """
INSERT INTO inventory_server (provider_id, site_id, serial, gpu_model_id, card_count, status, currency, created_at,
    updated_at)
SELECT p.id, s.id, 'D-' || g, m.id, 8, 'available', 'CNY', now(), now()
  FROM generate_series(1, 8) g, providers_provider p, providers_site s, inventory_gpumodel m
 WHERE p.code = 'drill-idc' AND s.provider_id = p.id AND m.name = 'A100-SXM4-40GB';
"""
)


def as_postgres(args: list[str]) -> list[str]:
    """PostgreSQL refuses to run as root: run its tools as the ``postgres`` user then."""
    return ["runuser", "-u", "postgres", "--", *args] if os.geteuid() == 0 else args


class PrivateCluster:
    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="suanli_drill_pg_"))
        self.data = self.dir / "data"
        self.port = free_port()
        self.started = False

    def pg_ctl(self, *args: str) -> None:
        subprocess.run(
            as_postgres([str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-l", str(self.dir / "log"), *args]),
            check=True,
            stdout=subprocess.DEVNULL,
        )

    def start(self) -> None:
        if os.geteuid() == 0:
            shutil.chown(self.dir, "postgres", "postgres")
        subprocess.run(
            as_postgres([str(PG_BIN / "initdb"), "-D", str(self.data), "-A", "trust", "-U", "postgres"]),
            check=True,
            stdout=subprocess.DEVNULL,
        )
        self.pg_ctl("-o", f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1", "-w", "start")
        self.started = True

    def restart(self) -> None:
        self.pg_ctl("-m", "immediate", "-w", "restart")

    def stop(self) -> None:
        if self.started:
            try:
                self.pg_ctl("-m", "immediate", "-w", "stop")
            except subprocess.CalledProcessError:
                pass
        shutil.rmtree(self.dir, ignore_errors=True)

    def url(self, database: str) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{database}"


def main() -> None:
    import psycopg

    restarts = env_int("DRILL_PG_RESTARTS", 5)
    records = env_int("DRILL_PG_BATCH_RECORDS", 100)
    cluster = PrivateCluster()
    server = None
    stop = threading.Event()
    sent: set[str] = set()
    stats = {"batches": 0, "failed_posts": 0, "resends": 0}
    problems: list[str] = []
    try:
        cluster.start()
        with psycopg.connect(cluster.url("postgres"), autocommit=True) as conn:
            conn.execute("CREATE DATABASE suanli_drill")
        url = cluster.url("suanli_drill")
        env = process_env(url)
        subprocess.run(
            [str(BIN / "python"), "manage.py", "migrate", "--noinput", "-v", "0"],
            cwd=ROOT,
            env=env,
            check=True,
        )
        with psycopg.connect(url, autocommit=True, cursor_factory=psycopg.ClientCursor) as conn:
            conn.execute(LOAD_SQL)
            conn.execute(CARDS_SQL)
            uuids = [row[0] for row in conn.execute("SELECT uuid FROM inventory_card ORDER BY id")]
        key = partner_key(env)
        server = Gunicorn(url, "pg_restart")
        server.start()
        log(f"private cluster on port {cluster.port}, gunicorn on {server.port}")

        def stream() -> None:
            index = 0
            while not stop.is_set():
                body = usage_batch(uuids, records, index)
                ids = {row["event_id"] for row in json.loads(body)}
                sent.update(ids)  # counted as sent before the first try: a lost answer is still sent
                tries = 0
                while True:
                    tries += 1
                    try:
                        status, raw = server.request(
                            "POST", "/api/v1/usage/", body,
                            {"Content-Type": "application/json", "Authorization": f"Api-Key {key}"},
                        )  # fmt: skip
                    except OSError:
                        status, raw = 0, b""
                    if status in (200, 201):
                        break
                    stats["failed_posts"] += 1
                    if tries > 200:
                        problems.append(f"batch {index} never stored: HTTP {status} {raw[:200]!r}")
                        return
                    time.sleep(0.2)  # then the same batch again, same event ids
                stats["resends"] += tries - 1
                stats["batches"] += 1
                index += 1

        client = threading.Thread(target=stream)
        client.start()
        for number in range(1, restarts + 1):
            time.sleep(2)
            cluster.restart()
            log(f"restart {number}/{restarts} (immediate); {stats['batches']} batches stored so far")
        time.sleep(3)
        stop.set()
        client.join(timeout=120)
        with psycopg.connect(url) as conn:
            stored, distinct = conn.execute(
                "SELECT count(*), count(DISTINCT event_id) FROM metering_usagerecord"
            ).fetchone()
        if stored != len(sent) or distinct != stored:
            problems.append(f"{stored} stored rows ({distinct} distinct) for {len(sent)} event ids sent")
        held = restarts if not problems and stats["failed_posts"] else 0
        if not stats["failed_posts"]:
            problems.append("no post failed: the restarts did not hit the stream")
        notes = [
            f"{stats['batches']} batches of {records}, {len(sent)} event ids, {stored} rows stored",
            f"{stats['failed_posts']} failed posts resent",
            *problems,
        ]
        log(
            f"{stored} rows stored for {len(sent)} event ids sent; {stats['failed_posts']} failed posts resent"
        )
        result = {"tries": restarts, "held": held, "notes": notes}
    except Exception as exc:
        result = {"tries": restarts, "held": 0, "notes": [f"{type(exc).__name__}: {exc}"]}
    finally:
        stop.set()
        if server is not None:
            server.stop()
        cluster.stop()
    print("RESULT " + json.dumps(result), flush=True)


if __name__ == "__main__":
    sys.exit(main())
