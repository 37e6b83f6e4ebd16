"""GPU catalogue and the hardware: servers and their cards."""

from decimal import Decimal

from django.core.exceptions import ValidationError
from django.core.validators import MinValueValidator
from django.db import models
from django.db.models import Q
from simple_history.models import HistoricalRecords

from apps.core.models import TimeStampedModel
from apps.core.units import TFLOPS_PER_P
from apps.core.validators import validate_nvml_uuid


class GpuModel(TimeStampedModel):
    """A GPU model; TFLOPS/TOPS are DENSE tensor figures (vendors often headline sparse = 2 × dense)."""

    vendor = models.CharField(max_length=50)
    name = models.CharField(max_length=60, unique=True)
    memory_gb = models.PositiveIntegerField()
    memory_type = models.CharField(max_length=20, blank=True)
    interconnect = models.CharField(max_length=30, blank=True)
    interconnect_gbps = models.PositiveIntegerField(null=True, blank=True)
    fp16_dense_tflops = models.DecimalField(
        max_digits=10, decimal_places=3, validators=[MinValueValidator(0)]
    )
    int8_dense_tops = models.DecimalField(max_digits=10, decimal_places=3, null=True, blank=True)
    verified = models.BooleanField(
        default=False, help_text="Figures confirmed by the vendor's own data sheet."
    )
    notes = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["vendor", "name"]
        verbose_name = "GPU model 显卡型号"
        verbose_name_plural = "GPU models 显卡型号"
        constraints = [
            models.CheckConstraint(condition=Q(fp16_dense_tflops__gt=0), name="gpu_tflops_positive")
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def p_per_card(self) -> Decimal:
        """P-units of one card: dense FP16 TFLOPS / 1000, exact."""
        return self.fp16_dense_tflops / TFLOPS_PER_P


class HardwareStatus(models.TextChoices):
    AVAILABLE = "available", "Available 空闲"
    ALLOCATED = "allocated", "Allocated 已分配"
    MAINTENANCE = "maintenance", "Maintenance 维护中"
    RETIRED = "retired", "Retired 已退役"


class Server(TimeStampedModel):
    provider = models.ForeignKey("providers.Provider", on_delete=models.PROTECT, related_name="servers")
    site = models.ForeignKey("providers.Site", on_delete=models.PROTECT, related_name="servers")
    serial = models.CharField(max_length=100, unique=True)
    gpu_model = models.ForeignKey(GpuModel, on_delete=models.PROTECT, related_name="servers")
    card_count = models.PositiveSmallIntegerField(default=8)
    status = models.CharField(
        max_length=20, choices=HardwareStatus.choices, default=HardwareStatus.AVAILABLE, db_index=True
    )
    purchase_cost_amount = models.DecimalField(max_digits=14, decimal_places=2, null=True, blank=True)
    annual_cash_cost_amount = models.DecimalField(max_digits=14, decimal_places=2, null=True, blank=True)
    currency = models.CharField(max_length=3, default="CNY")
    history = HistoricalRecords()

    class Meta:
        ordering = ["serial"]
        constraints = [
            models.CheckConstraint(
                condition=Q(card_count__gte=1) & Q(card_count__lte=16), name="server_card_count"
            ),
            models.CheckConstraint(
                condition=Q(purchase_cost_amount__isnull=True) | Q(purchase_cost_amount__gte=0),
                name="server_purchase_cost_non_negative",
            ),
        ]

    def __str__(self) -> str:
        return self.serial

    def clean(self) -> None:
        if self.site_id and self.provider_id and self.site.provider_id != self.provider_id:
            raise ValidationError({"site": "The site belongs to another provider."})

    @property
    def p_capacity(self) -> Decimal:
        return self.gpu_model.p_per_card * self.card_count


class Card(TimeStampedModel):
    server = models.ForeignKey(Server, on_delete=models.CASCADE, related_name="cards")
    slot = models.PositiveSmallIntegerField()
    uuid = models.CharField("NVML UUID", max_length=64, unique=True, validators=[validate_nvml_uuid])
    status = models.CharField(
        max_length=20, choices=HardwareStatus.choices, default=HardwareStatus.AVAILABLE, db_index=True
    )
    history = HistoricalRecords()

    class Meta:
        ordering = ["server__serial", "slot"]
        constraints = [
            models.UniqueConstraint(fields=["server", "slot"], name="uniq_card_server_slot"),
            models.CheckConstraint(condition=Q(uuid__startswith="GPU-"), name="card_uuid_nvml_prefix"),
        ]

    def __str__(self) -> str:
        return self.uuid


class IncidentKind(models.TextChoices):
    XID = "xid", "Xid error Xid 错误"
    ECC_DOUBLE_BIT = "ecc_double_bit", "Double-bit ECC error 双比特 ECC 错误"
    FELL_OFF_BUS = "fell_off_bus", "Fell off the bus 掉卡"
    THERMAL_THROTTLE = "thermal_throttle", "Thermal throttling 温度降频"
    POWER_THROTTLE = "power_throttle", "Power throttling 功率降频"


class CardIncident(models.Model):
    """A hardware incident of one card reported by the metering agent from NVML
    (docs/hardware-truth.md#sources-and-incidents): from ``started_at`` until ``ended_at``, when
    the card was healthy again (``None``: still ongoing). ``source_event_id`` is the agent's id
    of the incident, unique per card, so a resend updates the same row instead of adding one.
    """

    card = models.ForeignKey(Card, on_delete=models.PROTECT, related_name="incidents")
    kind = models.CharField(max_length=20, choices=IncidentKind.choices)
    xid_code = models.PositiveIntegerField("Xid code", null=True, blank=True)
    detail = models.CharField(max_length=300, blank=True)
    started_at = models.DateTimeField()
    ended_at = models.DateTimeField(null=True, blank=True)
    reported_at = models.DateTimeField()
    source_event_id = models.CharField(max_length=128)

    class Meta:
        ordering = ["-started_at", "-id"]
        verbose_name = "card incident 硬件故障"
        verbose_name_plural = "card incidents 硬件故障"
        indexes = [models.Index(fields=["card", "started_at"], name="incident_card_start")]
        constraints = [
            models.UniqueConstraint(fields=["card", "source_event_id"], name="uniq_incident_card_event"),
            models.CheckConstraint(
                condition=Q(ended_at__isnull=True) | Q(ended_at__gt=models.F("started_at")),
                name="incident_end_after_start",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} · {self.card}"

    @property
    def ongoing(self) -> bool:
        return self.ended_at is None
