"""Price lists and their items: readable by staff with the view permission, written by staff with
the add/change/delete permissions (sales managers).
"""

from __future__ import annotations

from django.db.models import Prefetch
from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view

from apps.api.v1.filters import PriceListFilter, PriceListItemFilter
from apps.api.v1.serializers.pricing import PriceListItemSerializer, PriceListSerializer
from apps.contracts.models import PriceList, PriceListItem

from .base import ApiViewSet, crud_docs, parent_pk


def _items():
    return PriceListItem.objects.select_related("price_list", "gpu_model", "tax_category").order_by(
        "gpu_model__name", "resource", "term"
    )


@extend_schema_view(**crud_docs(PriceListSerializer))
class PriceListViewSet(ApiViewSet):
    """Price lists with their items, looked up by id; filter by ``?code=``, ``?currency=``,
    ``?is_default=``. Items are also listed, filtered and written at ``/price-lists/{id}/items/``.
    """

    serializer_class = PriceListSerializer
    filterset_class = PriceListFilter
    search_fields = ["code", "name"]
    ordering_fields = ["code", "valid_from", "created_at"]

    def get_queryset(self):
        return PriceList.objects.prefetch_related(Prefetch("items", queryset=_items()))


@extend_schema_view(**crud_docs(PriceListItemSerializer))
@extend_schema(parameters=[OpenApiParameter("price_list_pk", OpenApiTypes.INT, OpenApiParameter.PATH)])
class PriceListItemViewSet(ApiViewSet):
    """``/price-lists/{price_list_pk}/items/``: filter by ``?gpu_model=<name>``, ``?resource=``,
    ``?term=``, ``?tax_category=<code>``.
    """

    serializer_class = PriceListItemSerializer
    filterset_class = PriceListItemFilter
    ordering_fields = ["list_unit_price", "resource", "term"]

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # schema generation: no URL kwargs
            return PriceListItem.objects.none()
        return _items().filter(price_list_id=parent_pk(self.kwargs["price_list_pk"]))

    def get_price_list(self) -> PriceList:
        if not hasattr(self, "_price_list"):
            self._price_list = get_object_or_404(PriceList, pk=parent_pk(self.kwargs["price_list_pk"]))
        return self._price_list

    def get_serializer_context(self):
        context = super().get_serializer_context()
        if "price_list_pk" in self.kwargs and not getattr(self, "swagger_fake_view", False):
            context["price_list"] = self.get_price_list()
        return context

    def list(self, request, *args, **kwargs):
        self.get_price_list()
        return super().list(request, *args, **kwargs)

    def perform_create(self, serializer):
        serializer.save(price_list=self.get_price_list())
