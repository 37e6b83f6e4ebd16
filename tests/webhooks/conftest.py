"""A local receiver (http.server on 127.0.0.1 in a thread) that records what it is sent and answers
as told, and a customer with a webhook endpoint; the verification snippet of docs/webhooks.md."""

from __future__ import annotations

import datetime
import re
import threading
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from apps.accounts import roles
from apps.webhooks import services
from tests.factories.catalogue import CustomerFactory, ProviderFactory, ServerFactory, SiteFactory, gpu_model

SH = datetime.timezone(datetime.timedelta(hours=8))
DOCS = Path(__file__).resolve().parents[2] / "docs" / "webhooks.md"


def docs_verify():
    """The ``verify`` function of the Python snippet in docs/webhooks.md, run as published."""
    text = DOCS.read_text()
    (snippet,) = re.findall(r"### Verifying in Python\n\n```python\n(.*?)```", text, re.S)
    namespace: dict = {}
    exec(compile(snippet, str(DOCS), "exec"), namespace)
    return namespace["verify"]


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    url: str
    requests: list[Received] = field(default_factory=list)
    # What to answer, in turn: (status, body, extra headers); once used up, 200 "ok".
    answers: deque = field(default_factory=deque)

    def answer(self, status: int, body: bytes = b"", headers: dict | None = None) -> None:
        self.answers.append((status, body, headers or {}))


@pytest.fixture
def receiver():
    state = Receiver(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length)
            state.requests.append(Received(self.path, dict(self.headers.items()), body))
            status, reply, headers = state.answers.popleft() if state.answers else (200, b"ok", {})
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}/hooks/suanli"
    yield state
    server.shutdown()
    server.server_close()


@pytest.fixture
def am(make_staff):
    return make_staff(roles.ACCOUNT_MANAGER, username="am1")


@pytest.fixture
def customer(am):
    return CustomerFactory(code="acme", account_manager=am, payment_terms_days=30)


@pytest.fixture
def server():
    provider = ProviderFactory(code="bj-idc")
    return ServerFactory(site=SiteFactory(provider=provider), gpu_model=gpu_model("A100-SXM4-40GB"))


@pytest.fixture
def endpoint(customer, receiver):
    """An enabled endpoint of ``customer`` for every event; ``endpoint.plain_secret`` is its secret."""
    made, secret = services.webhook_endpoint_create(owner=customer, url=receiver.url, description="ERP")
    made.plain_secret = secret
    return made


def provider_endpoint(provider, url: str):
    made, secret = services.webhook_endpoint_create(owner=provider, url=url)
    made.plain_secret = secret
    return made


@pytest.fixture(autouse=True)
def _local_receivers_allowed(settings):
    """The receiver listens on 127.0.0.1, which production refuses (test_private_addresses.py)."""
    settings.WEBHOOK_ALLOW_PRIVATE_ADDRESSES = True
