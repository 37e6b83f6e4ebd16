"""Voucher admin (docs/vouchers.md#programmes): programmes with their redemption report,
vouchers with their ledger.

Vouchers are issued through the add form and never edited afterwards: every movement is a ledger
entry written by a service (redemption at invoice issue, reversal on void, claim, expiry).
"""

from __future__ import annotations

import csv
import io

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Count
from django.http import HttpResponse
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html

from apps.billing.invoicing.models import Invoice, InvoiceStatus
from apps.billing.vouchers import services as services
from apps.billing.vouchers.models import (
    Voucher,
    VoucherFlow,
    VoucherLedgerEntry,
    VoucherProgramme,
    VoucherStatus,
)
from apps.core.admin import GuardedAdmin, GuardedHistoryAdmin
from apps.core.admin_errors import changeform_with_service_errors, form_with_service_errors, refuse
from apps.core.errors import DomainError

# --- programmes -------------------------------------------------------------------------------


class VoucherProgrammeForm(forms.ModelForm):
    class Meta:
        model = VoucherProgramme
        fields = ("code", *services.PROGRAMME_FIELDS)

    def clean(self):
        data = super().clean()
        values = {name: data.get(name, getattr(self.instance, name)) for name in services.PROGRAMME_FIELDS}
        if all(values.get(k) is not None for k in ("coverage_percent", "valid_from", "valid_to")):
            try:
                services.voucher_programme_check(values=values)
            except DomainError as exc:
                raise ValidationError({k: v for k, v in exc.fields.items() if k in self.fields}) from exc
        return data


class RedemptionForm(forms.Form):
    period = forms.RegexField(
        regex=r"^\d{4}-(0[1-9]|1[0-2])$", required=False, label="Period 月份 (YYYY-MM)", max_length=7
    )
    date_from = forms.DateField(required=False, label="From 起")
    date_to = forms.DateField(required=False, label="To 止 (inclusive)")


@admin.register(VoucherProgramme)
class VoucherProgrammeAdmin(GuardedHistoryAdmin):
    form = VoucherProgrammeForm
    list_display = (
        "code",
        "name",
        "issuer",
        "flow",
        "coverage_percent",
        "cap_per_customer_year",
        "cap_per_voucher",
        "valid_from",
        "valid_to",
        "voucher_count",
        "report_link",
    )
    list_filter = ("flow", "currency")
    search_fields = ("code", "name", "issuer")
    fieldsets = (
        (None, {"fields": ("code", "name", "issuer", "flow", "currency", "notes")}),
        (
            "Coverage and caps 比例与上限",
            {"fields": ("coverage_percent", "cap_per_customer_year", "cap_per_voucher")},
        ),
        ("Validity 有效期", {"fields": ("valid_from", "valid_to")}),
        (
            "Eligibility 适用条件",
            {
                "fields": (
                    "contract_signed_on_or_after",
                    "max_contract_term_days",
                    "exclude_related_party_suppliers",
                )
            },
        ),
    )

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(_vouchers=Count("vouchers"))

    def get_readonly_fields(self, request, obj=None):
        return ("code",) if obj is not None else ()

    @admin.display(description="vouchers", ordering="_vouchers")
    def voucher_count(self, obj):
        return obj._vouchers

    @admin.display(description="report 核销报表")
    def report_link(self, obj):
        url = reverse("admin:billing_voucherprogramme_redemptions", args=[obj.pk])
        return format_html('<a href="{}">Redemptions 核销明细</a>', url)

    def save_model(self, request, obj, form, change):
        values = {
            name: form.cleaned_data.get(name)
            for name in services.PROGRAMME_FIELDS
            if name in form.cleaned_data
        }
        try:
            if change:
                saved = services.voucher_programme_update(programme=obj, actor=request.user, **values)
            else:
                saved = services.voucher_programme_create(actor=request.user, code=obj.code, **values)
        except DomainError as exc:
            refuse(exc)  # the form comes back with the service's message (apps.core.admin_errors)
        obj.pk = saved.pk

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        return changeform_with_service_errors(
            super().changeform_view, request, object_id, form_url, extra_context
        )

    def get_form(self, request, obj=None, change=False, **kwargs):
        return form_with_service_errors(request, super().get_form(request, obj, change=change, **kwargs))

    def get_urls(self):
        view = self.admin_site.admin_view
        return [
            path(
                "<int:pk>/redemptions/",
                view(self.redemptions_view),
                name="billing_voucherprogramme_redemptions",
            ),
            *super().get_urls(),
        ]

    def redemptions_view(self, request, pk):
        if not (self.has_view_permission(request) and request.user.has_perm("billing.view_voucher")):
            raise PermissionDenied
        programme = get_object_or_404(VoucherProgramme, pk=pk)
        initial = {"period": f"{timezone.localdate():%Y-%m}"}
        form = RedemptionForm(request.GET or initial)
        report, error = None, ""
        if form.is_valid():
            try:
                report = services.voucher_redemption_report(
                    programme=programme,
                    period=form.cleaned_data["period"] or None,
                    date_from=form.cleaned_data["date_from"],
                    date_to=form.cleaned_data["date_to"],
                )
            except DomainError as exc:
                error = exc.message
        if report is not None and request.GET.get("format") == "csv":
            return _report_csv(report)
        context = {
            **self.admin_site.each_context(request),
            "title": f"Redemption report 核销报表 · {programme.code}",
            "opts": self.model._meta,
            "original": programme,
            "programme": programme,
            "form": form,
            "report": report,
            "error": error,
            "csv_query": request.GET.urlencode(),
        }
        return TemplateResponse(request, "admin/billing/voucherprogramme/redemptions.html", context)


def _report_csv(report) -> HttpResponse:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(
        [
            "date",
            "kind",
            "voucher",
            "customer",
            "customer_name",
            "tax_id",
            "invoice",
            "invoice_total",
            "eligible_amount",
            "amount",
        ]
    )
    for row in report.rows:
        writer.writerow(
            [
                row.on,
                row.kind,
                row.voucher,
                row.customer_code,
                row.customer_name,
                row.customer_tax_id,
                row.invoice,
                row.invoice_total if row.invoice_total is not None else "",
                row.base_amount if row.base_amount is not None else "",
                row.amount,
            ]
        )
    writer.writerow(["total", "", "", "", "", "", "", "", "", report.total_amount])
    response = HttpResponse(buffer.getvalue().encode("utf-8-sig"), content_type="text/csv; charset=utf-8")
    name = f"redemptions-{report.programme.code}-{report.start}-{report.end}.csv"
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response


# --- vouchers ---------------------------------------------------------------------------------


class LedgerInline(admin.TabularInline):
    model = VoucherLedgerEntry
    extra = 0
    max_num = 0
    can_delete = False
    fields = ("created_at", "kind", "amount", "balance_after", "invoice", "base_amount", "cap_year", "note")
    readonly_fields = fields
    ordering = ("created_at", "pk")

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("invoice")

    def has_add_permission(self, request, obj=None):
        return False


class VoucherIssueForm(forms.ModelForm):
    class Meta:
        model = Voucher
        fields = ("programme", "customer", "amount", "valid_to", "reference")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["valid_to"].required = False
        self.fields["valid_to"].help_text = "Empty: the programme's last day."


class ClaimPackForm(forms.Form):
    invoices = forms.ModelMultipleChoiceField(
        queryset=Invoice.objects.none(), widget=forms.CheckboxSelectMultiple, label="Invoices 发票"
    )

    def __init__(self, *args, voucher: Voucher, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["invoices"].queryset = Invoice.objects.filter(
            customer_id=voucher.customer_id,
            currency=voucher.programme.currency,
            status__in=[InvoiceStatus.ISSUED, InvoiceStatus.PAID],
        ).order_by("-period")
        self.fields["invoices"].label_from_instance = lambda inv: (
            f"{inv.number} · {inv.period} · {inv.total_amount:,.2f} {inv.currency} · {inv.get_status_display()}"
        )


@admin.register(Voucher)
class VoucherAdmin(GuardedAdmin):
    list_display = ("number", "customer", "programme", "amount", "balance", "status", "valid_to", "issued_at")
    list_filter = ("status", "programme__flow", "programme")
    search_fields = ("number", "customer__code", "customer__name", "programme__code", "reference")
    list_select_related = ("customer", "programme")
    autocomplete_fields = ["customer"]
    actions = ["expire_selected"]
    readonly_fields = (
        "number",
        "programme",
        "customer",
        "amount",
        "balance",
        "status",
        "valid_to",
        "issued_at",
        "issued_by",
        "reference",
        "claim_pack_link",
    )

    def get_form(self, request, obj=None, change=False, **kwargs):
        if obj is None:
            kwargs["form"] = VoucherIssueForm
        return form_with_service_errors(request, super().get_form(request, obj, change=change, **kwargs))

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        return changeform_with_service_errors(
            super().changeform_view, request, object_id, form_url, extra_context
        )

    def get_fields(self, request, obj=None):
        return VoucherIssueForm.Meta.fields if obj is None else self.readonly_fields

    def get_readonly_fields(self, request, obj=None):
        return () if obj is None else self.readonly_fields

    def get_inlines(self, request, obj):
        return [LedgerInline] if obj is not None else []

    def has_change_permission(self, request, obj=None):
        return False if obj is not None else super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        return False

    def has_expire_permission(self, request):
        return request.user.has_perm("billing.expire_voucher")

    def save_model(self, request, obj, form, change):
        data = form.cleaned_data
        try:
            saved = services.voucher_issue(
                programme=data["programme"],
                customer=data["customer"],
                amount=data["amount"],
                valid_to=data.get("valid_to"),
                reference=data.get("reference") or "",
                actor=request.user,
                now=timezone.now(),
            )
        except DomainError as exc:
            refuse(exc)  # the form comes back with the service's message (apps.core.admin_errors)
        obj.pk, obj.number = saved.pk, saved.number

    def save_related(self, request, form, formsets, change):
        pass  # the ledger is written by the service, never by a formset

    @admin.display(description="claim pack 申领材料")
    def claim_pack_link(self, obj):
        if obj.programme.flow != VoucherFlow.CUSTOMER_CLAIM:
            return "— (settled at invoice issue 开票即核销)"
        url = reverse("admin:billing_voucher_claim_pack", args=[obj.pk])
        return format_html('<a href="{}">Build claim pack 生成申领材料</a>', url)

    @admin.action(description="Expire now 立即过期", permissions=["expire"])
    def expire_selected(self, request, queryset):
        done = 0
        for voucher in queryset.exclude(status=VoucherStatus.EXPIRED):
            try:
                services.voucher_expire(voucher=voucher, now=timezone.now(), actor=request.user)
                done += 1
            except DomainError as exc:
                self.message_user(request, f"{voucher}: {exc.message}", messages.ERROR)
        self.message_user(request, f"Expired {done} voucher(s).", messages.SUCCESS)

    def get_urls(self):
        view = self.admin_site.admin_view
        return [
            path("<int:pk>/claim-pack/", view(self.claim_pack_view), name="billing_voucher_claim_pack"),
            *super().get_urls(),
        ]

    def claim_pack_view(self, request, pk):
        if not self.has_view_permission(request):
            raise PermissionDenied
        voucher = get_object_or_404(Voucher.objects.select_related("programme", "customer"), pk=pk)
        form = ClaimPackForm(request.POST or None, voucher=voucher)
        if request.method == "POST" and form.is_valid():
            try:
                content = services.claim_pack(
                    customer=voucher.customer,
                    programme=voucher.programme,
                    invoices=list(form.cleaned_data["invoices"]),
                    now=timezone.now(),
                    voucher=voucher,
                )
            except DomainError as exc:
                self.message_user(request, exc.message, messages.ERROR)
            else:
                response = HttpResponse(content, content_type="application/zip")
                response["Content-Disposition"] = f'attachment; filename="claim-pack-{voucher.number}.zip"'
                return response
        context = {
            **self.admin_site.each_context(request),
            "title": f"Claim pack 申领材料 · {voucher}",
            "opts": self.model._meta,
            "original": voucher,
            "voucher": voucher,
            "form": form,
        }
        return TemplateResponse(request, "admin/billing/voucher/claim_pack.html", context)
