"""Invoices and their lines, credit notes, payments. Issued documents are frozen by a trigger."""

from decimal import Decimal

from django.db import models
from django.db.models import Q

from apps.core.choices import Currency


class InvoiceStatus(models.TextChoices):
    DRAFT = "draft", "Draft 草稿"
    ISSUED = "issued", "Issued 已开具"
    PAID = "paid", "Paid 已支付"
    VOID = "void", "Void 已作废"


class LineKind(models.TextChoices):
    USAGE = "usage", "Usage 用量"
    RECURRING = "recurring", "Recurring 周期费"
    MINIMUM_COMMITMENT_SHORTFALL = "minimum_commitment_shortfall", "Minimum commitment shortfall 保底差额"
    LATE_USAGE = "late_usage", "Late usage 迟到用量"
    SLA_CREDIT = "sla_credit", "SLA credit 服务水平赔付"


class ReconciliationStatus(models.TextChoices):
    """Billed hours against the agent's observed hours (docs/hardware-truth.md#reconciliation)."""

    NOT_NEEDED = "not_needed", "Not needed 无需核对"
    MATCHED = "matched", "Matched 一致"
    FLAGGED = "flagged", "Flagged 待核对"
    DECIDED = "decided", "Decided 已决定"


class ReconciliationDecision(models.TextChoices):
    NONE = "", "—"
    AS_REPORTED = "as_reported", "Bill as reported 按上报计费"
    OBSERVED = "observed", "Bill the observed hours 按实测计费"
    HOLD = "hold", "Hold 暂缓"


MONEY = {"max_digits": 16, "decimal_places": 2}
HOURS = {"max_digits": 14, "decimal_places": 6}
ZERO = Decimal("0.00")


class Invoice(models.Model):
    """One invoice per (customer, currency, period); a void one frees the period for a new draft."""

    customer = models.ForeignKey("customers.Customer", on_delete=models.PROTECT, related_name="invoices")
    currency = models.CharField(max_length=3, choices=Currency.choices, default=Currency.CNY)
    period = models.CharField(max_length=7, db_index=True, help_text="YYYY-MM")
    status = models.CharField(
        max_length=10, choices=InvoiceStatus.choices, default=InvoiceStatus.DRAFT, db_index=True
    )
    number = models.CharField(max_length=20, unique=True, null=True, blank=True)
    prices_include_tax = models.BooleanField(default=True)
    net_amount = models.DecimalField(**MONEY, default=ZERO)
    tax_amount = models.DecimalField(**MONEY, default=ZERO)
    total_amount = models.DecimalField(**MONEY, default=ZERO, help_text="Including VAT.")
    voucher_amount = models.DecimalField(**MONEY, default=ZERO)
    credited_amount = models.DecimalField(**MONEY, default=ZERO)
    paid_amount = models.DecimalField(**MONEY, default=ZERO)
    usage_cutoff_at = models.DateTimeField(
        null=True, blank=True, help_text="Usage received up to this instant is on this invoice."
    )
    issued_on = models.DateField(null=True, blank=True)
    due_on = models.DateField(null=True, blank=True)
    issued_at = models.DateTimeField(null=True, blank=True)
    paid_at = models.DateTimeField(null=True, blank=True)
    voided_at = models.DateTimeField(null=True, blank=True)
    void_reason = models.CharField(max_length=300, blank=True)
    early_issue_reason = models.CharField(
        max_length=300,
        blank=True,
        help_text="Why it was issued before its period ended (提前开具); empty when issued after.",
    )
    fapiao = models.JSONField(
        default=dict, blank=True, help_text="Seller and buyer data snapshotted at issue."
    )
    billing_run = models.ForeignKey("billing.BillingRun", on_delete=models.SET_NULL, null=True, blank=True)
    reminder_sent_on = models.DateField(null=True, blank=True)
    reconciliation_status = models.CharField(
        max_length=12, choices=ReconciliationStatus.choices, default=ReconciliationStatus.NOT_NEEDED
    )
    reconciliation_decision = models.CharField(
        max_length=12, choices=ReconciliationDecision.choices, default="", blank=True
    )
    reconciliation_decided_by = models.ForeignKey(
        "accounts.User", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    reconciliation_decided_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-period", "customer_id"]
        permissions = [
            ("issue_invoice", "Can issue invoices"),
            ("void_invoice", "Can void invoices"),
            ("record_payment", "Can record payments"),
            ("decide_reconciliation", "Can decide how a flagged draft is billed"),
        ]
        indexes = [models.Index(fields=["status", "due_on"], name="invoice_status_due")]
        constraints = [
            models.UniqueConstraint(
                fields=["customer", "currency", "period"],
                condition=~Q(status="void"),
                name="uniq_invoice_period",
            ),
            models.CheckConstraint(
                condition=Q(status="draft") | Q(number__isnull=False), name="invoice_issued_has_number"
            ),
            models.CheckConstraint(
                condition=Q(voucher_amount__gte=0) & Q(paid_amount__gte=0),
                name="invoice_payments_non_negative",
            ),
        ]

    def __str__(self) -> str:
        return self.number or f"Draft {self.customer_id}/{self.period}"

    @property
    def amount_due(self) -> Decimal:
        return max(ZERO, self.total_amount - self.credited_amount - self.voucher_amount - self.paid_amount)

    def is_overdue(self, on) -> bool:
        return self.status == InvoiceStatus.ISSUED and self.due_on is not None and on > self.due_on


class InvoiceLine(models.Model):
    invoice = models.ForeignKey(Invoice, on_delete=models.CASCADE, related_name="lines")
    position = models.PositiveSmallIntegerField(default=1)
    kind = models.CharField(max_length=30, choices=LineKind.choices)
    contract = models.ForeignKey("contracts.Contract", on_delete=models.PROTECT, related_name="invoice_lines")
    contract_line = models.ForeignKey(
        "contracts.ContractLine",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="invoice_lines",
    )
    description = models.CharField(max_length=500)
    tax_classification = models.CharField(max_length=100)
    quantity = models.DecimalField(max_digits=20, decimal_places=6)
    unit = models.CharField(max_length=20)
    list_unit_price = models.DecimalField(max_digits=20, decimal_places=6)
    unit_price = models.DecimalField(max_digits=20, decimal_places=6)
    discount_amount = models.DecimalField(**MONEY, default=ZERO)
    amount = models.DecimalField(**MONEY, help_text="On the contract's tax basis.")
    tax_rate = models.DecimalField(max_digits=5, decimal_places=4)
    tax_amount = models.DecimalField(**MONEY)
    net_amount = models.DecimalField(**MONEY)
    gross_amount = models.DecimalField(**MONEY)
    service_start_at = models.DateTimeField()
    service_end_at = models.DateTimeField()

    class Meta:
        ordering = ["invoice", "position"]
        indexes = [models.Index(fields=["contract_line", "kind"], name="invoiceline_cline_kind")]
        constraints = [
            models.CheckConstraint(
                condition=Q(gross_amount=models.F("net_amount") + models.F("tax_amount")),
                name="invoiceline_gross_is_net_plus_tax",
            ),
        ]

    def __str__(self) -> str:
        return self.description


class ReconciliationCard(models.Model):
    """One card of a draft's metered line: billed hours against the agent's observed hours.

    Rewritten whenever the draft is made or refreshed (docs/hardware-truth.md#reconciliation).
    """

    invoice = models.ForeignKey(Invoice, on_delete=models.CASCADE, related_name="reconciliation_cards")
    # Empty while a refresh rewrites the draft's lines: the figures stay until they are compared.
    invoice_line = models.ForeignKey(
        InvoiceLine, on_delete=models.SET_NULL, null=True, blank=True, related_name="reconciliation_cards"
    )
    contract_line = models.ForeignKey("contracts.ContractLine", on_delete=models.PROTECT, related_name="+")
    card = models.ForeignKey("inventory.Card", on_delete=models.PROTECT, related_name="+")
    billed_hours = models.DecimalField(**HOURS)
    observed_hours = models.DecimalField(**HOURS)
    matched_hours = models.DecimalField(**HOURS)
    billed_not_observed_hours = models.DecimalField(**HOURS)
    observed_not_billed_hours = models.DecimalField(**HOURS)
    tolerance_hours = models.DecimalField(**HOURS)
    within_tolerance = models.BooleanField()

    class Meta:
        ordering = ["invoice", "invoice_line", "card"]
        constraints = [
            models.UniqueConstraint(
                fields=["invoice", "contract_line", "card"], name="uniq_reconciliation_line_card"
            )
        ]

    def __str__(self) -> str:
        return f"{self.card_id}: {self.billed_hours} h billed, {self.observed_hours} h observed"


class CreditNote(models.Model):
    """A correction of an issued invoice, partial or full; ``CN-YYYY-NNNNNN``."""

    invoice = models.ForeignKey(Invoice, on_delete=models.PROTECT, related_name="credit_notes")
    number = models.CharField(max_length=20, unique=True)
    reason = models.CharField(max_length=300)
    net_amount = models.DecimalField(**MONEY)
    tax_amount = models.DecimalField(**MONEY)
    total_amount = models.DecimalField(**MONEY)
    issued_at = models.DateTimeField()
    issued_by = models.ForeignKey("accounts.User", on_delete=models.PROTECT, null=True, blank=True)

    class Meta:
        ordering = ["-issued_at"]
        constraints = [models.CheckConstraint(condition=Q(total_amount__gt=0), name="credit_note_positive")]

    def __str__(self) -> str:
        return self.number


class CreditNoteLine(models.Model):
    credit_note = models.ForeignKey(CreditNote, on_delete=models.CASCADE, related_name="lines")
    invoice_line = models.ForeignKey(InvoiceLine, on_delete=models.PROTECT, related_name="credit_lines")
    description = models.CharField(max_length=500)
    tax_rate = models.DecimalField(max_digits=5, decimal_places=4)
    net_amount = models.DecimalField(**MONEY)
    tax_amount = models.DecimalField(**MONEY)
    gross_amount = models.DecimalField(**MONEY)

    def __str__(self) -> str:
        return self.description


class SlaCreditNote(models.Model):
    """A credit note that paid an SLA credit owed after its invoice was issued (an incident reported
    late): what each rerun subtracts, so a credit is given once (docs/hardware-truth.md#sla-credits-and-efficiency)."""

    credit_note = models.OneToOneField(CreditNote, on_delete=models.PROTECT, related_name="sla_credit")
    invoice = models.ForeignKey(Invoice, on_delete=models.PROTECT, related_name="sla_credit_notes")
    contract_line = models.ForeignKey("contracts.ContractLine", on_delete=models.PROTECT, related_name="+")
    availability_percent = models.DecimalField(max_digits=7, decimal_places=4)
    credit_percent = models.DecimalField(max_digits=5, decimal_places=2)
    amount = models.DecimalField(**MONEY, help_text="On the contract's tax basis, like the line's amount.")

    class Meta:
        verbose_name = "SLA credit note"
        ordering = ["invoice", "contract_line"]
        indexes = [models.Index(fields=["invoice", "contract_line"], name="slacreditnote_inv_line")]

    def __str__(self) -> str:
        return f"{self.credit_note} · SLA {self.credit_percent} %"


class PaymentMethod(models.TextChoices):
    BANK_TRANSFER = "bank_transfer", "Bank transfer 对公转账"
    STRIPE = "stripe", "Stripe"
    VOUCHER = "voucher", "Voucher 算力券"
    CREDIT = "credit", "Customer credit 余额"


class Payment(models.Model):
    invoice = models.ForeignKey(Invoice, on_delete=models.PROTECT, related_name="payments")
    method = models.CharField(max_length=20, choices=PaymentMethod.choices)
    amount = models.DecimalField(**MONEY)
    currency = models.CharField(max_length=3, choices=Currency.choices, default=Currency.CNY)
    reference = models.CharField(max_length=200, blank=True)
    external_id = models.CharField(
        max_length=200,
        null=True,
        blank=True,
        unique=True,
        help_text="Stripe event or payment id; unique so a webhook counts once.",
    )
    received_at = models.DateTimeField()
    recorded_by = models.ForeignKey("accounts.User", on_delete=models.PROTECT, null=True, blank=True)

    class Meta:
        ordering = ["-received_at"]
        constraints = [models.CheckConstraint(condition=Q(amount__gt=0), name="payment_positive")]

    def __str__(self) -> str:
        return f"{self.get_method_display()} {self.amount} → {self.invoice}"


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
    draft_changes = models.JSONField(
        default=dict,
        blank=True,
        help_text="'customer currency' → {before, after}: the drafts this run created, changed or removed.",
    )
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
