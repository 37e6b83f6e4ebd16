"""Writes of the webhooks app (docs/webhooks.md): endpoints and their secrets, the outbox written
inside the change's transaction, signed delivery with retries, and re-sending.

Delivery is at least once: a delivery row is locked (``SELECT … FOR UPDATE SKIP LOCKED``) for the
whole POST, so two workers never send it at once, and a delivered or given-up row is never sent
again by a task; only the re-send action sends a delivered event again (receivers deduplicate on
``Suanli-Event-Id``).

Delivery is in order per endpoint (docs/webhooks.md#order): a delivery waits while an earlier one
to the same endpoint is pending, and is queued at once when that one is delivered, given up or
cancelled.
"""

from __future__ import annotations

import datetime
import ipaddress
import json
import logging
import socket
import time
import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import requests
from celery import current_app
from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext

from apps.core.errors import DomainError
from apps.customers.models import Customer
from apps.providers.models import Provider

from . import payloads, signing
from .models import (
    CUSTOMER_EVENTS,
    PROVIDER_EVENTS,
    DeliveryStatus,
    EventType,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookEvent,
)

logger = logging.getLogger(__name__)

DELIVER_TASK = "webhooks.deliver"
TIMEOUT_SECONDS = 10
RETRY_WINDOW = datetime.timedelta(hours=72)
# Waits after the 1st, 2nd, … failed attempt; the last one repeats until the 72 hours are over.
BACKOFF = (
    datetime.timedelta(minutes=1),
    datetime.timedelta(minutes=5),
    datetime.timedelta(minutes=30),
    datetime.timedelta(hours=2),
    datetime.timedelta(hours=5),
    datetime.timedelta(hours=10),
)
SNIPPET_BYTES = 1024
USER_AGENT = "Suanli-Webhooks/1"


# -- endpoints -------------------------------------------------------------------------------------


def url_check(url: str) -> str:
    """``url`` if it is an absolute http(s) URL with a host; ``DomainError`` ``invalid_url`` otherwise."""
    url = (url or "").strip()
    try:
        parts = urlsplit(url)
        host = parts.hostname
        parts.port  # noqa: B018  (a bad port raises ValueError)
    except ValueError:
        host = None
        parts = None
    if parts is None or parts.scheme not in ("http", "https") or not host:
        message = gettext("Webhook URLs must be absolute http:// or https:// URLs.")
        raise DomainError(message, code="invalid_url", fields={"url": [message]})
    return url


def events_check(events: list[str] | None, *, owner) -> str:
    """The subscribed event types as stored (sorted, no repeats, space-separated); only types the
    owner's kind receives."""
    allowed = CUSTOMER_EVENTS if isinstance(owner, Customer) else PROVIDER_EVENTS
    events = sorted(set(events or []))
    wrong = [event for event in events if event not in allowed]
    if wrong:
        message = gettext("Not an event of this endpoint's owner: %(events)s. One of: %(allowed)s.") % {
            "events": ", ".join(map(str, wrong)),
            "allowed": ", ".join(sorted(allowed)),
        }
        raise DomainError(message, code="invalid", fields={"events": [message]})
    return " ".join(events)


def _owner_fields(owner) -> dict:
    if isinstance(owner, Customer):
        return {"customer": owner, "provider": None}
    if isinstance(owner, Provider):
        return {"customer": None, "provider": owner}
    raise TypeError(f"A webhook endpoint belongs to a customer or a provider, not {owner!r}.")


@transaction.atomic
def webhook_endpoint_create(
    *,
    owner,
    url: str,
    events: list[str] | None = None,
    enabled: bool = True,
    description: str = "",
    actor=None,
) -> tuple[WebhookEndpoint, str]:
    """A new endpoint of ``owner`` (a customer or a provider) and its secret, shown only now."""
    secret = signing.secret_new()
    endpoint = WebhookEndpoint.objects.create(
        **_owner_fields(owner),
        url=url_check(url),
        events=events_check(events, owner=owner),
        enabled=enabled,
        description=description,
        secret=secret,
        created_by=actor,
    )
    return endpoint, secret


@transaction.atomic
def webhook_endpoint_update(*, endpoint: WebhookEndpoint, actor=None, **changes: Any) -> WebhookEndpoint:
    """Change ``url``, ``events``, ``enabled`` or ``description`` (the owner stays)."""
    endpoint = WebhookEndpoint.objects.select_for_update().get(pk=endpoint.pk)
    unknown = set(changes) - {"url", "events", "enabled", "description"}
    if unknown:
        raise TypeError(f"Cannot change {', '.join(sorted(unknown))} of a webhook endpoint.")
    if "url" in changes:
        changes["url"] = url_check(changes["url"])
    if "events" in changes:
        changes["events"] = events_check(changes["events"], owner=endpoint.owner)
    for field, value in changes.items():
        setattr(endpoint, field, value)
    endpoint._history_user = actor
    endpoint.save()
    return endpoint


@transaction.atomic
def webhook_endpoint_delete(*, endpoint: WebhookEndpoint, actor=None) -> None:
    """Delete the endpoint with its deliveries and their attempts (the events stay)."""
    endpoint = WebhookEndpoint.objects.select_for_update().get(pk=endpoint.pk)
    endpoint._history_user = actor
    endpoint.delete()


@transaction.atomic
def webhook_endpoint_rotate_secret(
    *, endpoint: WebhookEndpoint, now: datetime.datetime, actor=None, grace: datetime.timedelta | None = None
) -> tuple[WebhookEndpoint, str]:
    """A new secret, shown only now; the old one keeps signing too until ``now + grace``
    (``WEBHOOK_SECRET_ROTATION_GRACE_HOURS``, 24 by default), so receivers can switch over."""
    endpoint = WebhookEndpoint.objects.select_for_update().get(pk=endpoint.pk)
    if grace is None:
        grace = datetime.timedelta(hours=settings.WEBHOOK_SECRET_ROTATION_GRACE_HOURS)
    secret = signing.secret_new()
    endpoint.previous_secret = endpoint.secret
    endpoint.previous_secret_expires_at = now + grace
    endpoint.secret = secret
    endpoint._history_user = actor
    endpoint.save()
    return endpoint, secret


def live_secrets(endpoint: WebhookEndpoint, *, now: datetime.datetime) -> list[str]:
    """The secrets that sign a delivery at ``now``: the current one, and the previous one in its grace."""
    live = [endpoint.secret]
    expires = endpoint.previous_secret_expires_at
    if endpoint.previous_secret and expires is not None and now < expires:
        live.append(endpoint.previous_secret)
    return live


# -- the outbox ------------------------------------------------------------------------------------

# Events that happen once per object: written once, however often the job that finds them runs.
_ONCE = {
    EventType.INVOICE_ISSUED,
    EventType.INVOICE_PAID,
    EventType.INVOICE_OVERDUE,
    EventType.CREDIT_NOTE_ISSUED,
    EventType.SETTLEMENT_CONFIRMED,
    EventType.CONTRACT_ACTIVATED,
}


def _data(name: str, owner, subject) -> dict:
    if name in (EventType.INVOICE_ISSUED, EventType.INVOICE_PAID, EventType.INVOICE_OVERDUE):
        return payloads.invoice_data(subject)
    if name == EventType.CREDIT_NOTE_ISSUED:
        return payloads.credit_note_data(subject)
    if name == EventType.CONTRACT_ACTIVATED:
        return payloads.contract_data(subject)
    if name == EventType.SETTLEMENT_CONFIRMED:
        return payloads.settlement_data(subject)
    return payloads.usage_rejected_data(subject, owner)


def webhook_events_record(
    *, name: str, events: list[tuple[object, object]], now: datetime.datetime | None = None, **_extra
) -> list[WebhookEvent]:
    """The ``apps.core.events`` subscriber: for each ``(owner, subject)``, write the event and one
    delivery per enabled endpoint of the owner that subscribes to it, in the caller's transaction;
    queue the deliveries after commit. One look-up finds the endpoints of all the owners.

    Nothing is written for an owner without such an endpoint, or for a once-per-object event
    written before. Unknown event names, and owners that are neither customers nor providers, are
    ignored.
    """
    if name not in EventType.values:
        return []
    customer_ids = {owner.pk for owner, _ in events if isinstance(owner, Customer)}
    provider_ids = {owner.pk for owner, _ in events if isinstance(owner, Provider)}
    if not customer_ids and not provider_ids:
        return []
    wanted: dict[tuple[str, int], list[WebhookEndpoint]] = {}
    for endpoint in WebhookEndpoint.objects.filter(enabled=True).filter(
        Q(customer_id__in=customer_ids) | Q(provider_id__in=provider_ids)
    ):
        if endpoint.receives(name):
            key = (
                ("customer", endpoint.customer_id)
                if endpoint.customer_id
                else ("provider", endpoint.provider_id)
            )
            wanted.setdefault(key, []).append(endpoint)
    if not wanted:
        return []
    now = now or timezone.now()
    written = []
    for owner, subject in events:
        kind = "customer" if isinstance(owner, Customer) else "provider"
        endpoints = wanted.get((kind, owner.pk))
        if endpoints:
            event = _event_write(name=name, owner=owner, subject=subject, endpoints=endpoints, now=now)
            if event is not None:
                written.append(event)
    return written


def _event_write(*, name: str, owner, subject, endpoints: list[WebhookEndpoint], now) -> WebhookEvent | None:
    once_key = f"{name}:{subject.pk}" if name in _ONCE else None
    if once_key and WebhookEvent.objects.filter(once_key=once_key).exists():
        return None
    owner_fields = _owner_fields(owner)
    try:
        with transaction.atomic():  # a savepoint: a racing job's same event loses cleanly
            event = WebhookEvent.objects.create(
                public_id=f"evt_{uuid.uuid4().hex}",
                type=name,
                once_key=once_key,
                data=_data(name, owner, subject),
                created_at=now,
                **owner_fields,
            )
    except IntegrityError:
        if once_key and WebhookEvent.objects.filter(once_key=once_key).exists():
            return None
        raise
    deliveries = WebhookDelivery.objects.bulk_create(
        [
            WebhookDelivery(event=event, endpoint=endpoint, created_at=now, retry_until=now + RETRY_WINDOW)
            for endpoint in endpoints
        ]
    )
    for delivery in deliveries:
        _queue_after_commit(delivery.pk)
    return event


def _queue_after_commit(delivery_id: int, eta: datetime.datetime | None = None) -> None:
    def send() -> None:
        current_app.signature(DELIVER_TASK, args=(delivery_id,)).apply_async(eta=eta)

    transaction.on_commit(send)


# -- delivering ------------------------------------------------------------------------------------


def event_body(event: WebhookEvent) -> bytes:
    """The JSON body receivers get (and whose raw bytes are signed)."""
    body = {
        "id": event.public_id,
        "type": event.type,
        "created": payloads._time(event.created_at),
        "data": event.data,
    }
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()


@dataclass(frozen=True, slots=True)
class Answer:
    status_code: int | None
    snippet: str
    error: str
    duration_ms: int

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def private_address_refusal(url: str) -> str:
    """Why ``url`` may not be POSTed to (its host resolves to a loopback, private, link-local or
    reserved address), or "" when it may. ``WEBHOOK_ALLOW_PRIVATE_ADDRESSES`` lifts the rule."""
    if settings.WEBHOOK_ALLOW_PRIVATE_ADDRESSES:
        return ""
    parts = urlsplit(url)
    try:
        infos = socket.getaddrinfo(parts.hostname, parts.port or (443 if parts.scheme == "https" else 80))
    except (OSError, UnicodeError) as exc:
        return f"{type(exc).__name__}: {exc}"[:500]
    for info in infos:
        address = ipaddress.ip_address(info[4][0].split("%")[0])
        if not address.is_global or address.is_multicast:
            return gettext("%(host)s resolves to %(address)s, a private address: not sent.") % {
                "host": parts.hostname,
                "address": address,
            }
    return ""


def _post(url: str, *, body: bytes, headers: dict[str, str]) -> Answer:
    """POST once, never following a redirect; the answer's first 1 KB, or what went wrong."""
    started = time.monotonic()
    status_code, snippet, error = None, "", ""
    refusal = private_address_refusal(url)
    if refusal:
        return Answer(status_code=None, snippet="", error=refusal, duration_ms=0)
    try:
        with requests.post(
            url, data=body, headers=headers, timeout=TIMEOUT_SECONDS, allow_redirects=False, stream=True
        ) as response:
            status_code = response.status_code
            head = b""
            for chunk in response.iter_content(SNIPPET_BYTES):
                head = chunk[:SNIPPET_BYTES]
                break
            snippet = head.decode("utf-8", "replace")[:SNIPPET_BYTES]
            if response.is_redirect or 300 <= status_code < 400:
                error = gettext("Redirect to %(location)s not followed.") % {
                    "location": response.headers.get("Location", "?")[:300]
                }
    except requests.Timeout:
        error = gettext("No answer within %(seconds)s seconds.") % {"seconds": TIMEOUT_SECONDS}
    except requests.RequestException as exc:
        error = f"{type(exc).__name__}: {exc}"[:500]
    duration_ms = int((time.monotonic() - started) * 1000)
    return Answer(status_code=status_code, snippet=snippet, error=error[:500], duration_ms=duration_ms)


def backoff_after(step: int) -> datetime.timedelta:
    """The wait after the ``step``-th failed attempt in a row (1-based)."""
    return BACKOFF[min(step, len(BACKOFF)) - 1]


def webhook_delivery_send(*, delivery_id: int, now: datetime.datetime) -> WebhookAttempt | None:
    """Send one pending delivery if it is due; the attempt, or None when there was nothing to do
    (delivered, given up, not due yet, or another worker holds it right now).

    2xx: delivered. Anything else (an error, a timeout, a redirect): the next attempt is scheduled
    after the backoff, or the delivery gives up (failed) when that would pass ``retry_until``.
    A disabled endpoint's pending deliveries are cancelled, not sent.
    """
    with transaction.atomic():
        delivery = (
            WebhookDelivery.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("event", "endpoint")
            .filter(pk=delivery_id, status=DeliveryStatus.PENDING)
            .first()
        )
        if delivery is None or (delivery.next_attempt_at is not None and delivery.next_attempt_at > now):
            return None
        endpoint, event = delivery.endpoint, delivery.event
        if not endpoint.enabled:
            delivery.status = DeliveryStatus.CANCELLED
            delivery.next_attempt_at = None
            delivery.last_error = gettext("The endpoint is disabled.")
            delivery.save(update_fields=["status", "next_attempt_at", "last_error", "updated_at"])
            _next_in_line_queue(endpoint_id=endpoint.pk, now=now)
            return None
        if _earlier_pending(delivery).exists():
            return None  # its turn comes when the earlier one is settled (_next_in_line_queue)
        body = event_body(event)
        timestamp = int(now.timestamp())
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "User-Agent": USER_AGENT,
            signing.EVENT_ID_HEADER: event.public_id,
            "Suanli-Event-Type": event.type,
            signing.HEADER: signing.signature_header(
                secrets_live=live_secrets(endpoint, now=now), timestamp=timestamp, body=body
            ),
        }
        answer = _post(endpoint.url, body=body, headers=headers)
        attempt = WebhookAttempt.objects.create(
            delivery=delivery,
            attempted_at=now,
            status_code=answer.status_code,
            duration_ms=answer.duration_ms,
            response_snippet=answer.snippet,
            error=answer.error,
            succeeded=answer.ok,
        )
        delivery.attempt_count += 1
        delivery.last_status_code = answer.status_code
        delivery.last_error = answer.error
        if answer.ok:
            delivery.status = DeliveryStatus.DELIVERED
            delivery.delivered_at = now
            delivery.next_attempt_at = None
        else:
            delivery.backoff_step += 1
            due = now + backoff_after(delivery.backoff_step)
            if due > delivery.retry_until:
                delivery.status = DeliveryStatus.FAILED
                delivery.next_attempt_at = None
                logger.warning(
                    "webhook %s to endpoint %s given up after %d attempts",
                    event.public_id,
                    endpoint.pk,
                    delivery.attempt_count,
                )
            else:
                delivery.next_attempt_at = due
                _queue_after_commit(delivery.pk, eta=due)
        delivery.save()
        if delivery.status != DeliveryStatus.PENDING:
            _next_in_line_queue(endpoint_id=endpoint.pk, now=now)
    return attempt


def _earlier_pending(delivery: WebhookDelivery):
    """Pending deliveries to the same endpoint written before ``delivery`` (its place in line)."""
    return WebhookDelivery.objects.filter(
        endpoint_id=delivery.endpoint_id, status=DeliveryStatus.PENDING, pk__lt=delivery.pk
    )


def _next_in_line_queue(*, endpoint_id: int, now: datetime.datetime) -> None:
    """The endpoint's first pending delivery, now at the head of its line, is due now and queued
    after commit (the endpoint just answered, or gave up on the one before it). One held by
    another worker right now is left to it."""
    following = (
        WebhookDelivery.objects.select_for_update(skip_locked=True)
        .filter(endpoint_id=endpoint_id, status=DeliveryStatus.PENDING)
        .order_by("pk")
        .first()
    )
    if following is None:
        return
    if following.next_attempt_at is not None and following.next_attempt_at > now:
        following.next_attempt_at = now
        following.save(update_fields=["next_attempt_at", "updated_at"])
    _queue_after_commit(following.pk)


def webhook_deliveries_due(*, now: datetime.datetime, limit: int = 500) -> list[int]:
    """Ids of pending deliveries due at ``now`` and first in their endpoint's line (the sweeper's
    list: a queued retry that was lost); the ones behind them wait their turn."""
    heads = (
        WebhookDelivery.objects.filter(status=DeliveryStatus.PENDING)
        .order_by("endpoint_id", "pk")
        .distinct("endpoint_id")
        .values("pk")
    )
    return list(
        WebhookDelivery.objects.filter(pk__in=heads)
        .filter(Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now))
        .order_by("created_at", "id")
        .values_list("pk", flat=True)[:limit]
    )


@transaction.atomic
def webhook_delivery_resend(
    *, delivery: WebhookDelivery, now: datetime.datetime, actor=None
) -> WebhookDelivery:
    """Send the event to the endpoint again, now, whatever became of it (delivered, given up,
    cancelled); a failing re-send is retried on the same schedule for another 72 hours."""
    delivery = WebhookDelivery.objects.select_for_update().select_related("endpoint").get(pk=delivery.pk)
    if not delivery.endpoint.enabled:
        message = gettext("The endpoint %(url)s is disabled; enable it to re-send.") % {
            "url": delivery.endpoint.url
        }
        raise DomainError(message, code="endpoint_disabled")
    delivery.status = DeliveryStatus.PENDING
    delivery.backoff_step = 0
    delivery.next_attempt_at = None
    delivery.retry_until = now + RETRY_WINDOW
    delivery.save(update_fields=["status", "backoff_step", "next_attempt_at", "retry_until", "updated_at"])
    logger.info("webhook delivery %s re-sent by user %s", delivery.pk, getattr(actor, "pk", None))
    _queue_after_commit(delivery.pk)
    return delivery
