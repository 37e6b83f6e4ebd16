from django.contrib import admin
from simple_history.admin import SimpleHistoryAdmin

from .models import Card, GpuModel, Server


@admin.register(GpuModel)
class GpuModelAdmin(admin.ModelAdmin):
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
        return obj.p_per_card.normalize()


class CardInline(admin.TabularInline):
    model = Card
    extra = 0
    fields = ("slot", "uuid", "status")
    ordering = ("slot",)


@admin.register(Server)
class ServerAdmin(SimpleHistoryAdmin):
    list_display = ("serial", "provider", "site", "hub", "gpu_model", "card_count", "status")
    list_filter = ("status", "gpu_model", "provider", "site__hub", "provider__type")
    search_fields = ("serial", "cards__uuid", "provider__code", "site__name")
    list_select_related = ("provider", "site", "gpu_model")
    autocomplete_fields = ["provider", "site", "gpu_model"]
    inlines = [CardInline]
    show_full_result_count = False

    @admin.display(description="hub", ordering="site__hub")
    def hub(self, obj):
        return obj.site.get_hub_display()


@admin.register(Card)
class CardAdmin(SimpleHistoryAdmin):
    list_display = ("uuid", "server", "slot", "gpu_model", "status")
    list_filter = ("status", "server__gpu_model", "server__provider")
    search_fields = ("uuid", "server__serial")
    list_select_related = ("server", "server__gpu_model")
    autocomplete_fields = ["server"]

    @admin.display(description="GPU model", ordering="server__gpu_model__name")
    def gpu_model(self, obj):
        return obj.server.gpu_model
