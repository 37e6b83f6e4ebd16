"""The contract drafting screen: every line of a contract on one 1366-pixel row each, with live
prices, estimates and margins (docs/contracts.md#drafting-screen).

A custom admin view of ``ContractAdmin`` (mixed in there): GET shows the lines, POST saves them
through ``services.line_save`` / ``services.line_delete`` in one transaction, and the preview
URL answers the unsaved rows' figures as JSON while the user types (static/contracts/drafting.js).
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from django import forms
from django.conf import settings
from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.forms import modelformset_factory
from django.http import HttpResponseRedirect, JsonResponse
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone

from apps.core.errors import DomainError
from apps.core.money import decimal_text
from apps.core.periods import local_range_text
from apps.inventory.models import GpuModel

from . import services
from .estimates import DraftFigures, RowInput, draft_figures
from .models import ContractLine, TaxCategory, YearlyBilling

LINE_FIELDS = (
    "resource",
    "gpu_model",
    "quantity",
    "term",
    "list_unit_price",
    "term_discount_percent",
    "discount_percent",
    "tax_category",
    "start_at",
    "end_at",
    "yearly_billing",
)
LOCAL_INPUT_FORMAT = "%Y-%m-%dT%H:%M"
CENT = Decimal("0.01")
REMOVED = {"problem": "Removed when saved. 保存后删除。"}


def money_text_places(value: Decimal) -> Decimal:
    """At least two decimal places, more only where the price has them (22.70, 0.4125)."""
    return value.quantize(CENT) if value == value.quantize(CENT) else value.normalize()


class CatalogueChoiceField(forms.ChoiceField):
    """A choice of rows loaded once per page, not once per line (no query per form)."""

    def __init__(self, *, objects: dict[str, object], **kwargs):
        self.objects = objects
        super().__init__(choices=[("", "—"), *((key, str(obj)) for key, obj in objects.items())], **kwargs)

    def prepare_value(self, value):
        return str(value.pk) if hasattr(value, "pk") else value

    def clean(self, value):
        value = super().clean(value)
        return self.objects.get(value) if value else None

    def has_changed(self, initial, data):
        return str(self.prepare_value(initial) or "") != str(data or "")


def line_catalogue() -> dict[str, dict[str, object]]:
    """GPU models and tax categories for the line rows: two queries for the whole page."""
    return {
        "gpu_model": {str(m.pk): m for m in GpuModel.objects.order_by("name")},
        "tax_category": {str(t.pk): t for t in TaxCategory.objects.order_by("code")},
    }


class DraftLineForm(forms.ModelForm):
    class Meta:
        model = ContractLine
        fields = LINE_FIELDS
        widgets = {
            "start_at": forms.DateTimeInput(attrs={"type": "datetime-local"}, format=LOCAL_INPUT_FORMAT),
            "end_at": forms.DateTimeInput(attrs={"type": "datetime-local"}, format=LOCAL_INPUT_FORMAT),
        }

    def __init__(self, *args, catalogue, contract, **kwargs):
        super().__init__(*args, **kwargs)
        self.instance.contract = contract
        if not self.instance.pk:
            self.instance.position = None  # numbered after the last line when saved
        self.fields["gpu_model"] = CatalogueChoiceField(
            objects=catalogue["gpu_model"], label="GPU model 型号"
        )
        self.fields["tax_category"] = CatalogueChoiceField(
            objects=catalogue["tax_category"], required=False, label="Tax 税目"
        )
        for name in ("list_unit_price", "term_discount_percent", "discount_percent"):
            self.fields[name].required = False
        for name in ("start_at", "end_at"):
            self.fields[name].input_formats = [LOCAL_INPUT_FORMAT, "%Y-%m-%d %H:%M", "%Y-%m-%d"]
        if self.instance.pk and not self.is_bound:
            # Numbers as people write them: 2, not 2.000000; 22.70, not 22.700000.
            line = self.instance
            self.initial["quantity"] = decimal_text(line.quantity)
            self.initial["list_unit_price"] = format(money_text_places(line.list_unit_price), "f")
            self.initial["term_discount_percent"] = decimal_text(line.term_discount_percent)
            self.initial["discount_percent"] = decimal_text(line.discount_percent)
        self.fields["yearly_billing"].label = "Yearly billing 年付方式"

    def clean(self):
        data = super().clean()
        if data.get("term") and data["term"] != "yearly":
            data["yearly_billing"] = YearlyBilling.MONTHLY_INSTALMENTS  # applies to yearly lines only
        if data.get("discount_percent") is None:
            data["discount_percent"] = Decimal(0)
        return data

    def _post_clean(self):
        # The form's empty discount means "none"; the model needs a number to validate.
        self._failed_fields = set(self._errors or ())
        if (
            "discount_percent" not in self._failed_fields
            and self.cleaned_data.get("discount_percent") is None
        ):
            self.cleaned_data["discount_percent"] = Decimal(0)
        super()._post_clean()

    def _update_errors(self, errors):
        # A field that did not parse keeps its own message, not the model's about the empty value.
        failed = getattr(self, "_failed_fields", set())
        if hasattr(errors, "error_dict") and failed:
            kept = {k: v for k, v in errors.error_dict.items() if k not in failed}
            if not kept:
                return
            errors = ValidationError(kept)
        super()._update_errors(errors)

    def differs_in_dates(self) -> bool:
        return bool(self["start_at"].value() or self["end_at"].value())

    def row_input(self, key: str, line: ContractLine | None) -> RowInput:
        """The row as typed, field by field: a field that does not parse yet counts as empty."""

        def value(name):
            try:
                return self.fields[name].clean(self[name].data if self.is_bound else self[name].value())
            except ValidationError:
                return None

        providers = frozenset(a.server.provider_id for a in line.allocations.all()) if line else frozenset()
        return RowInput(
            key=key,
            position=line.position if line else None,
            resource=value("resource") or None,
            gpu_model=value("gpu_model"),
            quantity=value("quantity"),
            term=value("term") or None,
            list_unit_price=value("list_unit_price"),
            term_discount_percent=value("term_discount_percent"),
            discount_percent=value("discount_percent"),
            tax_category=value("tax_category"),
            start_at=value("start_at"),
            end_at=value("end_at"),
            yearly_billing=value("yearly_billing") or YearlyBilling.MONTHLY_INSTALMENTS,
            provider_ids=providers,
        )


LineFormSet = modelformset_factory(ContractLine, form=DraftLineForm, extra=0, can_delete=True)


def _money(value: Decimal | None) -> str:
    return "—" if value is None else f"{value:,.2f}"


def _percent(value: Decimal | None) -> str:
    return "—" if value is None else f"{decimal_text(value)}%"


def figures_json(figures: DraftFigures) -> dict:
    """What the screen shows, as text, for the script to put in place."""
    return {
        "month": str(figures.month),
        "rows": [
            {
                "key": row.key,
                "problem": row.problem,
                "list_unit_price": "" if row.list_unit_price is None else decimal_text(row.list_unit_price),
                "price_list_price": ""
                if row.price_list_price is None
                else decimal_text(row.price_list_price),
                "term_discount_percent": ""
                if row.term_discount_percent is None
                else decimal_text(row.term_discount_percent),
                "effective_unit_price": "—"
                if row.effective_unit_price is None
                else f"{decimal_text(row.effective_unit_price)} / {row.unit}",
                "monthly_amount": _money(row.monthly_amount),
                "upfront_yearly_amount": ""
                if row.upfront_yearly_amount is None
                else _money(row.upfront_yearly_amount),
                "monthly_margin": _money(row.monthly_margin),
                "margin_percent": _percent(row.margin_percent),
                "cost_basis": row.cost_basis,
            }
            for row in figures.rows
        ],
        "totals": {
            "monthly_amount": _money(figures.monthly_amount),
            "monthly_net": _money(figures.monthly_net),
            "monthly_cost": _money(figures.monthly_cost),
            "monthly_margin": _money(figures.monthly_margin),
            "margin_percent": _percent(figures.margin_percent),
            "rows_without_cost": figures.rows_without_cost,
            "term_value": _money(figures.term_value),
        },
        "approval": {"needed": figures.approval_needed, "text": figures.approval_text},
    }


class DraftingAdminMixin:
    """The drafting screen's views on ``ContractAdmin`` (which gives ``_get_visible``)."""

    def drafting_urls(self):
        view = self.admin_site.admin_view
        return [
            path("<int:pk>/lines/", view(self.lines_view), name="contracts_contract_lines"),
            path(
                "<int:pk>/lines/preview/",
                view(self.lines_preview_view),
                name="contracts_contract_lines_preview",
            ),
        ]

    def _line_formset(self, request, contract, data=None):
        lines = (
            contract.lines.select_related("gpu_model", "tax_category")
            .prefetch_related("allocations__server")
            .order_by("position")
        )
        return LineFormSet(
            data,
            queryset=lines,
            prefix="lines",
            form_kwargs={"catalogue": line_catalogue(), "contract": contract},
        )

    @staticmethod
    def _figures(contract, formset) -> DraftFigures:
        rows = []
        for form in formset.forms:
            if formset.can_delete and form.is_bound and form["DELETE"].data:
                continue
            line = form.instance if form.instance.pk else None
            rows.append(form.row_input(form.prefix, line))
        return draft_figures(contract=contract, rows=rows)

    def lines_preview_view(self, request, pk):
        """The figures of the rows as posted, nothing saved (any user who may see the contract)."""
        contract = self._get_visible(request, pk)
        if request.method != "POST":
            return JsonResponse({"code": "method_not_allowed", "message": "POST the rows."}, status=405)
        try:
            formset = self._line_formset(request, contract, request.POST)
            formset.forms  # noqa: B018 - builds the forms; a broken management form raises here
        except ValidationError:
            return JsonResponse(
                {"code": "invalid", "message": "The form's management data is missing or broken."}, status=400
            )
        return JsonResponse(figures_json(self._figures(contract, formset)))

    def lines_view(self, request, pk):
        contract = self._get_visible(request, pk)
        editable = contract.is_editable and self.has_change_permission(request, contract)
        if request.method == "POST" and not editable:
            raise PermissionDenied
        formset = self._line_formset(request, contract, request.POST if request.method == "POST" else None)
        if request.method == "POST" and formset.is_valid():
            saved = self._save_lines(request, contract, formset)
            if saved:
                if "_submit" in request.POST:
                    try:
                        services.contract_submit(contract=contract, actor=request.user, now=timezone.now())
                    except DomainError as exc:
                        self.message_user(request, exc.message, messages.ERROR)
                        return HttpResponseRedirect(request.path)
                    self.message_user(request, f"Saved and submitted {contract}.", messages.SUCCESS)
                    return HttpResponseRedirect(
                        reverse("admin:contracts_contract_change", args=[contract.pk])
                    )
                self.message_user(request, "Lines saved. 合同行已保存。", messages.SUCCESS)
                return HttpResponseRedirect(request.path)
        if not editable:
            for form in formset.forms:
                for field in form.fields.values():
                    field.disabled = True
        figures = self._figures(contract, formset)
        shown = figures_json(figures)
        by_key = {row["key"]: row for row in shown["rows"]}
        context = {
            **self.admin_site.each_context(request),
            "title": f"Lines 合同行 · {contract}",
            "opts": self.model._meta,
            "original": contract,
            "contract": contract,
            "formset": formset,
            "rows": [(form, by_key.get(form.prefix, REMOVED)) for form in formset.forms],
            "figures": figures,
            "figures_json": shown,
            "contract_range": local_range_text(
                contract.start_at, contract.end_at, settings.BILLING_TIME_ZONE
            ),
            "editable": editable,
            "zone": settings.BILLING_TIME_ZONE,
            "threshold": decimal_text(settings.DISCOUNT_APPROVAL_THRESHOLD),
            "is_popup": False,
            "has_view_permission": True,
        }
        return TemplateResponse(request, "admin/contracts/contract/lines.html", context)

    def _save_lines(self, request, contract, formset) -> bool:
        """All rows or none: the first refusal rolls back and is shown on its row."""
        current = None
        new_forms = [form for form in formset.forms if not form.instance.pk]
        try:
            with transaction.atomic():
                for form in formset.deleted_forms:
                    current = form
                    if form.instance.pk:
                        services.line_delete(line=form.instance, actor=request.user)
                for form in formset.forms:
                    current = form
                    if form in formset.deleted_forms or (form.instance.pk and not form.has_changed()):
                        continue
                    if not form.instance.pk and not form.has_changed():
                        continue  # an untouched new row
                    line = form.save(commit=False)
                    line.contract = contract
                    services.line_save(line=line, actor=request.user)
        except DomainError as exc:
            for form in new_forms:
                form.instance.pk = None  # rolled back: still new
            field = next(iter(exc.fields or {}), None)
            target = current if current is not None else formset.forms[0]
            target.add_error(field if field in target.fields else None, exc.message)
            return False
        except InvalidOperation:
            formset.forms[0].add_error(None, "A number could not be read.")
            return False
        return True
