"""Customers: the companies that lease compute, with what their fapiao needs."""

from django.db import models
from django.db.models import Q
from simple_history.models import HistoricalRecords

from apps.core.choices import Currency
from apps.core.models import TimeStampedModel
from apps.core.validators import validate_uscc


class InvoiceType(models.TextChoices):
    VAT_SPECIAL = "vat_special", "增值税专用发票 VAT special"
    VAT_GENERAL = "vat_general", "增值税普通发票 VAT general"


class Language(models.TextChoices):
    """The language of the e-mails a customer receives (docs/invoices.md#e-mail)."""

    ZH_HANS = "zh-hans", "简体中文 Chinese"
    EN = "en", "English 英文"


class Customer(TimeStampedModel):
    code = models.SlugField(max_length=50, unique=True)
    name = models.CharField(max_length=200)
    tax_id = models.CharField(
        "unified social credit code 统一社会信用代码", max_length=18, unique=True, validators=[validate_uscc]
    )
    billing_address = models.CharField(max_length=300, blank=True)
    phone = models.CharField(max_length=30, blank=True)
    bank_name = models.CharField(max_length=200, blank=True)
    bank_account = models.CharField(max_length=50, blank=True)
    billing_email = models.EmailField(blank=True)
    invoice_type = models.CharField(
        max_length=20, choices=InvoiceType.choices, default=InvoiceType.VAT_SPECIAL
    )
    currency = models.CharField(max_length=3, choices=Currency.choices, default=Currency.CNY)
    payment_terms_days = models.PositiveSmallIntegerField(default=30)
    language = models.CharField(
        max_length=10,
        choices=Language.choices,
        default=Language.ZH_HANS,
        help_text="Language of invoice, reminder and receipt e-mails.",
    )
    auto_issue = models.BooleanField(
        default=False, help_text="Issue invoices as soon as a billing run drafts them."
    )
    account_manager = models.ForeignKey(
        "accounts.User", on_delete=models.SET_NULL, null=True, blank=True, related_name="managed_customers"
    )
    history = HistoricalRecords()

    class Meta:
        ordering = ["code"]
        constraints = [
            models.CheckConstraint(
                condition=Q(payment_terms_days__lte=365), name="customer_payment_terms_max"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.code})"
