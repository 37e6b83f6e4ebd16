"""Append-only audit events: who changed what, when, and why (docs/security.md#audit-trail).

Rows are only ever inserted (``apps.audit.services.audit_record``). The database refuses UPDATE
and DELETE on the table (trigger ``audit_auditevent_append_only``), and the admin shows the rows
read-only to everyone, superusers included.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.contenttypes.models import ContentType
from django.db import models
from django.utils import timezone


class AuditAction(models.TextChoices):
    CREATED = "created", "Created 新建"
    CHANGED = "changed", "Changed 修改"
    DELETED = "deleted", "Deleted 删除"
    ROLES_CHANGED = "roles_changed", "Roles changed 角色变更"


class AuditEvent(models.Model):
    occurred_at = models.DateTimeField("when 时间", default=timezone.now, db_index=True)
    # No database constraint and no cascade: deleting a user must neither touch nor block the trail;
    # ``actor_label`` keeps the name as it was.
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name="who 操作人",
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        null=True,
        blank=True,
        related_name="+",
    )
    actor_label = models.CharField("actor 操作人", max_length=150)
    action = models.CharField("what 操作", max_length=20, choices=AuditAction.choices)
    content_type = models.ForeignKey(
        ContentType, verbose_name="model 对象类型", on_delete=models.PROTECT, related_name="+"
    )
    object_id = models.CharField("object id 对象编号", max_length=64, db_index=True)
    object_repr = models.CharField("object 对象", max_length=200)
    changes = models.JSONField("changes 变更", default=dict, blank=True)
    reason = models.TextField("why 原因", blank=True)
    via = models.CharField("via 来源", max_length=200, blank=True)

    class Meta:
        verbose_name = "audit event 审计记录"
        verbose_name_plural = "audit trail 审计记录"
        ordering = ["-occurred_at", "-pk"]
        indexes = [models.Index(fields=["content_type", "object_id"], name="audit_object_idx")]

    def __str__(self) -> str:
        return f"{self.actor_label} {self.action} {self.object_repr}"
