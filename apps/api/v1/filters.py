"""django-filter filter sets of the v1 lists. Related rows are filtered by natural key."""

from __future__ import annotations

import django_filters as filters

from apps.contracts.models import PriceList, PriceListItem
from apps.core.choices import Currency, LeaseTerm, ResourceKind
from apps.customers.models import Customer, InvoiceType
from apps.inventory.models import GpuModel, HardwareStatus, Server
from apps.providers.models import HubRegion, Provider, ProviderType, Site


class ProviderFilter(filters.FilterSet):
    code = filters.CharFilter()
    type = filters.ChoiceFilter(choices=ProviderType.choices)

    class Meta:
        model = Provider
        fields = ["code", "type", "is_related_party"]


class SiteFilter(filters.FilterSet):
    provider = filters.CharFilter(field_name="provider__code", help_text="Provider code.")
    hub = filters.ChoiceFilter(choices=HubRegion.choices)
    city = filters.CharFilter(lookup_expr="iexact")
    name = filters.CharFilter()

    class Meta:
        model = Site
        fields = ["provider", "hub", "city", "name"]


class GpuModelFilter(filters.FilterSet):
    name = filters.CharFilter()
    vendor = filters.CharFilter(lookup_expr="iexact")

    class Meta:
        model = GpuModel
        fields = ["name", "vendor", "verified"]


class ServerFilter(filters.FilterSet):
    serial = filters.CharFilter()
    provider = filters.CharFilter(field_name="provider__code", help_text="Provider code.")
    site = filters.CharFilter(field_name="site__name", help_text="Site name.")
    hub = filters.ChoiceFilter(field_name="site__hub", choices=HubRegion.choices, help_text="Hub region.")
    gpu_model = filters.CharFilter(field_name="gpu_model__name", help_text="GPU model name.")
    status = filters.ChoiceFilter(choices=HardwareStatus.choices)
    card = filters.CharFilter(field_name="cards__uuid", distinct=True, help_text="UUID of one of its cards.")

    class Meta:
        model = Server
        fields = ["serial", "provider", "site", "hub", "gpu_model", "status", "card"]


class CustomerFilter(filters.FilterSet):
    code = filters.CharFilter()
    invoice_type = filters.ChoiceFilter(choices=InvoiceType.choices)
    currency = filters.ChoiceFilter(choices=Currency.choices)

    class Meta:
        model = Customer
        fields = ["code", "invoice_type", "currency", "auto_issue"]


class PriceListFilter(filters.FilterSet):
    code = filters.CharFilter()
    currency = filters.ChoiceFilter(choices=Currency.choices)

    class Meta:
        model = PriceList
        fields = ["code", "currency", "is_default"]


class PriceListItemFilter(filters.FilterSet):
    gpu_model = filters.CharFilter(field_name="gpu_model__name", help_text="GPU model name.")
    resource = filters.ChoiceFilter(choices=ResourceKind.choices)
    term = filters.ChoiceFilter(choices=LeaseTerm.choices)
    tax_category = filters.CharFilter(field_name="tax_category__code", help_text="Tax category code.")

    class Meta:
        model = PriceListItem
        fields = ["gpu_model", "resource", "term", "tax_category"]
