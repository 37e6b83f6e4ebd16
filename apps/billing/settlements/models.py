"""Provider settlements (docs/settlements.md#statements): what the platform owes each provider
for a month, and its margin.

A statement is built (and rebuilt) as a draft by ``apps/billing/settlements/services/``;
confirmed and paid statements are frozen by the service and by a database trigger (migration 0005).
"""

from __future__ import annotations

from django.db import models
from django.db.models import F, Q

from apps.billing.invoicing.models import MONEY, ZERO
from apps.core.choices import Currency, LeaseTerm, ResourceKind


class SettlementStatus(models.TextChoices):
    DRAFT = "draft", "Draft 草稿"
    CONFIRMED = "confirmed", "Confirmed 已确认"
    PAID = "paid", "Paid 已付款"


class SettlementStatement(models.Model):
    """One provider's statement for one billing month and currency."""

    provider = models.ForeignKey(
        "providers.Provider", on_delete=models.PROTECT, related_name="settlement_statements"
    )
    period = models.CharField(max_length=7, db_index=True, help_text="YYYY-MM")
    currency = models.CharField(max_length=3, choices=Currency.choices, default=Currency.CNY)
    status = models.CharField(
        max_length=10, choices=SettlementStatus.choices, default=SettlementStatus.DRAFT, db_index=True
    )
    cost_amount = models.DecimalField(**MONEY, default=ZERO, help_text="What the platform owes the provider.")
    revenue_net_amount = models.DecimalField(
        **MONEY, default=ZERO, help_text="Customer net revenue (excl. VAT) on this provider's hardware."
    )
    margin_amount = models.DecimalField(**MONEY, default=ZERO)
    line_count = models.PositiveIntegerField(default=0)
    warning_count = models.PositiveIntegerField(default=0)
    built_at = models.DateTimeField(null=True, blank=True)
    confirmed_at = models.DateTimeField(null=True, blank=True)
    confirmed_by = models.ForeignKey(
        "accounts.User", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    paid_at = models.DateTimeField(null=True, blank=True)
    paid_by = models.ForeignKey(
        "accounts.User", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    payment_reference = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-period", "provider__code"]
        verbose_name = "settlement statement 供应商结算单"
        verbose_name_plural = "settlement statements 供应商结算单"
        permissions = [
            ("confirm_settlementstatement", "Can confirm provider settlements"),
            ("pay_settlementstatement", "Can mark provider settlements paid"),
        ]
        constraints = [
            models.UniqueConstraint(fields=["provider", "period", "currency"], name="uniq_settlement_period"),
            models.CheckConstraint(
                condition=Q(margin_amount=F("revenue_net_amount") - F("cost_amount")),
                name="settlement_margin_is_revenue_minus_cost",
            ),
            models.CheckConstraint(
                condition=Q(status="draft") | Q(confirmed_at__isnull=False),
                name="settlement_confirmed_has_date",
            ),
            models.CheckConstraint(
                condition=~Q(status="paid") | Q(paid_at__isnull=False), name="settlement_paid_has_date"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.provider.code} {self.period} {self.currency}"


class SettlementLine(models.Model):
    """The cost of one provider's share of one customer invoice line, and the revenue it earned.

    ``quantity`` is on the customer's quantity basis (card-hours of the same merged usage; the
    prorated share of a recurring line); ``cost_unit_price`` is per that unit. ``allocation`` is set
    when a single allocation carries the share. ``warning`` says why a cost is missing (then 0).
    """

    statement = models.ForeignKey(SettlementStatement, on_delete=models.CASCADE, related_name="lines")
    position = models.PositiveIntegerField(default=1)
    invoice_line = models.ForeignKey(
        "billing.InvoiceLine", on_delete=models.PROTECT, related_name="settlement_lines"
    )
    kind = models.CharField(max_length=30)
    contract = models.ForeignKey("contracts.Contract", on_delete=models.PROTECT, related_name="+")
    contract_line = models.ForeignKey("contracts.ContractLine", on_delete=models.PROTECT, related_name="+")
    allocation = models.ForeignKey(
        "contracts.Allocation", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    supply_agreement = models.ForeignKey(
        "providers.SupplyAgreement", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    gpu_model = models.ForeignKey("inventory.GpuModel", on_delete=models.PROTECT, related_name="+")
    resource = models.CharField(max_length=10, choices=ResourceKind.choices)
    term = models.CharField(max_length=10, choices=LeaseTerm.choices)
    description = models.CharField(max_length=500)
    quantity = models.DecimalField(max_digits=20, decimal_places=6)
    unit = models.CharField(max_length=20)
    cost_unit_price = models.DecimalField(max_digits=20, decimal_places=6, default=ZERO)
    cost_amount = models.DecimalField(**MONEY)
    revenue_net_amount = models.DecimalField(**MONEY)
    margin_amount = models.DecimalField(**MONEY)
    service_start_at = models.DateTimeField()
    service_end_at = models.DateTimeField()
    warning = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["statement", "position"]
        indexes = [models.Index(fields=["contract"], name="settlementline_contract")]
        constraints = [
            models.CheckConstraint(
                condition=Q(margin_amount=F("revenue_net_amount") - F("cost_amount")),
                name="settlementline_margin_is_revenue_minus_cost",
            ),
            models.CheckConstraint(condition=Q(cost_amount__gte=0), name="settlementline_cost_non_negative"),
        ]

    def __str__(self) -> str:
        return self.description
