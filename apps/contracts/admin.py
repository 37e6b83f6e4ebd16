from django.contrib import admin
from simple_history.admin import SimpleHistoryAdmin

from .models import PriceList, PriceListItem, TaxCategory


@admin.register(TaxCategory)
class TaxCategoryAdmin(admin.ModelAdmin):
    list_display = ("code", "name", "rate", "fapiao_classification")
    search_fields = ("code", "name")


class PriceListItemInline(admin.TabularInline):
    model = PriceListItem
    extra = 0
    fields = ("gpu_model", "resource", "term", "list_unit_price", "term_discount_percent", "tax_category")
    autocomplete_fields = ["gpu_model"]


@admin.register(PriceList)
class PriceListAdmin(SimpleHistoryAdmin):
    list_display = ("code", "name", "currency", "prices_include_tax", "is_default", "valid_from", "valid_to")
    list_filter = ("currency", "is_default", "prices_include_tax")
    search_fields = ("code", "name")
    inlines = [PriceListItemInline]


@admin.register(PriceListItem)
class PriceListItemAdmin(SimpleHistoryAdmin):
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
