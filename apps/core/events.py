"""Domain events: a tiny hook that lets a service say "this happened" without knowing who listens.

A service calls ``event_publish("invoice.issued", owner=invoice.customer, subject=invoice, now=now)``
at the point of the change, inside its own transaction (``event_publish_many`` for a batch, so a
job that finds a thousand overdue invoices costs its subscribers one look-up, not a thousand).
Every subscriber runs synchronously, right there, in that transaction: what it writes (the webhooks
outbox) commits or rolls back with the change itself. Subscribers register at start-up, from their
``AppConfig.ready`` (``apps/webhooks/apps.py``), so domain apps import nothing of theirs.

Names are ``<object>.<verb>`` (docs/webhooks.md#events). ``owner`` is the customer or provider the
event belongs to; ``subject`` the changed object (a model instance, or a plain dict for events that
store nothing, such as a refused usage batch); ``extra`` keyword arguments (``now``) travel as they are.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

Subscriber = Callable[..., object]

_SUBSCRIBERS: list[Subscriber] = []


def event_subscribe(subscriber: Subscriber) -> Subscriber:
    """Call ``subscriber(name=…, events=[(owner, subject), …], **extra)`` on every event.

    Registering the same subscriber twice registers it once.
    """
    if subscriber not in _SUBSCRIBERS:
        _SUBSCRIBERS.append(subscriber)
    return subscriber


def event_publish_many(name: str, *, events: Sequence[tuple[object, object]], **extra) -> None:
    """``name`` happened to each ``(owner, subject)``: run the subscribers, in registration order,
    in the caller's transaction. A subscriber's exception propagates: the change and its events
    stand or fall together."""
    if not events:
        return
    for subscriber in _SUBSCRIBERS:
        subscriber(name=name, events=list(events), **extra)


def event_publish(name: str, *, owner, subject, **extra) -> None:
    """``name`` happened to ``subject`` of ``owner`` (see ``event_publish_many``)."""
    event_publish_many(name, events=[(owner, subject)], **extra)
