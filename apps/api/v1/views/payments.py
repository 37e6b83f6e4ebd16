"""A customer's credit (docs/invoices.md#customer-credit): ``GET /customers/{id}/credit/``."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.exceptions import NotFound
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.api.v1.serializers.payments import CustomerCreditSerializer
from apps.api.v1.views.billing import BillingPermissions
from apps.billing.payments.selectors import customer_credit_balance, customer_credit_entries
from apps.customers.selectors import customer_get

from .base import READ_ERRORS, parent_pk


class CustomerCreditView(APIView):
    """The customer's credit balance (in their currency) and every ledger entry, newest first.
    Customers see their own; staff need ``billing.view_creditentry``."""

    permission_classes = [BillingPermissions]
    portal_readable = True
    action = "retrieve"
    action_permissions = {"retrieve": ["billing.view_creditentry"]}

    @extend_schema(
        parameters=[OpenApiParameter("customer_pk", OpenApiTypes.INT, OpenApiParameter.PATH)],
        responses={200: CustomerCreditSerializer, **READ_ERRORS},
    )
    def get(self, request, customer_pk):
        customer = customer_get(user=request.user, pk=parent_pk(customer_pk))
        if customer is None:
            raise NotFound()
        body = {
            "customer": customer.code,
            "currency": customer.currency,
            "balance": customer_credit_balance(customer=customer),
            "entries": customer_credit_entries(customer=customer, currency=customer.currency),
        }
        return Response(CustomerCreditSerializer(body).data)
