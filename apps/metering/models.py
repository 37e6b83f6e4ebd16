"""Usage records pushed by partner systems and metering agents, their telemetry, and the API keys
of both (docs/hardware-truth.md#sources-and-incidents)."""

from django.conf import settings
from django.contrib.postgres.indexes import BrinIndex
from django.db import models
from django.db.models import F, Q
from rest_framework_api_key.models import AbstractAPIKey

from apps.core.periods import local_range_text


class PartnerAPIKey(AbstractAPIKey):
    """An API key of one provider's partner system (hashed at rest; only the prefix is shown)."""

    provider = models.ForeignKey("providers.Provider", on_delete=models.CASCADE, related_name="api_keys")

    class Meta(AbstractAPIKey.Meta):
        verbose_name = "partner API key"
        verbose_name_plural = "partner API keys"


class AgentAPIKey(AbstractAPIKey):
    """The key of the metering agent on one server (hashed at rest; only the prefix is shown).

    It reaches only the agent endpoints (``/api/v1/agent/…``) and only that server's cards; a
    partner key cannot post there, and this key cannot post partner usage
    (docs/hardware-truth.md#sources-and-incidents).
    """

    server = models.ForeignKey("inventory.Server", on_delete=models.CASCADE, related_name="agent_keys")

    class Meta(AbstractAPIKey.Meta):
        verbose_name = "agent API key"
        verbose_name_plural = "agent API keys"


class UsageSource(models.TextChoices):
    """Who reported a usage record: the provider's scheduler or billing system, or the NVML agent
    on the host. Billing bills the source the contract line names; the other is evidence."""

    PARTNER = "partner", "Partner system 合作方系统"
    AGENT = "agent", "Metering agent 计量代理"


class UsageRecord(models.Model):
    """``[start_at, end_at)`` of one card, or of a whole server (which counts for each of its cards).

    ``(provider, event_id)`` is unique — across months, through ``UsageEvent`` —; ``content_hash``
    tells a harmless duplicate (same content) from a conflict (same id, other content). Telemetry
    is evidence, never a billing basis.

    The table is partitioned by month of ``start_at`` in the billing time zone
    (docs/partitions.md): its real primary key is ``(id, start_at)``, the ORM keeps ``id``.
    Nothing may hold a foreign key to it (PostgreSQL would need the whole key).
    """

    # The three references are enforced by the statement-level triggers of migration 0004, not by
    # per-row foreign-key checks (over half the cost of writing a row): every inserted or updated
    # batch is checked in one join — the hardware exists and is the row's provider's — and
    # hardware or providers with usage cannot be deleted or change hands. No single-column
    # indexes either: the composite indexes below lead with them (see bench/ingest.py).
    provider = models.ForeignKey(
        "providers.Provider",
        on_delete=models.PROTECT,
        related_name="usage_records",
        db_index=False,
        db_constraint=False,
    )
    # Byte-order collation: every insert and duplicate look-up compares event ids in the unique
    # index, and "C" compares bytes instead of running the locale's collation (~40 % faster probes).
    event_id = models.CharField(max_length=128, db_collation="C")
    content_hash = models.CharField(max_length=32)
    card = models.ForeignKey(
        "inventory.Card",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="usage_records",
        db_index=False,
        db_constraint=False,
    )
    server = models.ForeignKey(
        "inventory.Server",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="usage_records",
        db_index=False,
        db_constraint=False,
    )
    start_at = models.DateTimeField()
    end_at = models.DateTimeField()
    # The database default keeps COPYs that leave the column out (partner ingestion) correct.
    source = models.CharField(
        max_length=8, choices=UsageSource.choices, default=UsageSource.PARTNER, db_default="partner"
    )
    utilization_percent = models.DecimalField(
        "utilisation % (telemetry.utilization_percent)",
        max_digits=5,
        decimal_places=2,
        null=True,
        blank=True,
        help_text="Sent by the partner as telemetry.utilization_percent (docs/usage-api.md).",
    )
    memory_used_bytes = models.BigIntegerField(null=True, blank=True)
    energy_mj = models.BigIntegerField("energy (mJ)", null=True, blank=True)
    telemetry = models.JSONField(null=True, blank=True)
    received_at = models.DateTimeField()
    voided_at = models.DateTimeField(null=True, blank=True)
    void_reason = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["-id"]
        indexes = [
            # A record is a card's or a server's: each row enters exactly one of these two.
            models.Index(
                fields=["card", "start_at"], name="usage_card_start", condition=Q(card__isnull=False)
            ),
            models.Index(
                fields=["server", "start_at"], name="usage_server_start", condition=Q(server__isnull=False)
            ),
            models.Index(fields=["provider", "start_at"], name="usage_provider_start"),
            # Records arrive in time order, so a block range index finds the late arrivals of a
            # month for billing's late-usage screen at almost no cost to ingestion
            # (docs/rating.md#late-usage).
            BrinIndex(fields=["received_at"], name="usage_received_brin"),
            # The metering agent's records of a card: billing's reconciliation asks, per card,
            # whether the agent reported at all (docs/hardware-truth.md#reconciliation); a partial
            # index holds only those records, so the answer does not read the partner's.
            models.Index(
                fields=["card", "start_at"], name="usage_agent_card_start", condition=Q(source="agent")
            ),
        ]
        constraints = [
            # Per partition; the global key is UsageEvent's (docs/partitions.md#idempotency).
            models.UniqueConstraint(
                fields=["provider", "event_id", "start_at"], name="uniq_usage_record_event"
            ),
            models.CheckConstraint(condition=Q(end_at__gt=F("start_at")), name="usage_end_after_start"),
            models.CheckConstraint(
                condition=(Q(card__isnull=False) & Q(server__isnull=True))
                | (Q(card__isnull=True) & Q(server__isnull=False)),
                name="usage_card_xor_server",
            ),
            models.CheckConstraint(
                condition=Q(utilization_percent__isnull=True)
                | (Q(utilization_percent__gte=0) & Q(utilization_percent__lte=100)),
                name="usage_utilization_range",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.event_id} ({local_range_text(self.start_at, self.end_at, settings.BILLING_TIME_ZONE)})"


class UsageEvent(models.Model):
    """The event ids of the stored usage records, one row each: ``(provider, event_id)`` unique
    over every month of the partitioned usage table (docs/partitions.md#idempotency).

    Written and deleted only by the triggers of ``metering_usagerecord`` (migration 0007), in the
    same statement as the record; ``start_at`` names the record's partition, ``content_hash``
    tells a duplicate from a conflict. The rows of archived (detached) months stay, so their event
    ids still count as sent.
    """

    pk = models.CompositePrimaryKey("provider", "event_id")
    provider = models.ForeignKey(
        "providers.Provider",
        on_delete=models.DO_NOTHING,
        related_name="+",
        db_index=False,
        db_constraint=False,
    )
    event_id = models.CharField(max_length=128, db_collation="C")
    start_at = models.DateTimeField()
    content_hash = models.CharField(max_length=32)

    class Meta:
        verbose_name = "usage event id"

    def __str__(self) -> str:
        return self.event_id
