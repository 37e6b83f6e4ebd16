"""Routes of ``/api/v1/`` (SPEC §9). Resources are looked up by id; natural keys are filters."""

from django.urls import include, path, re_path
from rest_framework.routers import DefaultRouter

from apps.api.v1.views.auth import ObtainTokenView
from apps.api.v1.views.customers import CustomerViewSet
from apps.api.v1.views.inventory import GpuModelViewSet, ServerCardViewSet, ServerViewSet
from apps.api.v1.views.pricing import PriceListItemViewSet, PriceListViewSet
from apps.api.v1.views.providers import ProviderViewSet, SiteViewSet

router = DefaultRouter()
router.register("providers", ProviderViewSet, basename="provider")
router.register("sites", SiteViewSet, basename="site")
router.register("gpu-models", GpuModelViewSet, basename="gpu-model")
router.register("servers", ServerViewSet, basename="server")
router.register("customers", CustomerViewSet, basename="customer")
router.register("price-lists", PriceListViewSet, basename="price-list")

_PARENT = r"(?P<{}>[^/.]+)"
server_cards = ServerCardViewSet.as_view({"get": "list", "post": "create"})
price_list_items = PriceListItemViewSet.as_view({"get": "list", "post": "create"})
price_list_item = PriceListItemViewSet.as_view(
    {"get": "retrieve", "patch": "partial_update", "delete": "destroy"}
)

urlpatterns = [
    path("auth/token/", ObtainTokenView.as_view(), name="api-token"),
    re_path(rf"^servers/{_PARENT.format('server_pk')}/cards/$", server_cards, name="server-cards"),
    re_path(
        rf"^price-lists/{_PARENT.format('price_list_pk')}/items/$", price_list_items, name="price-list-items"
    ),
    re_path(
        rf"^price-lists/{_PARENT.format('price_list_pk')}/items/(?P<pk>[^/.]+)/$",
        price_list_item,
        name="price-list-item",
    ),
    path("", include(router.urls)),
]
