"""Domain events: a tiny hook that lets a service say "this happened" without knowing who listens.

A service calls ``event_publish("invoice.issued", owner=invoice.customer, subject=invoice)`` at the
point of the change, inside its own transaction. Every subscriber registered for the name (or for
all names) runs synchronously, right there, in that transaction: what a subscriber writes (the
webhooks outbox) commits or rolls back with the change itself. Subscribers register at start-up,
from their ``AppConfig.ready`` (``apps/webhooks/apps.py``), so domain apps import nothing of theirs.

Names are ``<object>.<verb>`` (docs/webhooks.md#events). ``owner`` is the customer or provider the
event belongs to; ``subject`` the changed object (a model instance, or a plain dict for events that
store nothing, such as a refused usage batch); ``extra`` keyword arguments travel as they are.
"""

from __future__ import annotations

from collections.abc import Callable

Subscriber = Callable[..., object]
ALL = "*"

_SUBSCRIBERS: dict[str, list[Subscriber]] = {}


def event_subscribe(*, name: str = ALL, subscriber: Subscriber) -> Subscriber:
    """Call ``subscriber(name=…, owner=…, subject=…, **extra)`` on every ``name`` event (``*``: all).

    Registering the same subscriber twice for a name registers it once.
    """
    subscribers = _SUBSCRIBERS.setdefault(name, [])
    if subscriber not in subscribers:
        subscribers.append(subscriber)
    return subscriber


def event_publish(name: str, *, owner, subject, **extra) -> None:
    """Run the subscribers of ``name`` (and of every event), in registration order, in the caller's
    transaction. A subscriber's exception propagates: the change and its event stand or fall together.
    """
    for subscriber in (*_SUBSCRIBERS.get(name, ()), *_SUBSCRIBERS.get(ALL, ())):
        subscriber(name=name, owner=owner, subject=subject, **extra)
