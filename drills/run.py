"""Fault drills (``make drills``): real processes, real PostgreSQL, a real Celery worker on Redis.

    .venv/bin/python drills/run.py [drill ...]

Each drill gets its own scratch database ``suanli_drill_<random>`` (created, migrated, dropped)
and a Redis database of its own (``DRILLS_REDIS_DB``, default 13, flushed before and after), and
stops every process it started. Prints a table (drill, tries, held) and last ``drills: H/N held``;
exits 0 only if every drill held. Sizes come from the environment (README, "Fault drills").
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from drills.common import (
    BIN,
    ROOT,
    drop_database,
    env_int,
    log,
    migrate,
    process_env,
    redis_flush,
    scratch_database,
)
from drills.data import load_monthly_customers

# name, child module, what it proves, customers to load
DRILLS = [
    (
        "worker_kill",
        "billing_drills",
        "kill -9 the Celery worker mid billing run",
        env_int("DRILL_KILL_CUSTOMERS", 2000),
    ),
    (
        "concurrent_posts",
        "http_drills",
        "50 concurrent posts of one batch, 50 concurrent issues of one draft",
        10,
    ),
    ("stripe_webhook", "http_drills", "the Stripe webhook delivered 3 times, out of order", 10),
    (
        "monthly_twice",
        "billing_drills",
        "billing.run_monthly sent twice at once",
        env_int("DRILL_MONTHLY_CUSTOMERS", 500),
    ),
    (
        "billing_timeout",
        "billing_drills",
        "a billing run while statement_timeout cancels some customers' writes, then requested again",
        env_int("DRILL_TIMEOUT_CUSTOMERS", 300),
    ),
    (
        "webhook_receiver_down",
        "webhook_drills",
        "webhook receivers answer 503 or refuse connections while events stream; kill -9 mid-delivery",
        3,
    ),
    ("pg_restart", "pg_restart", "a private PostgreSQL restarted while usage batches stream", 0),
]


def child_result(args: list[str], env: dict) -> dict:
    """Run a drill's child process; its ``RESULT`` line. Stopped with its process group on failure."""
    child = subprocess.Popen(
        args, cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True, start_new_session=True
    )
    try:
        out, _ = child.communicate()
    except BaseException:
        os.killpg(child.pid, signal.SIGTERM)
        child.wait()
        raise
    for line in out.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[len("RESULT ") :])
    return {"tries": 1, "held": 0, "notes": [f"the drill exited with {child.returncode} and no result"]}


def run_drill(name: str, module: str, customers: int) -> dict:
    if module == "pg_restart":  # its own private cluster; nothing on the shared one
        return child_result([str(BIN / "python"), "-m", "drills.pg_restart"], process_env(""))
    db_name, url = scratch_database()
    try:
        redis_flush()
        t0 = time.monotonic()
        migrate(url)
        load_monthly_customers(url, customers)
        log(f"{name}: {db_name} migrated and loaded in {time.monotonic() - t0:.1f} s")
        return child_result([str(BIN / "python"), "-m", f"drills.{module}", name], process_env(url))
    finally:
        redis_flush()
        drop_database(db_name)


def main() -> int:
    wanted = sys.argv[1:]
    rows = []
    started = time.monotonic()
    for name, module, what, customers in DRILLS:
        if wanted and name not in wanted:
            continue
        t0 = time.monotonic()
        log(f"{name}: {what}")
        try:
            result = run_drill(name, module, customers)
        except Exception as exc:  # a drill that cannot run does not hold
            result = {"tries": 1, "held": 0, "notes": [f"{type(exc).__name__}: {exc}"]}
        result["seconds"] = time.monotonic() - t0
        rows.append((name, result))
    print(f"{'drill':<21} {'tries':>5} {'held':>5} {'seconds':>8}  notes")
    for name, result in rows:
        notes = "; ".join(result.get("notes", []))
        print(f"{name:<21} {result['tries']:>5} {result['held']:>5} {result['seconds']:>8.0f}  {notes}")
    held = sum(1 for _, r in rows if r["held"] == r["tries"])
    print(f"wall time {time.monotonic() - started:.0f} s")
    print(f"drills: {held}/{len(rows)} held")
    return 0 if rows and held == len(rows) else 1


if __name__ == "__main__":
    sys.exit(main())
