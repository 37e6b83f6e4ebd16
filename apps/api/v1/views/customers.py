"""Customers: staff by model permission, portal users only their own (``customer_list``)."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema_view

from apps.api.permissions import CustomerScopedPermissions
from apps.api.v1.filters import CustomerFilter
from apps.api.v1.serializers.customers import CustomerSerializer
from apps.customers.selectors import customer_list
from apps.customers.services import customer_create, customer_update

from .base import NO_DELETE_METHODS, ApiViewSet, crud_docs


@extend_schema_view(**crud_docs(CustomerSerializer, actions=("list", "retrieve", "create", "partial_update")))
class CustomerViewSet(ApiViewSet):
    """Customers, looked up by id; filter by ``?code=`` (the natural key), ``?invoice_type=``,
    ``?currency=``, ``?auto_issue=``.

    A customer portal user sees only the customers they belong to (a foreign id answers 404) and
    writes nothing. Customers are not deleted through the API (invoices refer to them).
    """

    http_method_names = NO_DELETE_METHODS
    permission_classes = [CustomerScopedPermissions]
    serializer_class = CustomerSerializer
    filterset_class = CustomerFilter
    search_fields = ["code", "name", "tax_id"]
    ordering_fields = ["code", "name", "created_at"]

    def get_queryset(self):
        return customer_list(user=self.request.user)

    def perform_create(self, serializer):
        serializer.instance = customer_create(actor=self.request.user, **serializer.validated_data)

    def perform_update(self, serializer):
        serializer.instance = customer_update(
            customer=serializer.instance, actor=self.request.user, **serializer.validated_data
        )
