"""Billing drills, run in a child process whose Django settings point at the drill's scratch database.

    python -m drills.billing_drills worker_kill|monthly_twice|billing_timeout

Prints one last line ``RESULT {"tries": .., "held": .., "notes": ..}`` for drills/run.py.
"""

from __future__ import annotations

import json
import os
import random
import sys
import threading
import time
from decimal import Decimal

from drills.common import Worker, env_int, log, wait_until


def _setup() -> None:
    import logging

    import django

    django.setup()
    logging.disable(logging.WARNING)  # the drill reports; the per-invoice notices would drown it


def _run_done(run_id: int) -> bool:
    from django.db import close_old_connections

    from apps.billing.models import BillingRun, BillingRunStatus

    close_old_connections()
    status = BillingRun.objects.filter(pk=run_id).values_list("status", flat=True).first()
    return status in (BillingRunStatus.DONE, BillingRunStatus.DONE_WITH_ERRORS)


def _totals(period: str) -> dict[int, tuple[int, Decimal]]:
    """Per customer: (invoices of the period, their total)."""
    from django.db.models import Count, Sum

    from apps.billing.models import Invoice

    rows = (
        Invoice.objects.filter(period=period)
        .values("customer_id")
        .annotate(n=Count("id"), t=Sum("total_amount"))
    )
    return {row["customer_id"]: (row["n"], row["t"]) for row in rows}


def _check_period(period: str, customers: set[int], clean: dict[int, Decimal]) -> list[str]:
    problems = []
    totals = _totals(period)
    doubled = [c for c, (n, _) in totals.items() if n > 1]
    missing = customers - set(totals)
    if doubled:
        problems.append(f"{period}: {len(doubled)} customer(s) with more than one invoice")
    if missing:
        problems.append(f"{period}: {len(missing)} customer(s) without an invoice")
    differ = [c for c, (_, t) in totals.items() if clean and clean.get(c) != t]
    if differ:
        problems.append(f"{period}: {len(differ)} total(s) differ from the clean run's")
    return problems


def _issue(period: str) -> list[str]:
    from django.utils import timezone

    from apps.billing.invoicing.services.issuing import invoice_issue_period

    outcome = invoice_issue_period(period=period, now=timezone.now())
    return [f"{period}: not issued {key}: {msg}" for key, msg in outcome.errors.items()]


def _gapless() -> list[str]:
    from apps.billing.models import Invoice

    numbers = sorted(Invoice.objects.exclude(number=None).values_list("number", flat=True))
    by_prefix: dict[str, list[int]] = {}
    for number in numbers:
        prefix, _, seq = number.rpartition("-")
        by_prefix.setdefault(prefix, []).append(int(seq))
    problems = []
    for prefix, seqs in by_prefix.items():
        seqs.sort()
        if seqs != list(range(seqs[0], seqs[0] + len(seqs))) or seqs[0] != 1:
            problems.append(f"{prefix}: numbers {seqs[0]}..{seqs[-1]} for {len(seqs)} invoices (gap)")
    return problems


def worker_kill(name: str) -> dict:
    """kill -9 the worker at a random point of a billing run, restart it, K times."""
    from apps.billing.invoicing.services.runs import billing_run_request
    from apps.customers.models import Customer

    tries = env_int("DRILL_KILL_TRIES", 20)
    seed = env_int("DRILL_SEED", int(time.time()))
    rng = random.Random(seed)
    wait_s = env_int("DRILL_KILL_WAIT_S", 15)
    customers = set(Customer.objects.values_list("pk", flat=True))
    # periods 2025-01, 2025-02, ...: every contract runs all of them and bills the same each month
    periods = [f"{2025 + i // 12}-{i % 12 + 1:02d}" for i in range(tries + 1)]
    notes: list[str] = [f"seed {seed}", f"{len(customers)} customers"]
    worker = Worker(os.environ["DATABASE_URL"], name)
    held = 0
    rerequests = 0
    mid_run = 0
    issue_all = os.environ.get("DRILL_KILL_ISSUE", "last") == "all"
    try:
        worker.start()
        worker.wait_ready()
        clean_run = billing_run_request(period=periods[0])
        if not wait_until(lambda: _run_done(clean_run.pk), timeout=600):
            return {"tries": tries, "held": 0, "notes": ["the clean run did not finish in 600 s"]}
        clean_run.refresh_from_db()
        clean_s = (clean_run.finished_at - clean_run.created_at).total_seconds()
        clean = {c: t for c, (_, t) in _totals(periods[0]).items()}
        problems = _check_period(periods[0], customers, {})
        notes.append(f"clean run {clean_s:.1f} s")
        log(f"clean run of {periods[0]}: {clean_s:.1f} s from request to done, {len(clean)} invoices")
        if problems:
            return {"tries": tries, "held": 0, "notes": notes + problems}
        estimate_s = clean_s  # the first run is the slowest (cold caches): shrink to what runs take
        issue_problems = _issue(periods[0])
        for index, period in enumerate(periods[1:], start=1):
            run = billing_run_request(period=period)
            delay = rng.uniform(0.0, 1.0) * estimate_s
            time.sleep(delay)
            finished_before_kill = _run_done(run.pk)
            worker.kill9()
            mid_run += not finished_before_kill
            if finished_before_kill:
                run.refresh_from_db()
                estimate_s = min(estimate_s, (run.finished_at - run.created_at).total_seconds())
            worker.start()
            done = wait_until(lambda run=run: _run_done(run.pk), timeout=wait_s)
            rerequested = not done
            if not done:
                # The killed chunk waits in Redis's unacked set until the visibility timeout (1 hour
                # by default); an operator requests the period again, which refreshes every draft.
                rerequests += 1
                again = billing_run_request(period=period)
                done = wait_until(lambda again=again: _run_done(again.pk), timeout=max(120, 4 * clean_s))
            problems = [] if done else [f"{period}: the run did not finish"]
            problems += _check_period(period, customers, clean)
            if issue_all or index == tries:
                problems += _issue(period)
                problems += _gapless()
            ok = not problems
            held += ok
            log(
                f"try {index}/{tries} {period}: killed after {delay:.1f} s"
                f"{' (run already done)' if finished_before_kill else ''}, "
                f"{'re-requested, ' if rerequested else ''}"
                f"{'held' if ok else 'FAILED: ' + '; '.join(problems)}"
            )
            if problems:
                notes += problems[:5]
        notes += issue_problems
        notes.append(f"{mid_run} kill(s) mid-run, {rerequests} re-request(s) after a kill")
        notes.append("issued: every period" if issue_all else f"issued: {periods[0]} and {periods[-1]}")
        return {"tries": tries, "held": held, "notes": notes}
    finally:
        worker.stop()


def monthly_twice(name: str) -> dict:
    """``billing.run_monthly`` sent twice at once, K times → one run and one invoice per customer."""
    from celery import current_app
    from django.conf import settings
    from django.utils import timezone

    from apps.billing.models import BillingRun, Invoice
    from apps.core.periods import Period
    from apps.customers.models import Customer

    tries = env_int("DRILL_MONTHLY_TRIES", 3)
    customers = set(Customer.objects.values_list("pk", flat=True))
    period = str(Period.containing(timezone.now(), settings.BILLING_TIME_ZONE).previous())
    worker = Worker(os.environ["DATABASE_URL"], name)
    held = 0
    notes = [f"{len(customers)} customers, period {period}"]
    try:
        worker.start()
        for index in range(1, tries + 1):
            barrier = threading.Barrier(2)

            def send(barrier: threading.Barrier = barrier) -> None:
                barrier.wait()
                current_app.send_task("billing.run_monthly")

            threads = [threading.Thread(target=send) for _ in range(2)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()

            def settled() -> bool:
                runs = list(BillingRun.objects.filter(period=period, customer=None))
                return bool(runs) and all(_run_done(r.pk) for r in runs)

            done = wait_until(settled, timeout=300)
            time.sleep(3)  # let a second run, if any were made, show up
            runs = BillingRun.objects.filter(period=period, customer=None).count()
            problems = [] if done else ["the run did not finish"]
            if runs != 1:
                problems.append(f"{runs} runs of {period}")
            problems += _check_period(period, customers, {})
            ok = not problems
            held += ok
            log(
                f"try {index}/{tries}: {runs} run(s), {Invoice.objects.filter(period=period).count()} invoices, "
                f"{'held' if ok else 'FAILED: ' + '; '.join(problems)}"
            )
            notes += problems
        return {"tries": tries, "held": held, "notes": notes}
    finally:
        worker.stop()


SLOW_SQL = """
CREATE TABLE IF NOT EXISTS drill_slow_customer (customer_id bigint PRIMARY KEY);
CREATE OR REPLACE FUNCTION drill_slow_line() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM billing_invoice i JOIN drill_slow_customer s ON s.customer_id = i.customer_id
                WHERE i.id = NEW.invoice_id) THEN
        PERFORM pg_sleep(%(sleep)s);
    END IF;
    RETURN NEW;
END $$;
DROP TRIGGER IF EXISTS drill_slow_line ON billing_invoiceline;
CREATE TRIGGER drill_slow_line BEFORE INSERT ON billing_invoiceline
    FOR EACH ROW EXECUTE FUNCTION drill_slow_line();
"""

# One statement, one snapshot: every invoice of the period with its line count.
DRAFTS_SQL = """
SELECT i.customer_id, i.total_amount, count(l.id)
  FROM billing_invoice i LEFT JOIN billing_invoiceline l ON l.invoice_id = i.id
 WHERE i.period = %s
 GROUP BY i.id
"""


def _scratch_name() -> str:
    name = os.environ["DATABASE_URL"].rsplit("/", 1)[1].split("?")[0]
    assert name.startswith("suanli_drill_"), name  # never another database's settings
    return name


def _fault(on: bool, slow: list[int], timeout_ms: int) -> None:
    """The scratch database cancels statements after ``timeout_ms``; inserting an invoice line of a
    customer in ``slow`` sleeps past it. Off: trigger and setting gone."""
    from django.db import connection

    name = _scratch_name()
    with connection.cursor() as cursor:
        if on:
            cursor.execute(SLOW_SQL % {"sleep": 2 * timeout_ms / 1000})
            cursor.execute("TRUNCATE drill_slow_customer")
            cursor.execute("INSERT INTO drill_slow_customer SELECT unnest(%s::bigint[])", [slow])
            cursor.execute(f"ALTER DATABASE {name} SET statement_timeout = {int(timeout_ms)}")
        else:
            cursor.execute(f"ALTER DATABASE {name} RESET statement_timeout")
            cursor.execute("DROP TRIGGER IF EXISTS drill_slow_line ON billing_invoiceline")


def _half_written(period: str, clean_lines: dict[int, int], clean: dict[int, Decimal]) -> list[str]:
    """Drafts of ``period`` whose lines or total differ from the clean run's (seen in one snapshot)."""
    from django.db import close_old_connections, connection

    close_old_connections()
    with connection.cursor() as cursor:
        cursor.execute("SET statement_timeout = 0")  # the drill's own session; the fault is for the worker
        cursor.execute(DRAFTS_SQL, [period])
        rows = cursor.fetchall()
    return [
        f"customer {customer_id}: {lines} line(s), total {total} (clean: {clean_lines.get(customer_id)}, "
        f"{clean.get(customer_id)})"
        for customer_id, total, lines in rows
        if lines != clean_lines.get(customer_id) or total != clean.get(customer_id)
    ]


def billing_timeout(name: str) -> dict:
    """A billing run while the database cancels some customers' statements (statement_timeout);
    the period requested again once the fault is lifted, K times."""
    from django.db.models import Count

    from apps.billing.invoicing.services.runs import billing_run_request
    from apps.billing.models import BillingRun, BillingRunStatus, Invoice
    from apps.customers.models import Customer

    tries = env_int("DRILL_TIMEOUT_TRIES", 3)
    timeout_ms = env_int("DRILL_TIMEOUT_MS", 1000)
    seed = env_int("DRILL_SEED", int(time.time()))
    rng = random.Random(seed)
    codes = dict(Customer.objects.values_list("pk", "code"))
    customers = set(codes)
    slow_count = max(1, len(customers) * env_int("DRILL_TIMEOUT_SLOW_PERCENT", 5) // 100)
    periods = [f"2025-{month:02d}" for month in range(1, tries + 2)]
    notes: list[str] = [f"seed {seed}", f"{len(customers)} customers, {slow_count} slow per run"]
    worker = Worker(os.environ["DATABASE_URL"], name)
    held = 0
    polls = 0
    try:
        worker.start()
        worker.wait_ready()
        clean_run = billing_run_request(period=periods[0])
        if not wait_until(lambda: _run_done(clean_run.pk), timeout=300):
            return {"tries": tries, "held": 0, "notes": ["the clean run did not finish in 300 s"]}
        problems = _check_period(periods[0], customers, {})
        if problems:
            return {"tries": tries, "held": 0, "notes": notes + problems}
        clean = {c: t for c, (_, t) in _totals(periods[0]).items()}
        clean_lines = dict(
            Invoice.objects.filter(period=periods[0])
            .annotate(n=Count("lines"))
            .values_list("customer_id", "n")
        )
        for index, period in enumerate(periods[1:], start=1):
            slow = sorted(rng.sample(sorted(customers), slow_count))
            worker.stop()  # the setting reaches new sessions: the worker reconnects under it
            _fault(True, slow, timeout_ms)
            worker.start()
            worker.wait_ready()
            run = billing_run_request(period=period)
            seen: list[str] = []
            drafts_seen = 0

            def settled(run=run, seen=seen, period=period) -> bool:
                nonlocal polls, drafts_seen
                polls += 1
                seen.extend(_half_written(period, clean_lines, clean)[:5])
                drafts_seen = max(drafts_seen, Invoice.objects.filter(period=period).count())
                return _run_done(run.pk)

            done = wait_until(settled, timeout=300, step=0.2)
            run.refresh_from_db()
            problems = [] if done else [f"{period}: the faulty run did not finish"]
            problems += [f"{period}: half-written while faulty: {s}" for s in seen[:3]]
            failed = set(run.errors)
            expected = {codes[c] for c in slow}
            if run.status != BillingRunStatus.DONE_WITH_ERRORS:
                problems.append(f"{period}: faulty run {run.status}, not done_with_errors")
            if failed != expected:
                problems.append(
                    f"{period}: errors for {len(failed)} customer(s), {len(failed & expected)} of the "
                    f"{len(expected)} slow ones"
                )
            if not all("statement timeout" in message for message in run.errors.values()):
                problems.append(
                    f"{period}: an error is not the statement timeout: {list(run.errors.values())[:1]}"
                )
            without = customers - set(_totals(period))
            if without != set(slow):
                problems.append(f"{period}: {len(without)} customer(s) without a draft, {len(slow)} slow")
            worker.stop()
            _fault(False, [], timeout_ms)
            worker.start()
            worker.wait_ready()
            again = billing_run_request(period=period)
            done = wait_until(lambda again=again: _run_done(again.pk), timeout=300)
            again.refresh_from_db()
            if not done or again.status != BillingRunStatus.DONE:
                problems.append(f"{period}: the re-requested run is {again.status}")
            problems += _check_period(period, customers, clean)
            problems += [
                f"{period}: after the retry: {s}" for s in _half_written(period, clean_lines, clean)[:3]
            ]
            runs = BillingRun.objects.filter(period=period).count()
            ok = not problems
            held += ok
            log(
                f"try {index}/{tries} {period}: {len(failed)} customer(s) timed out "
                f"({run.status}, {drafts_seen} drafts while faulty, none half-written), "
                f"re-requested: {again.invoices_created} created, {again.invoices_unchanged} unchanged; "
                f"{runs} runs; {'held' if ok else 'FAILED: ' + '; '.join(problems)}"
            )
            notes += problems[:5]
        notes.append(f"{polls} snapshots of the drafts while faulty, statement_timeout {timeout_ms} ms")
        return {"tries": tries, "held": held, "notes": notes}
    finally:
        worker.stop()
        _fault(False, [], timeout_ms)


def main() -> None:
    drill = sys.argv[1]
    _setup()
    drills = {"worker_kill": worker_kill, "monthly_twice": monthly_twice, "billing_timeout": billing_timeout}
    result = drills[drill](drill)
    print("RESULT " + json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
