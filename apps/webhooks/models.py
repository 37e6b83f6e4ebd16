"""Outgoing webhooks (docs/webhooks.md): endpoints, the outbox of events, deliveries and attempts.

An **endpoint** belongs to exactly one customer or one provider (a check constraint) and receives
the events it subscribes to (none listed: all). An **event** is written in the same transaction as
the change it reports (``apps.core.events``); one **delivery** per enabled, subscribed endpoint of
its owner is written with it and sent by Celery after commit, retried with backoff for 3 days;
every try is an **attempt** row (status code, duration, the start of the answer, the error).
"""

from __future__ import annotations

from django.db import models
from simple_history.models import HistoricalRecords


class EventType(models.TextChoices):
    INVOICE_ISSUED = "invoice.issued", "invoice.issued 发票已开具"
    INVOICE_PAID = "invoice.paid", "invoice.paid 发票已付清"
    INVOICE_OVERDUE = "invoice.overdue", "invoice.overdue 发票已逾期"
    CREDIT_NOTE_ISSUED = "credit_note.issued", "credit_note.issued 红字发票已开具"
    USAGE_REJECTED = "usage.rejected", "usage.rejected 用量批次被拒"
    SETTLEMENT_CONFIRMED = "settlement.confirmed", "settlement.confirmed 结算单已确认"
    CONTRACT_ACTIVATED = "contract.activated", "contract.activated 合同已生效"


# Who an event type concerns: customers' endpoints receive customer events, providers' provider events.
CUSTOMER_EVENTS = frozenset(
    {
        EventType.INVOICE_ISSUED,
        EventType.INVOICE_PAID,
        EventType.INVOICE_OVERDUE,
        EventType.CREDIT_NOTE_ISSUED,
        EventType.CONTRACT_ACTIVATED,
    }
)
PROVIDER_EVENTS = frozenset({EventType.USAGE_REJECTED, EventType.SETTLEMENT_CONFIRMED})


class WebhookEndpoint(models.Model):
    """Where one customer's or one provider's events are POSTed, signed with the endpoint's secret."""

    customer = models.ForeignKey(
        "customers.Customer",
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="webhook_endpoints",
    )
    provider = models.ForeignKey(
        "providers.Provider",
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="webhook_endpoints",
    )
    url = models.URLField("URL", max_length=500, help_text="http(s) only; redirects are not followed.")
    events = models.CharField(
        max_length=500,
        blank=True,
        help_text="Event types to receive, separated by spaces; empty: every event of the owner.",
    )
    enabled = models.BooleanField(default=True)
    description = models.CharField(max_length=200, blank=True)
    secret = models.CharField(max_length=100, editable=False)
    previous_secret = models.CharField(max_length=100, blank=True, editable=False)
    previous_secret_expires_at = models.DateTimeField(null=True, blank=True, editable=False)
    created_by = models.ForeignKey(
        "accounts.User", on_delete=models.SET_NULL, null=True, blank=True, related_name="+", editable=False
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    # Who changed what and when; the secrets never enter the history table.
    history = HistoricalRecords(excluded_fields=["secret", "previous_secret"])

    class Meta:
        verbose_name = "webhook endpoint 回调地址"
        verbose_name_plural = "webhook endpoints 回调地址"
        ordering = ["id"]
        constraints = [
            models.CheckConstraint(
                condition=(models.Q(customer__isnull=False) & models.Q(provider__isnull=True))
                | (models.Q(customer__isnull=True) & models.Q(provider__isnull=False)),
                name="webhook_endpoint_one_owner",
            )
        ]

    def __str__(self) -> str:
        return f"{self.owner} → {self.url}"

    @property
    def owner(self):
        return self.customer if self.customer_id else self.provider

    @property
    def event_list(self) -> list[str]:
        return self.events.split()

    def receives(self, event_type: str) -> bool:
        return not self.events or event_type in self.event_list


class WebhookEvent(models.Model):
    """One thing that happened, as receivers get it: ``{"id", "type", "created", "data"}``."""

    public_id = models.CharField("event id", max_length=40, unique=True)
    type = models.CharField(max_length=40, choices=EventType.choices, db_index=True)
    customer = models.ForeignKey(
        "customers.Customer", on_delete=models.CASCADE, null=True, blank=True, related_name="+"
    )
    provider = models.ForeignKey(
        "providers.Provider", on_delete=models.CASCADE, null=True, blank=True, related_name="+"
    )
    # "invoice.overdue:42": an event that may happen once per object is written once, however
    # often its job runs. Empty for events that may repeat (a refused usage batch).
    once_key = models.CharField(max_length=80, null=True, blank=True, unique=True)
    data = models.JSONField()
    created_at = models.DateTimeField()

    class Meta:
        verbose_name = "webhook event 回调事件"
        verbose_name_plural = "webhook events 回调事件"
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=(models.Q(customer__isnull=False) & models.Q(provider__isnull=True))
                | (models.Q(customer__isnull=True) & models.Q(provider__isnull=False)),
                name="webhook_event_one_owner",
            )
        ]

    def __str__(self) -> str:
        return f"{self.type} {self.public_id}"


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", "Pending 待发送"
    DELIVERED = "delivered", "Delivered 已送达"
    FAILED = "failed", "Failed 已放弃"
    CANCELLED = "cancelled", "Cancelled 已取消"


class WebhookDelivery(models.Model):
    """One event to one endpoint: pending until a 2xx answer, retried with backoff until it gives up."""

    event = models.ForeignKey(WebhookEvent, on_delete=models.CASCADE, related_name="deliveries")
    endpoint = models.ForeignKey(WebhookEndpoint, on_delete=models.CASCADE, related_name="deliveries")
    status = models.CharField(
        max_length=20, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING, db_index=True
    )
    attempt_count = models.PositiveIntegerField(default=0)
    # Failed attempts since the delivery was (re)started: the step of the backoff schedule.
    backoff_step = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True, db_index=True)
    retry_until = models.DateTimeField(help_text="Retries stop after this instant (72 h).")
    delivered_at = models.DateTimeField(null=True, blank=True)
    last_status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    last_error = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "webhook delivery 回调投递"
        verbose_name_plural = "webhook deliveries 回调投递"
        ordering = ["-created_at", "-id"]
        permissions = [("resend_webhookdelivery", "Can re-send a webhook delivery")]
        constraints = [
            models.UniqueConstraint(fields=["event", "endpoint"], name="uniq_webhook_delivery_event_endpoint")
        ]

    def __str__(self) -> str:
        return f"{self.event.type} → {self.endpoint.url}"


class WebhookAttempt(models.Model):
    """One POST of a delivery and what came back (the answer's first 1 KB)."""

    delivery = models.ForeignKey(WebhookDelivery, on_delete=models.CASCADE, related_name="attempts")
    attempted_at = models.DateTimeField()
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    duration_ms = models.PositiveIntegerField(default=0)
    response_snippet = models.CharField(max_length=1024, blank=True)
    error = models.CharField(max_length=500, blank=True)
    succeeded = models.BooleanField(default=False)

    class Meta:
        verbose_name = "webhook attempt 投递尝试"
        verbose_name_plural = "webhook attempts 投递尝试"
        ordering = ["attempted_at", "id"]

    def __str__(self) -> str:
        return f"{self.attempted_at:%Y-%m-%d %H:%M:%S} {self.status_code or self.error}"
