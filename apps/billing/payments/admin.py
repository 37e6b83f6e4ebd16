"""Payments in the admin: the customer credit ledger (read-only, with balances and refunds), Stripe's
webhook events (read-only), and the invoice page's "record payment" going through
``bank_transfer_record`` so an overpayment becomes credit (docs/invoices.md#bank-transfers)."""

from __future__ import annotations

from decimal import Decimal

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone

from apps.billing.invoicing.admin import InvoiceAdmin
from apps.billing.invoicing.forms import BankTransferForm
from apps.billing.invoicing.models import Invoice
from apps.billing.payments.models import CreditEntry, StripeEvent
from apps.billing.payments.selectors import (
    credit_balances,
    credit_entry_list,
    customer_credit_balance,
    stripe_event_list,
)
from apps.billing.payments.services.credit import bank_transfer_record, credit_refund
from apps.core.admin import GuardedAdmin, GuardedHistoryAdmin, ReadOnlyAdminMixin
from apps.core.errors import DomainError
from apps.customers.models import Customer


class RefundForm(forms.Form):
    amount = forms.DecimalField(
        label="Amount 金额", max_digits=16, decimal_places=2, min_value=Decimal("0.01")
    )
    reference = forms.CharField(
        label="Bank reference 银行流水号", max_length=200, widget=forms.TextInput(attrs={"size": 40})
    )
    note = forms.CharField(
        label="Note 备注", max_length=300, required=False, widget=forms.TextInput(attrs={"size": 60})
    )


@admin.register(CreditEntry)
class CreditEntryAdmin(GuardedAdmin):
    """The customer credit ledger as written by the services; entries never change."""

    list_display = (
        "created_at",
        "customer",
        "kind",
        "amount",
        "balance_after",
        "currency",
        "invoice",
        "credit_note",
        "reference",
        "created_by",
    )
    list_filter = ("kind", "currency")
    search_fields = (
        "customer__code",
        "customer__name",
        "reference",
        "invoice__number",
        "credit_note__number",
    )
    list_select_related = ("customer", "invoice", "credit_note", "created_by")
    fields = (
        "customer",
        "currency",
        "kind",
        "amount",
        "balance_after",
        "invoice",
        "payment",
        "credit_note",
        "reference",
        "note",
        "created_at",
        "created_by",
    )
    readonly_fields = fields
    date_hierarchy = "created_at"
    change_list_template = "admin/billing/creditentry/change_list.html"

    def get_queryset(self, request):
        return credit_entry_list()

    def has_add_permission(self, request):
        return False  # credit comes from payments, credit notes and refunds

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def has_refund_permission(self, request) -> bool:
        return request.user.has_perm("billing.refund_credit")

    def get_urls(self):
        view = self.admin_site.admin_view
        return [
            path("balances/", view(self.balances_view), name="billing_creditentry_balances"),
            path("refund/<int:customer_pk>/", view(self.refund_view), name="billing_creditentry_refund"),
            *super().get_urls(),
        ]

    def balances_view(self, request):
        if not self.has_view_permission(request):
            raise PermissionDenied
        context = {
            **self.admin_site.each_context(request),
            "title": "Customer credit balances 客户余额",
            "opts": self.opts,
            "customers": credit_balances(),
            "can_refund": self.has_refund_permission(request),
        }
        return TemplateResponse(request, "admin/billing/creditentry/balances.html", context)

    def refund_view(self, request, customer_pk):
        if not (self.has_view_permission(request) and self.has_refund_permission(request)):
            raise PermissionDenied
        customer = get_object_or_404(Customer, pk=customer_pk)
        form = RefundForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            try:
                entry = credit_refund(
                    customer=customer,
                    amount=form.cleaned_data["amount"],
                    reference=form.cleaned_data["reference"],
                    note=form.cleaned_data["note"],
                    actor=request.user,
                    now=timezone.now(),
                )
            except DomainError as exc:
                form.add_error(None, exc.message)
            else:
                self.message_user(
                    request,
                    f"Refunded {-entry.amount:,.2f} {entry.currency} to {customer.code}; "
                    f"{entry.balance_after:,.2f} {entry.currency} credit left.",
                    messages.SUCCESS,
                )
                return HttpResponseRedirect(reverse("admin:billing_creditentry_balances"))
        context = {
            **self.admin_site.each_context(request),
            "title": f"Refund credit 余额退款 · {customer}",
            "opts": self.opts,
            "customer": customer,
            "balance": customer_credit_balance(customer=customer),
            "form": form,
        }
        return TemplateResponse(request, "admin/billing/creditentry/refund.html", context)


@admin.register(StripeEvent)
class StripeEventAdmin(ReadOnlyAdminMixin, GuardedHistoryAdmin):
    """Every webhook event Stripe sent, once per event id, and what it did."""

    list_display = (
        "received_at",
        "event_id",
        "type",
        "object_id",
        "invoice",
        "payment",
        "processed",
        "outcome",
    )
    list_filter = ("type", "processed")
    search_fields = ("event_id", "object_id", "session_id", "invoice__number")
    list_select_related = ("invoice", "payment")
    fields = (
        "event_id",
        "type",
        "object_id",
        "session_id",
        "invoice",
        "payment",
        "processed",
        "outcome",
        "received_at",
        "payload",
    )
    readonly_fields = fields

    def get_queryset(self, request):
        return stripe_event_list()


class PaymentsInvoiceAdmin(InvoiceAdmin):
    """The invoice admin with its "record payment" page, which belongs to payments (invoicing
    imports no peer): a bank transfer through ``bank_transfer_record`` — partial payments, and an
    overpayment kept as the customer's credit."""

    def get_urls(self):
        view = self.admin_site.admin_view
        return [
            path("<int:pk>/payment/", view(self.payment_view), name="billing_invoice_payment"),
            *super().get_urls(),
        ]

    def payment_view(self, request, pk):
        invoice = self._invoice(request, pk, self.has_record_payment_permission(request))
        form = BankTransferForm(
            request.POST or None, initial={"amount": invoice.amount_due, "received_on": timezone.localdate()}
        )
        if request.method == "POST" and form.is_valid():
            try:
                taken = bank_transfer_record(
                    invoice=invoice,
                    amount=form.cleaned_data["amount"],
                    reference=form.cleaned_data["reference"],
                    received_on=form.cleaned_data["received_on"],
                    actor=request.user,
                    now=timezone.now(),
                )
            except DomainError as exc:
                form.add_error(None, exc.message)
            else:
                parts = []
                if taken.payment is not None:
                    parts.append(f"Recorded {taken.payment.amount} {taken.payment.currency} on {invoice}.")
                if taken.credit is not None:
                    parts.append(
                        f"{taken.credit.amount} {taken.credit.currency} more than was due became "
                        f"{invoice.customer.code}'s credit (balance {taken.credit.balance_after})."
                    )
                self.message_user(request, " ".join(parts), messages.SUCCESS)
                return self._back(invoice)
        return self._form_page(request, invoice, form, "Bank transfer 对公转账", "Record payment 登记收款")


admin.site.unregister(Invoice)
admin.site.register(Invoice, PaymentsInvoiceAdmin)
