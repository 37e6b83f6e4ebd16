"""Fault drills (``make drills``): real processes, real PostgreSQL, a real Celery worker on Redis.

    .venv/bin/python drills/run.py [drill ...]

Each drill gets its own scratch database ``suanli_drill_<random>`` (created, migrated, dropped)
and a Redis database of its own (``DRILLS_REDIS_DB``, default 13, flushed before and after), and
stops every process it started. Prints a table (drill, tries, held) and last ``drills: H/N held``;
exits 0 only if every drill held. Sizes come from the environment (README, "Fault drills").
"""

from __future__ import annotations

import json
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

# name, what it proves, customers to load
DRILLS = [
    ("worker_kill", "kill -9 the Celery worker mid billing run", env_int("DRILL_KILL_CUSTOMERS", 2000)),
    ("monthly_twice", "billing.run_monthly sent twice at once", env_int("DRILL_MONTHLY_CUSTOMERS", 500)),
]


def run_drill(name: str, customers: int) -> dict:
    db_name, url = scratch_database()
    try:
        redis_flush()
        t0 = time.monotonic()
        migrate(url)
        load_monthly_customers(url, customers)
        log(f"{name}: {db_name} migrated and loaded in {time.monotonic() - t0:.1f} s")
        child = subprocess.Popen(
            [str(BIN / "python"), "-m", "drills.billing_drills", name],
            cwd=ROOT,
            env=process_env(url),
            stdout=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        try:
            out, _ = child.communicate()
        except BaseException:
            import os
            import signal

            os.killpg(child.pid, signal.SIGTERM)
            child.wait()
            raise
        for line in out.splitlines():
            if line.startswith("RESULT "):
                return json.loads(line[len("RESULT ") :])
        return {"tries": 1, "held": 0, "notes": [f"the drill exited with {child.returncode} and no result"]}
    finally:
        redis_flush()
        drop_database(db_name)


def main() -> int:
    wanted = sys.argv[1:]
    rows = []
    started = time.monotonic()
    for name, what, customers in DRILLS:
        if wanted and name not in wanted:
            continue
        t0 = time.monotonic()
        log(f"{name}: {what}")
        try:
            result = run_drill(name, customers)
        except Exception as exc:  # a drill that cannot run does not hold
            result = {"tries": 1, "held": 0, "notes": [f"{type(exc).__name__}: {exc}"]}
        result["seconds"] = time.monotonic() - t0
        rows.append((name, result))
    print(f"{'drill':<16} {'tries':>5} {'held':>5} {'seconds':>8}  notes")
    for name, result in rows:
        notes = "; ".join(result.get("notes", []))
        print(f"{name:<16} {result['tries']:>5} {result['held']:>5} {result['seconds']:>8.0f}  {notes}")
    held = sum(1 for _, r in rows if r["held"] == r["tries"])
    print(f"wall time {time.monotonic() - started:.0f} s")
    print(f"drills: {held}/{len(rows)} held")
    return 0 if rows and held == len(rows) else 1


if __name__ == "__main__":
    sys.exit(main())
