"""Provider settlement admin (docs/settlements.md#statements): statements with their lines,
confirm and pay actions, a page to build a period's drafts, and the margin report with a bar
chart drawn server-side (SVG)."""

from __future__ import annotations

from decimal import Decimal

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from apps.billing.invoicing.efficiency import contract_efficiency_list
from apps.billing.invoicing.reconciliation import provider_reconciliation_rate
from apps.billing.settlements import services as services
from apps.billing.settlements.models import SettlementLine, SettlementStatement
from apps.billing.settlements.selectors import settlement_lines_queryset
from apps.core.admin import GuardedAdmin
from apps.core.errors import DomainError
from apps.core.periods import Period
from apps.providers.models import Provider

PERIOD_FIELD = {"regex": r"^\d{4}-(0[1-9]|1[0-2])$", "max_length": 7}


class SettlementLineInline(admin.TabularInline):
    model = SettlementLine
    extra = 0
    max_num = 0
    can_delete = False
    fields = (
        "position",
        "kind",
        "description",
        "quantity",
        "unit",
        "cost_unit_price",
        "cost_amount",
        "revenue_net_amount",
        "margin_amount",
        "warning",
    )
    readonly_fields = fields

    def get_queryset(self, request):
        return settlement_lines_queryset()

    def has_add_permission(self, request, obj=None):
        return False


class BuildForm(forms.Form):
    period = forms.RegexField(label="Period 月份 (YYYY-MM)", **PERIOD_FIELD)
    provider = forms.ModelChoiceField(
        queryset=Provider.objects.all(), required=False, label="Provider 供应商", help_text="Empty: all."
    )


class MarginForm(forms.Form):
    period_from = forms.RegexField(label="From 起 (YYYY-MM)", **PERIOD_FIELD)
    period_to = forms.RegexField(label="To 止 (YYYY-MM)", required=False, **PERIOD_FIELD)
    group_by = forms.ChoiceField(
        choices=[
            ("provider", "Provider 供应商"),
            ("gpu_model", "GPU model 型号"),
            ("contract", "Contract 合同"),
            ("month", "Month 月份"),
        ],
        initial="provider",
        label="Group by 分组",
    )


def margin_chart(rows, *, width: int = 720) -> SafeString:
    """Horizontal bars per group: net revenue, provider cost, margin (negative margins in red)."""
    if not rows:
        return SafeString("")
    label_w, bar_h, gap = 200, 10, 14
    scale_w = width - label_w - 110
    top = max(max(r.revenue_net_amount, r.cost_amount, abs(r.margin_amount)) for r in rows) or Decimal(1)
    height = len(rows) * (3 * bar_h + gap) + 30

    def bar(y, value, colour):
        w = int(scale_w * abs(value) / top)
        return (label_w, y, max(w, 1), bar_h, colour, label_w + max(w, 1) + 4, y + bar_h - 1, f"{value:,.2f}")

    bars = []
    for index, row in enumerate(rows):
        y = 20 + index * (3 * bar_h + gap)
        bars.append(bar(y, row.revenue_net_amount, "#4a79b8"))
        bars.append(bar(y + bar_h, row.cost_amount, "#b0b0b0"))
        bars.append(bar(y + 2 * bar_h, row.margin_amount, "#2e7d32" if row.margin_amount >= 0 else "#c62828"))
    labels = format_html_join(
        "",
        '<text x="{}" y="{}" font-size="11" text-anchor="end">{}</text>',
        (
            (label_w - 6, 20 + i * (3 * bar_h + gap) + 2 * bar_h, f"{row.label} ({row.currency})"[:34])
            for i, row in enumerate(rows)
        ),
    )
    shapes = format_html_join(
        "",
        '<rect x="{}" y="{}" width="{}" height="{}" fill="{}"></rect>'
        '<text x="{}" y="{}" font-size="9">{}</text>',
        bars,
    )
    legend = format_html(
        '<rect x="{}" y="2" width="10" height="10" fill="#4a79b8"></rect><text x="{}" y="11" font-size="11">'
        "Net revenue 净收入</text>"
        '<rect x="{}" y="2" width="10" height="10" fill="#b0b0b0"></rect><text x="{}" y="11" font-size="11">'
        "Provider cost 成本</text>"
        '<rect x="{}" y="2" width="10" height="10" fill="#2e7d32"></rect><text x="{}" y="11" font-size="11">'
        "Margin 毛利</text>",
        label_w,
        label_w + 14,
        label_w + 140,
        label_w + 154,
        label_w + 270,
        label_w + 284,
    )
    return format_html(
        '<svg id="margin-chart" xmlns="http://www.w3.org/2000/svg" width="{}" height="{}" role="img" '
        'aria-label="Margin by group">{}{}{}</svg>',
        width,
        height,
        legend,
        labels,
        shapes,
    )


@admin.register(SettlementStatement)
class SettlementStatementAdmin(GuardedAdmin):
    list_display = (
        "provider",
        "period",
        "currency",
        "status",
        "cost_amount",
        "revenue_net_amount",
        "margin_amount",
        "line_count",
        "warnings",
        "confirmed_at",
        "paid_at",
    )
    list_filter = ("status", "period", "currency", "provider")
    search_fields = ("provider__code", "provider__name", "period")
    list_select_related = ("provider",)
    inlines = [SettlementLineInline]
    actions = ["confirm_selected", "mark_paid_selected", "rebuild_selected"]
    readonly_fields = (
        "provider",
        "period",
        "currency",
        "status",
        "cost_amount",
        "revenue_net_amount",
        "margin_amount",
        "line_count",
        "warning_count",
        "reconciliation_rate",
        "efficiency",
        "built_at",
        "confirmed_at",
        "confirmed_by",
        "paid_at",
        "paid_by",
        "payment_reference",
    )
    fields = readonly_fields
    change_list_template = "admin/billing/settlementstatement/change_list.html"

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def has_confirm_permission(self, request):
        return request.user.has_perm("billing.confirm_settlementstatement")

    def has_pay_permission(self, request):
        return request.user.has_perm("billing.pay_settlementstatement")

    @admin.display(description="reconciliation rate 核对一致率")
    def reconciliation_rate(self, obj):
        """Hours the agent confirmed / hours billed from this provider's reports in the period
        (docs/hardware-truth.md#reconciliation)."""
        rate = provider_reconciliation_rate(provider_id=obj.provider_id, period=obj.period)
        if rate.percent is None:
            return "— (no hours compared with the agent 无实测对比)"
        return f"{rate.percent} % ({rate.matched_hours.normalize():f} of {rate.billed_hours.normalize():f} h matched)"

    @admin.display(description="efficiency 能效")
    def efficiency(self, obj):
        """Per contract on this provider's hardware in the period: billed card-hours against the
        agent's busy card-hours, mean utilisation, energy (docs/hardware-truth.md#sla-credits-and-efficiency)."""
        rows = contract_efficiency_list(period=Period.parse(obj.period), provider_id=obj.provider_id)
        if not rows:
            return "— (no hardware allocated 无分配)"

        def text(value, suffix=""):
            return "—" if value is None else f"{value}{suffix}"

        body = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td class='num'>{}</td><td class='num'>{}</td><td class='num'>{}</td>"
            "<td class='num'>{}</td><td class='num'>{}</td></tr>",
            (
                (
                    r.contract,
                    r.customer_code,
                    r.billed_card_hours,
                    r.busy_card_hours,
                    text(r.busy_share_percent, " %"),
                    text(r.mean_utilisation_percent, " %"),
                    text(r.energy_kwh),
                )
                for r in rows
            ),
        )
        return format_html(
            "<table data-testid='settlement-efficiency'><thead><tr><th>contract 合同</th><th>customer 客户</th>"
            "<th>billed card-h 计费卡时</th><th>busy card-h 繁忙卡时</th><th>busy share 繁忙占比</th>"
            "<th>mean utilisation 平均利用率</th><th>energy kWh 能耗</th></tr></thead><tbody>{}</tbody></table>",
            body,
        )

    @admin.display(description="warnings 警告", ordering="warning_count")
    def warnings(self, obj):
        if not obj.warning_count:
            return "—"
        return format_html('<b style="color:#c62828">{} without cost 缺成本</b>', obj.warning_count)

    def _each(self, request, queryset, service, verb, **kwargs):
        done = 0
        for statement in queryset:
            try:
                service(statement=statement, actor=request.user, now=timezone.now(), **kwargs)
                done += 1
            except DomainError as exc:
                self.message_user(request, f"{statement}: {exc.message}", messages.ERROR)
        if done:
            self.message_user(request, f"{verb} {done} statement(s).", messages.SUCCESS)

    @admin.action(description="Confirm 确认", permissions=["confirm"])
    def confirm_selected(self, request, queryset):
        self._each(request, queryset, services.settlement_confirm, "Confirmed")

    @admin.action(description="Mark paid 标记已付", permissions=["pay"])
    def mark_paid_selected(self, request, queryset):
        self._each(request, queryset, services.settlement_mark_paid, "Marked paid")

    @admin.action(description="Rebuild drafts of these periods 重新生成草稿", permissions=["change"])
    def rebuild_selected(self, request, queryset):
        for period in sorted(set(queryset.values_list("period", flat=True))):
            self._report_build(
                request, services.settlement_build(period=period, now=timezone.now(), actor=request.user)
            )

    def _report_build(self, request, result):
        self.message_user(
            request,
            f"{result.period}: created {result.created}, refreshed {result.refreshed}, unchanged "
            f"{result.unchanged}, confirmed/paid left alone {result.locked}, removed {result.deleted}.",
            messages.SUCCESS,
        )
        for warning in result.warnings[:20]:
            self.message_user(request, warning, messages.WARNING)
        for line in result.unattributed[:20]:
            self.message_user(request, f"Not attributed to a provider: {line}", messages.WARNING)
        pending = services.invoice_drafts_count(period=result.period)
        if pending:
            self.message_user(
                request,
                f"{pending} draft invoice(s) of {result.period} are not issued yet and not settled.",
                messages.WARNING,
            )

    def get_urls(self):
        view = self.admin_site.admin_view
        return [
            path("build/", view(self.build_view), name="billing_settlementstatement_build"),
            path("margins/", view(self.margin_view), name="billing_settlementstatement_margins"),
            *super().get_urls(),
        ]

    def changelist_view(self, request, extra_context=None):
        extra = {
            "can_build": self.has_change_permission(request),
            "build_url": reverse("admin:billing_settlementstatement_build"),
            "margins_url": reverse("admin:billing_settlementstatement_margins"),
        }
        return super().changelist_view(request, {**(extra_context or {}), **extra})

    def build_view(self, request):
        if not self.has_change_permission(request):
            raise PermissionDenied
        last = str(Period.containing(timezone.now(), settings.BILLING_TIME_ZONE).previous())
        form = BuildForm(request.POST or None, initial={"period": last})
        if request.method == "POST" and form.is_valid():
            try:
                result = services.settlement_build(
                    period=form.cleaned_data["period"],
                    provider=form.cleaned_data["provider"],
                    now=timezone.now(),
                    actor=request.user,
                )
            except DomainError as exc:
                self.message_user(request, exc.message, messages.ERROR)
            else:
                self._report_build(request, result)
                url = reverse("admin:billing_settlementstatement_changelist")
                return HttpResponseRedirect(f"{url}?period={result.period}")
        context = {
            **self.admin_site.each_context(request),
            "title": "Build settlements 生成结算单",
            "opts": self.model._meta,
            "form": form,
        }
        return TemplateResponse(request, "admin/billing/settlementstatement/build.html", context)

    def margin_view(self, request):
        if not self.has_view_permission(request):
            raise PermissionDenied
        this_month = str(Period.containing(timezone.now(), settings.BILLING_TIME_ZONE).previous())
        form = MarginForm(request.GET or {"period_from": this_month, "group_by": "provider"})
        report, error = None, ""
        if form.is_valid():
            try:
                report = services.margin_report(
                    period_from=form.cleaned_data["period_from"],
                    period_to=form.cleaned_data["period_to"] or None,
                    group_by=form.cleaned_data["group_by"],
                )
            except DomainError as exc:
                error = exc.message
        context = {
            **self.admin_site.each_context(request),
            "title": "Margin report 毛利报表",
            "opts": self.model._meta,
            "form": form,
            "report": report,
            "error": error,
            "chart": margin_chart(report.rows) if report else "",
        }
        return TemplateResponse(request, "admin/billing/settlementstatement/margins.html", context)
