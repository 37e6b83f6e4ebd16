"""POST usage batches to ``{url}/api/v1/agent/usage/`` (a server's agent key) or
``{url}/api/v1/usage/`` (a partner key), and hardware incidents to ``{url}/api/v1/agent/incidents/``,
with urllib (standard library only; docs/hardware-truth.md#sources-and-incidents).

Each answer becomes one of three outcomes:

``delivered``
    HTTP 200/201 whose body is ``{"accepted": n, "duplicates": m}`` (incidents:
    ``{"created", "ended", "unchanged"}``).
``rejected`` (permanent: retrying the same batch cannot help)
    HTTP 400 (invalid batch; nothing of it was stored), 409 (conflicting content under a known
    event id), 422. :func:`rejected_indexes` reads which records the answer names.
``retry`` (keep the batch and send it again next cycle)
    Connection errors, timeouts, 5xx, 429, any other status (401/403: a wrong key is fixed by the
    operator, and the records must still be there afterwards), redirects (a POST must not be
    silently turned into a GET: fix ``--url``), and a 2xx without the expected counts (a URL
    that is not the Suanli API must not swallow records).
"""

from __future__ import annotations

import http.client
import json
import logging
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal

logger = logging.getLogger(__name__)

USAGE_PATH = "/api/v1/usage/"  # partner usage (a provider's partner key)
AGENT_USAGE_PATH = "/api/v1/agent/usage/"  # the agent's own usage (a server's agent key)
AGENT_INCIDENTS_PATH = "/api/v1/agent/incidents/"
MAX_BATCH_RECORDS = 10_000  # docs/usage-api.md#limits
# Django refuses request bodies over DATA_UPLOAD_MAX_MEMORY_SIZE (2.5 MiB by default) with a
# 400, and 10,000 records are about 3 MB, so batches are also cut by size.
MAX_BATCH_BYTES = 1_000_000
PERMANENT_STATUSES = frozenset({400, 409, 422})
USER_AGENT = "suanli-metering-agent/1"

Outcome = Literal["delivered", "rejected", "retry"]


@dataclass(frozen=True, slots=True)
class SendResult:
    outcome: Outcome
    status: int | None = None
    accepted: int = 0
    duplicates: int = 0
    response: Any = None  # parsed JSON body, or up to 2,000 characters of text
    reason: str = ""


def encode(records: Sequence[dict[str, Any]]) -> bytes:
    return json.dumps(list(records), ensure_ascii=False, separators=(",", ":")).encode()


def batches(
    records: Sequence[dict[str, Any]],
    *,
    max_records: int = MAX_BATCH_RECORDS,
    max_bytes: int = MAX_BATCH_BYTES,
) -> Iterator[list[dict[str, Any]]]:
    """Consecutive runs of ``records`` of at most ``max_records`` and (but for a single record
    larger than that) ``max_bytes`` of JSON."""
    batch: list[dict[str, Any]] = []
    size = 2  # "[" and "]"
    for record in records:
        record_size = len(encode([record])) - 1  # its JSON plus one comma
        if batch and (len(batch) >= max_records or size + record_size > max_bytes):
            yield batch
            batch, size = [], 2
        batch.append(record)
        size += record_size
    if batch:
        yield batch


def rejected_indexes(response: Any, batch: Sequence[dict[str, Any]]) -> set[int] | None:
    """The positions of the records a 400 answer names, or ``None`` to reject the whole batch.

    The API lists bad records as ``{"index", "event_id", "errors"}``
    (docs/usage-api.md#answers-and-error-codes), at the top level or under any key of an error
    object. Only an answer whose every entry points at a record of
    this batch (same event id, where it gives one) is trusted; anything else rejects all.
    """
    entries = None
    if isinstance(response, list):
        entries = response
    elif isinstance(response, dict):
        for value in response.values():
            if isinstance(value, list) and value and all(isinstance(e, dict) and "index" in e for e in value):
                entries = value
                break
    if not entries:
        return None
    indexes = set()
    for entry in entries:
        if not isinstance(entry, dict):
            return None
        index = entry.get("index")
        if not isinstance(index, int) or isinstance(index, bool) or not 0 <= index < len(batch):
            return None
        if "event_id" in entry and entry["event_id"] != batch[index].get("event_id"):
            return None
        indexes.add(index)
    return indexes or None


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req, fp, code, msg, headers, newurl):  # type: ignore[no-untyped-def]
        return None  # urllib then raises HTTPError with the 3xx status


def default_opener() -> urllib.request.OpenerDirector:
    return urllib.request.build_opener(_NoRedirect())


def _body(raw: bytes) -> Any:
    text = raw.decode("utf-8", "replace")
    try:
        return json.loads(text)
    except ValueError:
        return text[:2000]


class Sender:
    def __init__(
        self,
        *,
        url: str,
        api_key: str,
        timeout: float = 30.0,
        opener: urllib.request.OpenerDirector | None = None,
        path: str = USAGE_PATH,
    ) -> None:
        self.endpoint = url.rstrip("/") + path
        self.incidents_endpoint = url.rstrip("/") + AGENT_INCIDENTS_PATH
        self._api_key = api_key
        self.timeout = timeout
        self._opener = opener or default_opener()

    def post(self, batch: Sequence[dict[str, Any]]) -> SendResult:
        answer = self._send(self.endpoint, batch)
        if isinstance(answer, SendResult):
            return answer
        return self._result(*answer, len(batch))

    def post_incidents(self, batch: Sequence[dict[str, Any]]) -> SendResult:
        """Incidents: delivered on 200/201 with ``created``/``ended``/``unchanged`` counts (as
        ``accepted`` = created + ended, ``duplicates`` = unchanged)."""
        answer = self._send(self.incidents_endpoint, batch)
        if isinstance(answer, SendResult):
            return answer
        status, body = answer
        if status in (200, 201):
            counts = body if isinstance(body, dict) else {}
            values = [counts.get(key) for key in ("created", "ended", "unchanged")]
            if all(isinstance(n, int) and not isinstance(n, bool) for n in values):
                return SendResult(
                    "delivered", status, accepted=values[0] + values[1], duplicates=values[2], response=body
                )
            return SendResult(
                "retry",
                status,
                response=body,
                reason=f"HTTP {status} without incident counts: is {self.incidents_endpoint} the Suanli API?",
            )
        return self._result(status, body, len(batch))

    def _send(self, endpoint: str, batch: Sequence[dict[str, Any]]) -> tuple[int, Any] | SendResult:
        request = urllib.request.Request(
            endpoint,
            data=encode(batch),
            method="POST",
            headers={
                "Content-Type": "application/json",
                "Accept": "application/json",
                "Authorization": f"Api-Key {self._api_key}",
                "User-Agent": USER_AGENT,
            },
        )
        try:
            with self._opener.open(request, timeout=self.timeout) as response:
                status, raw = response.status, response.read()
        except urllib.error.HTTPError as exc:
            try:
                raw = exc.read()
            except (OSError, http.client.HTTPException):
                raw = b""
            status = exc.code
        except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
            # URLError wraps refused connections and DNS failures; socket timeouts, resets and
            # RemoteDisconnected can also escape while the body is read.
            reason = getattr(exc, "reason", exc)
            if isinstance(reason, TimeoutError):
                reason = f"timed out after {self.timeout:g} s"
            return SendResult("retry", reason=f"cannot reach {endpoint}: {reason}")
        return status, _body(raw)

    def _result(self, status: int, body: Any, size: int) -> SendResult:
        if status in (200, 201):
            counts = body if isinstance(body, dict) else {}
            accepted, duplicates = counts.get("accepted"), counts.get("duplicates")
            if not all(isinstance(n, int) and not isinstance(n, bool) for n in (accepted, duplicates)):
                return SendResult(
                    "retry",
                    status,
                    response=body,
                    reason=f"HTTP {status} without accepted/duplicates counts: is {self.endpoint} the Suanli API?",
                )
            if accepted + duplicates != size:
                logger.warning(
                    "the API counted %d accepted + %d duplicates for a batch of %d records: %.500s",
                    accepted,
                    duplicates,
                    size,
                    json.dumps(body),
                )
            return SendResult("delivered", status, accepted=accepted, duplicates=duplicates, response=body)
        if status in PERMANENT_STATUSES:
            return SendResult("rejected", status, response=body, reason=f"HTTP {status}")
        if 300 <= status < 400:
            reason = f"HTTP {status} redirect from {self.endpoint}: set --url to the API's final address"
        elif status in (401, 403):
            reason = f"HTTP {status}: the API key was refused (check --api-key / SUANLI_API_KEY)"
        else:
            reason = f"HTTP {status}"
        return SendResult("retry", status, response=body, reason=reason)
