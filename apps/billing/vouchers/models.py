"""Compute vouchers (算力券, docs/vouchers.md#the-ledger): programmes, the vouchers they grant,
and every movement.

A voucher's ``balance`` is stored and changed only by the services in
``apps/billing/vouchers/services/``, under a row lock, together with an append-only ledger
entry; the database rejects a negative balance (CHECK) and any change to a ledger entry (trigger,
migration 0005), so Σ ledger = balance and a voucher never goes below zero.
"""

from __future__ import annotations

from decimal import Decimal

from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import F, Q
from simple_history.models import HistoricalRecords

from apps.billing.invoicing.models import MONEY
from apps.core.choices import Currency
from apps.core.money import decimal_text

DEFAULT_MAX_CONTRACT_TERM_DAYS = 366  # "contract term ≤ 1 year", a leap year included


class VoucherFlow(models.TextChoices):
    SUPPLIER_SIDE = "supplier_side", "Supplier side 供给侧核销 (Chengdu-style)"
    CUSTOMER_CLAIM = "customer_claim", "Customer claim 企业申领 (Beijing-style)"


class VoucherProgramme(models.Model):
    """A government subsidy scheme: who pays, how much of a bill, to whom, within which caps."""

    code = models.SlugField(max_length=50, unique=True)
    name = models.CharField(max_length=200, blank=True)
    issuer = models.CharField(max_length=200, help_text="The issuing authority, e.g. 成都市经济和信息化局.")
    flow = models.CharField(max_length=20, choices=VoucherFlow.choices)
    currency = models.CharField(max_length=3, choices=Currency.choices, default=Currency.CNY)
    coverage_percent = models.DecimalField(
        max_digits=5,
        decimal_places=2,
        validators=[MinValueValidator(Decimal("0.01")), MaxValueValidator(Decimal(100))],
        help_text="Share of an eligible bill the programme pays, e.g. 30.",
    )
    cap_per_customer_year = models.DecimalField(
        **MONEY, null=True, blank=True, help_text="Most one company may receive per calendar year."
    )
    cap_per_voucher = models.DecimalField(
        **MONEY, null=True, blank=True, help_text="Largest face value, and most paid out, of one voucher."
    )
    valid_from = models.DateField()
    valid_to = models.DateField()
    contract_signed_on_or_after = models.DateField(
        null=True, blank=True, help_text="Only contracts signed (activated) on or after this date."
    )
    max_contract_term_days = models.PositiveIntegerField(
        null=True,
        blank=True,
        default=DEFAULT_MAX_CONTRACT_TERM_DAYS,
        help_text="Contract term (end − start) at most this many days; open-ended contracts then "
        "do not qualify. Empty: any term.",
    )
    exclude_related_party_suppliers = models.BooleanField(
        default=True, help_text="Hardware of providers related to the platform does not qualify."
    )
    notes = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    history = HistoricalRecords()

    class Meta:
        ordering = ["-valid_from", "code"]
        verbose_name = "voucher programme 算力券项目"
        verbose_name_plural = "voucher programmes 算力券项目"
        constraints = [
            models.CheckConstraint(
                condition=Q(coverage_percent__gt=0) & Q(coverage_percent__lte=100),
                name="voucher_programme_coverage_range",
            ),
            models.CheckConstraint(
                condition=Q(valid_to__gte=F("valid_from")), name="voucher_programme_valid_range"
            ),
            models.CheckConstraint(
                condition=(Q(cap_per_customer_year__isnull=True) | Q(cap_per_customer_year__gt=0))
                & (Q(cap_per_voucher__isnull=True) | Q(cap_per_voucher__gt=0)),
                name="voucher_programme_caps_positive",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.code} ({decimal_text(self.coverage_percent)}%, {self.get_flow_display()})"


class VoucherStatus(models.TextChoices):
    ACTIVE = "active", "Active 可用"
    EXHAUSTED = "exhausted", "Exhausted 已用完"
    EXPIRED = "expired", "Expired 已过期"


class Voucher(models.Model):
    """One customer's grant under a programme; ``balance`` = Σ of its ledger entries, never < 0."""

    number = models.CharField(max_length=20, unique=True, help_text="VCH-YYYY-NNNNNN")
    programme = models.ForeignKey(VoucherProgramme, on_delete=models.PROTECT, related_name="vouchers")
    customer = models.ForeignKey("customers.Customer", on_delete=models.PROTECT, related_name="vouchers")
    amount = models.DecimalField(**MONEY, help_text="Face value.")
    balance = models.DecimalField(**MONEY)
    status = models.CharField(
        max_length=10, choices=VoucherStatus.choices, default=VoucherStatus.ACTIVE, db_index=True
    )
    valid_to = models.DateField(help_text="Last day it can be used (at most the programme's).")
    issued_at = models.DateTimeField()
    issued_by = models.ForeignKey(
        "accounts.User", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    reference = models.CharField(max_length=200, blank=True, help_text="The issuer's voucher number.")

    class Meta:
        ordering = ["-issued_at", "-id"]
        permissions = [("expire_voucher", "Can expire vouchers")]
        indexes = [models.Index(fields=["customer", "status"], name="voucher_customer_status")]
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="voucher_amount_positive"),
            models.CheckConstraint(
                condition=Q(balance__gte=0) & Q(balance__lte=F("amount")), name="voucher_balance_in_range"
            ),
            models.CheckConstraint(
                condition=~Q(status="active") | Q(balance__gt=0), name="voucher_active_has_balance"
            ),
        ]

    def __str__(self) -> str:
        return self.number

    @property
    def currency(self) -> str:
        return self.programme.currency


class LedgerKind(models.TextChoices):
    ISSUE = "issue", "Issue 发放"
    REDEEM = "redeem", "Redeem 核销"
    REVERSE = "reverse", "Reverse 冲回"
    EXPIRE = "expire", "Expire 过期"


class VoucherLedgerEntry(models.Model):
    """A movement of a voucher's balance (signed: issue/reverse add, redeem/expire take). Append-only."""

    voucher = models.ForeignKey(Voucher, on_delete=models.PROTECT, related_name="ledger")
    kind = models.CharField(max_length=10, choices=LedgerKind.choices)
    amount = models.DecimalField(**MONEY, help_text="Signed: + adds to the balance, − takes from it.")
    balance_after = models.DecimalField(**MONEY)
    invoice = models.ForeignKey(
        "billing.Invoice", on_delete=models.PROTECT, null=True, blank=True, related_name="voucher_entries"
    )
    payment = models.OneToOneField(
        "billing.Payment",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="voucher_entry",
        help_text="The voucher payment of a supplier-side redemption.",
    )
    reverses = models.OneToOneField(
        "self", on_delete=models.PROTECT, null=True, blank=True, related_name="reversed_by"
    )
    base_amount = models.DecimalField(
        **MONEY, null=True, blank=True, help_text="Eligible amount the coverage was applied to."
    )
    cap_year = models.PositiveSmallIntegerField(
        null=True, blank=True, help_text="Calendar year whose per-customer cap this counts against."
    )
    note = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField()
    created_by = models.ForeignKey(
        "accounts.User", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )

    class Meta:
        ordering = ["voucher", "created_at", "id"]
        verbose_name_plural = "voucher ledger entries"
        indexes = [models.Index(fields=["kind", "created_at"], name="voucherledger_kind_created")]
        constraints = [
            models.CheckConstraint(
                condition=(Q(kind__in=["issue", "reverse"]) & Q(amount__gt=0))
                | (Q(kind__in=["redeem", "expire"]) & Q(amount__lt=0)),
                name="voucherledger_sign_matches_kind",
            ),
            models.CheckConstraint(
                condition=Q(balance_after__gte=0), name="voucherledger_balance_non_negative"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.voucher} {self.kind} {self.amount}"


__all__ = [
    "DEFAULT_MAX_CONTRACT_TERM_DAYS",
    "LedgerKind",
    "Voucher",
    "VoucherFlow",
    "VoucherLedgerEntry",
    "VoucherProgramme",
    "VoucherStatus",
]
