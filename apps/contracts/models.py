"""Tax categories, price lists, contracts, their lines and the hardware allocated to them."""

from decimal import Decimal

from django.contrib.postgres.constraints import ExclusionConstraint
from django.contrib.postgres.fields import RangeOperators
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import F, Func, Q, Value
from simple_history.models import HistoricalRecords

from apps.core.choices import Currency, LeaseTerm, ResourceKind, unit_code
from apps.core.models import TimeStampedModel
from apps.core.money import decimal_text


class TaxCategory(TimeStampedModel):
    """A VAT category: rates are data, not code (docs/invoices.md#tax)."""

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


class SlaPolicy(models.Model):
    """A monthly availability target and the credits owed below it (docs/hardware-truth.md#sla-credits-and-efficiency)."""

    name = models.CharField(max_length=100, unique=True)
    target_percent = models.DecimalField(
        max_digits=5,
        decimal_places=2,
        validators=[MinValueValidator(0), MaxValueValidator(100)],
        help_text="Monthly availability target, e.g. 99.50.",
    )

    class Meta:
        verbose_name = "SLA policy"
        verbose_name_plural = "SLA policies"
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(
                condition=Q(target_percent__gte=0) & Q(target_percent__lte=100), name="sla_target_range"
            )
        ]

    def __str__(self) -> str:
        return f"{self.name} ({decimal_text(self.target_percent)} %)"


class SlaCreditTier(models.Model):
    """Availability under ``below_percent`` credits ``credit_percent`` of the line's charge; the
    tier with the lowest ``below_percent`` that the availability is under applies."""

    policy = models.ForeignKey(SlaPolicy, on_delete=models.CASCADE, related_name="tiers")
    below_percent = models.DecimalField(
        max_digits=5, decimal_places=2, validators=[MinValueValidator(0), MaxValueValidator(100)]
    )
    credit_percent = models.DecimalField(
        max_digits=5, decimal_places=2, validators=[MinValueValidator(0), MaxValueValidator(100)]
    )

    class Meta:
        ordering = ["policy", "-below_percent"]
        constraints = [
            models.UniqueConstraint(fields=["policy", "below_percent"], name="uniq_sla_tier"),
            models.CheckConstraint(
                condition=Q(below_percent__gt=0) & Q(below_percent__lte=100), name="sla_tier_below_range"
            ),
            models.CheckConstraint(
                condition=Q(credit_percent__gt=0) & Q(credit_percent__lte=100), name="sla_tier_credit_range"
            ),
        ]

    def __str__(self) -> str:
        return f"below {decimal_text(self.below_percent)} % → {decimal_text(self.credit_percent)} %"


class UsageSourceChoice(models.TextChoices):
    """Which usage a metered line bills. The same two values as ``metering.UsageSource``, repeated
    here because contracts sits below metering (docs/architecture.md#layers)."""

    PARTNER = "partner", "Partner (provider's scheduler) 合作方"
    AGENT = "agent", "Agent (NVML on the host) 代理"


class PriceList(TimeStampedModel):
    code = models.SlugField(max_length=50, unique=True)
    name = models.CharField(max_length=200)
    currency = models.CharField(max_length=3, choices=Currency.choices, default=Currency.CNY)
    prices_include_tax = models.BooleanField(default=True)
    is_default = models.BooleanField(default=False)
    valid_from = models.DateField()
    valid_to = models.DateField(null=True, blank=True)
    notes = models.TextField(blank=True)
    sla = models.ForeignKey(
        SlaPolicy,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name="SLA",
        help_text="The SLA of lines that name none of their own.",
    )
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


class ContractStatus(models.TextChoices):
    DRAFT = "draft", "Draft 草稿"
    PENDING_APPROVAL = "pending_approval", "Pending approval 待审批"
    ACTIVE = "active", "Active 生效"
    SUSPENDED = "suspended", "Suspended 暂停"
    TERMINATED = "terminated", "Terminated 已终止"
    EXPIRED = "expired", "Expired 已到期"


class YearlyBilling(models.TextChoices):
    MONTHLY_INSTALMENTS = "monthly_instalments", "Monthly instalments 按月分期"
    UPFRONT = "upfront", "Upfront 一次性预付"


PERCENT_VALIDATORS = [MinValueValidator(0), MaxValueValidator(Decimal("99.99"))]


class Contract(TimeStampedModel):
    """A customer's lease. Only drafts are editable; an active contract changes by amendment.

    An amendment is a new row with the same number and ``version + 1`` (``amends`` points at the
    version it replaces); the old version stays readable, and is ended when the new one activates.
    """

    number = models.CharField(max_length=20, db_index=True, editable=False)
    version = models.PositiveSmallIntegerField(default=1, editable=False)
    amends = models.OneToOneField(
        "self", on_delete=models.PROTECT, null=True, blank=True, related_name="amended_by", editable=False
    )
    customer = models.ForeignKey("customers.Customer", on_delete=models.PROTECT, related_name="contracts")
    account_manager = models.ForeignKey(
        "accounts.User", on_delete=models.PROTECT, related_name="managed_contracts"
    )
    price_list = models.ForeignKey(
        PriceList, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    currency = models.CharField(max_length=3, choices=Currency.choices, default=Currency.CNY)
    prices_include_tax = models.BooleanField(default=True, help_text="含税价: list prices include VAT.")
    start_at = models.DateTimeField()
    end_at = models.DateTimeField(null=True, blank=True, help_text="Exclusive; empty = open-ended.")
    minimum_monthly_amount = models.DecimalField(
        max_digits=14, decimal_places=2, null=True, blank=True, validators=[MinValueValidator(0)]
    )
    status = models.CharField(
        max_length=20,
        choices=ContractStatus.choices,
        default=ContractStatus.DRAFT,
        db_index=True,
        editable=False,
    )
    submitted_at = models.DateTimeField(null=True, blank=True, editable=False)
    approved_by = models.ForeignKey(
        "accounts.User", on_delete=models.PROTECT, null=True, blank=True, related_name="+", editable=False
    )
    approved_at = models.DateTimeField(null=True, blank=True, editable=False)
    activated_at = models.DateTimeField(null=True, blank=True, editable=False)
    ended_at = models.DateTimeField(null=True, blank=True, editable=False)
    end_reason = models.CharField(max_length=300, blank=True, editable=False)
    notes = models.TextField(blank=True)
    history = HistoricalRecords()

    class Meta:
        ordering = ["-number", "-version"]
        permissions = [
            ("approve_contract", "Can approve contract discounts above the threshold"),
            ("activate_contract", "Can activate, suspend and resume contracts"),
            ("terminate_contract", "Can terminate contracts"),
        ]
        constraints = [
            models.UniqueConstraint(fields=["number", "version"], name="uniq_contract_number_version"),
            models.CheckConstraint(
                condition=Q(end_at__isnull=True) | Q(end_at__gt=F("start_at")),
                name="contract_end_after_start",
            ),
            models.CheckConstraint(
                condition=Q(minimum_monthly_amount__isnull=True) | Q(minimum_monthly_amount__gte=0),
                name="contract_minimum_non_negative",
            ),
        ]

    def __str__(self) -> str:
        suffix = f" v{self.version}" if self.version > 1 else ""
        return f"{self.number}{suffix}"

    @property
    def is_editable(self) -> bool:
        return self.status == ContractStatus.DRAFT


class ContractLine(models.Model):
    contract = models.ForeignKey(Contract, on_delete=models.CASCADE, related_name="lines")
    position = models.PositiveSmallIntegerField(default=1)
    resource = models.CharField(max_length=10, choices=ResourceKind.choices)
    gpu_model = models.ForeignKey("inventory.GpuModel", on_delete=models.PROTECT, related_name="+")
    quantity = models.DecimalField(
        max_digits=18, decimal_places=6, help_text="Cards, servers, or P (dense FP16) with up to 6 decimals."
    )
    term = models.CharField(max_length=10, choices=LeaseTerm.choices)
    list_unit_price = models.DecimalField(max_digits=18, decimal_places=6, validators=[MinValueValidator(0)])
    term_discount_percent = models.DecimalField(
        max_digits=5, decimal_places=2, default=Decimal("0"), validators=PERCENT_VALIDATORS
    )
    discount_percent = models.DecimalField(
        "negotiated discount %",
        max_digits=5,
        decimal_places=2,
        default=Decimal("0"),
        validators=PERCENT_VALIDATORS,
    )
    tax_category = models.ForeignKey(TaxCategory, on_delete=models.PROTECT, related_name="+")
    start_at = models.DateTimeField(null=True, blank=True, help_text="Empty = the contract's start.")
    end_at = models.DateTimeField(null=True, blank=True, help_text="Empty = the contract's end.")
    yearly_billing = models.CharField(
        max_length=20, choices=YearlyBilling.choices, default=YearlyBilling.MONTHLY_INSTALMENTS
    )
    p_basis = models.CharField(max_length=20, default="fp16_dense", editable=False)
    usage_source = models.CharField(
        max_length=8,
        choices=UsageSourceChoice.choices,
        default=UsageSourceChoice.PARTNER,
        help_text="The usage billed; the other source is evidence (docs/hardware-truth.md).",
    )
    observed_busy_threshold_percent = models.DecimalField(
        "observed busy threshold %",
        max_digits=5,
        decimal_places=2,
        null=True,
        blank=True,
        validators=[MinValueValidator(0), MaxValueValidator(100)],
        help_text="Empty: a card present counts as observed; else its utilisation must reach this.",
    )
    sla = models.ForeignKey(
        SlaPolicy,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name="SLA",
        help_text="Empty: the price list's SLA, if any.",
    )
    history = HistoricalRecords()

    class Meta:
        ordering = ["contract", "position", "id"]
        constraints = [
            models.CheckConstraint(condition=Q(quantity__gt=0), name="line_quantity_positive"),
            models.CheckConstraint(condition=Q(list_unit_price__gte=0), name="line_price_non_negative"),
            models.CheckConstraint(
                condition=Q(term_discount_percent__gte=0) & Q(term_discount_percent__lt=100),
                name="line_term_discount_range",
            ),
            models.CheckConstraint(
                condition=Q(discount_percent__gte=0) & Q(discount_percent__lt=100), name="line_discount_range"
            ),
            models.CheckConstraint(
                condition=Q(end_at__isnull=True) | Q(start_at__isnull=True) | Q(end_at__gt=F("start_at")),
                name="line_end_after_start",
            ),
            models.CheckConstraint(
                condition=~Q(resource__in=["card", "server"])
                | Q(quantity=Func(F("quantity"), function="trunc")),
                name="line_whole_cards_and_servers",
            ),
        ]

    def __str__(self) -> str:
        return (
            f"{self.contract} #{self.position} {decimal_text(self.quantity)} × {self.gpu_model} {self.unit}"
        )

    @property
    def unit(self) -> str:
        return unit_code(self.resource, self.term)

    def clean(self) -> None:
        from django.core.exceptions import ValidationError

        from .rules import line_problems

        contract = self.contract if self.contract_id else None
        problems = line_problems(
            self,
            contract_start=contract.start_at if contract else None,
            contract_end=contract.end_at if contract else None,
        )
        renamed = {{"start": "start_at", "end": "end_at"}.get(k, k): v for k, v in problems.items()}
        if renamed:
            raise ValidationError(renamed)

    @property
    def combined_discount_percent(self) -> Decimal:
        """1 − (1 − term)(1 − negotiated), in percent, exact."""
        keep = (1 - self.term_discount_percent / 100) * (1 - self.discount_percent / 100)
        return (1 - keep) * 100


class LineTier(models.Model):
    """A graduated tier of an hourly line: quantity up to ``up_to`` (per period) at ``list_unit_price``."""

    line = models.ForeignKey(ContractLine, on_delete=models.CASCADE, related_name="tiers")
    up_to = models.DecimalField(
        max_digits=18, decimal_places=6, null=True, blank=True, help_text="Empty = no limit."
    )
    list_unit_price = models.DecimalField(max_digits=18, decimal_places=6, validators=[MinValueValidator(0)])

    class Meta:
        ordering = ["line", F("up_to").asc(nulls_last=True)]
        constraints = [models.UniqueConstraint(fields=["line", "up_to"], name="uniq_line_tier")]

    def __str__(self) -> str:
        return f"up to {self.up_to if self.up_to is not None else '∞'} @ {self.list_unit_price}"


class Allocation(models.Model):
    """A card or a whole server serving a line over ``[start_at, end_at)``.

    ``server`` is always set (for a card, its server) and ``slot`` is the card's slot, or empty for
    the whole server, so one exclusion constraint covers card–card, server–server and card–server
    overlaps. Allocations of drafts are tentative; they become ``firm`` when the contract
    activates, and only firm ones take part in the constraint.
    """

    line = models.ForeignKey(ContractLine, on_delete=models.CASCADE, related_name="allocations")
    server = models.ForeignKey("inventory.Server", on_delete=models.PROTECT, related_name="allocations")
    card = models.ForeignKey(
        "inventory.Card", on_delete=models.PROTECT, null=True, blank=True, related_name="allocations"
    )
    slot = models.PositiveSmallIntegerField(null=True, blank=True, editable=False)
    start_at = models.DateTimeField()
    end_at = models.DateTimeField(null=True, blank=True)
    firm = models.BooleanField(default=False, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    history = HistoricalRecords()

    class Meta:
        ordering = ["line", "server__serial", "slot"]
        indexes = [models.Index(fields=["card", "start_at"]), models.Index(fields=["server", "start_at"])]
        constraints = [
            models.CheckConstraint(
                condition=Q(end_at__isnull=True) | Q(end_at__gt=F("start_at")),
                name="allocation_end_after_start",
            ),
            models.CheckConstraint(
                condition=(Q(card__isnull=True) & Q(slot__isnull=True))
                | (Q(card__isnull=False) & Q(slot__isnull=False)),
                name="allocation_card_has_slot",
            ),
            ExclusionConstraint(
                name="allocation_no_double_booking",
                expressions=[
                    (
                        Func(F("server_id"), F("server_id"), Value("[]"), function="int8range"),
                        RangeOperators.OVERLAPS,
                    ),
                    (
                        Func(
                            Func(F("slot"), Value(0), function="COALESCE"),
                            Func(F("slot"), Value(32767), function="COALESCE"),
                            Value("[]"),
                            function="int4range",
                        ),
                        RangeOperators.OVERLAPS,
                    ),
                    (
                        Func(F("start_at"), F("end_at"), Value("[)"), function="tstzrange"),
                        RangeOperators.OVERLAPS,
                    ),
                ],
                condition=Q(firm=True),
                violation_error_code="double_booking",
                violation_error_message="This hardware is already allocated to another contract over an overlapping time.",
            ),
        ]

    def __str__(self) -> str:
        what = self.card.uuid if self.card_id else f"server {self.server.serial}"
        return f"{what} → {self.line.contract}"


class QuoteStatus(models.TextChoices):
    DRAFT = "draft", "Draft 草稿"
    SENT = "sent", "Sent 已发送"
    ACCEPTED = "accepted", "Accepted 已接受"
    SUPERSEDED = "superseded", "Superseded 已被取代"


class ContractQuote(models.Model):
    """A saved version of a contract's quote: the figures and terms frozen when it was saved
    (docs/quotes.md). Written only by ``apps.contracts.quote_services``."""

    contract = models.ForeignKey(Contract, on_delete=models.CASCADE, related_name="quotes")
    version = models.PositiveSmallIntegerField()
    status = models.CharField(max_length=20, choices=QuoteStatus.choices, default=QuoteStatus.DRAFT)
    utilisation_percent = models.DecimalField(max_digits=5, decimal_places=2)
    currency = models.CharField(max_length=3, choices=Currency.choices)
    monthly_amount = models.DecimalField(max_digits=16, decimal_places=2)
    monthly_gross_amount = models.DecimalField(max_digits=16, decimal_places=2)
    term_amount = models.DecimalField(max_digits=16, decimal_places=2)
    term_gross_amount = models.DecimalField(max_digits=16, decimal_places=2)
    term_open_ended = models.BooleanField(
        default=False, help_text="True: the term figures are the first 12 months."
    )
    terms = models.TextField()
    snapshot = models.JSONField()
    created_at = models.DateTimeField()
    created_by = models.ForeignKey("accounts.User", on_delete=models.PROTECT, related_name="+")
    sent_at = models.DateTimeField(null=True, blank=True)
    sent_by = models.ForeignKey(
        "accounts.User", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    accepted_at = models.DateTimeField(null=True, blank=True)
    accepted_by = models.ForeignKey(
        "accounts.User", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )

    class Meta:
        ordering = ["contract", "-version"]
        constraints = [
            models.UniqueConstraint(fields=["contract", "version"], name="uniq_contract_quote_version"),
            models.UniqueConstraint(
                fields=["contract"], condition=Q(status="accepted"), name="one_accepted_quote_per_contract"
            ),
            models.CheckConstraint(condition=Q(version__gte=1), name="contract_quote_version_positive"),
            models.CheckConstraint(
                condition=Q(sent_at__isnull=True, sent_by__isnull=True)
                | Q(sent_at__isnull=False, sent_by__isnull=False),
                name="contract_quote_sent_with_actor",
            ),
            models.CheckConstraint(
                condition=Q(accepted_at__isnull=True) | Q(sent_at__isnull=False),
                name="contract_quote_accepted_after_sent",
            ),
            models.CheckConstraint(
                condition=~Q(status="accepted") | Q(accepted_at__isnull=False, accepted_by__isnull=False),
                name="contract_quote_accepted_has_actor",
            ),
            models.CheckConstraint(
                condition=~Q(status="sent") | Q(sent_at__isnull=False), name="contract_quote_sent_has_time"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.contract} quote v{self.version}"
