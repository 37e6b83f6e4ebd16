from decimal import Decimal

from django.contrib import admin, messages
from django.http import HttpResponseRedirect
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html
from import_export.admin import ImportExportMixin
from import_export.formats.base_formats import CSV, XLSX

from apps.core.admin import GuardedAdmin, GuardedHistoryAdmin
from apps.core.money import decimal_text, round_hours

from . import selectors
from .models import Card, CardIncident, GpuModel, Server
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


class CardIncidentInline(admin.TabularInline):
    """The card's hardware incidents, newest first, as the agent reported them."""

    model = CardIncident
    extra = 0
    fields = ("kind", "xid_code", "started_at", "ended_at", "detail", "reported_at")
    readonly_fields = fields
    ordering = ("-started_at",)
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request, obj=None):
        return False


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
    readonly_fields = ("incidents",)
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

    @admin.display(description="incidents 硬件故障")
    def incidents(self, obj):
        """The server's card incidents: counts and a link to them in the incidents list."""
        if obj.pk is None:
            return "—"
        total, ongoing = selectors.server_incident_counts(obj)
        url = reverse("admin:inventory_cardincident_changelist") + f"?card__server__id__exact={obj.pk}"
        return format_html('<a href="{}">{} incidents, {} ongoing</a>', url, total, ongoing)


@admin.register(Card)
class CardAdmin(GuardedHistoryAdmin):
    list_display = ("uuid", "server", "slot", "gpu_model", "status")
    list_filter = ("status", "server__gpu_model", "server__provider", "server__site__hub", FreeNowFilter)
    search_fields = ("uuid", "server__serial")
    list_select_related = ("server", "server__gpu_model")
    autocomplete_fields = ["server"]
    inlines = [CardIncidentInline]

    @admin.display(description="GPU model", ordering="server__gpu_model__name")
    def gpu_model(self, obj):
        return obj.server.gpu_model


class OngoingFilter(admin.SimpleListFilter):
    title = "state"
    parameter_name = "ongoing"

    def lookups(self, request, model_admin):
        return [("yes", "Ongoing 进行中"), ("no", "Ended 已恢复")]

    def queryset(self, request, queryset):
        if self.value() in ("yes", "no"):
            return queryset.filter(ended_at__isnull=self.value() == "yes")
        return queryset


@admin.register(CardIncident)
class CardIncidentAdmin(GuardedAdmin):
    """Hardware incidents the metering agents reported (docs/hardware-truth.md#sources-and-incidents)."""

    list_display = (
        "card",
        "server",
        "slot",
        "kind",
        "xid_code",
        "started_at",
        "ended_at",
        "hours",
        "reported_at",
    )
    list_filter = (
        OngoingFilter,
        "kind",
        "card__server__provider",
        "card__server__site__hub",
        ("started_at", admin.DateFieldListFilter),
    )
    search_fields = ("card__uuid", "card__server__serial", "detail", "source_event_id")
    list_select_related = ("card", "card__server")
    autocomplete_fields = ["card"]
    date_hierarchy = "started_at"
    readonly_fields = ("reported_at", "source_event_id")
    show_full_result_count = False

    @admin.display(description="server", ordering="card__server__serial")
    def server(self, obj):
        return obj.card.server

    @admin.display(description="slot", ordering="card__slot")
    def slot(self, obj):
        return obj.card.slot

    @admin.display(description="hours")
    def hours(self, obj):
        if obj.ended_at is None:
            return "ongoing"
        return decimal_text(round_hours(Decimal((obj.ended_at - obj.started_at).total_seconds()) / 3600))
