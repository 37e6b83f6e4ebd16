"""Admin forms of finance's actions: they parse input; the services decide."""

from __future__ import annotations

import datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

from django import forms
from django.conf import settings
from django.utils import timezone

from apps.core.periods import Period
from apps.customers.models import Customer


class VoidForm(forms.Form):
    reason = forms.CharField(
        label="Reason 作废原因", max_length=300, widget=forms.TextInput(attrs={"size": 60})
    )


class EarlyIssueForm(forms.Form):
    """Issuing before the period has ended: the reason is kept on each invoice."""

    early_reason = forms.CharField(
        label="Reason to issue early 提前开具原因",
        max_length=300,
        widget=forms.TextInput(attrs={"size": 60}),
        help_text="The period has not ended yet; say why these invoices go out now. 账期尚未结束。",
    )


class CreditNoteForm(forms.Form):
    FULL, AMOUNT = "full", "amount"
    mode = forms.ChoiceField(
        label="Credit 冲红",
        choices=[(FULL, "Everything still open 全额冲红"), (AMOUNT, "An amount 部分冲红")],
        initial=FULL,
        widget=forms.RadioSelect,
    )
    amount = forms.DecimalField(
        label="Amount incl. VAT 金额（含税）",
        max_digits=16,
        decimal_places=2,
        min_value=Decimal("0.01"),
        required=False,
        help_text="Spread over the lines in proportion to what is still open; each keeps its tax rate.",
    )
    reason = forms.CharField(label="Reason 原因", max_length=300, widget=forms.TextInput(attrs={"size": 60}))

    def clean(self):
        data = super().clean()
        if data.get("mode") == self.AMOUNT and data.get("amount") is None:
            self.add_error("amount", "Give the amount to credit, or choose a full credit.")
        if data.get("mode") == self.FULL:
            data["amount"] = None
        return data


class BankTransferForm(forms.Form):
    amount = forms.DecimalField(
        label="Amount 金额", max_digits=16, decimal_places=2, min_value=Decimal("0.01")
    )
    reference = forms.CharField(
        label="Bank reference 银行流水号", max_length=200, widget=forms.TextInput(attrs={"size": 40})
    )
    received_on = forms.DateField(
        label="Received on 到账日期", widget=forms.DateInput(attrs={"type": "date"})
    )

    def received_at(self, now: datetime.datetime) -> datetime.datetime:
        """Today's transfers count as received now; an earlier date at noon billing time."""
        zone = ZoneInfo(settings.BILLING_TIME_ZONE)
        day = self.cleaned_data["received_on"]
        if day >= now.astimezone(zone).date():
            return now
        return datetime.datetime.combine(day, datetime.time(12), tzinfo=zone)


class BillingRunForm(forms.Form):
    period = forms.CharField(
        label="Period 账期", max_length=7, help_text="YYYY-MM, a month that has started."
    )
    customer = forms.CharField(
        label="Customer code 客户代码",
        max_length=50,
        required=False,
        help_text="Empty: every customer with a contract in force in the period.",
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if not self.is_bound:
            now = timezone.now()
            self.fields["period"].initial = str(Period.containing(now, settings.BILLING_TIME_ZONE).previous())

    def clean_period(self) -> str:
        try:
            return str(Period.parse(self.cleaned_data["period"].strip()))
        except ValueError as exc:
            raise forms.ValidationError(str(exc)) from None

    def clean_customer(self) -> Customer | None:
        code = self.cleaned_data["customer"].strip()
        if not code:
            return None
        customer = Customer.objects.filter(code=code).first()
        if customer is None:
            raise forms.ValidationError(f"Unknown customer '{code}'.")
        return customer
