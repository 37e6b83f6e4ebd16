"""A local stand-in for Stripe's API (Checkout Sessions) and for its signed webhooks.

``FakeStripe`` answers ``POST /v1/checkout/sessions`` like Stripe does (form-encoded request, JSON
session back, ``url`` pointing at the fake) and records every request; point the ``stripe``
client at it with ``STRIPE_API_BASE = fake.url``. ``signed_event`` builds a webhook body and its
``Stripe-Signature`` header exactly as Stripe signs them (``t=…,v1=HMAC-SHA256(secret, "t.body")``),
so tests post real signed events. Nothing here reaches the internet.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl

SECRET_KEY = "sk_test_fake"
WEBHOOK_SECRET = "whsec_test_fake"


def _nest(pairs: list[tuple[str, str]]) -> dict[str, Any]:
    """``line_items[0][price_data][unit_amount]=123`` → nested dicts (lists as index-keyed dicts)."""
    out: dict[str, Any] = {}
    for key, value in pairs:
        parts = key.replace("]", "").split("[")
        node = out
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    return out


class FakeStripe:
    """Checkout Sessions only. ``sessions`` by id; ``requests`` as (path, headers, parsed form)."""

    def __init__(self) -> None:
        self.sessions: dict[str, dict[str, Any]] = {}
        self.requests: list[tuple[str, dict[str, str], dict[str, Any]]] = []
        self.fail_next: tuple[int, dict] | None = None
        self.webhook_url: str | None = None  # where the hosted Checkout page posts its webhook
        self.webhook_answers: list[int] = []
        self._ids = itertools.count(1)
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.02,), daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def start(self) -> FakeStripe:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def _create_session(self, form: dict[str, Any]) -> dict[str, Any]:
        number = next(self._ids)
        item = form["line_items"]["0"]
        amount = int(item["price_data"]["unit_amount"]) * int(item.get("quantity", "1"))
        session = {
            "id": f"cs_test_{number:06d}",
            "object": "checkout.session",
            "mode": form.get("mode"),
            "url": f"{self.url}/pay/cs_test_{number:06d}",
            "amount_total": amount,
            "currency": item["price_data"]["currency"],
            "client_reference_id": form.get("client_reference_id"),
            "metadata": form.get("metadata", {}),
            "customer_email": form.get("customer_email"),
            "success_url": form.get("success_url"),
            "cancel_url": form.get("cancel_url"),
            "payment_status": "unpaid",
            "status": "open",
            "payment_intent": f"pi_test_{number:06d}",
            "line_items": form["line_items"],
        }
        self.sessions[session["id"]] = session
        return session

    def _handler(self):
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet
                pass

            def _answer(self, status: int, body: dict) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):
                """Stripe's hosted Checkout page for a session: one button that pays."""
                session = fake.sessions.get(self.path.removeprefix("/pay/"))
                if session is None:
                    return self._answer(404, {"error": {"message": "No such session"}})
                amount = session["amount_total"]
                page = (
                    "<!DOCTYPE html><html><head><meta charset='utf-8'><title>Checkout (fake Stripe)</title>"
                    "</head><body><h1>Fake Stripe Checkout</h1>"
                    f"<p>{session['currency'].upper()} {amount // 100}.{amount % 100:02d}</p>"
                    f"<form method='post' action='/pay/{session['id']}/confirm'>"
                    "<button type='submit' data-testid='fake-stripe-pay'>Pay</button></form></body></html>"
                ).encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(page)))
                self.end_headers()
                self.wfile.write(page)

            def _confirm(self, session_id: str) -> None:
                """The payer paid: Stripe posts the signed webhook, then sends the payer back."""
                event = fake.completed_event(session_id, event_id=f"evt_{session_id}")
                fake.sessions[session_id].update(status="complete", payment_status="paid")
                body, signature = signed_event(event)
                if fake.webhook_url:
                    request = urllib.request.Request(
                        fake.webhook_url,
                        data=body,
                        headers={"Content-Type": "application/json", "Stripe-Signature": signature},
                    )
                    with urllib.request.urlopen(request, timeout=10) as answer:
                        fake.webhook_answers.append(answer.status)
                self.send_response(303)
                self.send_header("Location", fake.sessions[session_id]["success_url"] or "/")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                if self.path.startswith("/pay/") and self.path.endswith("/confirm"):
                    return self._confirm(self.path.removeprefix("/pay/").removesuffix("/confirm"))
                form = _nest(parse_qsl(self.rfile.read(length).decode(), keep_blank_values=True))
                fake.requests.append((self.path, dict(self.headers), form))
                if self.headers.get("Authorization") != f"Bearer {SECRET_KEY}":
                    return self._answer(
                        401, {"error": {"type": "invalid_request_error", "message": "Invalid API Key"}}
                    )
                if fake.fail_next is not None:
                    status, body = fake.fail_next
                    fake.fail_next = None
                    return self._answer(status, body)
                if self.path == "/v1/checkout/sessions":
                    return self._answer(200, fake._create_session(form))
                return self._answer(
                    404, {"error": {"type": "invalid_request_error", "message": "Unknown path"}}
                )

        return Handler

    def completed_event(
        self, session_id: str, *, event_id: str, paid: bool = True, **session_changes
    ) -> dict:
        """The ``checkout.session.completed`` event Stripe sends once the payer has paid."""
        session = {
            **self.sessions[session_id],
            "status": "complete",
            "payment_status": "paid" if paid else "unpaid",
        }
        session.update(session_changes)
        return stripe_event(event_id, "checkout.session.completed", session)


def stripe_event(event_id: str, event_type: str, obj: dict) -> dict:
    return {
        "id": event_id,
        "object": "event",
        "api_version": "2024-06-20",
        "created": int(time.time()),
        "type": event_type,
        "livemode": False,
        "data": {"object": obj},
    }


def signed_event(
    event: dict, *, secret: str = WEBHOOK_SECRET, timestamp: int | None = None
) -> tuple[bytes, str]:
    """The body and ``Stripe-Signature`` header Stripe would send for ``event``."""
    payload = json.dumps(event).encode()
    t = int(time.time()) if timestamp is None else timestamp
    signature = hmac.new(secret.encode(), f"{t}.".encode() + payload, hashlib.sha256).hexdigest()
    return payload, f"t={t},v1={signature}"
