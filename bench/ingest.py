"""Usage ingestion benchmark (not a test): ``POST /api/v1/usage/`` through real HTTP against COPY.

    .venv/bin/python bench/ingest.py [--seconds 25] [--servers 1000] [--threads 2] [--workers 2] [--keep]

What it does, in one run:

1. creates a scratch PostgreSQL database ``suanli_bench_ingest`` on the server of
   ``BENCH_DATABASE_URL`` (default ``postgres://postgres@127.0.0.1:5432/postgres``; any old copy is
   dropped first) and migrates it with ``config.settings.production``;
2. loads a provider with ``--servers`` servers of 8 cards and makes a real partner API key with
   ``manage.py create_partner_key``;
3. starts gunicorn (``--workers`` sync workers) on 127.0.0.1 at a free port against that database
   (``SECRET_KEY``, ``DATABASE_URL``, ``CELERY_BROKER_URL`` set for the subprocess);
4. pre-builds agent-shaped batches of 10,000 records (untimed): 9,000 new records and 1,000
   already stored (10 % duplicates), posts one warm-up batch, then posts batches from
   ``--threads`` client threads (http.client) for at least ``--seconds`` seconds and checks every
   answer (201, accepted 9,000, duplicates 1,000);
5. COPYs the same stored rows, 10,000 rows per transaction from one connection, three ways:
   as a COPY text stream into a scratch table with the same columns and nothing else (no
   indexes, keys or triggers) — the floor of the last line: what PostgreSQL itself takes in on
   this machine (the 148k rows/s reference of the issue was measured this way); from Python with
   psycopg's ``write_row`` into the same kind of table (printed: the floor of any Python writer,
   which adapts each value); and into a twin with the indexes, checks and reference trigger of
   ``metering_usagerecord`` (printed: the unavoidable cost of writing to that table);
6. stops gunicorn and drops the database (``--keep`` keeps it).

It prints the machine and, as its last line::

    ingest: <N> records/s via API, <M> rows/s via COPY, ratio=<N/M>

N counts every record posted (duplicates included: each is parsed, checked and compared).
"""

from __future__ import annotations

import argparse
import http.client
import os
import platform
import signal
import socket
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parent.parent
DB_NAME = "suanli_bench_ingest"
BATCH = 10_000
DUPLICATES = 1_000
PROVIDER = "bench-idc"


def admin_url() -> str:
    return os.environ.get("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres")


def scratch_url() -> str:
    return f"{admin_url().rsplit('/', 1)[0]}/{DB_NAME}"


def admin_sql(sql: str) -> None:
    with psycopg.connect(admin_url(), autocommit=True) as conn:
        conn.execute(sql)


def drop_database() -> None:
    admin_sql(f"DROP DATABASE IF EXISTS {DB_NAME} WITH (FORCE)")


def machine() -> str:
    cpu = platform.processor() or "unknown cpu"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{os.cpu_count()} CPUs, {cpu}, Python {platform.python_version()}, {platform.system()}"


def django_env() -> dict[str, str]:
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.production",
        "DATABASE_URL": scratch_url(),
        "SECRET_KEY": "bench-ingest-secret-key-not-for-production",
        "CELERY_BROKER_URL": "memory://",
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "LOG_LEVEL": "ERROR",
    }


LOAD_SQL = """
INSERT INTO providers_provider (code, name, type, contact_name, contact_email, contact_phone,
    settlement_terms_days, is_related_party, notes, created_at, updated_at)
VALUES (%(code)s, 'Bench IDC', 'idc', '', '', '', 30, false, '', now(), now());
INSERT INTO providers_site (provider_id, name, city, hub, created_at, updated_at)
SELECT id, 'Bench site', 'Chengdu', 'chengyu', now(), now() FROM providers_provider WHERE code = %(code)s;
INSERT INTO inventory_server (provider_id, site_id, serial, gpu_model_id, card_count, status, currency,
    created_at, updated_at)
SELECT p.id, s.id, 'BENCH-' || lpad(g::text, 5, '0'), m.id, 8, 'available', 'CNY', now(), now()
  FROM generate_series(1, %(servers)s) g, providers_provider p, providers_site s, inventory_gpumodel m
 WHERE p.code = %(code)s AND s.provider_id = p.id AND m.name = 'A100-SXM4-40GB';
INSERT INTO inventory_card (server_id, slot, uuid, status, created_at, updated_at)
SELECT srv.id, slot,
       'GPU-' || lpad(to_hex(srv.id), 8, '0') || '-0000-4000-8000-' || lpad(to_hex(slot), 12, '0'),
       'available', now(), now()
  FROM inventory_server srv, generate_series(0, 7) slot;
"""


def prepare(servers: int) -> tuple[str, list[str]]:
    """Scratch database, migrated and loaded; the API key and the card UUIDs."""
    drop_database()
    admin_sql(f"CREATE DATABASE {DB_NAME}")
    env = django_env()
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT, env=env, check=True
    )
    with psycopg.connect(scratch_url(), autocommit=True) as conn:
        for statement in LOAD_SQL.split(";"):
            if statement.strip():
                conn.execute(statement, {"code": PROVIDER, "servers": servers})
        uuids = [row[0] for row in conn.execute("SELECT uuid FROM inventory_card ORDER BY id")]
    made = subprocess.run(
        [sys.executable, "manage.py", "create_partner_key", PROVIDER, "--name", "bench"],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    return made.stdout.strip().splitlines()[-1], uuids


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_gunicorn(port: int, workers: int) -> subprocess.Popen:
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "config.wsgi:application",
            "--workers",
            str(workers),
            "--bind",
            f"127.0.0.1:{port}",
            "--timeout",
            "120",
            "--log-level",
            "warning",
        ],
        cwd=ROOT,
        env=django_env(),
        start_new_session=True,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"gunicorn exited with status {process.returncode}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            conn.request("GET", "/admin/login/")
            conn.getresponse().read()
            conn.close()
            return process
        except OSError:
            time.sleep(0.2)
    process.terminate()
    raise SystemExit("gunicorn did not answer within 60 s")


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


# -- batches -------------------------------------------------------------------------------------
def _iso(at: datetime) -> str:
    return at.isoformat()


def record_json(uuid: str, start: datetime, n: int) -> bytes:
    """One record shaped like the agent's (``collector.usage_record``)."""
    s = _iso(start)
    e = _iso(start + timedelta(minutes=1))
    return (
        f'{{"event_id":"{uuid}:{s}","card":"{uuid}","start":"{s}","end":"{e}",'
        f'"telemetry":{{"utilization_percent":{n % 101},"memory_used_bytes":{(n % 80) * 1073741824},'
        f'"energy_mj":{123456789 + n}}}}}'
    ).encode()


class Records:
    """Distinct records: card by card, then one minute further back in time."""

    def __init__(self, uuids: list[str], newest_start: datetime) -> None:
        self.uuids = uuids
        self.newest = newest_start
        self.n = 0

    def take(self, count: int) -> list[bytes]:
        out = []
        cards = len(self.uuids)
        for _ in range(count):
            n = self.n
            out.append(record_json(self.uuids[n % cards], self.newest - timedelta(minutes=n // cards), n))
            self.n += 1
        return out


def body(records: list[bytes]) -> bytes:
    return b"[" + b",".join(records) + b"]"


# -- the timed API phase -------------------------------------------------------------------------
def post(conn: http.client.HTTPConnection, key: str, payload: bytes) -> tuple[int, bytes]:
    conn.request(
        "POST",
        "/api/v1/usage/",
        body=payload,
        headers={"Content-Type": "application/json", "Authorization": f"Api-Key {key}"},
    )
    response = conn.getresponse()
    return response.status, response.read()


def run_api(port: int, key: str, bodies: list[bytes], *, seconds: float, threads: int) -> tuple[int, float]:
    """Post ``bodies`` from ``threads`` threads until ``seconds`` have passed; (records, elapsed)."""
    import json

    lock = threading.Lock()
    next_index = [0]
    done = [0]
    failures: list[str] = []
    barrier = threading.Barrier(threads + 1)
    deadline = [0.0]

    def worker() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        barrier.wait()
        while True:
            with lock:
                if time.monotonic() >= deadline[0] or next_index[0] >= len(bodies) or failures:
                    break
                index = next_index[0]
                next_index[0] += 1
            try:
                status, raw = post(conn, key, bodies[index])
            except (OSError, http.client.HTTPException):
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
                status, raw = post(conn, key, bodies[index])
            answer = json.loads(raw) if raw else {}
            if status != 201 or answer != {"accepted": BATCH - DUPLICATES, "duplicates": DUPLICATES}:
                with lock:
                    failures.append(f"batch {index}: HTTP {status} {raw[:300]!r}")
                break
            with lock:
                done[0] += 1
        conn.close()

    pool = [threading.Thread(target=worker) for _ in range(threads)]
    for thread in pool:
        thread.start()
    started = time.monotonic()
    deadline[0] = started + seconds
    barrier.wait()
    for thread in pool:
        thread.join()
    elapsed = time.monotonic() - started
    if failures:
        raise SystemExit("API answers were not as expected:\n" + "\n".join(failures))
    if next_index[0] >= len(bodies):
        print(f"note: all {len(bodies)} prepared batches were sent before {seconds:g} s", file=sys.stderr)
    return done[0] * BATCH, elapsed


# -- the COPY floor ------------------------------------------------------------------------------
COLUMNS = (
    "provider_id, event_id, content_hash, card_id, server_id, start_at, end_at, utilization_percent, "
    "memory_used_bytes, energy_mj, telemetry, received_at, voided_at, void_reason"
)


def run_copy() -> dict[str, tuple[int, float]]:
    """COPY the stored usage rows into scratch tables, 10,000 rows per transaction, one stream:

    ``bare``: the same columns as ``metering_usagerecord``, nothing else (the floor of the last
    line); ``twin``: also its indexes, checks and reference trigger (what any writer to the real
    table pays). Returns ``{name: (rows, seconds)}``.
    """
    with psycopg.connect(scratch_url(), autocommit=True) as conn:
        conn.execute(
            "CREATE TABLE bench_bare (LIKE metering_usagerecord INCLUDING DEFAULTS INCLUDING IDENTITY)"
        )
        conn.execute("CREATE TABLE bench_twin (LIKE metering_usagerecord INCLUDING ALL)")
        conn.execute(  # the reference check of metering_usagerecord (migration metering 0004)
            "CREATE TRIGGER bench_twin_references AFTER INSERT ON bench_twin REFERENCING NEW TABLE AS "
            "new_rows FOR EACH STATEMENT EXECUTE FUNCTION metering_usage_check_references()"
        )
        data = bytearray()
        with conn.cursor().copy(
            f"COPY (SELECT {COLUMNS} FROM metering_usagerecord ORDER BY id) TO STDOUT"
        ) as copy:
            for chunk in copy:
                data += chunk
        rows_from_python = conn.execute(f"SELECT {COLUMNS} FROM metering_usagerecord ORDER BY id").fetchall()
        conn.execute(
            "CREATE TABLE bench_rows (LIKE metering_usagerecord INCLUDING DEFAULTS INCLUDING IDENTITY)"
        )
    lines = bytes(data).splitlines(keepends=True)
    chunks = [b"".join(lines[i : i + BATCH]) for i in range(0, len(lines), BATCH)]
    results = {}
    with psycopg.connect(scratch_url()) as conn:
        conn.execute("CHECKPOINT")
        conn.commit()
        for table in ("bench_bare", "bench_twin"):
            started = time.monotonic()
            for chunk in chunks:
                with conn.cursor().copy(f"COPY {table} ({COLUMNS}) FROM STDIN") as copy:
                    copy.write(chunk)
                conn.commit()
            elapsed = time.monotonic() - started
            (count,) = conn.execute(f"SELECT count(*) FROM {table}").fetchone()
            conn.commit()
            assert count == len(lines), (table, count, len(lines))
            results[table.removeprefix("bench_")] = (len(lines), elapsed)
    # The same rows as a Python client holds them (decoded values), sent with psycopg's write_row:
    # what any Python writer, the API included, pays to put rows on the wire.
    with psycopg.connect(scratch_url()) as conn:
        started = time.monotonic()
        for index in range(0, len(rows_from_python), BATCH):
            with conn.cursor().copy(f"COPY bench_rows ({COLUMNS}) FROM STDIN") as copy:
                for row in rows_from_python[index : index + BATCH]:
                    copy.write_row(row)
            conn.commit()
        results["rows"] = (len(rows_from_python), time.monotonic() - started)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=25.0, help="length of the API phase (min 20)")
    parser.add_argument("--servers", type=int, default=1000, help="servers of 8 cards (default 1000)")
    parser.add_argument("--threads", type=int, default=2, help="client threads (default 2)")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers (default 2)")
    parser.add_argument("--batches", type=int, default=160, help="batches prepared (default 160)")
    parser.add_argument("--keep", action="store_true", help="keep the scratch database")
    args = parser.parse_args()

    print(f"machine: {machine()}")
    print(f"preparing {DB_NAME} ({args.servers} servers, {args.servers * 8} cards)…", flush=True)
    key, uuids = prepare(args.servers)
    gunicorn = None
    try:
        newest = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=10)
        source = Records(uuids, newest)
        warm = source.take(BATCH)
        bodies = []
        for i in range(args.batches):
            offset = (i * DUPLICATES) % (BATCH - DUPLICATES)
            bodies.append(body(source.take(BATCH - DUPLICATES) + warm[offset : offset + DUPLICATES]))
        size = sum(len(b) for b in bodies) / len(bodies)
        print(f"prepared {len(bodies)} batches of {BATCH:,} records, {size / 1e6:.2f} MB each", flush=True)

        port = free_port()
        gunicorn = start_gunicorn(port, args.workers)
        for _ in range(args.workers):  # warm every worker (connection, imports, key lookup)
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
            status, raw = post(conn, key, body(warm))
            conn.close()
            if status not in (200, 201):
                raise SystemExit(f"warm-up batch: HTTP {status} {raw[:500]!r}")

        records, elapsed = run_api(port, key, bodies, seconds=max(args.seconds, 20.0), threads=args.threads)
        api_rate = records / elapsed
        print(
            f"API: {records:,} records ({records // BATCH} batches, 10 % duplicates) in {elapsed:.1f} s "
            f"from {args.threads} threads, gunicorn {args.workers} workers",
            flush=True,
        )
        stop(gunicorn)
        gunicorn = None

        floors = run_copy()
        rows, bare_elapsed = floors["bare"]
        _, twin_elapsed = floors["twin"]
        _, python_elapsed = floors["rows"]
        stream_rate, twin_rate, copy_rate = rows / bare_elapsed, rows / twin_elapsed, rows / python_elapsed
        print(
            f"COPY from Python (psycopg write_row) into a same-columns table: {copy_rate:.0f} rows/s, "
            f"ratio={api_rate / copy_rate:.2f}"
        )
        print(
            f"COPY into a table with the indexes, checks and reference trigger of metering_usagerecord: "
            f"{twin_rate:.0f} rows/s, ratio={api_rate / twin_rate:.2f}"
        )
        print(
            f"COPY: {rows:,} rows in {bare_elapsed:.2f} s as a text stream into a same-columns table "
            f"(no indexes, keys or triggers)"
        )
        print(
            f"ingest: {api_rate:.0f} records/s via API, {stream_rate:.0f} rows/s via COPY, "
            f"ratio={api_rate / stream_rate:.2f}"
        )
    finally:
        if gunicorn is not None:
            stop(gunicorn)
        if not args.keep:
            drop_database()


if __name__ == "__main__":
    main()
