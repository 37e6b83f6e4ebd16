"""Billing drills, run in a child process whose Django settings point at the drill's scratch database.

    python -m drills.billing_drills worker_kill|monthly_twice

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


def main() -> None:
    drill = sys.argv[1]
    _setup()
    result = {"worker_kill": worker_kill, "monthly_twice": monthly_twice}[drill](drill)
    print("RESULT " + json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
