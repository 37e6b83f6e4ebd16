"""Admin of partner and agent API keys (operations) and of usage records (read-only: usage arrives
by API)."""

from __future__ import annotations

from django.conf import settings
from django.contrib import admin, messages
from django.core.paginator import Paginator
from django.db.models import Q
from django.utils import timezone
from django.utils.functional import cached_property
from rest_framework_api_key.admin import APIKeyModelAdmin

from apps.core.admin import GuardedAdmin, GuardedAdminMixin, ReadOnlyAdminMixin
from apps.core.periods import Period
from apps.inventory.models import Card, Server
from apps.providers.models import Provider

from . import selectors, services
from .models import AgentAPIKey, PartnerAPIKey, UsageRecord
from .validation import normalize_card_uuid


@admin.register(PartnerAPIKey)
class PartnerAPIKeyAdmin(GuardedAdminMixin, APIKeyModelAdmin):
    """Creating a key shows it once (the library's ``save_model``); only its hash is stored."""

    list_display = ("name", "provider", "prefix", "created", "expiry_date", "_has_expired", "revoked")
    list_filter = ("revoked", "provider", "created")
    search_fields = ("name", "prefix", "provider__code", "provider__name")
    list_select_related = ("provider",)
    autocomplete_fields = ["provider"]
    fields = ("provider", "name", "prefix", "expiry_date", "revoked")
    actions = ["revoke"]

    def get_readonly_fields(self, request, obj=None):
        fields = tuple(super().get_readonly_fields(request, obj))
        return (*fields, "provider") if obj is not None else fields  # a key stays with its provider

    @admin.action(description="Revoke selected keys 吊销", permissions=["change"])
    def revoke(self, request, queryset):
        revoked = services.partner_key_revoke(api_keys=queryset, actor=request.user)
        for key in revoked:
            self.log_change(request, key, "Revoked.")
        count = len(revoked)
        self.message_user(
            request,
            f"{count} key{'s' if count != 1 else ''} revoked; partner systems using them now get 401.",
            messages.SUCCESS,
        )


@admin.register(AgentAPIKey)
class AgentAPIKeyAdmin(GuardedAdminMixin, APIKeyModelAdmin):
    """The metering agent's key of one server (docs/hardware-truth.md#sources-and-incidents):
    shown once on creation, like partner keys; it posts that server's agent usage and incidents."""

    list_display = ("name", "server", "prefix", "created", "expiry_date", "_has_expired", "revoked")
    list_filter = ("revoked", "server__provider", "created")
    search_fields = ("name", "prefix", "server__serial")
    list_select_related = ("server",)
    autocomplete_fields = ["server"]
    fields = ("server", "name", "prefix", "expiry_date", "revoked")
    actions = ["revoke"]

    def get_readonly_fields(self, request, obj=None):
        fields = tuple(super().get_readonly_fields(request, obj))
        return (*fields, "server") if obj is not None else fields

    @admin.action(description="Revoke selected keys 吊销", permissions=["change"])
    def revoke(self, request, queryset):
        revoked = services.agent_key_revoke(api_keys=queryset, actor=request.user)
        for key in revoked:
            self.log_change(request, key, "Revoked.")
        count = len(revoked)
        self.message_user(
            request,
            f"{count} key{'s' if count != 1 else ''} revoked; agents using them now get 401.",
            messages.SUCCESS,
        )


# -- usage records -------------------------------------------------------------------------------
class PeriodFilter(admin.SimpleListFilter):
    """Records overlapping a billing month (``YYYY-MM`` in the billing time zone)."""

    title = "period (billing month)"
    parameter_name = "period"
    months = 13

    def lookups(self, request, model_admin):
        period = Period.containing(timezone.now(), settings.BILLING_TIME_ZONE)
        choices = []
        for _ in range(self.months):
            choices.append((str(period), str(period)))
            period = period.previous()
        return choices

    def queryset(self, request, queryset):
        if not self.value():
            return queryset
        try:
            period = Period.parse(self.value())
        except ValueError:
            return queryset.none()
        start, end = period.bounds(settings.BILLING_TIME_ZONE)
        return selectors.usage_overlapping(queryset, start, end)


class RatedFilter(admin.SimpleListFilter):
    """Rated: a firm allocation covers the record; unrated: none does (docs/rating.md#unrated-usage)."""

    title = "rating"
    parameter_name = "rating"

    def lookups(self, request, model_admin):
        return [("rated", "Rated (allocated)"), ("unrated", "Unrated (no allocation)")]

    def queryset(self, request, queryset):
        if self.value() == "rated":
            return queryset.filter(selectors.rated_usage_condition())
        if self.value() == "unrated":
            return queryset.filter(~selectors.rated_usage_condition())
        return queryset


class HardwareFilter(admin.SimpleListFilter):
    title = "hardware"
    parameter_name = "hardware"

    def lookups(self, request, model_admin):
        return [("card", "Card records"), ("server", "Server records")]

    def queryset(self, request, queryset):
        if self.value() == "card":
            return queryset.filter(card__isnull=False)
        if self.value() == "server":
            return queryset.filter(server__isnull=False)
        return queryset


class VoidedFilter(admin.SimpleListFilter):
    title = "status"
    parameter_name = "voided"

    def lookups(self, request, model_admin):
        return [("no", "In billing"), ("yes", "Voided")]

    def queryset(self, request, queryset):
        if self.value() in ("yes", "no"):
            return queryset.filter(voided_at__isnull=self.value() == "no")
        return queryset


class CappedCountPaginator(Paginator):
    """Counts at most ``cap + 1`` rows, so a page of a very large usage table stays cheap."""

    cap = 10_000

    @cached_property
    def count(self) -> int:
        return self.object_list[: self.cap + 1].count()


@admin.register(UsageRecord)
class UsageRecordAdmin(ReadOnlyAdminMixin, GuardedAdmin):
    """Usage as partner systems and metering agents reported it (``source``); search by exact event
    id, card UUID or server serial."""

    list_display = (
        "event_id",
        "provider",
        "source",
        "hardware",
        "start_at",
        "end_at",
        "duration",
        "utilization_percent",
        "received_at",
        "voided_at",
    )
    list_filter = ("provider", "source", HardwareFilter, PeriodFilter, RatedFilter, VoidedFilter)
    list_select_related = ("provider", "card", "server")
    search_fields = ("event_id",)  # see get_search_results: exact matches that use indexes
    search_help_text = "Exact event id, card UUID (GPU-…) or server serial."
    show_full_result_count = False
    paginator = CappedCountPaginator
    list_per_page = 100
    readonly_fields = [field.name for field in UsageRecord._meta.fields]

    def get_search_results(self, request, queryset, search_term):
        term = search_term.strip()
        if not term:
            return queryset, False
        # Constants, not joins, so each branch uses an index: (provider, event_id) with every
        # provider id, the card index and the server index.
        match = Q(provider_id__in=list(Provider.objects.values_list("id", flat=True)), event_id=term)
        card_id = Card.objects.filter(uuid=normalize_card_uuid(term)).values_list("id", flat=True).first()
        if card_id is not None:
            match |= Q(card_id=card_id)
        server_id = Server.objects.filter(serial=term).values_list("id", flat=True).first()
        if server_id is not None:
            match |= Q(server_id=server_id)
        return queryset.filter(match), False

    @admin.display(description="card / server")
    def hardware(self, obj):
        return obj.card.uuid if obj.card_id else f"server {obj.server.serial}"

    @admin.display(description="duration")
    def duration(self, obj):
        return obj.end_at - obj.start_at
