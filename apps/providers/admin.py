from django.contrib import admin
from django.db.models import Count

from apps.core.admin import GuardedHistoryAdmin

from .models import Provider, Site, SupplyAgreement


class SiteInline(admin.TabularInline):
    model = Site
    extra = 0
    fields = ("name", "city", "hub")


class SupplyAgreementInline(admin.TabularInline):
    model = SupplyAgreement
    extra = 0
    fields = ("gpu_model", "resource", "term", "cost_unit_price", "currency", "valid_from", "valid_to")
    autocomplete_fields = ["gpu_model"]


@admin.register(Provider)
class ProviderAdmin(GuardedHistoryAdmin):
    list_display = ("code", "name", "type", "site_count", "server_count", "settlement_terms_days")
    list_filter = ("type", "is_related_party", "sites__hub")
    search_fields = ("code", "name", "contact_name", "contact_email")
    inlines = [SiteInline, SupplyAgreementInline]

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .annotate(_sites=Count("sites", distinct=True), _servers=Count("servers", distinct=True))
        )

    @admin.display(description="sites", ordering="_sites")
    def site_count(self, obj):
        return obj._sites

    @admin.display(description="servers", ordering="_servers")
    def server_count(self, obj):
        return obj._servers


@admin.register(Site)
class SiteAdmin(GuardedHistoryAdmin):
    list_display = ("name", "provider", "city", "hub")
    list_filter = ("hub", "provider__type", "provider")
    search_fields = ("name", "city", "provider__code", "provider__name")
    list_select_related = ("provider",)
    autocomplete_fields = ["provider"]


@admin.register(SupplyAgreement)
class SupplyAgreementAdmin(GuardedHistoryAdmin):
    list_display = (
        "provider",
        "gpu_model",
        "resource",
        "term",
        "cost_unit_price",
        "currency",
        "valid_from",
        "valid_to",
    )
    list_filter = ("resource", "term", "provider", "gpu_model")
    search_fields = ("provider__code", "provider__name", "gpu_model__name")
    list_select_related = ("provider", "gpu_model")
    autocomplete_fields = ["provider", "gpu_model"]
