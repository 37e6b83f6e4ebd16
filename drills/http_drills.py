"""HTTP drills against a real ``gunicorn config.wsgi`` (production settings, the drill's database).

    python -m drills.http_drills concurrent_posts

Prints one last line ``RESULT {"tries": .., "held": .., "notes": ..}`` for drills/run.py.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta

from drills.common import BIN, LOG_DIR, ROOT, STRIPE_WEBHOOK_SECRET, env_int, log, process_env


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Gunicorn:
    """``gunicorn config.wsgi`` as production starts it, in its own process group."""

    def __init__(self, database_url: str, name: str):
        self.env = process_env(database_url)
        self.name = name
        self.port = free_port()
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        LOG_DIR.mkdir(parents=True, exist_ok=True)
        workers = os.environ.get("DRILLS_GUNICORN_WORKERS", "4")
        with open(LOG_DIR / f"{self.name}-gunicorn.log", "a") as out:
            self.proc = subprocess.Popen(
                [str(BIN / "gunicorn"), "config.wsgi", "--workers", workers, "--bind", f"127.0.0.1:{self.port}",
                 "--timeout", "120", "--log-level", "warning"],
                cwd=ROOT, env=self.env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"gunicorn exited with status {self.proc.returncode}")
            try:
                status, _ = self.request("GET", "/admin/login/")
                if status < 500:
                    return
            except OSError:
                pass
            time.sleep(0.2)
        raise RuntimeError("gunicorn did not answer within 60 s")

    def request(self, method: str, path: str, body: bytes | None = None, headers: dict | None = None):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
        try:
            conn.request(method, path, body=body, headers={"Host": "127.0.0.1", **(headers or {})})
            response = conn.getresponse()
            return response.status, response.read()
        finally:
            conn.close()

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


def at_once(count: int, call) -> list:
    """``call(i)`` from ``count`` threads released together; their results in order."""
    barrier = threading.Barrier(count)
    results: list = [None] * count

    def one(i: int) -> None:
        barrier.wait()
        try:
            results[i] = call(i)
        except Exception as exc:  # an answer that never came is a result too
            results[i] = (0, f"{type(exc).__name__}: {exc}".encode())

    threads = [threading.Thread(target=one, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


CARDS_SQL = """
INSERT INTO inventory_card (server_id, slot, uuid, status, created_at, updated_at)
SELECT srv.id, slot, 'GPU-' || lpad(to_hex(srv.id), 8, '0') || '-0000-4000-8000-' || lpad(to_hex(slot), 12, '0'),
       'available', now(), now()
  FROM inventory_server srv, generate_series(0, 7) slot
"""


def partner_key(env: dict) -> str:
    made = subprocess.run(
        [str(BIN / "python"), "manage.py", "create_partner_key", "drill-idc", "--name", "drill"],
        cwd=ROOT, env=env, check=True, capture_output=True, text=True,
    )  # fmt: skip
    return made.stdout.strip().splitlines()[-1]


def usage_batch(uuids: list[str], records: int, stamp: int) -> bytes:
    newest = datetime(2026, 11, 20, tzinfo=UTC)
    rows = []
    for n in range(records):
        uuid = uuids[n % len(uuids)]
        start = newest - timedelta(minutes=n // len(uuids) + stamp * (records // len(uuids) + 1))
        s, e = start.isoformat(), (start + timedelta(minutes=1)).isoformat()
        rows.append({"event_id": f"{uuid}:{s}", "card": uuid, "start": s, "end": e})
    return json.dumps(rows).encode()


def concurrent_posts(name: str) -> dict:
    """50 concurrent posts of one usage batch → one stored copy per event id; 50 concurrent issues
    of one draft → one number. Repeated ``DRILL_POSTS_TRIES`` times."""
    from django.db import connection
    from django.utils import timezone
    from rest_framework.authtoken.models import Token

    from apps.accounts.models import User
    from apps.billing.invoicing.services.runs import billing_run_create, billing_run_execute
    from apps.billing.models import Invoice
    from apps.customers.models import Customer
    from apps.inventory.models import Card
    from apps.metering.models import UsageRecord

    clients = env_int("DRILL_POSTS_CLIENTS", 50)
    records = env_int("DRILL_POSTS_RECORDS", 200)
    tries = env_int("DRILL_POSTS_TRIES", 3)
    with connection.cursor() as cursor:
        cursor.execute(CARDS_SQL)
    uuids = list(Card.objects.order_by("pk").values_list("uuid", flat=True)[:64])
    env = process_env(os.environ["DATABASE_URL"])
    key = partner_key(env)
    token = Token.objects.create(user=User.objects.get(username="drill")).key
    customers = list(Customer.objects.order_by("code")[:tries])
    server = Gunicorn(os.environ["DATABASE_URL"], name)
    held = 0
    notes = [f"{clients} clients, batches of {records} records"]
    try:
        server.start()
        for index in range(tries):
            problems = []
            body = usage_batch(uuids, records, index)
            event_ids = {row["event_id"] for row in json.loads(body)}
            answers = at_once(
                clients,
                lambda i, body=body: server.request(
                    "POST", "/api/v1/usage/", body,
                    {"Content-Type": "application/json", "Authorization": f"Api-Key {key}"},
                ),
            )  # fmt: skip
            statuses = sorted({status for status, _ in answers})
            if any(status not in (200, 201) for status, _ in answers):
                problems.append(
                    f"usage answers {statuses}: {[raw[:200] for s, raw in answers if s >= 300][:1]}"
                )
            stored = UsageRecord.objects.filter(event_id__in=event_ids).count()
            if stored != len(event_ids):
                problems.append(f"{stored} stored rows for {len(event_ids)} event ids")
            accepted = sum(
                json.loads(raw).get("accepted", 0) for status, raw in answers if status in (200, 201)
            )
            if accepted != len(event_ids):
                problems.append(f"answers accepted {accepted} records in all, not {len(event_ids)}")

            # one draft, issued by 50 clients at once
            period = f"2025-{index + 1:02d}"
            run = billing_run_create(period=period, customer=customers[index], now=timezone.now())
            billing_run_execute(run=run)
            draft = Invoice.objects.get(customer=customers[index], period=period)
            answers = at_once(
                clients,
                lambda i, pk=draft.pk: server.request(
                    "POST", f"/api/v1/invoices/{pk}/issue/", b"{}",
                    {"Content-Type": "application/json", "Authorization": f"Token {token}"},
                ),
            )  # fmt: skip
            ok = [raw for status, raw in answers if status == 200]
            refused = [status for status, _ in answers if status == 409]
            others = sorted({status for status, _ in answers if status not in (200, 409)})
            draft.refresh_from_db()
            numbers = Invoice.objects.exclude(number=None).count()
            if len(ok) != 1 or others:
                problems.append(f"issue answers: {len(ok)} × 200, {len(refused)} × 409, others {others}")
            if numbers != index + 1 or not draft.number:
                problems.append(f"{numbers} numbered invoices after {index + 1} issue(s)")
            held += not problems
            log(
                f"try {index + 1}/{tries}: usage {statuses} → {stored}/{len(event_ids)} rows; "
                f"issue {len(ok)} × 200, {len(refused)} × 409 → {draft.number}; "
                f"{'held' if not problems else 'FAILED: ' + '; '.join(problems)}"
            )
            notes += problems
        return {"tries": tries, "held": held, "notes": notes}
    finally:
        server.stop()


def stripe_webhook(name: str) -> dict:
    """One paid Checkout Session's events (``completed`` while unpaid, then
    ``async_payment_succeeded``) each delivered 3 times, shuffled, all at once → one payment."""
    import random

    from django.utils import timezone

    from apps.billing.invoicing.services.issuing import invoice_issue
    from apps.billing.invoicing.services.runs import billing_run_create, billing_run_execute
    from apps.billing.models import Invoice, Payment
    from apps.customers.models import Customer
    from tests.fakes.stripe import signed_event, stripe_event

    tries = env_int("DRILL_STRIPE_TRIES", 3)
    rng = random.Random(env_int("DRILL_SEED", int(time.time())))
    server = Gunicorn(os.environ["DATABASE_URL"], name)
    held = 0
    notes = ["2 events × 3 deliveries, shuffled, concurrent"]
    try:
        server.start()
        for index, customer in enumerate(Customer.objects.order_by("code")[:tries]):
            period = "2025-01"
            billing_run_execute(run=billing_run_create(period=period, customer=customer, now=timezone.now()))
            invoice = invoice_issue(
                invoice=Invoice.objects.get(customer=customer, period=period), now=timezone.now()
            )
            session = {
                "id": f"cs_drill_{index:04d}",
                "object": "checkout.session",
                "mode": "payment",
                "amount_total": int(invoice.total_amount * 100),
                "currency": invoice.currency.lower(),
                "client_reference_id": str(invoice.pk),
                "metadata": {"invoice_id": str(invoice.pk)},
                "payment_intent": f"pi_drill_{index:04d}",
                "status": "complete",
            }
            events = [
                stripe_event(f"evt_drill_{index}_a", "checkout.session.completed", {**session, "payment_status": "unpaid"}),
                stripe_event(f"evt_drill_{index}_b", "checkout.session.async_payment_succeeded", {**session, "payment_status": "paid"}),
            ]  # fmt: skip
            deliveries = [
                signed_event(event, secret=STRIPE_WEBHOOK_SECRET) for event in events for _ in range(3)
            ]
            rng.shuffle(deliveries)
            answers = at_once(
                len(deliveries),
                lambda i, deliveries=deliveries: server.request(
                    "POST", "/payments/stripe/webhook/", deliveries[i][0],
                    {"Content-Type": "application/json", "Stripe-Signature": deliveries[i][1]},
                ),
            )  # fmt: skip
            problems = []
            statuses = sorted(status for status, _ in answers)
            if any(status != 200 for status in statuses):
                problems.append(f"webhook answers {statuses}")
            payments = list(Payment.objects.filter(invoice=invoice))
            invoice.refresh_from_db()
            if len(payments) != 1 or payments[0].amount != invoice.total_amount:
                problems.append(
                    f"{len(payments)} payment(s) {[str(p.amount) for p in payments]} for {invoice.total_amount}"
                )
            if invoice.status != "paid":
                problems.append(f"invoice {invoice.number} is {invoice.status}")
            held += not problems
            log(
                f"try {index + 1}/{tries}: answers {statuses}, {len(payments)} payment(s), {invoice.number} "
                f"{invoice.status}: {'held' if not problems else 'FAILED: ' + '; '.join(problems)}"
            )
            notes += problems
        return {"tries": tries, "held": held, "notes": notes}
    finally:
        server.stop()


def main() -> None:
    import logging

    import django

    django.setup()
    logging.disable(logging.WARNING)
    drill = sys.argv[1]
    result = {"concurrent_posts": concurrent_posts, "stripe_webhook": stripe_webhook}[drill](drill)
    print("RESULT " + json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
