"""Providers (who supply GPUs), their sites (data centres) and supply agreements (what we pay them)."""

from decimal import Decimal

from django.core.validators import MinValueValidator
from django.db import models
from django.db.models import Q
from simple_history.models import HistoricalRecords

from apps.core.choices import Currency, LeaseTerm, ResourceKind
from apps.core.models import TimeStampedModel


class ProviderType(models.TextChoices):
    TELECOM_OPERATOR = "telecom_operator", "Telecom operator 电信运营商"
    IDC = "idc", "IDC 数据中心服务商"
    AI_COMPANY = "ai_company", "AI company AI企业"
    ICT_INTEGRATOR = "ict_integrator", "ICT integrator 硬件集成商"
    AI_INFRA = "ai_infra", "AI infra vendor AI基础设施厂商"
    CLOUD_VENDOR = "cloud_vendor", "Cloud vendor 云厂商"
    CROSS_INDUSTRY = "cross_industry", "Cross-industry investor 跨界投资者"


class HubRegion(models.TextChoices):
    JINGJINJI = "jingjinji", "京津冀 Jing-Jin-Ji"
    YANGTZE_DELTA = "yangtze_delta", "长三角 Yangtze Delta"
    GREATER_BAY = "greater_bay", "粤港澳 Greater Bay"
    CHENGYU = "chengyu", "成渝 Cheng-Yu"
    INNER_MONGOLIA = "inner_mongolia", "内蒙古 Inner Mongolia"
    GUIZHOU = "guizhou", "贵州 Guizhou"
    GANSU = "gansu", "甘肃 Gansu"
    NINGXIA = "ningxia", "宁夏 Ningxia"
    OTHER = "other", "其他 Other"


class Provider(TimeStampedModel):
    code = models.SlugField(max_length=50, unique=True)
    name = models.CharField(max_length=200)
    type = models.CharField(max_length=30, choices=ProviderType.choices, db_index=True)
    contact_name = models.CharField(max_length=100, blank=True)
    contact_email = models.EmailField(blank=True)
    contact_phone = models.CharField(max_length=30, blank=True)
    settlement_terms_days = models.PositiveSmallIntegerField(default=30)
    is_related_party = models.BooleanField(
        default=False, help_text="Related to the platform (voucher programmes may exclude it)."
    )
    notes = models.TextField(blank=True)
    # How far the hours billed from this provider's reports may stray from the hours the agent
    # observed before a draft is held for a decision (docs/hardware-truth.md#reconciliation).
    reconciliation_tolerance_percent = models.DecimalField(
        max_digits=5, decimal_places=2, default=Decimal("1.00"), validators=[MinValueValidator(0)]
    )
    reconciliation_tolerance_hours = models.DecimalField(
        max_digits=6,
        decimal_places=2,
        default=Decimal("0.50"),
        validators=[MinValueValidator(0)],
        help_text="Per card-month.",
    )
    history = HistoricalRecords()

    class Meta:
        ordering = ["code"]

    def __str__(self) -> str:
        return f"{self.name} ({self.code})"


class Site(TimeStampedModel):
    provider = models.ForeignKey(Provider, on_delete=models.PROTECT, related_name="sites")
    name = models.CharField(max_length=200)
    city = models.CharField(max_length=100)
    hub = models.CharField(max_length=20, choices=HubRegion.choices, db_index=True)
    history = HistoricalRecords()

    class Meta:
        ordering = ["provider__code", "name"]
        constraints = [models.UniqueConstraint(fields=["provider", "name"], name="uniq_site_provider_name")]

    def __str__(self) -> str:
        return f"{self.name} · {self.city}"


class SupplyAgreement(TimeStampedModel):
    """What the platform pays a provider per unit of a GPU model's resource
    (docs/settlements.md#supply-agreements)."""

    provider = models.ForeignKey(Provider, on_delete=models.PROTECT, related_name="supply_agreements")
    gpu_model = models.ForeignKey("inventory.GpuModel", on_delete=models.PROTECT, related_name="+")
    resource = models.CharField(max_length=10, choices=ResourceKind.choices)
    term = models.CharField(max_length=10, choices=LeaseTerm.choices)
    cost_unit_price = models.DecimalField(max_digits=18, decimal_places=6, validators=[MinValueValidator(0)])
    currency = models.CharField(max_length=3, choices=Currency.choices, default=Currency.CNY)
    valid_from = models.DateField()
    valid_to = models.DateField(null=True, blank=True)
    history = HistoricalRecords()

    class Meta:
        ordering = ["provider__code", "gpu_model__name", "resource", "term"]
        constraints = [
            models.CheckConstraint(condition=Q(cost_unit_price__gte=0), name="supply_cost_non_negative"),
            models.CheckConstraint(
                condition=Q(valid_to__isnull=True) | Q(valid_to__gte=models.F("valid_from")),
                name="supply_valid_range",
            ),
            models.UniqueConstraint(
                fields=["provider", "gpu_model", "resource", "term", "valid_from"],
                name="uniq_supply_agreement",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.provider.code} {self.gpu_model} {self.resource}/{self.term} @ {self.cost_unit_price}"
