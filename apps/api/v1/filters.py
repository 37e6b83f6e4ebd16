"""django-filter filter sets of the v1 lists. Related rows are filtered by natural key."""

from __future__ import annotations

import django_filters as filters
from django.conf import settings
from django.core.validators import RegexValidator
from django.db.models import Exists, Q
from django.utils.translation import gettext, gettext_lazy
from django_filters.rest_framework import DjangoFilterBackend
from rest_framework.exceptions import ValidationError

from apps.contracts.models import Allocation, PriceList, PriceListItem
from apps.core.choices import Currency, LeaseTerm, ResourceKind
from apps.core.periods import Period
from apps.customers.models import Customer, InvoiceType
from apps.inventory.models import GpuModel, HardwareStatus, Server
from apps.inventory.services import card_uuid_normalize
from apps.metering import selectors as metering_selectors
from apps.metering.models import UsageRecord, UsageSource
from apps.providers.models import HubRegion, Provider, ProviderType, Site

_BOOLEAN_VALUES = {"true", "false", "1", "0"}
PERIOD_VALIDATOR = RegexValidator(r"^\d{4}-(0[1-9]|1[0-2])$", gettext_lazy("Give the period as YYYY-MM."))


def period_filter(**kwargs) -> filters.CharFilter:
    """A ``YYYY-MM`` filter that answers 400 for anything else (``?period=last-month``)."""
    return filters.CharFilter(validators=[PERIOD_VALIDATOR], **{"help_text": "YYYY-MM", **kwargs})


class StrictFilterBackend(DjangoFilterBackend):
    """django-filter, refusing a junk boolean (``?verified=maybe``) with a 400 instead of ignoring it
    (django-filter reads anything but true/false/1/0 as "no filter")."""

    def get_filterset(self, request, queryset, view):
        filterset = super().get_filterset(request, queryset, view)
        if filterset is None:
            return None
        errors = {}
        for name, flt in filterset.filters.items():
            if not isinstance(flt, filters.BooleanFilter):
                continue
            for value in request.query_params.getlist(name):
                if value.strip().lower() not in _BOOLEAN_VALUES and value != "":
                    errors[name] = [gettext("Expected true or false.")]
        if errors:
            raise ValidationError(errors)
        return filterset


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


class UsageRecordFilter(filters.FilterSet):
    """Filters of ``GET /api/v1/usage/``; each is served by an index of ``metering_usagerecord``
    (provider, card or server with the start, or the primary key the pages follow)."""

    period = period_filter(
        method="filter_period",
        help_text="Billing period YYYY-MM: records overlapping it (billing time zone).",
    )
    provider = filters.CharFilter(field_name="provider__code", help_text="Provider code.")
    card = filters.CharFilter(method="filter_card", help_text="Card UUID: the card's records.")
    server = filters.CharFilter(
        method="filter_server", help_text="Server serial: its whole-server records and its cards' records."
    )
    contract = filters.NumberFilter(
        method="filter_contract",
        min_value=1,
        max_value=2**63 - 1,
        help_text="Contract id: records its firm allocations cover.",
    )
    rated = filters.BooleanFilter(
        method="filter_rated", help_text="true: a firm allocation covers it; false: none does (unrated)."
    )
    voided = filters.BooleanFilter(field_name="voided_at", lookup_expr="isnull", exclude=True)
    source = filters.ChoiceFilter(
        choices=UsageSource.choices,
        help_text="partner: reported by the provider's system; agent: by the metering agent on the host.",
    )

    class Meta:
        model = UsageRecord
        fields = ["period", "provider", "card", "server", "contract", "rated", "voided", "source"]

    def filter_period(self, queryset, name, value):
        start, end = Period.parse(value).bounds(settings.BILLING_TIME_ZONE)
        return metering_selectors.usage_overlapping(queryset, start, end)

    def filter_card(self, queryset, name, value):
        return queryset.filter(card__uuid=card_uuid_normalize(uuid=value))

    def filter_server(self, queryset, name, value):
        return queryset.filter(Q(server__serial=value) | Q(card__server__serial=value))

    def filter_contract(self, queryset, name, value):
        held = Allocation.objects.filter(line__contract_id=int(value))
        return queryset.filter(Exists(metering_selectors.covering_allocations(held)))

    def filter_rated(self, queryset, name, value):
        rated = metering_selectors.rated_usage_condition()
        return queryset.filter(rated if value else ~rated)
