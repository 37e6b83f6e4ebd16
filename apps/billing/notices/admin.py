"""The e-mail log (docs/invoices.md#e-mail): read-only; rows are written by the notice services."""

from __future__ import annotations

from django.contrib import admin

from apps.billing.notices.models import Notice
from apps.core.admin import GuardedAdmin, ReadOnlyAdminMixin


@admin.register(Notice)
class NoticeAdmin(ReadOnlyAdminMixin, GuardedAdmin):
    list_display = (
        "created_at",
        "kind",
        "invoice",
        "key",
        "status",
        "language",
        "recipients_text",
        "sent_at",
    )
    list_filter = ("kind", "status", "language")
    search_fields = ("invoice__number", "invoice__customer__code", "invoice__customer__name", "subject")
    list_select_related = ("invoice",)
    date_hierarchy = "created_at"
    fields = (
        "kind",
        "invoice",
        "key",
        "language",
        "recipients_text",
        "subject",
        "status",
        "error",
        "created_at",
        "sent_at",
    )
    readonly_fields = fields

    @admin.display(description="recipients 收件人")
    def recipients_text(self, obj: Notice) -> str:
        return ", ".join(obj.recipients)
