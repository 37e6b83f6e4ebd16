"""Contracts admin: the account manager's home. Drafts are edited here; everything else is an action."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Count
from django.http import Http404, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.http import urlencode

from apps.core.admin import GuardedAdmin, GuardedHistoryAdmin
from apps.core.admin_errors import changeform_with_service_errors, form_with_service_errors, refuse
from apps.core.errors import DomainError
from apps.core.money import decimal_text
from apps.core.periods import local_range_text
from apps.providers.models import HubRegion, Site

from . import selectors, services
from .admin_drafting import LINE_FIELDS, DraftingAdminMixin
from .models import (
    Allocation,
    Contract,
    ContractLine,
    LineTier,
    PriceList,
    PriceListItem,
    SlaCreditTier,
    SlaPolicy,
    TaxCategory,
)
from .quote_pdf import quote_pdf, snapshot_pdf
from .quote_services import (
    QUOTABLE,
    quote_mark_accepted,
    quote_mark_sent,
    quote_may_manage,
    quote_save,
    quote_version_get,
    quote_versions,
)
from .quotes import contract_quote


@admin.register(TaxCategory)
class TaxCategoryAdmin(GuardedAdmin):
    list_display = ("code", "name", "rate", "fapiao_classification")
    search_fields = ("code", "name")


class SlaCreditTierInline(admin.TabularInline):
    model = SlaCreditTier
    extra = 0
    fields = ("below_percent", "credit_percent")


@admin.register(SlaPolicy)
class SlaPolicyAdmin(GuardedAdmin):
    """SLA policies: a monthly availability target and credit tiers (docs/hardware-truth.md#sla-credits-and-efficiency)."""

    list_display = ("name", "target_percent")
    search_fields = ("name",)
    inlines = [SlaCreditTierInline]


class PriceListItemInline(admin.TabularInline):
    model = PriceListItem
    extra = 0
    fields = ("gpu_model", "resource", "term", "list_unit_price", "term_discount_percent", "tax_category")
    autocomplete_fields = ["gpu_model"]


@admin.register(PriceList)
class PriceListAdmin(GuardedHistoryAdmin):
    list_display = ("code", "name", "currency", "prices_include_tax", "is_default", "valid_from", "valid_to")
    list_filter = ("currency", "is_default", "prices_include_tax")
    search_fields = ("code", "name")
    inlines = [PriceListItemInline]


@admin.register(PriceListItem)
class PriceListItemAdmin(GuardedHistoryAdmin):
    list_display = (
        "price_list",
        "gpu_model",
        "resource",
        "term",
        "list_unit_price",
        "term_discount_percent",
        "tax_category",
    )
    list_filter = ("price_list", "resource", "term", "gpu_model", "tax_category")
    search_fields = ("gpu_model__name", "price_list__code")
    list_select_related = ("price_list", "gpu_model", "tax_category")


# --- contracts -------------------------------------------------------------------------------


class DraftOnlyInlineMixin:
    """Inlines of a contract are editable only while it is a draft."""

    def _contract_of(self, obj):
        if obj is None:
            return None
        return obj if isinstance(obj, Contract) else obj.contract

    def has_change_permission(self, request, obj=None):
        contract = self._contract_of(obj)
        return super().has_change_permission(request, obj) and (contract is None or contract.is_editable)

    def has_add_permission(self, request, obj=None):
        contract = self._contract_of(obj)
        return super().has_add_permission(request, obj) and (contract is None or contract.is_editable)

    def has_delete_permission(self, request, obj=None):
        contract = self._contract_of(obj)
        return super().has_delete_permission(request, obj) and (contract is None or contract.is_editable)


class ContractLineForm(forms.ModelForm):
    class Meta:
        model = ContractLine
        fields = ("position", *LINE_FIELDS, "usage_source", "observed_busy_threshold_percent", "sla")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # Empty term discount and tax category take the price list's (see services.line_save).
        # (A line of a contract past drafting shows them read-only: then they are not form fields.)
        for name in ("term_discount_percent", "tax_category", "list_unit_price"):
            if name in self.fields:
                self.fields[name].required = False
        if "list_unit_price" in self.fields:
            self.fields["list_unit_price"].help_text = "Empty: the price list's."
        if "position" in self.fields and not self.instance.pk:
            # A new line takes the next position when it is saved (services.line_save).
            self.fields["position"].required = False
            self.initial["position"] = None  # not the model's default 1
            self.fields["position"].help_text = "Empty: after the last line."

    def clean(self):
        data = super().clean()
        if data.get("list_unit_price") is None and data.get("gpu_model") and not self.errors:
            contract = self.instance.contract if self.instance.contract_id else None
            item = services.price_list_item_get(
                price_list=contract.price_list if contract else None,
                gpu_model=data["gpu_model"],
                resource=data.get("resource"),
                term=data.get("term"),
            )
            if item is None:
                raise ValidationError(
                    {"list_unit_price": "No list price for this model, resource and term: give one."}
                )
        return data


class ContractAdminForm(forms.ModelForm):
    class Meta:
        model = Contract
        fields = (
            "customer",
            "account_manager",
            "price_list",
            "currency",
            "prices_include_tax",
            "start_at",
            "end_at",
            "minimum_monthly_amount",
            "notes",
        )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if "account_manager" in self.fields:
            self.fields["account_manager"].required = False
            self.fields["account_manager"].help_text = "Empty: you."


@admin.register(Contract)
class ContractAdmin(DraftingAdminMixin, GuardedHistoryAdmin):
    form = ContractAdminForm
    row_scoped = True
    list_display = (
        "number",
        "version",
        "customer",
        "account_manager",
        "status_badge",
        "start_at",
        "end_at",
        "line_count",
    )
    list_filter = (
        "status",
        "account_manager",
        "lines__gpu_model",
        "lines__term",
        "lines__resource",
        "currency",
    )
    search_fields = (
        "number",
        "customer__code",
        "customer__name",
        "lines__allocations__card__uuid",
        "lines__allocations__server__serial",
    )
    list_select_related = ("customer", "account_manager")
    autocomplete_fields = ["customer", "account_manager"]
    # Lines are drafted on their own screen (admin_drafting); the contract page lists them.
    date_hierarchy = "start_at"
    actions = [
        "submit_selected",
        "approve_selected",
        "reject_selected",
        "activate_selected",
        "suspend_selected",
        "resume_selected",
        "terminate_selected",
    ]
    readonly_fields = (
        "number",
        "version",
        "status",
        "approval_rule",
        "approved_by",
        "approved_at",
        "activated_at",
        "ended_at",
        "end_reason",
        "line_table",
        "allocation_table",
    )
    change_form_template = "admin/contracts/contract/change_form.html"

    # -- visibility and editability --

    def get_queryset(self, request):
        return selectors.contract_list(user=request.user).annotate(_lines=Count("lines"))

    def get_readonly_fields(self, request, obj=None):
        if obj is not None and not obj.is_editable:
            return (*ContractAdminForm.Meta.fields, *self.readonly_fields)
        if not request.user.has_perm("contracts.add_contract"):
            return (*ContractAdminForm.Meta.fields, *self.readonly_fields)
        return self.readonly_fields

    def get_fields(self, request, obj=None):
        if obj is None:  # a new draft: its header only; lines and the rest come once it is saved
            return [*ContractAdminForm.Meta.fields, "line_table"]
        return super().get_fields(request, obj)

    def has_change_permission(self, request, obj=None):
        if not super().has_change_permission(request, obj):
            return False
        if obj is not None and obj.is_editable and not request.user.is_superuser:
            # Drafts are the account managers' own work; finance and sales managers look, not edit.
            return request.user.has_perm("contracts.add_contract")
        return True

    def has_delete_permission(self, request, obj=None):
        return super().has_delete_permission(request, obj) and (obj is None or obj.is_editable)

    def has_approve_permission(self, request):
        return request.user.has_perm("contracts.approve_contract")

    def has_activate_permission(self, request):
        return request.user.has_perm("contracts.activate_contract")

    def has_terminate_permission(self, request):
        return request.user.has_perm("contracts.terminate_contract")

    # -- saving goes through the services --

    def save_model(self, request, obj, form, change):
        try:
            services.contract_save_draft(contract=obj, actor=request.user)
        except DomainError as exc:
            refuse(exc)  # the form comes back with the service's message (apps.core.admin_errors)

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        return changeform_with_service_errors(
            super().changeform_view, request, object_id, form_url, extra_context
        )

    def get_form(self, request, obj=None, change=False, **kwargs):
        return form_with_service_errors(request, super().get_form(request, obj, change=change, **kwargs))

    def save_formset(self, request, form, formset, change):
        if formset.model is not ContractLine:
            return super().save_formset(request, form, formset, change)
        lines = formset.save(commit=False)
        for obj in formset.deleted_objects:
            services.line_delete(line=obj, actor=request.user)
        for line in lines:
            services.line_save(line=line, actor=request.user)
        formset.save_m2m()

    def delete_model(self, request, obj):
        services.contract_delete(contract=obj, actor=request.user)

    def response_add(self, request, obj, post_url_continue=None):
        """A new draft goes straight to its lines screen (unless the user chose another button)."""
        if "_addanother" in request.POST or "_popup" in request.POST:
            return super().response_add(request, obj, post_url_continue)
        self.message_user(
            request, f"Drafted {obj}; now add its lines. 已创建草稿，请添加合同行。", messages.SUCCESS
        )
        return HttpResponseRedirect(reverse("admin:contracts_contract_lines", args=[obj.pk]))

    # -- display --

    @admin.display(description="status 状态", ordering="status")
    def status_badge(self, obj):
        colours = {
            "draft": "#777",
            "pending_approval": "#b8860b",
            "active": "#2e7d32",
            "suspended": "#c62828",
            "terminated": "#444",
            "expired": "#444",
        }
        return format_html(
            '<b style="color:{}">{}</b>', colours.get(obj.status, "#000"), obj.get_status_display()
        )

    @admin.display(description="approval 审批")
    def approval_rule(self, obj):
        if obj is None or obj.pk is None:
            return "—"
        _needed, why = services.contract_approval_rule(contract=obj)
        return why

    @admin.display(description="lines", ordering="_lines")
    def line_count(self, obj):
        return obj._lines

    @admin.display(description="lines 合同行")
    def line_table(self, obj):
        if obj is None or obj.pk is None:
            return "Save the contract, then add its lines on the lines screen. 保存合同后添加合同行。"
        lines = obj.lines.select_related("gpu_model").order_by("position")
        if not lines:
            return format_html(
                '<a href="{}">Add lines 添加合同行</a>',
                reverse("admin:contracts_contract_lines", args=[obj.pk]),
            )
        zone = settings.BILLING_TIME_ZONE
        body = format_html_join(
            "",
            '<tr><td><a href="{}">#{}</a></td><td>{}</td><td>{}</td><td class="num">{}</td><td>{}</td>'
            '<td class="num">{}</td><td class="num">{}%</td><td class="num">{}%</td><td>{}</td></tr>',
            (
                (
                    reverse("admin:contracts_contractline_change", args=[line.pk]),
                    line.position,
                    line.get_resource_display(),
                    line.gpu_model,
                    decimal_text(line.quantity),
                    line.get_term_display()
                    + (f" · {line.get_yearly_billing_display()}" if line.term == "yearly" else ""),
                    f"{line.list_unit_price:,.2f}",
                    decimal_text(line.term_discount_percent),
                    decimal_text(line.discount_percent),
                    local_range_text(line.start_at or obj.start_at, line.end_at or obj.end_at, zone)
                    if line.start_at or line.end_at
                    else "contract's 同合同",
                )
                for line in lines
            ),
        )
        return format_html(
            '<table id="contract-lines"><tr><th>#</th><th>resource</th><th>GPU</th><th>qty</th><th>term</th>'
            "<th>list price</th><th>term disc.</th><th>discount</th><th>dates</th></tr>{}</table>"
            '<p><a class="button" href="{}">{}</a></p>',
            body,
            reverse("admin:contracts_contract_lines", args=[obj.pk]),
            "Edit lines 编辑合同行" if obj.is_editable else "Lines and estimates 合同行与估算",
        )

    @admin.display(description="allocations 资源分配")
    def allocation_table(self, obj):
        rows = Allocation.objects.filter(line__contract=obj).select_related("line", "card", "server__site")
        if not rows:
            return "—"
        body = format_html_join(
            "",
            "<tr><td>#{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            (
                (
                    a.line.position,
                    a.card.uuid if a.card_id else "whole server 整机",
                    a.server.serial,
                    a.server.site.get_hub_display(),
                    local_range_text(a.start_at, a.end_at, settings.BILLING_TIME_ZONE),
                    "firm 已锁定" if a.firm else "tentative 暂定",
                )
                for a in rows
            ),
        )
        return format_html(
            "<table><tr><th>line</th><th>card</th><th>server</th><th>hub</th><th>interval</th><th>state</th></tr>"
            "{}</table>",
            body,
        )

    # -- actions: each calls one service and reports --

    def _run(self, request, queryset, service, verb, **kwargs):
        done = 0
        for contract in queryset:
            try:
                service(contract=contract, actor=request.user, **kwargs)
                done += 1
            except DomainError as exc:
                self.message_user(request, f"{contract}: {exc.message}", messages.ERROR)
        if done:
            self.message_user(request, f"{verb} {done} contract(s).", messages.SUCCESS)

    @admin.action(description="Submit for approval 提交审批", permissions=["change"])
    def submit_selected(self, request, queryset):
        self._run(request, queryset, services.contract_submit, "Submitted", now=timezone.now())

    @admin.action(description="Approve discounts 审批通过", permissions=["approve"])
    def approve_selected(self, request, queryset):
        self._run(request, queryset, services.contract_approve, "Approved", now=timezone.now())

    @admin.action(description="Reject with a reason 驳回", permissions=["approve"])
    def reject_selected(self, request, queryset):
        """Ask for the reason on a confirmation page, then return each contract to draft."""
        reason = request.POST.get("reason", "").strip()
        if request.POST.get("confirm") and reason:
            self._run(
                request, queryset, services.contract_reject, "Rejected", now=timezone.now(), reason=reason
            )
            return None
        if request.POST.get("confirm"):
            self.message_user(request, "Give a reason for the rejection.", messages.ERROR)
        context = {
            **self.admin_site.each_context(request),
            "title": "Reject contracts 驳回合同",
            "opts": self.model._meta,
            "contracts": list(queryset),
            "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME,
            "reason": reason,
        }
        return TemplateResponse(request, "admin/contracts/contract/reject.html", context)

    def approvals_view(self, request):
        """The sales manager's queue: discount, value and margin; approve or reject with a reason."""
        if not self.has_approve_permission(request):
            raise PermissionDenied
        if request.method == "POST":
            contract = get_object_or_404(self.get_queryset(request), pk=request.POST.get("contract") or 0)
            try:
                if request.POST.get("decision") == "approve":
                    services.contract_approve(contract=contract, actor=request.user, now=timezone.now())
                    self.message_user(request, f"Approved {contract}.", messages.SUCCESS)
                else:
                    services.contract_reject(
                        contract=contract,
                        actor=request.user,
                        now=timezone.now(),
                        reason=request.POST.get("reason", ""),
                    )
                    self.message_user(request, f"Rejected {contract}: back to draft.", messages.SUCCESS)
            except DomainError as exc:
                self.message_user(request, f"{contract}: {exc.message}", messages.ERROR)
            return HttpResponseRedirect(request.path)
        context = {
            **self.admin_site.each_context(request),
            "title": "Approval queue 待审批",
            "opts": self.model._meta,
            "rows": selectors.approval_queue(user=request.user),
        }
        return TemplateResponse(request, "admin/contracts/contract/approvals.html", context)

    @admin.action(description="Activate 生效", permissions=["activate"])
    def activate_selected(self, request, queryset):
        self._run(request, queryset, services.contract_activate, "Activated", now=timezone.now())

    @admin.action(description="Suspend 暂停", permissions=["activate"])
    def suspend_selected(self, request, queryset):
        self._run(request, queryset, services.contract_suspend, "Suspended")

    @admin.action(description="Resume 恢复", permissions=["activate"])
    def resume_selected(self, request, queryset):
        self._run(request, queryset, services.contract_resume, "Resumed")

    @admin.action(description="Terminate now 立即终止", permissions=["terminate"])
    def terminate_selected(self, request, queryset):
        self._run(request, queryset, services.contract_terminate, "Terminated", now=timezone.now())

    # -- capacity finder and quote preview --

    def get_urls(self):
        view = self.admin_site.admin_view
        return [
            path("approvals/", view(self.approvals_view), name="contracts_contract_approvals"),
            *self.drafting_urls(),
            path("<int:pk>/capacity/", view(self.capacity_view), name="contracts_contract_capacity"),
            path("<int:pk>/quote/", view(self.quote_view), name="contracts_contract_quote"),
            path("<int:pk>/quote.pdf", view(self.quote_pdf_view), name="contracts_contract_quote_pdf"),
            path(
                "<int:pk>/quote/v<int:version>.pdf",
                view(self.quote_version_pdf_view),
                name="contracts_contract_quote_version_pdf",
            ),
            *super().get_urls(),
        ]

    def _get_visible(self, request, pk) -> Contract:
        contract = get_object_or_404(self.get_queryset(request), pk=pk)
        if not self.has_view_or_change_permission(request, contract):
            raise PermissionDenied
        return contract

    def capacity_view(self, request, pk):
        contract = self._get_visible(request, pk)
        lines = list(contract.lines.select_related("gpu_model", "tax_category"))
        # The allocation POST carries the search's filters (line, hubs, sites) and finds the same
        # options again, so "allocate the best" never reaches past the filters the user saw.
        posted = request.method == "POST"
        form = CapacityForm(request.POST if posted else request.GET or None, lines=lines)
        line = None
        options = []
        if form.is_valid():
            line = form.cleaned_data["line"]
            options = form.find_capacity()
        elif len(lines) == 1 and not request.GET and not posted:
            return HttpResponseRedirect(f"{request.path}?line={lines[0].pk}")
        if posted:
            if not (self.has_change_permission(request, contract) and contract.is_editable):
                raise PermissionDenied
            if line is None:
                raise Http404("No such line of this contract, or filters that are no longer valid.")
            chosen = set(request.POST.getlist("pick"))
            if "fill" not in request.POST:
                options = [o for o in options if o.label in chosen]
            try:
                created = services.allocation_fill(line=line, options=options, actor=request.user)
            except DomainError as exc:
                self.message_user(request, exc.message, messages.ERROR)
            else:
                self.message_user(
                    request,
                    f"Allocated {len(created)} to line {line.position}: "
                    + ", ".join(a.card.uuid if a.card_id else a.server.serial for a in created),
                    messages.SUCCESS,
                )
            return HttpResponseRedirect(f"{request.path}?{form.query()}")
        context = {
            **self.admin_site.each_context(request),
            "title": f"Capacity finder 资源查找 · {contract}",
            "opts": self.model._meta,
            "original": contract,
            "contract": contract,
            "form": form,
            "line": line,
            "options": options,
            "totals": selectors.capacity_totals(options),
            "derived_sources": sorted({o.cost_source for o in options if o.cost_derived}),
            "shortfall": services.line_shortfall(line=line) if line else None,
            "editable": contract.is_editable and self.has_change_permission(request, contract),
        }
        return TemplateResponse(request, "admin/contracts/contract/capacity.html", context)

    @staticmethod
    def _utilisation(data) -> Decimal:
        try:
            return Decimal(data.get("utilisation", "100"))
        except InvalidOperation:
            return Decimal(100)

    def _quote(self, request, pk, *, over_term: bool = False):
        contract = self._get_visible(request, pk)
        utilisation = self._utilisation(request.GET)
        return contract, contract_quote(
            contract=contract, utilisation_percent=utilisation, over_term=over_term
        )

    def quote_view(self, request, pk):
        """The live quote (month and term) with the saved versions; POST saves or marks a version."""
        if request.method == "POST":
            return self._quote_post(request, pk)
        contract, quote = self._quote(request, pk, over_term=True)
        versions = quote_versions(contract=contract)
        latest = versions[0] if versions else None
        context = {
            **self.admin_site.each_context(request),
            "title": f"Quote 报价 · {contract}",
            "opts": self.model._meta,
            "original": contract,
            "quote": quote,
            "contract": contract,
            "versions": versions,
            "latest": latest,
            "next_version": (latest.version + 1) if latest else 1,
            "may_manage": contract.status in QUOTABLE
            and quote_may_manage(contract=contract, user=request.user),
            "pdf_url": reverse("admin:contracts_contract_quote_pdf", args=[contract.pk]),
        }
        return TemplateResponse(request, "admin/contracts/contract/quote.html", context)

    def _quote_post(self, request, pk):
        contract = self._get_visible(request, pk)
        if not quote_may_manage(contract=contract, user=request.user):
            raise PermissionDenied
        utilisation = self._utilisation(request.POST)
        url = reverse("admin:contracts_contract_quote", args=[contract.pk])
        url = f"{url}?{urlencode({'utilisation': decimal_text(utilisation)})}"
        op = request.POST.get("op")
        try:
            version = int(request.POST["version"]) if request.POST.get("version") else None
        except ValueError:
            version = None
        now = timezone.now()
        try:
            if op == "save":
                saved = quote_save(
                    contract=contract, actor=request.user, now=now, utilisation_percent=utilisation
                )
                done = f"Saved quote version {saved.version} 已保存为第{saved.version}版"
            elif op == "sent":
                saved = quote_mark_sent(contract=contract, actor=request.user, now=now, version=version)
                done = f"Quote v{saved.version} marked sent 报价已标记为已发送"
            elif op == "accepted":
                saved = quote_mark_accepted(contract=contract, actor=request.user, now=now, version=version)
                done = f"Quote v{saved.version} marked accepted 报价已标记为已接受"
            else:
                self.message_user(request, "Unknown quote action 未知的报价操作", messages.ERROR)
                return HttpResponseRedirect(url)
        except DomainError as exc:
            self.message_user(request, exc.message, messages.ERROR)
        else:
            self.message_user(request, done, messages.SUCCESS)
        return HttpResponseRedirect(url)

    def quote_pdf_view(self, request, pk):
        contract, quote = self._quote(request, pk, over_term=True)
        response = HttpResponse(quote_pdf(quote, now=timezone.now()), content_type="application/pdf")
        response["Content-Disposition"] = f'inline; filename="quote-{contract.number}.pdf"'
        return response

    def quote_version_pdf_view(self, request, pk, version):
        """A saved version as PDF, drawn from its snapshot (never from the current draft)."""
        contract = self._get_visible(request, pk)
        saved = quote_version_get(contract=contract, version=version)
        if saved is None:
            raise Http404("No such quote version.")
        content = snapshot_pdf(
            saved.snapshot, terms=saved.terms, dated=saved.created_at, version=saved.version
        )
        response = HttpResponse(content, content_type="application/pdf")
        response["Content-Disposition"] = f'inline; filename="quote-{contract.number}-v{saved.version}.pdf"'
        return response


class CapacityForm(forms.Form):
    line = forms.ModelChoiceField(queryset=ContractLine.objects.none(), label="Line 合同行")
    hubs = forms.MultipleChoiceField(
        choices=HubRegion.choices,
        required=False,
        label="Preferred hubs 枢纽",
        widget=forms.CheckboxSelectMultiple,
    )
    sites = forms.ModelMultipleChoiceField(queryset=Site.objects.none(), required=False, label="Sites 机房")

    def __init__(self, *args, lines, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["line"].queryset = ContractLine.objects.filter(pk__in=[line.pk for line in lines])
        self.fields["line"].label_from_instance = lambda line: (
            f"#{line.position} {decimal_text(line.quantity)} × {line.gpu_model} {line.resource}/{line.term}"
        )
        models = {line.gpu_model_id for line in lines}
        self.fields["sites"].queryset = Site.objects.filter(servers__gpu_model_id__in=models).distinct()

    def find_capacity(self):
        """Free hardware for the chosen line within every filter of the form (a valid form)."""
        data = self.cleaned_data
        return selectors.capacity_find(
            line=data["line"],
            hubs=data["hubs"] or None,
            site_ids=[site.pk for site in data["sites"]] or None,
        )

    def query(self) -> str:
        """The search as a query string, to come back to it after allocating."""
        data = self.cleaned_data
        return urlencode(
            {"line": data["line"].pk, "hubs": data["hubs"], "sites": [site.pk for site in data["sites"]]},
            doseq=True,
        )


class AllocationForm(forms.ModelForm):
    class Meta:
        model = Allocation
        fields = ("card", "server", "start_at", "end_at")

    def clean(self):
        data = super().clean()
        line = self.instance.line if self.instance.line_id else getattr(self, "parent_line", None)
        if line is None or self.instance.pk:
            return data
        card, server = data.get("card"), data.get("server")
        start, end = services.line_interval(line=line)
        problem = services.allocation_problem(
            line=line,
            card=card,
            server=None if card else server,
            start_at=data.get("start_at") or start,
            end_at=data.get("end_at") or end,
        )
        if problem is not None:
            field = next(iter(problem.fields), None)
            raise ValidationError({field if field in self.fields else None: problem.message})
        return data


class AllocationInline(admin.TabularInline):
    model = Allocation
    form = AllocationForm
    extra = 0
    fields = ("card", "server", "start_at", "end_at", "firm")
    readonly_fields = ("firm",)
    autocomplete_fields = ["card", "server"]

    def get_formset(self, request, obj=None, **kwargs):
        formset = super().get_formset(request, obj, **kwargs)

        class BoundForm(formset.form):
            parent_line = obj

        formset.form = BoundForm
        return formset

    def has_change_permission(self, request, obj=None):
        return super().has_change_permission(request, obj) and (obj is None or obj.contract.is_editable)

    def has_add_permission(self, request, obj=None):
        return super().has_add_permission(request, obj) and (obj is None or obj.contract.is_editable)

    def has_delete_permission(self, request, obj=None):
        return super().has_delete_permission(request, obj) and (obj is None or obj.contract.is_editable)


class LineTierInline(DraftOnlyInlineMixin, admin.TabularInline):
    model = LineTier
    extra = 0

    def _contract_of(self, obj):
        return None if obj is None else obj.contract


@admin.register(ContractLine)
class ContractLineAdmin(GuardedHistoryAdmin):
    """A line's own page: its allocations and graduated tiers."""

    row_scoped = True

    list_display = (
        "__str__",
        "contract",
        "resource",
        "gpu_model",
        "quantity",
        "term",
        "list_unit_price",
        "discount_percent",
    )
    list_filter = ("resource", "term", "gpu_model", "contract__status")
    search_fields = ("contract__number", "contract__customer__code", "allocations__card__uuid")
    list_select_related = ("contract", "gpu_model")
    inlines = [AllocationInline, LineTierInline]
    form = ContractLineForm
    autocomplete_fields = ["gpu_model"]

    def get_queryset(self, request):
        visible = selectors.contract_list(user=request.user)
        return super().get_queryset(request).filter(contract__in=visible)

    def get_readonly_fields(self, request, obj=None):
        if obj is not None and not obj.contract.is_editable:
            return ContractLineForm.Meta.fields
        return ()

    def get_fields(self, request, obj=None):
        fields = super().get_fields(request, obj)
        if obj is not None and obj.term != "yearly":
            return [name for name in fields if name != "yearly_billing"]  # yearly lines only
        return fields

    def has_add_permission(self, request):
        return False  # lines are added on their contract's page

    def has_change_permission(self, request, obj=None):
        return super().has_change_permission(request, obj) and (obj is None or obj.contract.is_editable)

    def has_delete_permission(self, request, obj=None):
        return super().has_delete_permission(request, obj) and (obj is None or obj.contract.is_editable)

    def save_model(self, request, obj, form, change):
        services.line_save(line=obj, actor=request.user)

    def delete_model(self, request, obj):
        services.line_delete(line=obj, actor=request.user)

    def save_formset(self, request, form, formset, change):
        if formset.model is not Allocation:
            return super().save_formset(request, form, formset, change)
        allocations = formset.save(commit=False)
        for obj in formset.deleted_objects:
            services.allocation_remove(allocation=obj, actor=request.user)
        for allocation in allocations:
            if allocation.pk:
                continue
            try:
                services.allocation_add(
                    line=form.instance,
                    card=allocation.card,
                    server=None if allocation.card_id else allocation.server,
                    start_at=allocation.start_at,
                    end_at=allocation.end_at,
                    actor=request.user,
                )
            except DomainError as exc:
                self.message_user(request, exc.message, messages.ERROR)


@admin.register(Allocation)
class AllocationAdmin(GuardedAdmin):
    """Allocations of the contracts the user may see; added and removed on their line's page, or
    here (drafts only) through ``allocation_remove``."""

    row_scoped = True
    list_display = ("__str__", "server", "slot", "start_at", "end_at", "firm")
    list_filter = ("firm", "server__gpu_model", "server__provider")
    search_fields = ("card__uuid", "server__serial", "line__contract__number")
    list_select_related = ("line__contract", "card", "server")

    def get_queryset(self, request):
        visible = selectors.contract_list(user=request.user)
        return super().get_queryset(request).filter(line__contract__in=visible)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return super().has_delete_permission(request, obj) and (obj is None or obj.line.contract.is_editable)

    def delete_model(self, request, obj):
        services.allocation_remove(allocation=obj, actor=request.user)
