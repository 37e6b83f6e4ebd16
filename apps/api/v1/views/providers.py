"""Providers and their sites (single-row writes: the serializer saves them)."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema_view

from apps.api.v1.filters import ProviderFilter, SiteFilter
from apps.api.v1.serializers.providers import ProviderSerializer, SiteSerializer
from apps.providers.models import Provider, Site

from .base import ApiViewSet, crud_docs


@extend_schema_view(**crud_docs(ProviderSerializer))
class ProviderViewSet(ApiViewSet):
    """Providers, looked up by id; filter by ``?code=`` (the natural key) or ``?type=``.

    Deleting a provider that still has sites, servers or agreements answers 409.
    """

    queryset = Provider.objects.all()
    serializer_class = ProviderSerializer
    filterset_class = ProviderFilter
    search_fields = ["code", "name"]
    ordering_fields = ["code", "name", "created_at"]


@extend_schema_view(**crud_docs(SiteSerializer))
class SiteViewSet(ApiViewSet):
    """Data centres of the providers, looked up by id; filter by ``?provider=<code>``, ``?hub=``,
    ``?city=``, ``?name=``. Names are unique per provider.
    """

    queryset = Site.objects.select_related("provider")
    serializer_class = SiteSerializer
    filterset_class = SiteFilter
    search_fields = ["name", "city", "provider__code"]
    ordering_fields = ["name", "city", "hub", "created_at"]
