"""Read replicas: reads that may lag go to the ``replica`` alias, everything else to the primary.

Nothing goes to a replica unless a code path asks for it: report views, portal pages and exports
run inside :func:`use_replica` (a context manager, or :func:`replica_view` on a view), and only
their ORM reads inside it go to the replica, and only when ``settings.REPLICA_READS`` is on
(``DATABASE_REPLICA_URL`` set; docs/scaling.md#read-replicas). Even then the primary answers:

* every write (``db_for_write`` is always the primary), and ``select_for_update``;
* every read inside a transaction (``atomic``), which must see the transaction's own writes;
* every read after the code path wrote something (a session, a language choice): read-your-writes;
* the admin, the API's writes and authentication, Celery tasks and raw cursors (``connection``
  is the primary) — they never enter :func:`use_replica`.
"""

from __future__ import annotations

import contextvars
import functools
from contextlib import contextmanager

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections

REPLICA = "replica"

# None: not in a replica scope; otherwise a one-item list: whether the scope has written
_scope: contextvars.ContextVar[list[bool] | None] = contextvars.ContextVar("replica_scope", default=None)


def replica_enabled() -> bool:
    return bool(getattr(settings, "REPLICA_READS", False)) and REPLICA in settings.DATABASES


@contextmanager
def use_replica():
    """ORM reads inside go to the replica while they may (see the module doc); nestable."""
    if _scope.get() is not None:
        yield
        return
    token = _scope.set([False])
    try:
        yield
    finally:
        _scope.reset(token)


def replica_view(view):
    """Run a view's GET and HEAD requests in :func:`use_replica`, a streamed body's reads included."""

    @functools.wraps(view)
    def wrapped(request, *args, **kwargs):
        if request.method not in ("GET", "HEAD"):
            return view(request, *args, **kwargs)
        with use_replica():
            response = view(request, *args, **kwargs)
            if not getattr(response, "is_rendered", True):  # a TemplateResponse renders here, not later
                response.render()
        if getattr(response, "streaming", False):
            response.streaming_content = _in_replica(response.streaming_content)
        return response

    return wrapped


def _in_replica(chunks):
    # a streamed export reads its rows while the response is sent, after the view returned
    with use_replica():
        yield from chunks


class ReplicaRouter:
    """``DATABASE_ROUTERS`` entry: see the module doc."""

    def db_for_read(self, model, **hints):
        scope = _scope.get()
        if scope is None or scope[0] or not replica_enabled():
            return DEFAULT_DB_ALIAS
        if connections[DEFAULT_DB_ALIAS].in_atomic_block:
            return DEFAULT_DB_ALIAS
        return REPLICA

    def db_for_write(self, model, **hints):
        scope = _scope.get()
        if scope is not None:
            scope[0] = True  # from now on this scope reads its own writes on the primary
        return DEFAULT_DB_ALIAS

    def allow_relation(self, obj1, obj2, **hints):
        return True  # one database, two connections

    def allow_migrate(self, db, app_label, model_name=None, **hints):
        return db == DEFAULT_DB_ALIAS  # a replica follows the primary; it is never migrated


class ReplicaReadsMixin:
    """A DRF viewset whose ``list`` and ``retrieve`` read in :func:`use_replica` (after
    authentication, permissions and throttles, which stay on the primary)."""

    def list(self, request, *args, **kwargs):
        with use_replica():
            return super().list(request, *args, **kwargs)

    def retrieve(self, request, *args, **kwargs):
        with use_replica():
            return super().retrieve(request, *args, **kwargs)
