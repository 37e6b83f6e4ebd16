"""Plumbing of the demo loader: the run context, tallies, a progress hook and the sync helper.

Every step writes through ``sync`` (or a bulk insert of what is missing), keyed on natural keys,
so running the loader twice changes nothing: a row is saved only when one of its values differs.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol

from django.db import models

CREATED = "created"
UPDATED = "updated"
UNCHANGED = "unchanged"


class ProgressBar(Protocol):
    def update(self, n: int = 1) -> Any: ...


ProgressFactory = Callable[..., Any]


@contextmanager
def no_progress(*, total: int, desc: str, unit: str = "it") -> Iterator[ProgressBar]:
    """The default progress hook: counts nothing, prints nothing."""

    class _Silent:
        def update(self, n: int = 1) -> None:
            return None

    yield _Silent()


@dataclass
class Tally:
    created: int = 0
    updated: int = 0
    unchanged: int = 0

    def add(self, outcome: str, n: int = 1) -> None:
        setattr(self, outcome, getattr(self, outcome) + n)

    @property
    def total(self) -> int:
        return self.created + self.updated + self.unchanged


@dataclass
class DemoContext:
    """What a step gets: the seed (for its own random generator), tallies and the progress hook."""

    seed: int
    progress: ProgressFactory = no_progress
    tallies: dict[str, Tally] = field(default_factory=dict)

    def rng(self, *names: object) -> random.Random:
        """A generator private to a step (or item), so adding a step never shifts another's data."""
        return random.Random(":".join(str(n) for n in (self.seed, *names)))

    def tally(self, label: str) -> Tally:
        return self.tallies.setdefault(label, Tally())


def _current(obj: models.Model, name: str) -> Any:
    model_field = obj._meta.get_field(name)
    if model_field.is_relation:
        return getattr(obj, model_field.attname)
    return getattr(obj, name)


def _wanted(obj: models.Model, name: str, value: Any) -> Any:
    if obj._meta.get_field(name).is_relation and isinstance(value, models.Model):
        return value.pk
    return value


def sync(
    model: type[models.Model], lookup: dict[str, Any], values: dict[str, Any], *, update: bool = True
) -> tuple[models.Model, str]:
    """Create the row found by ``lookup`` with ``values``, or bring an existing one up to date.

    Unlike ``update_or_create`` this saves only when a value differs, so an unchanged row keeps its
    ``updated_at`` and gets no history record. ``update=False`` only creates (for rows whose state
    users change: servers, users).
    """
    obj = model._default_manager.filter(**lookup).first()
    if obj is None:
        return model._default_manager.create(**lookup, **values), CREATED
    if not update:
        return obj, UNCHANGED
    changed = [name for name, value in values.items() if _current(obj, name) != _wanted(obj, name, value)]
    if not changed:
        return obj, UNCHANGED
    for name in changed:
        setattr(obj, name, values[name])
    update_fields = list(changed)
    if any(f.name == "updated_at" for f in obj._meta.concrete_fields):
        update_fields.append("updated_at")
    obj.save(update_fields=update_fields)
    return obj, UPDATED
