"""Price lists and tax categories (contracts and lines join them in a later migration)."""

from decimal import Decimal

from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from simple_history.models import HistoricalRecords

from apps.core.choices import Currency, LeaseTerm, ResourceKind, unit_code
from apps.core.models import TimeStampedModel


class TaxCategory(TimeStampedModel):
    """A VAT category: rates are data, not code (SPEC §3)."""

    code = models.SlugField(max_length=40, unique=True)
    name = models.CharField(max_length=100)
    rate = models.DecimalField(max_digits=5, decimal_places=4, validators=[MinValueValidator(0)])
    fapiao_classification = models.CharField(
        max_length=100, help_text="Tax classification on the fapiao, e.g. *信息技术服务*算力服务费"
    )

    class Meta:
        verbose_name_plural = "tax categories"
        ordering = ["code"]
        constraints = [
            models.CheckConstraint(condition=Q(rate__gte=0) & Q(rate__lt=1), name="tax_rate_range")
        ]

    def __str__(self) -> str:
        return f"{self.code} ({self.rate * 100:.0f}%)"


class PriceList(TimeStampedModel):
    code = models.SlugField(max_length=50, unique=True)
    name = models.CharField(max_length=200)
    currency = models.CharField(max_length=3, choices=Currency.choices, default=Currency.CNY)
    prices_include_tax = models.BooleanField(default=True)
    is_default = models.BooleanField(default=False)
    valid_from = models.DateField()
    valid_to = models.DateField(null=True, blank=True)
    notes = models.TextField(blank=True)
    history = HistoricalRecords()

    class Meta:
        ordering = ["code"]
        constraints = [
            models.UniqueConstraint(
                fields=["currency"], condition=Q(is_default=True), name="one_default_price_list_per_currency"
            ),
            models.CheckConstraint(
                condition=Q(valid_to__isnull=True) | Q(valid_to__gte=models.F("valid_from")),
                name="price_list_valid_range",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.code})"


class PriceListItem(models.Model):
    """List price of a (GPU model, resource, term), with the term discount and tax category."""

    price_list = models.ForeignKey(PriceList, on_delete=models.CASCADE, related_name="items")
    gpu_model = models.ForeignKey("inventory.GpuModel", on_delete=models.PROTECT, related_name="+")
    resource = models.CharField(max_length=10, choices=ResourceKind.choices)
    term = models.CharField(max_length=10, choices=LeaseTerm.choices)
    list_unit_price = models.DecimalField(max_digits=18, decimal_places=6, validators=[MinValueValidator(0)])
    term_discount_percent = models.DecimalField(
        max_digits=5,
        decimal_places=2,
        default=Decimal("0"),
        validators=[MinValueValidator(0), MaxValueValidator(Decimal("99.99"))],
    )
    tax_category = models.ForeignKey(TaxCategory, on_delete=models.PROTECT, related_name="+")
    history = HistoricalRecords()

    class Meta:
        ordering = ["price_list", "gpu_model__name", "resource", "term"]
        constraints = [
            models.UniqueConstraint(
                fields=["price_list", "gpu_model", "resource", "term"], name="uniq_price_list_item"
            ),
            models.CheckConstraint(condition=Q(list_unit_price__gte=0), name="price_non_negative"),
            models.CheckConstraint(
                condition=Q(term_discount_percent__gte=0) & Q(term_discount_percent__lt=100),
                name="term_discount_range",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.gpu_model} {self.resource}/{self.term} {self.list_unit_price}"

    @property
    def unit(self) -> str:
        return unit_code(self.resource, self.term)
