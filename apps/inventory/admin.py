from django.contrib import admin, messages
from django.http import HttpResponseRedirect
from django.urls import reverse
from django.utils import timezone
from import_export.admin import ImportExportMixin
from import_export.formats.base_formats import CSV, XLSX

from apps.core.admin import GuardedAdmin, GuardedHistoryAdmin
from apps.core.money import decimal_text

from . import selectors
from .models import Card, GpuModel, Server
from .resources import ServerResource, import_error_lines


@admin.register(GpuModel)
class GpuModelAdmin(GuardedAdmin):
    list_display = (
        "name",
        "vendor",
        "memory_gb",
        "interconnect",
        "fp16_dense_tflops",
        "p_per_card",
        "verified",
    )
    list_filter = ("vendor", "verified", "interconnect")
    search_fields = ("name", "vendor")

    @admin.display(description="P per card")
    def p_per_card(self, obj):
        return decimal_text(obj.p_per_card)


class CardInline(admin.TabularInline):
    model = Card
    extra = 0
    fields = ("slot", "uuid", "status")
    ordering = ("slot",)


class SupplyAgreementFilter(admin.SimpleListFilter):
    """Servers in service whose provider has no supply agreement for their GPU model today."""

    title = "supply agreement"
    parameter_name = "supply"

    def lookups(self, request, model_admin):
        return [("none", "None valid today")]

    def queryset(self, request, queryset):
        if self.value() == "none":
            return queryset.filter(
                pk__in=selectors.servers_without_supply(on=timezone.localdate()).values("pk")
            )
        return queryset


class FreeNowFilter(admin.SimpleListFilter):
    """Cards in service that no firm allocation holds now."""

    title = "allocation"
    parameter_name = "free"

    def lookups(self, request, model_admin):
        return [("now", "Free now")]

    def queryset(self, request, queryset):
        if self.value() == "now":
            return selectors.cards_free_now(queryset, now=timezone.now())
        return queryset


@admin.register(Server)
class ServerAdmin(ImportExportMixin, GuardedHistoryAdmin):
    list_display = ("serial", "provider", "site", "hub", "gpu_model", "card_count", "status")
    list_filter = ("status", "gpu_model", "provider", "site__hub", "provider__type", SupplyAgreementFilter)
    search_fields = ("serial", "cards__uuid", "provider__code", "site__name")
    list_select_related = ("provider", "site", "gpu_model")
    autocomplete_fields = ["provider", "site", "gpu_model"]
    inlines = [CardInline]
    show_full_result_count = False
    resource_classes = [ServerResource]
    import_formats = [CSV, XLSX]
    export_formats = [CSV, XLSX]

    def has_import_permission(self, request):
        # An import creates servers and cards and may change existing servers.
        return request.user.has_perms(
            ["inventory.add_server", "inventory.change_server", "inventory.add_card"]
        )

    def has_export_permission(self, request):
        return self.has_view_permission(request)

    def process_result(self, result, request):
        # The confirm step re-validates (the data may have changed since the preview); on any
        # error the import was rolled back, so say so instead of "Import finished".
        if result.has_errors() or result.has_validation_errors():
            lines = import_error_lines(result)
            more = f" (and {len(lines) - 5} more)" if len(lines) > 5 else ""
            messages.error(request, "Nothing was imported: " + " ".join(lines[:5]) + more)
            return HttpResponseRedirect(reverse("admin:inventory_server_import"))
        return super().process_result(result, request)

    @admin.display(description="hub", ordering="site__hub")
    def hub(self, obj):
        return obj.site.get_hub_display()


@admin.register(Card)
class CardAdmin(GuardedHistoryAdmin):
    list_display = ("uuid", "server", "slot", "gpu_model", "status")
    list_filter = ("status", "server__gpu_model", "server__provider", "server__site__hub", FreeNowFilter)
    search_fields = ("uuid", "server__serial")
    list_select_related = ("server", "server__gpu_model")
    autocomplete_fields = ["server"]

    @admin.display(description="GPU model", ordering="server__gpu_model__name")
    def gpu_model(self, obj):
        return obj.server.gpu_model
