"""Portal forms: filters of the lists and the invitation."""

from __future__ import annotations

import re

from django import forms
from django.utils.translation import gettext_lazy as _

from apps.accounts.models import CustomerMembership
from apps.core.periods import Period

PERIOD_RE = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")


class PeriodField(forms.CharField):
    """``YYYY-MM`` → :class:`Period`."""

    def __init__(self, **kwargs):
        kwargs.setdefault("required", False)
        kwargs.setdefault("widget", forms.TextInput(attrs={"type": "month", "placeholder": "YYYY-MM"}))
        super().__init__(**kwargs)

    def to_python(self, value):
        value = super().to_python(value)
        if not value:
            return None
        if not PERIOD_RE.match(value):
            raise forms.ValidationError(_("Enter a month as YYYY-MM."))
        return Period.parse(value)


class InvoiceFilterForm(forms.Form):
    STATUS_CHOICES = [
        ("", _("All")),
        ("issued", _("Open")),
        ("overdue", _("Overdue")),
        ("paid", _("Paid")),
        ("void", _("Void")),
    ]
    period = PeriodField(label=_("Period"))
    status = forms.ChoiceField(label=_("Status"), choices=STATUS_CHOICES, required=False)


class UsageFilterForm(forms.Form):
    INVOICED_CHOICES = [("", _("All")), ("yes", _("Invoiced")), ("no", _("Not invoiced yet"))]
    period = PeriodField(label=_("Period"))
    contract = forms.TypedChoiceField(label=_("Contract"), required=False, coerce=int, empty_value=None)
    hardware = forms.CharField(label=_("Card or server"), required=False, max_length=100)
    invoiced = forms.ChoiceField(label=_("Billing"), choices=INVOICED_CHOICES, required=False)

    def __init__(self, *args, contracts=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.contracts = {c.pk: c for c in contracts}
        self.fields["contract"].choices = [("", _("All contracts"))] + [
            (c.pk, c.number if c.version == 1 else f"{c.number} v{c.version}") for c in contracts
        ]

    def clean_contract(self):
        pk = self.cleaned_data.get("contract")
        return self.contracts.get(pk) if pk else None

    def clean_invoiced(self):
        return {"yes": True, "no": False}.get(self.cleaned_data.get("invoiced") or "")


class InviteForm(forms.Form):
    email = forms.EmailField(label=_("E-mail"), max_length=150)
    display_name = forms.CharField(label=_("Name"), max_length=100, required=False)
    role = forms.ChoiceField(
        label=_("Role"),
        choices=[
            (CustomerMembership.Role.ADMIN, _("Admin: everything, invites users")),
            (CustomerMembership.Role.BILLING, _("Billing: reads everything, pays invoices")),
            (CustomerMembership.Role.VIEWER, _("Viewer: reads only")),
        ],
        initial=CustomerMembership.Role.VIEWER,
    )
