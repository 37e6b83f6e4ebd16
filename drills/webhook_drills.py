"""Webhook drill: the receiver down while events stream, a real Celery worker delivering them.

    python -m drills.webhook_drills webhook_receiver_down

Two threaded ``http.server`` receivers in this process are the customers' webhook endpoints in the
drill's database: one answers 503, the other does not listen (connections refused), while the
product's own services issue and pay invoices (each an ``invoice.issued`` or ``invoice.paid``
event); then both answer 200 and more events follow at once. The worker is ``kill -9``ed once
while a delivery is in flight. Retries run as production runs them: the ETA task a failed attempt
queued, and the beat's ``webhooks.deliver_due`` (sent by this drill every ``DRILL_HOOK_SWEEP_S``
seconds, where the beat sends it every minute); the retry schedule is production's (1 min, 5 min,
…), so the drill waits the first minute out. Holds when every event reaches its endpoints once, in
the order it was written (docs/webhooks.md#order), none lost.

Prints one last line ``RESULT {"tries": .., "held": .., "notes": ..}`` for drills/run.py.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import select
import socket
import sys
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from drills.common import Worker, env_int, log, wait_until


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def signature_ok(body: bytes, header: str, secret: str) -> bool:
    """The check of docs/webhooks.md ("Verifying in Python"), without the clock."""
    timestamp, signatures = None, []
    for part in header.split(","):
        key, _, value = part.strip().partition("=")
        if key == "t" and value.isdigit():
            timestamp = int(value)
        elif key == "v1":
            signatures.append(value)
    if timestamp is None:
        return False
    expected = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return any(hmac.compare_digest(expected, signature) for signature in signatures)


class Receiver:
    """The customers' receiver: ``503`` (answers 503), ``down`` (not listening) or ``ok`` (2xx after
    ``delay_s``). An event counts as received only once its 2xx has been written to a client that
    was still connected (a worker killed while the receiver thinks does not get, nor give, a 2xx)."""

    def __init__(self, delay_s: float):
        self.port = free_port()
        self.delay_s = delay_s
        self.mode = "503"
        self.server: ThreadingHTTPServer | None = None
        self.lock = threading.Lock()
        self.secrets: dict[str, str] = {}  # path → the endpoint's secret
        self.received: list[tuple[str, str]] = []  # (path, event id) per 2xx, in arrival order
        self.refused = 0  # 503 answers
        self.aborted = 0  # the client was gone before the 2xx
        self.bad_signatures = 0
        self.in_flight = 0

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def listen(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                event_id = self.headers.get("Suanli-Event-Id", "")
                secret = receiver.secrets.get(self.path, "")
                if not signature_ok(body, self.headers.get("Suanli-Signature", ""), secret):
                    with receiver.lock:
                        receiver.bad_signatures += 1
                    self.reply(400)
                    return
                if receiver.mode != "ok":
                    with receiver.lock:
                        receiver.refused += 1
                    self.reply(503)
                    return
                with receiver.lock:
                    receiver.in_flight += 1
                try:
                    time.sleep(receiver.delay_s)
                    if self.client_gone():
                        with receiver.lock:
                            receiver.aborted += 1
                        return
                    self.reply(200)
                    with receiver.lock:
                        receiver.received.append((self.path, event_id))
                except OSError:
                    with receiver.lock:
                        receiver.aborted += 1
                finally:
                    with receiver.lock:
                        receiver.in_flight -= 1

            def client_gone(self) -> bool:
                readable, _, _ = select.select([self.connection], [], [], 0)
                return bool(readable) and self.connection.recv(1, socket.MSG_PEEK) == b""

            def reply(self, status: int) -> None:
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok" if status == 200 else b"no")
                self.wfile.flush()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop_listening(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None


def _setup() -> None:
    import logging

    import django

    django.setup()
    logging.disable(logging.WARNING)


def _heads_attempted(endpoint_ids: list[int], event_ids: list[int]) -> bool:
    """Every endpoint has had an attempt at one of these events (the first in its line)."""
    from django.db import close_old_connections

    from apps.webhooks.models import WebhookDelivery

    close_old_connections()
    tried = WebhookDelivery.objects.filter(event_id__in=event_ids, attempt_count__gt=0)
    return set(tried.values_list("endpoint_id", flat=True)) >= set(endpoint_ids)


def webhook_receiver_down(name: str) -> dict:
    """Two receivers, one answering 503 and one not listening, while events stream; both back,
    more events at once; the worker killed with a delivery in flight. Every event once, in order."""
    from celery import current_app
    from django.utils import timezone

    from apps.billing.invoicing.services.issuing import invoice_issue
    from apps.billing.invoicing.services.payments import payment_record
    from apps.billing.invoicing.services.runs import billing_run_create, billing_run_execute
    from apps.billing.models import Invoice
    from apps.customers.models import Customer
    from apps.webhooks import services
    from apps.webhooks.models import DeliveryStatus, WebhookAttempt, WebhookDelivery, WebhookEvent

    periods_per_phase = env_int("DRILL_HOOK_PERIODS", 4)  # × 2 events × customers, in each of 3 phases
    sweep_s = env_int("DRILL_HOOK_SWEEP_S", 15)
    delay_s = env_int("DRILL_HOOK_ANSWER_MS", 200) / 1000
    answering_503, refusing = Receiver(delay_s), Receiver(delay_s)
    customers = list(Customer.objects.order_by("pk"))
    periods = [f"{2025 + i // 12}-{i % 12 + 1:02d}" for i in range(3 * periods_per_phase)]
    for period in periods:  # the drafts, before any endpoint exists: events come from issue and pay
        billing_run_execute(run=billing_run_create(period=period))
    # The first customer has an endpoint on each receiver; the others alternate.
    paths: dict[tuple[Receiver, str], int] = {}  # (receiver, path) → endpoint id
    for index, customer in enumerate(customers):
        for receiver in (answering_503, refusing) if index == 0 else ((answering_503, refusing)[index % 2],):
            path = f"/hooks/{customer.code}/{'503' if receiver is answering_503 else 'down'}"
            endpoint, secret = services.webhook_endpoint_create(owner=customer, url=receiver.url(path))
            receiver.secrets[path] = secret
            paths[(receiver, path)] = endpoint.pk

    worker = Worker(os.environ["DATABASE_URL"], name)
    worker.env["WEBHOOK_ALLOW_PRIVATE_ADDRESSES"] = "true"  # the receivers listen on 127.0.0.1
    last_sweep = [time.monotonic()]

    def sweep() -> None:
        """``webhooks.deliver_due``, as the beat sends it (every minute there)."""
        if time.monotonic() - last_sweep[0] >= sweep_s:
            current_app.send_task("webhooks.deliver_due")
            last_sweep[0] = time.monotonic()

    def emit(phase_periods: list[str]) -> list[int]:
        """Issue and pay each customer's invoice of these periods through the services."""
        before = set(WebhookEvent.objects.values_list("pk", flat=True))
        for period in phase_periods:
            for invoice in Invoice.objects.filter(period=period).order_by("customer_id"):
                invoice = invoice_issue(invoice=invoice, now=timezone.now())
                payment_record(
                    invoice=invoice, amount=invoice.amount_due, method="bank_transfer", now=timezone.now()
                )
            time.sleep(0.2)
        return sorted(set(WebhookEvent.objects.values_list("pk", flat=True)) - before)

    try:
        worker.start()
        worker.wait_ready()
        answering_503.listen()  # answers 503; ``refusing`` does not listen yet
        phases = [periods[i * periods_per_phase : (i + 1) * periods_per_phase] for i in range(3)]
        down = emit(phases[0])
        wait_until(lambda: _heads_attempted(list(paths.values()), down), timeout=60)
        down += emit(phases[1])
        down_s = env_int("DRILL_HOOK_DOWN_S", 20)
        time.sleep(down_s)
        refused = WebhookAttempt.objects.filter(delivery__event_id__in=down, status_code=None).count()
        log(
            f"receivers down {down_s} s: {len(down)} events; {answering_503.refused} × 503, "
            f"{refused} connection(s) refused"
        )
        answering_503.mode = "ok"
        refusing.mode = "ok"
        refusing.listen()
        back_at = time.monotonic()
        after = emit(phases[2])
        log(f"receivers back; {len(after)} more events at once")
        killed_in_flight = wait_until(
            lambda: answering_503.in_flight + refusing.in_flight > 0, timeout=120, step=0.02
        )
        in_flight = answering_503.in_flight + refusing.in_flight
        worker.kill9()
        worker.start()
        log(
            f"worker kill -9 with {in_flight} delivery(ies) in flight, {time.monotonic() - back_at:.0f} s after"
        )
        worker.wait_ready()
        events = down + after
        deliveries = WebhookDelivery.objects.filter(event_id__in=events)

        def all_delivered() -> bool:
            sweep()
            return not deliveries.exclude(status=DeliveryStatus.DELIVERED).exists()

        delivered = wait_until(all_delivered, timeout=env_int("DRILL_HOOK_WAIT_S", 420), step=0.5)
        drained_s = time.monotonic() - back_at
        current_app.send_task("webhooks.deliver_due")  # one more sweep: nothing may be sent twice
        time.sleep(5)

        # What each endpoint should have received, in the order the product wrote the events.
        expected: dict[tuple[Receiver, str], list[str]] = {key: [] for key in paths}
        key_of = {endpoint_id: key for key, endpoint_id in paths.items()}
        for endpoint_id, public_id in deliveries.order_by("pk").values_list(
            "endpoint_id", "event__public_id"
        ):
            expected[key_of[endpoint_id]].append(public_id)
        undelivered = deliveries.exclude(status=DeliveryStatus.DELIVERED).count()
        problems = [] if delivered else [f"{undelivered} deliveries not delivered"]
        doubled = lost = late = 0
        for (receiver, path), wanted in expected.items():
            got = [event_id for p, event_id in receiver.received if p == path]
            doubled += sum(n - 1 for n in Counter(got).values() if n > 1)
            lost += len(set(wanted) - set(got))
            position = {event_id: i for i, event_id in enumerate(wanted)}
            highest = -1
            for event_id in dict.fromkeys(got):  # first arrivals; late: after a later-written event
                late += position[event_id] < highest
                highest = max(highest, position[event_id])
        received = len(answering_503.received) + len(refusing.received)
        aborted = answering_503.aborted + refusing.aborted
        bad = answering_503.bad_signatures + refusing.bad_signatures
        if doubled:
            problems.append(f"{doubled} event(s) received twice")
        if lost:
            problems.append(f"{lost} event(s) never received")
        if late:
            problems.append(f"{late} event(s) arrived after a later one at the same endpoint")
        if bad:
            problems.append(f"{bad} delivery(ies) with a bad signature")
        if not killed_in_flight:
            problems.append("no delivery was in flight to kill")
        note = (
            f"{len(events)} events, {deliveries.count()} deliveries to {len(paths)} endpoints; "
            f"{answering_503.refused} × 503, {refused} refused; kill -9 with {in_flight} in flight "
            f"({aborted} aborted); {received} received: {doubled} doubled, {lost} lost, {late} out of order; "
            f"all delivered {drained_s:.0f} s after the receivers came back"
        )
        log(note)
        return {"tries": 1, "held": int(not problems), "notes": [note, *problems]}
    finally:
        worker.stop()
        answering_503.stop_listening()
        refusing.stop_listening()


def main() -> None:
    drill = sys.argv[1]
    _setup()
    result = {"webhook_receiver_down": webhook_receiver_down}[drill](drill)
    print("RESULT " + json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
