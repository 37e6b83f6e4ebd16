"""More of the business through the API, with the admin's permissions (docs/api.md#more-resources):

- ``/supply-agreements/``: what the platform pays providers. Staff with the providers app's model
  permissions read and write them (operations manage them, finance and account managers read);
  they are costs, so customer users are refused (403).
- ``/payments/`` and ``/credit-entries/``: payments of invoices and the movements of customers'
  credit, read-only (they are written by recording a transfer, Stripe, credit notes and refunds).
  Staff with ``billing.view_payment`` / ``billing.view_creditentry`` read all; a customer user
  reads their customer's (payments of issued invoices only).
- ``/memberships/``: portal users of customers. Staff with ``accounts.view_customermembership``
  read all; a customer user reads their customer's; a customer's admin invites a colleague
  (``apps.accounts.services.membership_invite``; anybody else 403).
"""

from __future__ import annotations

import django_filters as filters
from django.db.models import Q, QuerySet
from django.utils.translation import gettext
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import mixins, status, viewsets
from rest_framework.exceptions import ValidationError
from rest_framework.filters import OrderingFilter
from rest_framework.permissions import SAFE_METHODS, BasePermission
from rest_framework.response import Response

from apps.accounts import services as account_services
from apps.accounts.models import CustomerMembership
from apps.api.v1.filters import StrictFilterBackend
from apps.api.v1.serializers.resources import (
    CreditEntryListSerializer,
    MembershipInviteSerializer,
    MembershipSerializer,
    PaymentListSerializer,
    SupplyAgreementSerializer,
)
from apps.billing.models import CreditEntry, InvoiceStatus, Payment
from apps.billing.payments.models import CreditKind
from apps.core.choices import Currency, LeaseTerm, ResourceKind
from apps.customers.models import Customer
from apps.providers.models import SupplyAgreement

from .base import READ_ERRORS, WRITE_ERRORS, ApiViewSet, crud_docs

# ---------------------------------------------------------------------------------------- filters


class SupplyAgreementFilter(filters.FilterSet):
    provider = filters.CharFilter(field_name="provider__code", help_text="Provider code.")
    gpu_model = filters.CharFilter(field_name="gpu_model__name", help_text="GPU model name.")
    resource = filters.ChoiceFilter(choices=ResourceKind.choices)
    term = filters.ChoiceFilter(choices=LeaseTerm.choices)
    currency = filters.ChoiceFilter(choices=Currency.choices)
    valid_on = filters.DateFilter(method="filter_valid_on", help_text="In force on this date (YYYY-MM-DD).")

    class Meta:
        model = SupplyAgreement
        fields = ["provider", "gpu_model", "resource", "term", "currency", "valid_on"]

    def filter_valid_on(self, queryset, name, value):
        return queryset.filter(Q(valid_to__isnull=True) | Q(valid_to__gte=value), valid_from__lte=value)


class PaymentFilter(filters.FilterSet):
    customer = filters.CharFilter(field_name="invoice__customer__code", help_text="Customer code.")
    invoice = filters.NumberFilter(field_name="invoice_id", min_value=1, max_value=2**63 - 1)
    method = filters.CharFilter(help_text="bank_transfer, stripe, credit, …")
    currency = filters.ChoiceFilter(choices=Currency.choices)

    class Meta:
        model = Payment
        fields = ["customer", "invoice", "method", "currency"]


class CreditEntryFilter(filters.FilterSet):
    customer = filters.CharFilter(field_name="customer__code", help_text="Customer code.")
    kind = filters.ChoiceFilter(choices=CreditKind.choices)
    currency = filters.ChoiceFilter(choices=Currency.choices)

    class Meta:
        model = CreditEntry
        fields = ["customer", "kind", "currency"]


class MembershipFilter(filters.FilterSet):
    customer = filters.CharFilter(field_name="customer__code", help_text="Customer code.")
    role = filters.ChoiceFilter(choices=CustomerMembership.Role.choices)

    class Meta:
        model = CustomerMembership
        fields = ["customer", "role"]


# ---------------------------------------------------------------------------------------- permissions


class StaffPermsOrCustomerReads(BasePermission):
    """Staff: the view's ``staff_permissions`` for the method; customer users (members of a
    customer): reads, and the writes the view's ``customer_writes`` allow (the service checks the
    membership's role); partner systems and anybody else: refused."""

    def has_permission(self, request, view) -> bool:
        user = request.user
        if not (user and user.is_authenticated) or not hasattr(user, "memberships"):
            return False
        if user.is_staff:
            needed = view.staff_permissions.get(request.method)
            return needed is not None and user.has_perms(needed)
        if request.method in SAFE_METHODS or request.method in getattr(view, "customer_writes", ()):
            return user.memberships.exists()
        return False


def _reads(perm: str) -> dict[str, list[str]]:
    return {"GET": [perm], "HEAD": [perm], "OPTIONS": []}


# ---------------------------------------------------------------------------------------- views


@extend_schema_view(**crud_docs(SupplyAgreementSerializer))
class SupplyAgreementViewSet(ApiViewSet):
    """Supply agreements: the cost per unit of a provider's GPU model, resource and term, from
    ``valid_from`` (to ``valid_to``). Filter by ``?provider=<code>``, ``?gpu_model=<name>``,
    ``?resource=``, ``?term=``, ``?currency=``, ``?valid_on=YYYY-MM-DD``. Staff only (costs)."""

    queryset = SupplyAgreement.objects.select_related("provider", "gpu_model")
    serializer_class = SupplyAgreementSerializer
    filterset_class = SupplyAgreementFilter
    search_fields = ["provider__code", "gpu_model__name"]
    ordering_fields = ["valid_from", "cost_unit_price", "created_at"]


@extend_schema_view(**crud_docs(PaymentListSerializer, actions=("list", "retrieve")))
class PaymentViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Payments of invoices, newest first. Filter by ``?customer=<code>``, ``?invoice=<id>``,
    ``?method=``, ``?currency=``. Record a bank transfer with ``POST /invoices/{id}/payments/``."""

    serializer_class = PaymentListSerializer
    permission_classes = [StaffPermsOrCustomerReads]
    staff_permissions = _reads("billing.view_payment")
    filter_backends = [StrictFilterBackend, OrderingFilter]
    filterset_class = PaymentFilter
    ordering_fields = ["received_at", "amount"]
    ordering = ["-received_at", "-id"]

    def get_queryset(self) -> QuerySet[Payment]:
        payments = Payment.objects.select_related("invoice__customer", "recorded_by")
        if getattr(self, "swagger_fake_view", False):  # the schema generator's anonymous request
            return payments.none()
        user = self.request.user
        if user.is_staff:
            return payments
        return payments.filter(invoice__customer__memberships__user=user).exclude(
            invoice__status=InvoiceStatus.DRAFT
        )


@extend_schema_view(**crud_docs(CreditEntryListSerializer, actions=("list", "retrieve")))
class CreditEntryViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Movements of customers' credit (overpayments, credit applied to invoices, refunds, credit
    notes), newest first. Filter by ``?customer=<code>``, ``?kind=``, ``?currency=``; one
    customer's balance is ``GET /customers/{id}/credit/``."""

    serializer_class = CreditEntryListSerializer
    permission_classes = [StaffPermsOrCustomerReads]
    staff_permissions = _reads("billing.view_creditentry")
    filter_backends = [StrictFilterBackend, OrderingFilter]
    filterset_class = CreditEntryFilter
    ordering_fields = ["created_at", "amount"]
    ordering = ["-created_at", "-id"]

    def get_queryset(self) -> QuerySet[CreditEntry]:
        entries = CreditEntry.objects.select_related("customer", "invoice", "credit_note", "created_by")
        if getattr(self, "swagger_fake_view", False):  # the schema generator's anonymous request
            return entries.none()
        user = self.request.user
        return entries if user.is_staff else entries.filter(customer__memberships__user=user)


@extend_schema_view(
    list=extend_schema(responses={200: MembershipSerializer(many=True), **READ_ERRORS}),
    retrieve=extend_schema(responses={200: MembershipSerializer, **READ_ERRORS}),
    create=extend_schema(
        request=MembershipInviteSerializer,
        responses={201: MembershipSerializer, **WRITE_ERRORS},
        description="A customer's admin invites a colleague: a new address gets an e-mail to set a "
        "password. Anybody else answers 403; a member already there 409.",
    ),
)
class MembershipViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.CreateModelMixin, viewsets.GenericViewSet
):
    """Portal users of customers and their roles. Filter by ``?customer=<code>``, ``?role=``."""

    serializer_class = MembershipSerializer
    permission_classes = [StaffPermsOrCustomerReads]
    staff_permissions = _reads("accounts.view_customermembership")
    customer_writes = ("POST",)
    filter_backends = [StrictFilterBackend, OrderingFilter]
    filterset_class = MembershipFilter
    ordering_fields = ["created_at", "role"]
    ordering = ["customer__code", "user__username"]

    def get_queryset(self) -> QuerySet[CustomerMembership]:
        memberships = CustomerMembership.objects.select_related("customer", "user")
        if getattr(self, "swagger_fake_view", False):  # the schema generator's anonymous request
            return memberships.none()
        user = self.request.user
        if user.is_staff:
            return memberships
        return memberships.filter(customer__memberships__user=user)

    def create(self, request, *args, **kwargs):
        serializer = MembershipInviteSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        own = Customer.objects.filter(memberships__user=request.user)
        if "customer" in data:
            customer = own.filter(code=data["customer"]).first()
        else:
            customers = list(own[:2])
            customer = customers[0] if len(customers) == 1 else None
        if customer is None:
            raise ValidationError({"customer": [gettext("Give the code of a customer you are a member of.")]})
        membership = account_services.membership_invite(
            customer=customer,
            email=data["email"],
            display_name=data["display_name"],
            role=data["role"],
            actor=request.user,
            site_url=request.build_absolute_uri("/"),
        )
        membership = self.get_queryset().get(pk=membership.pk)
        return Response(MembershipSerializer(membership).data, status=status.HTTP_201_CREATED)
