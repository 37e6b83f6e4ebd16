"""The audit trail in the admin: read-only for everyone, superusers included."""

from __future__ import annotations

import json

from django.contrib import admin
from django.utils.html import format_html

from apps.audit.models import AuditEvent
from apps.core.admin import GuardedAdmin, ReadOnlyAdminMixin
from apps.core.periods import local_time_text


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdminMixin, GuardedAdmin):
    list_display = ("when", "actor_label", "action", "content_type", "object_repr", "reason", "via")
    list_filter = (
        ("content_type", admin.RelatedOnlyFieldListFilter),
        "action",
        ("actor", admin.RelatedOnlyFieldListFilter),
        "occurred_at",
    )
    search_fields = ("object_repr", "object_id", "actor_label", "reason")
    date_hierarchy = "occurred_at"
    list_select_related = ("content_type",)
    fields = (
        "when",
        "actor_label",
        "action",
        "content_type",
        "object_id",
        "object_repr",
        "changes_shown",
        "reason",
        "via",
    )
    readonly_fields = fields
    actions = None
    show_full_result_count = False

    @admin.display(description="when 时间", ordering="occurred_at")
    def when(self, obj):
        return local_time_text(obj.occurred_at)

    @admin.display(description="changes 变更")
    def changes_shown(self, obj):
        return format_html("<pre>{}</pre>", json.dumps(obj.changes, ensure_ascii=False, indent=2))
