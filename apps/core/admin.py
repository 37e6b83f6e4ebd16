"""The rules every Suanli model admin follows, whatever page a request arrives on.

Django's admin checks row access on the change and delete pages through ``get_queryset``, but
not on everything around them: django-simple-history's history and "revert" pages load rows from
the history table directly, and the "delete selected" action deletes a queryset in one SQL
statement, past every per-object check and service. ``GuardedAdminMixin`` closes those doors:

- history pages need the same row access as the object's change page (``get_queryset``), and the
  history of a deleted row is shown only where the admin scopes no rows (or to superusers);
- reverting from history is off for every model: a past version is shown read-only, and a POST
  to it is refused with 403. Changes go through the change page, its permissions and services;
- deleting, one row or a selection, asks ``has_delete_permission(request, obj)`` for every row
  (the delete confirmation lists the rows that may not go) and deletes each through
  ``delete_model``, where the model admin calls its service.

Every registered model admin uses it; ``tests/core/test_admin_matrix.py`` walks them all.
See docs/architecture.md#admin-permissions-and-row-scoping.
"""

from __future__ import annotations

from django.contrib import admin
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.http import Http404
from django.utils.text import capfirst
from simple_history.admin import SimpleHistoryAdmin


def _shown(record, field):
    """A field's value as a person reads it: the choice's label, the related row, or "—"."""
    raw = getattr(record, field.attname)
    if raw is None or raw == "":
        return "—"
    if field.is_relation:
        try:
            return str(getattr(record, field.name))
        except Exception:
            return str(raw)
    if field.choices:
        return str(dict(field.flatchoices).get(raw, raw))
    return str(raw)


def _changes(*, older, newer) -> list[dict]:
    """What changed from ``older`` to ``newer`` over every tracked field but the save timestamps."""
    changes = []
    for field in newer.tracked_fields:
        if getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False):
            continue
        if getattr(older, field.attname) != getattr(newer, field.attname):
            changes.append(
                {
                    "field": capfirst(field.verbose_name),
                    "old": _shown(older, field),
                    "new": _shown(newer, field),
                }
            )
    return changes


class GuardedAdminMixin:
    """Row scoping and per-object checks on every admin URL (see the module docstring)."""

    #: True when ``get_queryset`` hides rows from some users (account managers see their own
    #: contracts). The history of a deleted row cannot be scoped, so only superusers see it.
    row_scoped = False

    # -- row access ------------------------------------------------------------------------

    def visible_object(self, request, object_id):
        """The row if ``request.user`` may see it on its change page, else ``None``."""
        field = self.model._meta.pk
        try:
            pk = field.to_python(unquote(object_id))
        except Exception:
            return None
        return self.get_queryset(request).filter(pk=pk).first()

    def _require_history_access(self, request, object_id):
        obj = self.visible_object(request, object_id)
        if obj is None:
            pk_field = self.model._meta.pk
            try:
                pk = pk_field.to_python(unquote(object_id))
            except Exception as exc:
                raise Http404 from exc
            if self.model._default_manager.filter(pk=pk).exists():
                raise Http404  # out of this user's scope: as if it did not exist
            if self.row_scoped and not request.user.is_superuser:
                raise Http404
        if not self.has_view_or_change_permission(request, obj):
            raise PermissionDenied
        return obj

    # -- deleting ------------------------------------------------------------------------------

    def get_deleted_objects(self, objs, request):
        deleted, counts, perms_needed, protected = super().get_deleted_objects(objs, request)
        for obj in objs:
            if not self.has_delete_permission(request, obj):
                perms_needed.add(f"{self.model._meta.verbose_name} “{obj}”")
        return deleted, counts, perms_needed, protected

    def delete_queryset(self, request, queryset):
        """Each row through ``delete_model`` (and so its service), all or none."""
        with transaction.atomic():
            for obj in queryset:
                if not self.has_delete_permission(request, obj):
                    raise PermissionDenied
                self.delete_model(request, obj)


class ReadOnlyAdminMixin:
    """Rows that only a service writes (payments, credit notes, usage, ledgers, logs): the admin
    lists and shows them; nobody adds, changes or deletes one there."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class GuardedAdmin(GuardedAdminMixin, admin.ModelAdmin):
    """A model admin without history."""


class GuardedHistoryAdmin(GuardedAdminMixin, SimpleHistoryAdmin):
    """A model admin with django-simple-history pages: scoped, read-only history."""

    def history_view(self, request, object_id, extra_context=None):
        self._require_history_access(request, object_id)
        return super().history_view(request, object_id, extra_context)

    def history_form_view(self, request, object_id, version_id, extra_context=None):
        self._require_history_access(request, object_id)
        if request.method != "GET":
            raise PermissionDenied("Reverting from history is disabled: change the object on its page.")
        request._suanli_history_read_only = True
        return super().history_form_view(request, object_id, version_id, extra_context)

    def revert_disabled(self, request, obj=None):
        return True

    def set_history_delta_changes(self, request, historical_records, foreign_keys_are_objs=True):
        """The "Changes" column for every tracked field, not only the editable ones.

        django-simple-history diffs editable fields only, but the fields services write (status,
        approved by / at, activated at…) are ``editable=False``: the column stayed empty exactly
        where it mattered. Timestamps that change on every save are left out. A row without a
        reason shows "—", not "None".
        """
        records = list(historical_records)
        previous = None
        for current in records:
            if current.history_change_reason is None:
                current.history_change_reason = "—"
            if previous is not None:
                previous.history_delta_changes = _changes(older=current, newer=previous)
            previous = current

    def get_readonly_fields(self, request, obj=None):
        if getattr(request, "_suanli_history_read_only", False):
            editable = [f.name for f in self.model._meta.fields if f.editable and not f.primary_key]
            return [*editable, *super().get_readonly_fields(request, obj)]
        return super().get_readonly_fields(request, obj)
