"""Finance reports own no table: this proxy (of Django's content types, the most inert table at
hand; nothing reads rows through it) only carries the permission to read them
(docs/reports.md#who-reads-them), granted to finance and sales managers in apps.accounts.roles."""

from __future__ import annotations

from django.contrib.contenttypes.models import ContentType
from django.db import models


class Report(ContentType):
    class Meta:
        proxy = True
        default_permissions = ()
        permissions = [("view_reports", "Can read the finance reports 查看财务报表")]
        verbose_name = "finance report 财务报表"
        verbose_name_plural = "finance reports 财务报表"

    def __str__(self) -> str:
        return "finance reports 财务报表"


class RevenueFact(models.Model):
    """The revenue-and-margin parts of billed invoices, summed per (period, customer, currency,
    hardware, settled, GPU model, provider, hub): what ``apps.reports.facts`` computes from the
    invoices and their settlement lines, kept so that a report sums a few rows per customer-month
    instead of joining every invoice line (docs/reports.md#revenue-facts). A row with
    ``hardware`` NULL is the invoices' net amount outside their parts. Derived data: no foreign
    keys; rebuilt by ``manage.py rebuild_report_facts``."""

    period = models.CharField(max_length=7)
    customer_id = models.BigIntegerField()
    currency = models.CharField(max_length=3)
    hardware = models.BooleanField(null=True)
    settled = models.BooleanField(null=True)
    gpu_model_id = models.BigIntegerField(null=True)
    provider_id = models.BigIntegerField(null=True)
    hub = models.CharField(max_length=20, null=True)
    revenue = models.DecimalField(max_digits=18, decimal_places=2)
    cost = models.DecimalField(max_digits=18, decimal_places=2)

    class Meta:
        default_permissions = ()
        indexes = [models.Index(fields=["period", "customer_id"], name="reports_fact_period_customer")]

    def __str__(self) -> str:
        return f"{self.period} {self.customer_id} {self.currency} {self.revenue}"


class FactChange(models.Model):
    """A (period, customer) whose revenue facts may be stale, written by database triggers on the
    billing, settlement, allocation and hardware tables in the changing transaction. NULL period:
    every period of the customer; NULL customer: every customer of the period; both NULL:
    everything. Reports read these keys live; ``facts_refresh`` folds them in."""

    period = models.CharField(max_length=7, null=True)
    customer_id = models.BigIntegerField(null=True)

    class Meta:
        default_permissions = ()
        indexes = [models.Index(fields=["customer_id", "period"], name="reports_factchange_key")]

    def __str__(self) -> str:
        return f"{self.period or '*'} {self.customer_id or '*'}"
