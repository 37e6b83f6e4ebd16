"""``Idempotency-Key`` on every POST under ``/api/`` (docs/api.md#idempotency-keys).

A client that sends ``Idempotency-Key: <key>`` with a POST may send the same request again (a
timeout, a lost answer, a crashed worker) without doing the thing twice:

- the first request with a key runs, and its answer (status, body, content type) is stored when it
  is a 2xx or a 4xx (not a 429, not a 5xx: those may be retried with the same key);
- the same key with the same request (method, path, query and body), from the same principal,
  within 24 hours, gets the stored answer back with ``Idempotent-Replayed: true``; nothing runs;
- the same key with another request → 422 ``idempotency_key_reused``;
- two identical requests racing: the key is claimed by inserting its row first, committed on its
  own, under a unique constraint on (principal, key). The loser waits up to
  ``API_IDEMPOTENCY_WAIT_SECONDS`` for the winner's answer and replays it, else answers 409
  ``idempotency_request_in_progress``.

The principal is whoever the view authenticates: a user (token or session) or a partner API key;
two principals may use the same key independently. Requests that authenticate no one (the token
login) and requests whose credentials fail ignore the header: the view answers as usual.

Keys are kept 24 hours; ``api.purge_idempotency_keys`` (hourly, docs/operations.md#beat-schedule)
deletes older ones, and an older row found at lookup is ignored and replaced.
"""

from __future__ import annotations

import datetime
import hashlib
import re
import time

import orjson
from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.db import IntegrityError, transaction
from django.http import HttpResponse
from django.utils import timezone
from django.utils.translation import gettext
from rest_framework.exceptions import APIException
from rest_framework.request import Request
from rest_framework.views import APIView

from apps.api.language import API_PREFIX
from apps.api.models import IdempotencyKey
from apps.metering.models import PartnerAPIKey

HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
KEPT = datetime.timedelta(hours=24)
_META_HEADER = "HTTP_IDEMPOTENCY_KEY"
_VALID_KEY = re.compile(r"[\x21-\x7e]{1,255}")  # visible ASCII: UUIDs, ULIDs, hashes, anything printable
_STORED_HEADERS = ("Content-Type", "Location")
_POLL_SECONDS = 0.05


def _error(code: str, message: str, status: int, **headers: str) -> HttpResponse:
    response = HttpResponse(
        orjson.dumps({"code": code, "message": message, "fields": {}}),
        status=status,
        content_type="application/json",
    )
    for name, value in headers.items():
        response.headers[name.replace("_", "-")] = value
    return response


def request_principal(request, view_func) -> str | None:
    """``user:<id>`` or ``api-key:<id>`` as the view would authenticate the request, else ``None``."""
    view_class = getattr(view_func, "cls", None)
    if view_class is None or not issubclass(view_class, APIView):
        return None
    # An @action may bring its own authentication classes (they arrive as initkwargs).
    classes = getattr(view_func, "initkwargs", {}).get(
        "authentication_classes", view_class.authentication_classes
    )
    authenticators = [authenticator() for authenticator in classes]
    if not authenticators:
        return None
    saved_user = request.__dict__.get("user")  # DRF's Request sets request.user; leave it as it was
    try:
        drf_request = Request(request, authenticators=authenticators)
        user, auth = drf_request.user, drf_request.auth
    except APIException:
        return None  # wrong credentials, or a session POST without its CSRF token: the view says so
    finally:
        if saved_user is None:
            request.__dict__.pop("user", None)
        else:
            request.user = saved_user
    if isinstance(auth, PartnerAPIKey):
        return f"api-key:{auth.prefix}"
    if user is not None and user.is_authenticated and getattr(user, "pk", None) is not None:
        return f"user:{user.pk}"
    return None


def request_fingerprint(request, body: bytes) -> str:
    digest = hashlib.sha256()
    for part in (request.method, request.path, request.META.get("QUERY_STRING", "")):
        digest.update(part.encode("utf-8", "surrogateescape") + b"\0")
    digest.update(body)
    return digest.hexdigest()


def _replay(row: IdempotencyKey) -> HttpResponse:
    response = HttpResponse(bytes(row.response_body), status=row.response_status)
    for name, value in row.response_headers.items():
        response.headers[name] = value
    response.headers[REPLAYED_HEADER] = "true"
    return response


def idempotency_key_claim(
    *, principal: str, key: str, fingerprint: str, method: str, path: str
) -> IdempotencyKey | HttpResponse:
    """The claimed row (the caller runs the request), or the answer to give instead."""
    deadline = time.monotonic() + float(getattr(settings, "API_IDEMPOTENCY_WAIT_SECONDS", 2))
    stale_after = datetime.timedelta(seconds=int(getattr(settings, "API_IDEMPOTENCY_LOCK_SECONDS", 300)))
    while True:
        now = timezone.now()
        try:
            with transaction.atomic():
                return IdempotencyKey.objects.create(
                    principal=principal,
                    key=key,
                    request_hash=fingerprint,
                    method=method,
                    path=path[:2048],
                    created_at=now,
                    locked_at=now,
                )
        except IntegrityError:
            pass  # someone holds the key: look at what they did with it
        row = IdempotencyKey.objects.filter(principal=principal, key=key).first()
        if row is None:
            continue  # purged meanwhile: claim it again
        if row.created_at <= now - KEPT:
            IdempotencyKey.objects.filter(pk=row.pk, created_at=row.created_at).delete()
            continue  # expired: a new request with an old key
        if row.request_hash != fingerprint:
            return _error(
                "idempotency_key_reused",
                gettext(
                    "This Idempotency-Key was used for another request in the last 24 hours; "
                    "send a new key with a new request."
                ),
                422,
            )
        if row.response_status is not None:
            return _replay(row)
        if row.locked_at <= now - stale_after:
            # The request that claimed it died without an answer (a killed worker): take it over.
            if IdempotencyKey.objects.filter(
                pk=row.pk, response_status__isnull=True, locked_at=row.locked_at
            ).update(locked_at=now):
                row.locked_at = now
                return row
            continue
        if time.monotonic() >= deadline:
            return _error(
                "idempotency_request_in_progress",
                gettext(
                    "A request with this Idempotency-Key is still being processed; "
                    "send it again shortly to get its answer."
                ),
                409,
                Retry_After="1",
            )
        time.sleep(_POLL_SECONDS)


def _is_stored(response: HttpResponse) -> bool:
    status = response.status_code
    return (200 <= status < 300 or 400 <= status < 500) and status != 429 and not response.streaming


def idempotency_key_finish(*, row: IdempotencyKey, response: HttpResponse | None) -> None:
    """Store the answer of the claimed request, or give the key up (5xx, 429, no answer)."""
    claimed = IdempotencyKey.objects.filter(pk=row.pk, locked_at=row.locked_at, response_status__isnull=True)
    if response is None or not _is_stored(response):
        claimed.delete()
        return
    claimed.update(
        response_status=response.status_code,
        response_headers={name: response[name] for name in _STORED_HEADERS if name in response},
        response_body=bytes(response.content),
        completed_at=timezone.now(),
    )


def idempotency_keys_purge(*, now: datetime.datetime) -> int:
    """Delete keys older than 24 hours; the number deleted."""
    deleted, _ = IdempotencyKey.objects.filter(created_at__lte=now - KEPT).delete()
    return deleted


_SCHEMA_HEADER = {
    "in": "header",
    "name": HEADER,
    "required": False,
    "schema": {"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[\\x21-\\x7e]{1,255}$"},
    "description": (
        "Send the request again with the same key and body within 24 hours to get the first answer "
        "(with `Idempotent-Replayed: true`) instead of running it twice (docs/api.md#idempotency-keys)."
    ),
}
_SCHEMA_ANSWERS = {
    "409": "A request with this `Idempotency-Key` is still running (`idempotency_request_in_progress`), "
    "or the request conflicts with the object's state.",
    "422": "This `Idempotency-Key` was used for another request (`idempotency_key_reused`).",
}


def document_idempotency_key(result, generator, request, public):
    """drf-spectacular postprocessing hook: the header and its answers on every authenticated POST."""
    error = {"$ref": "#/components/schemas/Error"}
    if "Error" not in result.get("components", {}).get("schemas", {}):
        return result
    for methods in result.get("paths", {}).values():
        operation = methods.get("post")
        if operation is None or not operation.get("security"):
            continue  # the token login: nobody to keep a key for
        parameters = operation.setdefault("parameters", [])
        if not any(p.get("in") == "header" and p.get("name") == HEADER for p in parameters):
            parameters.append(dict(_SCHEMA_HEADER))
        responses = operation.setdefault("responses", {})
        for status, description in _SCHEMA_ANSWERS.items():
            responses.setdefault(
                status, {"description": description, "content": {"application/json": {"schema": error}}}
            )
    return result


class IdempotencyMiddleware:
    """Runs POSTs under ``/api/`` that carry an ``Idempotency-Key`` at most once per principal and key."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_view(self, request, view_func, view_args, view_kwargs):
        if (
            request.method != "POST"
            or _META_HEADER not in request.META
            or not request.path.startswith(API_PREFIX)
        ):
            return None
        key = request.META[_META_HEADER].strip()
        if not _VALID_KEY.fullmatch(key):
            return _error(
                "invalid_idempotency_key",
                gettext("The Idempotency-Key header must be 1 to 255 visible ASCII characters."),
                400,
            )
        principal = request_principal(request, view_func)
        if principal is None:
            return None
        try:
            body = request.body
        except RequestDataTooBig:
            return None  # the view answers 413
        claimed = idempotency_key_claim(
            principal=principal,
            key=key,
            fingerprint=request_fingerprint(request, body),
            method=request.method,
            path=request.path,
        )
        if isinstance(claimed, HttpResponse):
            return claimed
        response = None
        try:
            response = view_func(request, *view_args, **view_kwargs)
            if callable(getattr(response, "render", None)):
                response = response.render()
        finally:
            idempotency_key_finish(row=claimed, response=response)
        return response
