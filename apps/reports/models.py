"""Finance reports own no table: this proxy (of Django's content types, the most inert table at
hand; nothing reads rows through it) only carries the permission to read them
(docs/reports.md#who-reads-them), granted to finance and sales managers in apps.accounts.roles."""

from __future__ import annotations

from django.contrib.contenttypes.models import ContentType


class Report(ContentType):
    class Meta:
        proxy = True
        default_permissions = ()
        permissions = [("view_reports", "Can read the finance reports 查看财务报表")]
        verbose_name = "finance report 财务报表"
        verbose_name_plural = "finance reports 财务报表"

    def __str__(self) -> str:
        return "finance reports 财务报表"
