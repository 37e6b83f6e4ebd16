"""Routes of ``/api/v1/`` (docs/api.md#resources). Resources are looked up by id; natural keys are filters."""

from django.urls import include, path, re_path
from rest_framework.routers import DefaultRouter

from apps.api.v1.views.agent import AgentIncidentView, AgentUsageView
from apps.api.v1.views.auth import ObtainTokenView
from apps.api.v1.views.billing import (
    BillingRunViewSet,
    CreditNoteViewSet,
    InvoiceViewSet,
    UpcomingInvoiceView,
)
from apps.api.v1.views.contract_lines import ContractLineView
from apps.api.v1.views.contracts import ContractViewSet
from apps.api.v1.views.customers import CustomerViewSet
from apps.api.v1.views.inventory import GpuModelViewSet, ServerCardViewSet, ServerViewSet
from apps.api.v1.views.payments import CustomerCreditView
from apps.api.v1.views.pricing import PriceListItemViewSet, PriceListViewSet
from apps.api.v1.views.providers import ProviderViewSet, SiteViewSet
from apps.api.v1.views.resources import (
    CreditEntryViewSet,
    MembershipViewSet,
    PaymentViewSet,
    SupplyAgreementViewSet,
)
from apps.api.v1.views.settlements import SettlementViewSet
from apps.api.v1.views.usage import UsageRecordView, UsageView
from apps.api.v1.views.vouchers import VoucherProgrammeViewSet, VoucherViewSet
from apps.api.v1.views.webhooks import WebhookEndpointViewSet

router = DefaultRouter()
router.register("providers", ProviderViewSet, basename="provider")
router.register("sites", SiteViewSet, basename="site")
router.register("gpu-models", GpuModelViewSet, basename="gpu-model")
router.register("servers", ServerViewSet, basename="server")
router.register("customers", CustomerViewSet, basename="customer")
router.register("price-lists", PriceListViewSet, basename="price-list")
router.register("invoices", InvoiceViewSet, basename="invoice")
router.register("credit-notes", CreditNoteViewSet, basename="credit-note")
router.register("billing-runs", BillingRunViewSet, basename="billing-run")
router.register("contracts", ContractViewSet, basename="contract")
router.register("voucher-programmes", VoucherProgrammeViewSet, basename="voucher-programme")
router.register("vouchers", VoucherViewSet, basename="voucher")
router.register("settlements", SettlementViewSet, basename="settlement")
router.register("supply-agreements", SupplyAgreementViewSet, basename="supply-agreement")
router.register("payments", PaymentViewSet, basename="payment")
router.register("credit-entries", CreditEntryViewSet, basename="credit-entry")
router.register("memberships", MembershipViewSet, basename="membership")
router.register("webhook-endpoints", WebhookEndpointViewSet, basename="webhook-endpoint")

_PARENT = r"(?P<{}>[^/.]+)"
server_cards = ServerCardViewSet.as_view({"get": "list", "post": "create"})
price_list_items = PriceListItemViewSet.as_view({"get": "list", "post": "create"})
price_list_item = PriceListItemViewSet.as_view(
    {"get": "retrieve", "patch": "partial_update", "delete": "destroy"}
)

urlpatterns = [
    path("auth/token/", ObtainTokenView.as_view(), name="api-token"),
    path("usage/", UsageView.as_view(), name="usage"),
    path("agent/usage/", AgentUsageView.as_view(), name="agent-usage"),
    path("agent/incidents/", AgentIncidentView.as_view(), name="agent-incidents"),
    re_path(r"^usage/(?P<event_id>.+)/$", UsageRecordView.as_view(), name="usage-record"),
    re_path(rf"^servers/{_PARENT.format('server_pk')}/cards/$", server_cards, name="server-cards"),
    re_path(
        rf"^customers/{_PARENT.format('customer_pk')}/upcoming-invoice/$",
        UpcomingInvoiceView.as_view(),
        name="customer-upcoming-invoice",
    ),
    re_path(
        rf"^customers/{_PARENT.format('customer_pk')}/credit/$",
        CustomerCreditView.as_view(),
        name="customer-credit",
    ),
    re_path(
        rf"^contracts/{_PARENT.format('pk')}/lines/{_PARENT.format('line_pk')}/$",
        ContractLineView.as_view(),
        name="contract-line",
    ),
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
