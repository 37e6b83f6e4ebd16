"""Writing audit events (docs/security.md#audit-trail).

``audit_record`` is the one writer. The receivers (``apps.audit.receivers``) call it for every
save and delete of the audited models; code that changes audited rows without a model save
(``QuerySet.update``) calls it itself. Who acted is, in this order: ``audit_context(actor=…)``,
the ``_history_user`` a service set on the row, the signed-in user of the current request
(django-simple-history's request middleware keeps it; DRF's token and session users included),
a ``*_by`` field the change sets (``issued_by``, ``recorded_by``…), else ``system``.
"""

from __future__ import annotations

import contextlib
import contextvars
import datetime
import decimal
import uuid
from dataclasses import dataclass

from django.contrib.contenttypes.models import ContentType
from django.db import models
from django.utils import timezone
from simple_history.models import HistoricalRecords

from apps.audit.models import AuditAction, AuditEvent

SYSTEM = "system"
# Never stored, whatever the model: only that they changed.
SECRET_FIELDS = ("password", "hashed_key", "secret", "token", "key")
HIDDEN = "(hidden)"


@dataclass(frozen=True)
class AuditContext:
    actor: object | None = None
    reason: str = ""
    via: str = ""


_context: contextvars.ContextVar[AuditContext | None] = contextvars.ContextVar("audit_context", default=None)


@contextlib.contextmanager
def audit_context(*, actor=None, reason: str = "", via: str = ""):
    """Name the actor, the reason and the channel of the changes made inside the block (management
    commands, Celery tasks, services that know better than the request)."""
    token = _context.set(AuditContext(actor=actor, reason=reason, via=via))
    try:
        yield
    finally:
        _context.reset(token)


def is_secret(name: str) -> bool:
    return any(part in name.lower() for part in SECRET_FIELDS)


def json_value(value):
    """A field value as JSON: strings for Decimals, dates and UUIDs (never 1E+1: Decimals as written)."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, decimal.Decimal):
        return format(value, "f")
    if isinstance(value, datetime.datetime | datetime.date | datetime.time):
        return value.isoformat()
    if isinstance(value, uuid.UUID | datetime.timedelta):
        return str(value)
    if isinstance(value, list | tuple):
        return [json_value(item) for item in value]
    if isinstance(value, dict):
        return {str(key): json_value(item) for key, item in value.items()}
    return str(value)


def _current_request():
    return getattr(HistoricalRecords.context, "request", None)


def _real_user(user):
    """A stored user, or ``None`` (anonymous visitors, partner systems)."""
    if user is None or not getattr(user, "is_authenticated", False):
        return None
    return user if isinstance(user, models.Model) and user.pk else None


def _label(user) -> str:
    if user is None:
        return SYSTEM
    return str(getattr(user, "username", None) or user)[:150]


def resolve(*, actor=None, reason: str = "", via: str = "") -> tuple[object | None, str, str, str]:
    """``(user or None, actor label, reason, via)`` for an event about to be written."""
    context = _context.get()
    request = _current_request()
    request_user = getattr(request, "user", None) if request is not None else None
    label = None
    if context is not None and context.actor is not None:
        actor = context.actor
    elif actor is None and request_user is not None and getattr(request_user, "is_authenticated", False):
        actor = request_user
    user = _real_user(actor)
    if user is None and actor is not None and getattr(actor, "is_authenticated", False):
        label = str(getattr(actor, "username", actor))[:150]  # a partner system: partner:<provider>
    if context is not None:
        reason = reason or context.reason
        via = via or context.via
    if not via and request is not None:
        via = f"{request.method} {request.path}"[:200]
    return user, label or _label(user), reason, via or SYSTEM


def object_key(obj: models.Model) -> str:
    """The id an event names its object by. A partner API key's primary key embeds its hash, so a
    key is named by its public prefix instead."""
    if hasattr(obj, "hashed_key") and hasattr(obj, "prefix"):
        return str(obj.prefix)[:64]
    return str(obj.pk)[:64]


def audit_record(
    *,
    obj: models.Model,
    action: str,
    changes: dict | None = None,
    actor=None,
    reason: str = "",
    via: str = "",
    model: type[models.Model] | None = None,
) -> AuditEvent:
    """Append one event about ``obj``; ``actor``, ``reason`` and ``via`` default as the module says."""
    user, label, reason, via = resolve(actor=actor, reason=reason, via=via)
    model = model or type(obj)
    return AuditEvent.objects.create(
        occurred_at=timezone.now(),
        actor=user,
        actor_label=label,
        action=action,
        content_type=ContentType.objects.get_for_model(model, for_concrete_model=True),
        object_id=object_key(obj),
        object_repr=str(obj)[:200],
        changes={key: json_value(value) for key, value in (changes or {}).items()},
        reason=(reason or "")[:2000],
        via=via,
    )


__all__ = ["AuditAction", "audit_context", "audit_record"]
