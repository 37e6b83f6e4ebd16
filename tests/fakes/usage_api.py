"""A local HTTP server answering ``POST /api/v1/usage/`` (and the agent's ``/api/v1/agent/usage/``
and ``/api/v1/agent/incidents/``) like the real API (docs/usage-api.md, docs/hardware-truth.md)."""

from __future__ import annotations

import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

API_KEY = "test-key"


class FakeUsageApi:
    """``POST /api/v1/usage/`` as docs/usage-api.md describes it, deduplicating by event id.

    ``script`` holds answers for the next requests: ``"drop"`` (store the batch, then close the
    connection without answering: a lost response), ``"hang"`` (answer nothing until released),
    or ``(status, body)`` to answer instead of the API. ``known_cards`` (if set): records of
    other cards make the whole batch a 400 that lists them.
    """

    def __init__(self, port: int = 0, *, api_key: str = API_KEY) -> None:
        self.api_key = api_key
        self.stored: dict[str, dict[str, Any]] = {}
        self.accepted = self.duplicates = self.conflicts = 0
        self.requests: list[tuple[dict[str, str], Any]] = []  # usage posts
        self.paths: list[str] = []  # path of each usage post
        self.incidents: dict[str, dict[str, Any]] = {}  # event id → latest incident record
        self.incident_requests: list[Any] = []
        self.script: list[Any] = []
        self.known_cards: set[str] | None = None
        self.release = threading.Event()
        self.lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", port), self._handler())
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.02,), daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def posted_ids(self) -> list[str]:
        return [record["event_id"] for _, body in self.requests for record in body]

    def start(self) -> FakeUsageApi:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()

    def ingest(self, records: list[dict[str, Any]]) -> tuple[int, int]:
        accepted = duplicates = 0
        for record in records:
            known = self.stored.get(record["event_id"])
            if known is None:
                self.stored[record["event_id"]] = record
                accepted += 1
            elif known == record:
                duplicates += 1
            else:
                self.conflicts += 1
        self.accepted += accepted
        self.duplicates += duplicates
        return accepted, duplicates

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        api = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def answer(self, status: int, body: Any) -> None:
                data = body if isinstance(body, bytes) else json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                if self.path == "/api/v1/agent/incidents/" and not api.script:
                    with api.lock:
                        api.incident_requests.append(body)
                        created = sum(1 for r in body if r["event_id"] not in api.incidents)
                        ended = sum(
                            1
                            for r in body
                            if r["end"]
                            and (api.incidents.get(r["event_id"]) or {}).get("end") is None
                            and r["event_id"] in api.incidents
                        )
                        api.incidents.update({r["event_id"]: r for r in body})
                    self.answer(
                        201, {"created": created, "ended": ended, "unchanged": len(body) - created - ended}
                    )
                    return
                with api.lock:
                    api.paths.append(self.path)
                    api.requests.append((dict(self.headers), body))
                    step = api.script.pop(0) if api.script else None
                    if step == "drop":
                        api.ingest(body)
                        return
                if step == "hang":
                    api.release.wait(5)
                    return
                if step is not None:
                    self.answer(*step)
                    return
                usage_paths = ("/api/v1/usage/", "/api/v1/agent/usage/")
                if self.path not in usage_paths or self.headers["Authorization"] != f"Api-Key {api.api_key}":
                    self.answer(401, {"code": "not_authenticated"})
                    return
                with api.lock:
                    bad = [
                        {"index": i, "event_id": r["event_id"], "errors": {"card": ["unknown card"]}}
                        for i, r in enumerate(body)
                        if api.known_cards is not None and r["card"] not in api.known_cards
                    ]
                    if bad:
                        self.answer(
                            400, {"code": "invalid_usage", "message": "invalid records", "errors": bad}
                        )
                        return
                    accepted, duplicates = api.ingest(body)
                self.answer(201, {"accepted": accepted, "duplicates": duplicates})

        return Handler


def free_port() -> int:
    """A port with nothing listening on it (connections are refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
