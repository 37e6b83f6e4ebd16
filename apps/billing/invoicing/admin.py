"""Billing admin: finance's desk. Invoices are read-only here (only billing runs write their money and
lines, and issued ones are frozen); everything that changes state is an action or a button that
calls one service.
"""

from __future__ import annotations

from decimal import Decimal

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db import connection
from django.http import HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.views.decorators.http import require_POST

from apps.billing.invoicing import selectors
from apps.billing.invoicing.forms import BillingRunForm, CreditNoteForm, EarlyIssueForm, VoidForm
from apps.billing.invoicing.models import (
    BillingRun,
    BillingRunStatus,
    CreditNote,
    CreditNoteLine,
    Invoice,
    InvoiceLine,
    InvoiceStatus,
    Payment,
    ReconciliationCard,
    ReconciliationDecision,
)
from apps.billing.invoicing.pdf import credit_note_pdf, fapiao_data, invoice_pdf
from apps.billing.invoicing.services.issuing import (
    credit_note_create,
    invoice_issue,
    invoice_void,
    period_has_ended,
)
from apps.billing.invoicing.services.preview import invoice_preview
from apps.billing.invoicing.services.reconciliation import invoice_reconciliation_decide
from apps.billing.invoicing.services.runs import billing_run_request
from apps.core.admin import GuardedAdmin, ReadOnlyAdminMixin
from apps.core.errors import DomainError
from apps.core.money import ZERO, amount_in_words
from apps.customers.models import Customer


def _today():
    return selectors.billing_today(timezone.now())


def _pdf_response(content: bytes, filename: str) -> HttpResponse:
    response = HttpResponse(content, content_type="application/pdf")
    response["Content-Disposition"] = f'inline; filename="{filename}"'
    return response


class ReadOnlyInline(ReadOnlyAdminMixin, admin.TabularInline):
    """Rows shown on their invoice's page, never edited there."""

    extra = 0
    max_num = 0
    can_delete = False
    show_change_link = False

    def get_readonly_fields(self, request, obj=None):
        return self.fields

    def has_view_permission(self, request, obj=None):
        return request.user.has_perm("billing.view_invoice")


# Invoice line fields the inline leaves out to keep the table readable: what the description
# already says (contract line, list price, service dates). Every other field shows, in model order,
# so a new money field appears without another list to update.
INVOICE_LINE_HIDDEN_FIELDS = frozenset(
    {"id", "invoice", "contract_line", "list_unit_price", "service_start_at", "service_end_at"}
)


class InvoiceLineInline(ReadOnlyInline):
    model = InvoiceLine
    fields = tuple(
        f.name for f in InvoiceLine._meta.concrete_fields if f.name not in INVOICE_LINE_HIDDEN_FIELDS
    )

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("contract")


class PaymentInline(ReadOnlyInline):
    model = Payment
    fields = ("method", "amount", "currency", "reference", "received_at", "recorded_by")

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("recorded_by")


class CreditNoteInline(ReadOnlyInline):
    model = CreditNote
    fields = ("number", "reason", "net_amount", "tax_amount", "total_amount", "issued_at", "pdf_link")

    def get_readonly_fields(self, request, obj=None):
        return self.fields

    @admin.display(description="PDF")
    def pdf_link(self, obj):
        return format_html('<a href="{}">PDF</a>', reverse("admin:billing_creditnote_pdf", args=[obj.pk]))


class OverdueFilter(admin.SimpleListFilter):
    """Overdue is derived (issued, unpaid, past its due date), so it is a filter, not a status."""

    title = "overdue 逾期"
    parameter_name = "overdue"

    def lookups(self, request, model_admin):
        return [("yes", "Overdue 已逾期"), ("no", "Not overdue 未逾期")]

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.filter(selectors.overdue_q(_today()))
        if self.value() == "no":
            return queryset.exclude(selectors.overdue_q(_today()))
        return queryset


STATUS_COLOURS = {"draft": "#777", "issued": "#1565c0", "paid": "#2e7d32", "void": "#444"}

# The periods that have invoices, newest first, one probe of the period index per period (a loose
# index scan): ``SELECT DISTINCT period`` would read every invoice (docs/scaling.md#pages).
INVOICE_PERIODS_SQL = """
WITH RECURSIVE periods AS (
    SELECT max(period) AS period FROM billing_invoice
    UNION ALL
    SELECT (SELECT max(period) FROM billing_invoice WHERE period < periods.period)
      FROM periods WHERE periods.period IS NOT NULL
)
SELECT period FROM periods WHERE period IS NOT NULL
"""


class InvoicePeriodFilter(admin.SimpleListFilter):
    """The billing periods that have invoices, newest first (``?period=YYYY-MM``)."""

    title = "period"
    parameter_name = "period"

    def lookups(self, request, model_admin):
        with connection.cursor() as cursor:
            cursor.execute(INVOICE_PERIODS_SQL)
            return [(period, period) for (period,) in cursor.fetchall()]

    def queryset(self, request, queryset):
        return queryset.filter(period=self.value()) if self.value() else queryset


class CustomerFilter(admin.RelatedOnlyFieldListFilter):
    """Customers with invoices, listed in the sidebar while there are at most ``limit`` customers.

    Past that a sidebar of thousands of links would cost more than the page (docs/scaling.md#pages):
    it is left out, the search box finds a customer's invoices by code or name, and a link with
    ``?customer__id__exact=<id>`` still filters.
    """

    limit = 200

    def field_choices(self, field, request, model_admin):
        if Customer.objects.order_by()[: self.limit + 1].count() > self.limit:
            return []
        return super().field_choices(field, request, model_admin)

    def has_output(self) -> bool:
        return bool(self.lookup_val) or super().has_output()  # a chosen customer still filters


class ReconciliationCardInline(ReadOnlyInline):
    """Billed against observed hours per card of the draft's metered lines
    (docs/hardware-truth.md#reconciliation)."""

    model = ReconciliationCard
    fk_name = "invoice"
    verbose_name = "card reconciliation 逐卡核对"
    verbose_name_plural = "reconciliation per card 逐卡核对 (hours 小时)"
    fields = (
        "line_position",
        "card_display",
        "provider",
        "billed_hours",
        "observed_hours",
        "matched_hours",
        "billed_not_observed_hours",
        "observed_not_billed_hours",
        "tolerance_hours",
        "within_tolerance",
    )

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("card__server__provider", "invoice_line")

    @admin.display(description="line 行")
    def line_position(self, obj):
        return obj.invoice_line.position if obj.invoice_line_id else "—"

    @admin.display(description="card 卡")
    def card_display(self, obj):
        return f"{obj.card.server.serial} #{obj.card.slot}"

    @admin.display(description="provider 供应商")
    def provider(self, obj):
        return obj.card.server.provider.code


@admin.register(Invoice)
class InvoiceAdmin(GuardedAdmin):
    list_display = (
        "number_display",
        "customer",
        "period",
        "status_badge",
        "currency",
        "tax_amount",
        "total_amount",
        "amount_due_display",
        "issued_on",
        "due_on",
    )
    list_filter = (
        "status",
        "reconciliation_status",
        OverdueFilter,
        InvoicePeriodFilter,
        "currency",
        ("customer", CustomerFilter),
    )
    search_fields = ("number", "customer__code", "customer__name")
    list_select_related = ("customer",)
    list_per_page = 50
    show_full_result_count = False  # one COUNT of the invoices, not two (docs/scaling.md#pages)
    ordering = ("-period", "customer__code")
    actions = ["issue_selected", "void_selected"]
    inlines = [InvoiceLineInline, ReconciliationCardInline, PaymentInline, CreditNoteInline]
    change_form_template = "admin/billing/invoice/change_form.html"
    fieldsets = (
        (None, {"fields": ("number", "customer", "period", "currency", "status_badge", "billing_run")}),
        (
            "Amounts 金额",
            {
                "fields": (
                    "prices_include_tax",
                    "net_amount",
                    "tax_amount",
                    "total_amount",
                    "voucher_amount",
                    "credited_amount",
                    "paid_amount",
                    "amount_due_display",
                    "total_in_words",
                )
            },
        ),
        (
            "Dates 日期",
            {
                "fields": (
                    "issued_on",
                    "due_on",
                    "issued_at",
                    "paid_at",
                    "voided_at",
                    "void_reason",
                    "early_issue_reason",
                    "usage_cutoff_at",
                    "reminder_sent_on",
                )
            },
        ),
        (
            "Reconciliation 核对",
            {
                "fields": (
                    "reconciliation_status",
                    "reconciliation_decision",
                    "reconciliation_decided_by",
                    "reconciliation_decided_at",
                )
            },
        ),
        ("Fapiao 开票信息", {"fields": ("fapiao_table",)}),
    )

    # -- read-only: lines and money come from billing runs, state changes from the actions --

    def get_readonly_fields(self, request, obj=None):
        return [field for _, options in self.fieldsets for field in options["fields"]]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        # The changelist needs the permission; no invoice page has anything to edit.
        return obj is None and super().has_change_permission(request)

    def has_delete_permission(self, request, obj=None):
        return False

    def has_issue_permission(self, request):
        return request.user.has_perm("billing.issue_invoice")

    def has_void_permission(self, request):
        return request.user.has_perm("billing.void_invoice")

    def has_record_payment_permission(self, request):
        return request.user.has_perm("billing.record_payment")

    def has_credit_permission(self, request):
        return request.user.has_perm("billing.add_creditnote")

    def has_decide_reconciliation_permission(self, request):
        return request.user.has_perm("billing.decide_reconciliation")

    # -- display --

    @admin.display(description="number 发票号码", ordering="number")
    def number_display(self, obj):
        return obj.number or "Draft 草稿"

    @admin.display(description="status 状态", ordering="status")
    def status_badge(self, obj):
        if obj.is_overdue(_today()):
            return format_html('<b style="color:{}">{}</b>', "#c62828", "Overdue 已逾期")
        return format_html(
            '<b style="color:{}">{}</b>', STATUS_COLOURS.get(obj.status, "#000"), obj.get_status_display()
        )

    @admin.display(description="amount due 应付金额")
    def amount_due_display(self, obj):
        return obj.amount_due

    @admin.display(description="total in words 价税合计（大写）")
    def total_in_words(self, obj):
        return amount_in_words(obj.total_amount)

    @admin.display(description="fapiao data 开票信息")
    def fapiao_table(self, obj):
        data = fapiao_data(obj)
        buyer, seller = data["buyer"], data["seller"]
        rows = [
            ("名称 Name", buyer["name"], seller["name"]),
            ("统一社会信用代码 Tax id", buyer["tax_id"], seller["tax_id"]),
            ("地址、电话 Address, phone", buyer["address_phone"], seller["address_phone"]),
            ("开户行及账号 Bank, account", buyer["bank_account"], seller["bank_account"]),
        ]
        source = "snapshot at issue 开具时快照" if obj.fapiao else "live data 实时数据 (draft 草稿)"
        return format_html(
            "<table><tr><th></th><th>购买方 Buyer</th><th>销售方 Seller</th></tr>{}</table><p>{}</p>",
            format_html_join("", "<tr><td>{}</td><td>{}</td><td>{}</td></tr>", rows),
            source,
        )

    # -- actions --

    @admin.action(description="Issue selected drafts 开具所选草稿", permissions=["issue"])
    def issue_selected(self, request, queryset):
        """A confirmation page first (count and total per currency; the reason when a period has
        not ended); the drafts are issued only when it is submitted."""
        now = timezone.now()
        drafts = list(
            queryset.filter(status=InvoiceStatus.DRAFT)
            .select_related("customer")
            .order_by("customer__code", "currency")
        )
        skipped = queryset.exclude(status=InvoiceStatus.DRAFT).count()
        early_periods = sorted({d.period for d in drafts if not period_has_ended(period=d.period, now=now)})
        form = EarlyIssueForm(request.POST if "apply" in request.POST else None) if early_periods else None
        if "apply" in request.POST and (form is None or form.is_valid()):
            reason = form.cleaned_data["early_reason"] if form else ""
            issued = []
            for invoice in drafts:
                try:
                    issued.append(
                        invoice_issue(invoice=invoice, actor=request.user, now=now, early_reason=reason)
                    )
                except DomainError as exc:
                    self.message_user(request, f"{invoice}: {exc.message}", messages.ERROR)
            if issued:
                self.message_user(
                    request,
                    f"Issued {len(issued)} invoice(s): {', '.join(i.number for i in issued)}.",
                    messages.SUCCESS,
                )
            return None
        totals: dict[str, Decimal] = {}
        for draft in drafts:
            totals[draft.currency] = totals.get(draft.currency, ZERO) + draft.total_amount
        context = {
            **self.admin_site.each_context(request),
            "title": "Issue invoices 开具发票",
            "opts": self.opts,
            "drafts": drafts,
            "totals": sorted(totals.items()),
            "skipped": skipped,
            "early_periods": early_periods,
            "form": form,
            "action": "issue_selected",
            "selected": queryset.values_list("pk", flat=True),
            "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME,
        }
        return TemplateResponse(request, "admin/billing/invoice/issue_selected.html", context)

    @admin.action(description="Void selected invoices 作废所选发票", permissions=["void"])
    def void_selected(self, request, queryset):
        form = VoidForm(request.POST if "apply" in request.POST else None)
        if form.is_valid():
            voided = 0
            for invoice in queryset:
                try:
                    invoice_void(
                        invoice=invoice,
                        actor=request.user,
                        reason=form.cleaned_data["reason"],
                        now=timezone.now(),
                    )
                    voided += 1
                except DomainError as exc:
                    self.message_user(request, f"{invoice}: {exc.message}", messages.ERROR)
            if voided:
                self.message_user(request, f"Voided {voided} invoice(s).", messages.SUCCESS)
            return None
        context = {
            **self.admin_site.each_context(request),
            "title": "Void invoices 作废发票",
            "opts": self.opts,
            "invoices": queryset.select_related("customer"),
            "form": form,
            "action": "void_selected",
            "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME,
        }
        return TemplateResponse(request, "admin/billing/invoice/void_selected.html", context)

    # -- buttons of the change page --

    def get_urls(self):
        view = self.admin_site.admin_view
        return [
            path("<int:pk>/pdf/", view(self.pdf_view), name="billing_invoice_pdf"),
            path("<int:pk>/issue/", view(require_POST(self.issue_view)), name="billing_invoice_issue"),
            path("<int:pk>/void/", view(self.void_view), name="billing_invoice_void"),
            path(
                "<int:pk>/reconciliation/<str:decision>/",
                view(require_POST(self.reconciliation_view)),
                name="billing_invoice_reconciliation",
            ),
            path("<int:pk>/credit-note/", view(self.credit_note_view), name="billing_invoice_credit_note"),
            path("preview/<int:customer_pk>/", view(self.preview_view), name="billing_invoice_preview"),
            *super().get_urls(),
        ]

    def change_view(self, request, object_id, form_url="", extra_context=None):
        extra = {
            "can_issue": self.has_issue_permission(request),
            "can_void": self.has_void_permission(request),
            "can_credit": self.has_credit_permission(request),
            "can_record_payment": self.has_record_payment_permission(request),
            "can_decide_reconciliation": self.has_decide_reconciliation_permission(request),
            "reconciliation_choices": [
                (d.value, d.label)
                for d in (
                    ReconciliationDecision.AS_REPORTED,
                    ReconciliationDecision.OBSERVED,
                    ReconciliationDecision.HOLD,
                )
            ],
            **(extra_context or {}),
        }
        return super().change_view(request, object_id, form_url, extra_context=extra)

    def _invoice(self, request, pk, allowed: bool = True) -> Invoice:
        if not (allowed and self.has_view_permission(request)):
            raise PermissionDenied
        return get_object_or_404(Invoice.objects.select_related("customer"), pk=pk)

    def _back(self, invoice: Invoice) -> HttpResponseRedirect:
        return HttpResponseRedirect(reverse("admin:billing_invoice_change", args=[invoice.pk]))

    def pdf_view(self, request, pk):
        if not self.has_view_permission(request):
            raise PermissionDenied
        invoice = get_object_or_404(selectors.invoice_list(user=request.user), pk=pk)
        return _pdf_response(invoice_pdf(invoice), f"{invoice.number or f'draft-{invoice.pk}'}.pdf")

    def issue_view(self, request, pk):
        """Issue a draft; before its period has ended, a page asks for the reason first."""
        invoice = self._invoice(request, pk, self.has_issue_permission(request))
        now = timezone.now()
        early_reason = ""
        if invoice.status == InvoiceStatus.DRAFT and not period_has_ended(period=invoice.period, now=now):
            form = EarlyIssueForm(request.POST if "early_reason" in request.POST else None)
            if not form.is_valid():
                return self._form_page(request, invoice, form, "Issue early 提前开具", "Issue early 提前开具")
            early_reason = form.cleaned_data["early_reason"]
        try:
            invoice = invoice_issue(invoice=invoice, actor=request.user, now=now, early_reason=early_reason)
        except DomainError as exc:
            self.message_user(request, exc.message, messages.ERROR)
        else:
            self.message_user(request, f"Issued {invoice.number}.", messages.SUCCESS)
        return self._back(invoice)

    def reconciliation_view(self, request, pk, decision):
        """One click on a flagged draft: bill as reported, bill the observed hours, or hold."""
        invoice = self._invoice(request, pk, self.has_decide_reconciliation_permission(request))
        try:
            invoice = invoice_reconciliation_decide(
                invoice=invoice, decision=decision, actor=request.user, now=timezone.now()
            )
        except DomainError as exc:
            self.message_user(request, exc.message, messages.ERROR)
        else:
            label = ReconciliationDecision(decision).label
            self.message_user(
                request,
                f"{invoice}: {label} — total {invoice.total_amount} {invoice.currency}.",
                messages.SUCCESS,
            )
        return self._back(invoice)

    def _form_page(self, request, invoice, form, title, submit):
        context = {
            **self.admin_site.each_context(request),
            "title": f"{title} · {invoice}",
            "opts": self.opts,
            "original": invoice,
            "invoice": invoice,
            "form": form,
            "submit": submit,
        }
        return TemplateResponse(request, "admin/billing/invoice/action_form.html", context)

    def void_view(self, request, pk):
        invoice = self._invoice(request, pk, self.has_void_permission(request))
        form = VoidForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            try:
                invoice_void(
                    invoice=invoice,
                    actor=request.user,
                    reason=form.cleaned_data["reason"],
                    now=timezone.now(),
                )
            except DomainError as exc:
                form.add_error(None, exc.message)
            else:
                self.message_user(request, f"Voided {invoice}.", messages.SUCCESS)
                return self._back(invoice)
        return self._form_page(request, invoice, form, "Void 作废", "Void invoice 作废发票")

    def credit_note_view(self, request, pk):
        invoice = self._invoice(request, pk, self.has_credit_permission(request))
        form = CreditNoteForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            try:
                note = credit_note_create(
                    invoice=invoice,
                    actor=request.user,
                    reason=form.cleaned_data["reason"],
                    amount=form.cleaned_data["amount"],
                    now=timezone.now(),
                )
            except DomainError as exc:
                form.add_error(None, exc.message)
            else:
                self.message_user(
                    request, f"Credit note {note.number} of {note.total_amount} issued.", messages.SUCCESS
                )
                return self._back(invoice)
        return self._form_page(request, invoice, form, "Credit note 红字发票", "Issue credit note 开具红字")

    def preview_view(self, request, customer_pk):
        """The customer's running month ("this month so far"), computed and not saved."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        customer = get_object_or_404(Customer, pk=customer_pk)
        now = timezone.now()
        context = {
            **self.admin_site.each_context(request),
            "title": f"Invoice preview 账单预览 · {customer}",
            "opts": self.opts,
            "customer": customer,
            "previews": invoice_preview(customer=customer, as_of=now),
            "as_of": now,
        }
        return TemplateResponse(request, "admin/billing/invoice/preview.html", context)


class CreditNoteLineInline(ReadOnlyInline):
    model = CreditNoteLine
    fields = ("invoice_line", "description", "tax_rate", "net_amount", "tax_amount", "gross_amount")

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("invoice_line")


@admin.register(CreditNote)
class CreditNoteAdmin(ReadOnlyAdminMixin, GuardedAdmin):
    """Credit notes are issued from their invoice's page and never change."""

    list_display = (
        "number",
        "invoice",
        "customer",
        "total_amount",
        "reason",
        "issued_at",
        "issued_by",
        "pdf_link",
    )
    list_select_related = ("invoice__customer", "issued_by")
    search_fields = ("number", "invoice__number", "invoice__customer__code", "invoice__customer__name")
    list_filter = ("invoice__currency",)
    fields = (
        "number",
        "invoice",
        "reason",
        "net_amount",
        "tax_amount",
        "total_amount",
        "issued_at",
        "issued_by",
        "pdf_link",
    )
    readonly_fields = fields
    inlines = [CreditNoteLineInline]

    @admin.display(description="customer 客户", ordering="invoice__customer__code")
    def customer(self, obj):
        return obj.invoice.customer

    @admin.display(description="PDF")
    def pdf_link(self, obj):
        return format_html('<a href="{}">PDF</a>', reverse("admin:billing_creditnote_pdf", args=[obj.pk]))

    def get_urls(self):
        view = self.admin_site.admin_view
        return [
            path("<int:pk>/pdf/", view(self.pdf_view), name="billing_creditnote_pdf"),
            *super().get_urls(),
        ]

    def pdf_view(self, request, pk):
        if not (self.has_view_permission(request) or request.user.has_perm("billing.view_invoice")):
            raise PermissionDenied
        note = get_object_or_404(selectors.credit_note_list(user=request.user), pk=pk)
        return _pdf_response(credit_note_pdf(note), f"{note.number}.pdf")


@admin.register(Payment)
class PaymentAdmin(GuardedAdmin):
    """Payments as recorded: bank transfers from the invoice page, Stripe by webhook, vouchers at issue."""

    list_display = (
        "invoice",
        "customer",
        "method",
        "amount",
        "currency",
        "reference",
        "received_at",
        "recorded_by",
    )
    list_filter = ("method", "currency")
    search_fields = ("reference", "external_id", "invoice__number", "invoice__customer__code")
    list_select_related = ("invoice__customer", "recorded_by")
    fields = (
        "invoice",
        "method",
        "amount",
        "currency",
        "reference",
        "external_id",
        "received_at",
        "recorded_by",
    )
    readonly_fields = fields
    date_hierarchy = "received_at"

    def has_add_permission(self, request):
        return False  # record a bank transfer on the invoice's page

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description="customer 客户", ordering="invoice__customer__code")
    def customer(self, obj):
        return obj.invoice.customer


RUN_COLOURS = {
    BillingRunStatus.QUEUED: "#777",
    BillingRunStatus.RUNNING: "#1565c0",
    BillingRunStatus.DONE: "#2e7d32",
    BillingRunStatus.DONE_WITH_ERRORS: "#b8860b",
    BillingRunStatus.FAILED: "#c62828",
}


@admin.register(BillingRun)
class BillingRunAdmin(GuardedAdmin):
    """Runs are started here ("Run billing for period") and watched; they are never edited."""

    list_display = (
        "__str__",
        "period",
        "customer",
        "status_badge",
        "progress_bar",
        "customers",
        "invoices_created",
        "invoices_refreshed",
        "invoices_unchanged",
        "error_count",
        "requested_by",
        "created_at",
        "finished_at",
    )
    list_filter = ("status", "period")
    search_fields = ("period", "customer__code")
    list_select_related = ("customer", "requested_by")
    fields = (
        "period",
        "customer",
        "status_badge",
        "progress_bar",
        "customers",
        "invoices_created",
        "invoices_refreshed",
        "invoices_unchanged",
        "changes_table",
        "error_table",
        "as_of",
        "requested_by",
        "created_at",
        "started_at",
        "finished_at",
        "invoices_link",
    )
    readonly_fields = fields
    change_list_template = "admin/billing/billingrun/change_list.html"
    change_form_template = "admin/billing/billingrun/change_form.html"

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description="status 状态", ordering="status")
    def status_badge(self, obj):
        return format_html(
            '<b style="color:{}">{}</b>', RUN_COLOURS.get(obj.status, "#000"), obj.get_status_display()
        )

    @admin.display(description="progress 进度")
    def progress_bar(self, obj):
        return format_html(
            '<progress value="{}" max="100" title="{}%">{}%</progress> {}%',
            obj.progress_percent,
            obj.progress_percent,
            obj.progress_percent,
            obj.progress_percent,
        )

    @admin.display(description="customers 客户")
    def customers(self, obj):
        return f"{obj.customers_done}/{obj.customers_total}"

    @admin.display(description="errors 错误")
    def error_count(self, obj):
        return len(obj.errors or {})

    @admin.display(description="drafts changed since the last run 与上次运行相比变化的草稿")
    def changes_table(self, obj):
        """Per draft this run wrote: its total before (— when new) and after (— when removed)."""
        if not obj.draft_changes:
            return "none: every draft is as the last run left it 无变化" if obj.finished_at else "—"

        def difference(before, after) -> str:
            if before is None:
                return "new 新建"
            if after is None:
                return "removed 删除"
            return f"{Decimal(after) - Decimal(before):+}"

        rows = [
            (draft, before or "—", after or "—", difference(before, after))
            for draft, change in sorted(obj.draft_changes.items())
            for before, after in [(change["before"], change["after"])]
        ]
        return format_html(
            "<table><tr><th>draft 草稿</th><th>before 之前</th><th>after 之后</th><th>change 变化</th></tr>"
            "{}</table>",
            format_html_join("", "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>", rows),
        )

    @admin.display(description="errors by customer 各客户错误")
    def error_table(self, obj):
        if not obj.errors:
            return "—"
        return format_html(
            "<table><tr><th>customer 客户</th><th>error 错误</th></tr>{}</table>",
            format_html_join("", "<tr><td>{}</td><td>{}</td></tr>", sorted(obj.errors.items())),
        )

    @admin.display(description="invoices 发票")
    def invoices_link(self, obj):
        url = reverse("admin:billing_invoice_changelist") + f"?period={obj.period}"
        if obj.customer_id:
            url += f"&customer__id__exact={obj.customer_id}"
        return format_html('<a href="{}">Invoices of {} 本期发票</a>', url, obj.period)

    def add_view(self, request, form_url="", extra_context=None):
        """ "Run billing for period": create the run and queue it; then watch it on its page."""
        if not self.has_add_permission(request):
            raise PermissionDenied
        form = BillingRunForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            try:
                run = billing_run_request(
                    period=form.cleaned_data["period"],
                    customer=form.cleaned_data["customer"],
                    actor=request.user,
                )
            except DomainError as exc:
                form.add_error("period" if "period" in exc.fields else None, exc.message)
            else:
                self.message_user(request, f"{run} started: {run.get_status_display()}.", messages.SUCCESS)
                return HttpResponseRedirect(reverse("admin:billing_billingrun_change", args=[run.pk]))
        context = {
            **self.admin_site.each_context(request),
            "title": "Run billing for period 运行计费",
            "opts": self.opts,
            "form": form,
        }
        return TemplateResponse(request, "admin/billing/billingrun/run_form.html", context)
