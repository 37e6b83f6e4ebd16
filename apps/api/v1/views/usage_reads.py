"""``GET /api/v1/usage/``: usage records, filtered and paged by cursor (docs/api.md#usage-reads).

Who sees what: a partner system (API key) its own provider's records; a staff user with the
metering view permission every record; a customer portal user the records billed to their
customer (a firm allocation of one of the customer's contracts covers them), without the
provider. ``UsageView`` (the POST of ingestion) takes this GET in through ``UsageListMixin``: the
same URL, each method with its own authentication and permissions.
"""

from __future__ import annotations

from django.db.models import Exists, QuerySet
from drf_spectacular.utils import OpenApiExample, extend_schema
from rest_framework import mixins
from rest_framework.generics import GenericAPIView
from rest_framework.pagination import CursorPagination
from rest_framework.permissions import SAFE_METHODS, BasePermission
from rest_framework.settings import api_settings

from apps.api.authentication import PartnerAPIKeyAuthentication, PartnerSystem
from apps.api.v1.filters import StrictFilterBackend, UsageRecordFilter
from apps.api.v1.serializers.usage_reads import UsageRecordSerializer
from apps.contracts.models import Allocation
from apps.core.db_router import ReplicaReadsMixin
from apps.metering import selectors as metering_selectors
from apps.metering.models import UsageRecord

from .base import ERROR

VIEW_USAGE = "metering.view_usagerecord"

# The example of ``POST /api/v1/usage/`` in the OpenAPI document: a batch (list) of one card minute;
# a batch holds up to 10,000 records, and one object alone is accepted too.
USAGE_BATCH_EXAMPLE = OpenApiExample(
    "One card minute",
    request_only=True,
    value={
        "event_id": "GPU-5f1a0c3e-6b1d-4c2e-9a8f-0123456789ab:2026-11-20T01:59:00+00:00",
        "card": "GPU-5f1a0c3e-6b1d-4c2e-9a8f-0123456789ab",
        "start": "2026-11-20T09:59:00+08:00",
        "end": "2026-11-20T10:00:00+08:00",
        "telemetry": {"utilization_percent": 87.5, "memory_used_bytes": 34359738368, "energy_mj": 1200000},
    },
)


class UsageCursorPagination(CursorPagination):
    """Newest first by id (the primary key's index): pages stay stable while records arrive."""

    ordering = "-id"
    page_size = 100
    page_size_query_param = "page_size"
    max_page_size = 1000


class CanReadUsage(BasePermission):
    """Partner systems, staff with the metering view permission, members of a customer."""

    def has_permission(self, request, view):
        user = request.user
        if request.method not in SAFE_METHODS or not (user and user.is_authenticated):
            return False
        if isinstance(user, PartnerSystem):
            return True
        if user.is_staff:
            return user.has_perm(VIEW_USAGE)
        return user.memberships.exists()


def usage_visible(*, request) -> QuerySet[UsageRecord]:
    """The records ``request``'s caller may read (see the module doc), with what the list shows."""
    user = request.user
    records = UsageRecord.objects.select_related("provider", "card", "server").annotate(
        rated=metering_selectors.rated_usage_condition()
    )
    if isinstance(user, PartnerSystem):
        return records.filter(provider=user.provider)
    if user.is_staff:
        return records
    held = Allocation.objects.filter(line__contract__customer__memberships__user=user)
    return records.filter(Exists(metering_selectors.covering_allocations(held)))


class UsageListMixin(ReplicaReadsMixin, mixins.ListModelMixin, GenericAPIView):
    """The GET of ``/api/v1/usage/`` (the class it is mixed into keeps its POST)."""

    serializer_class = UsageRecordSerializer
    filterset_class = UsageRecordFilter
    filter_backends = [StrictFilterBackend]
    pagination_class = UsageCursorPagination

    def _reading(self) -> bool:
        return self.request is not None and self.request.method in SAFE_METHODS

    def get_authenticators(self):
        if self._reading():
            defaults = [auth() for auth in api_settings.DEFAULT_AUTHENTICATION_CLASSES]
            return [PartnerAPIKeyAuthentication(), *defaults]
        return super().get_authenticators()

    def get_permissions(self):
        if self._reading():
            return [CanReadUsage()]
        return super().get_permissions()

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # the schema generator's mock request
            return UsageRecord.objects.none()
        return usage_visible(request=self.request)

    def get_serializer_context(self):
        context = super().get_serializer_context()
        user = self.request.user
        context["show_provider"] = isinstance(user, PartnerSystem) or user.is_staff
        return context

    @extend_schema(
        operation_id="usage_list",
        responses={200: UsageRecordSerializer(many=True), 400: ERROR, 401: ERROR, 403: ERROR, 404: ERROR},
        tags=["usage"],
        description=(
            "Usage records, newest first, a page at a time (`next` / `previous` hold the cursor). "
            "Partner keys read their provider's records, staff all (metering view permission), "
            "customer users the records billed to their customer. A junk filter value answers 400, "
            "a junk cursor 404."
        ),
    )
    def get(self, request, *args, **kwargs):
        return self.list(request, *args, **kwargs)
