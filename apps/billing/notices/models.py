"""The log of customer e-mails, one row per event (docs/invoices.md#e-mail).

A row is claimed (inserted) inside the transaction of the event that calls for it, under the
unique constraint on (kind, invoice, key); the e-mail leaves after that transaction commits. A
second claim of the same event — a re-run, a retried task, two workers at once — inserts nothing
and so sends nothing.
"""

from __future__ import annotations

from django.db import models


class NoticeKind(models.TextChoices):
    ISSUED = "issued", "Invoice issued 发票开具"
    DUE_SOON = "due_soon", "Due in 7 days 到期提醒"
    OVERDUE = "overdue", "Overdue 逾期提醒"
    RECEIPT = "receipt", "Payment receipt 收款确认"


class NoticeStatus(models.TextChoices):
    QUEUED = "queued", "Queued 待发送"
    SENDING = "sending", "Sending 发送中"
    SENT = "sent", "Sent 已发送"
    FAILED = "failed", "Failed 发送失败"
    SKIPPED = "skipped", "Skipped 已跳过"


class Notice(models.Model):
    kind = models.CharField(max_length=20, choices=NoticeKind.choices)
    invoice = models.ForeignKey("billing.Invoice", on_delete=models.CASCADE, related_name="notices")
    key = models.CharField(
        max_length=40,
        help_text="What makes the event unique for its invoice: the invoice number (issued), the "
        "due date (due in 7 days), the overdue week's first day (overdue), the payment id (receipt).",
    )
    recipients = models.JSONField(default=list)
    language = models.CharField(max_length=10)
    status = models.CharField(max_length=10, choices=NoticeStatus.choices, default=NoticeStatus.QUEUED)
    subject = models.CharField(max_length=300, blank=True)
    error = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField()
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        constraints = [
            models.UniqueConstraint(fields=["kind", "invoice", "key"], name="notice_once_per_event"),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.invoice_id} {self.key}"
