from django.db import models


class BillingRunStatus(models.TextChoices):
    QUEUED = "queued", "Queued 排队"
    RUNNING = "running", "Running 运行中"
    DONE = "done", "Done 完成"
    DONE_WITH_ERRORS = "done_with_errors", "Done with errors 部分失败"
    FAILED = "failed", "Failed 失败"


class BillingRun(models.Model):
    """One billing run of a period (optionally one customer), with its progress."""

    period = models.CharField(max_length=7, db_index=True)
    customer = models.ForeignKey("customers.Customer", on_delete=models.PROTECT, null=True, blank=True)
    status = models.CharField(
        max_length=20, choices=BillingRunStatus.choices, default=BillingRunStatus.QUEUED
    )
    customers_total = models.PositiveIntegerField(default=0)
    customers_done = models.PositiveIntegerField(default=0)
    invoices_created = models.PositiveIntegerField(default=0)
    invoices_refreshed = models.PositiveIntegerField(default=0)
    invoices_unchanged = models.PositiveIntegerField(default=0)
    errors = models.JSONField(default=dict, blank=True, help_text="customer code → error message")
    requested_by = models.ForeignKey("accounts.User", on_delete=models.SET_NULL, null=True, blank=True)
    as_of = models.DateTimeField(help_text="Usage received up to this instant is billed.")
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"Billing run {self.period} #{self.pk}"

    @property
    def progress_percent(self) -> int:
        if not self.customers_total:  # nothing counted yet, or nothing to bill
            return 0 if self.status in (BillingRunStatus.QUEUED, BillingRunStatus.RUNNING) else 100
        return int(self.customers_done * 100 / self.customers_total)
