"""Provider settlement statements (docs/settlements.md#statements): list, detail with lines,
build, confirm, pay, margins.

Staff by their permissions; a partner system (API key) lists and reads its own provider's
statements, without the platform's revenue and margin or the names of staff
(docs/security.md#roles).
"""

from __future__ import annotations

import django_filters as filters
from django.utils import timezone
from django.utils.translation import gettext
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import mixins, viewsets
from rest_framework.authentication import SessionAuthentication, TokenAuthentication
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.filters import OrderingFilter
from rest_framework.response import Response

from apps.api.authentication import PartnerAPIKeyAuthentication
from apps.api.permissions import is_partner
from apps.api.v1.filters import StrictFilterBackend, period_filter
from apps.api.v1.serializers.settlements import (
    MarginReportSerializer,
    SettlementBuildResultSerializer,
    SettlementBuildSerializer,
    SettlementDetailSerializer,
    SettlementPaySerializer,
    SettlementSerializer,
)
from apps.billing.models import SettlementStatement, SettlementStatus
from apps.billing.settlements import services as services
from apps.billing.settlements.selectors import settlement_list
from apps.core.choices import Currency
from apps.providers.models import Provider

from .base import READ_ERRORS, WRITE_ERRORS
from .billing import BillingPermissions

VIEW = ["billing.view_settlementstatement"]
# What a provider does not see of its own statements: the platform's side and staff names.
PARTNER_HIDDEN = {"revenue_net_amount", "margin_amount", "confirmed_by", "paid_by"}
PARTNER_HIDDEN_LINE = {"revenue_net_amount", "margin_amount", "invoice"}


def _for_partner(data: dict) -> dict:
    shown = {key: value for key, value in data.items() if key not in PARTNER_HIDDEN}
    if "lines" in shown:
        shown["lines"] = [
            {key: value for key, value in line.items() if key not in PARTNER_HIDDEN_LINE}
            for line in shown["lines"]
        ]
    return shown


class SettlementFilter(filters.FilterSet):
    provider = filters.CharFilter(field_name="provider__code", help_text="Provider code.")
    period = period_filter()
    status = filters.ChoiceFilter(choices=SettlementStatus.choices)
    currency = filters.ChoiceFilter(choices=Currency.choices)

    class Meta:
        model = SettlementStatement
        fields = ["provider", "period", "status", "currency"]


@extend_schema_view(
    list=extend_schema(responses={200: SettlementSerializer(many=True), **READ_ERRORS}),
    retrieve=extend_schema(responses={200: SettlementDetailSerializer, **READ_ERRORS}),
)
class SettlementViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Monthly statements per provider (``draft`` → ``confirmed`` → ``paid``) with the cost of
    each share of a customer invoice line. Filter by ``?provider=<code>``, ``?period=``,
    ``?status=``, ``?currency=``. ``/build/`` refreshes a period's drafts; ``/margins/`` is the
    margin report."""

    serializer_class = SettlementSerializer
    permission_classes = [BillingPermissions]
    partner_readable = True  # list and retrieve, the key's provider only
    authentication_classes = [TokenAuthentication, SessionAuthentication, PartnerAPIKeyAuthentication]
    action_permissions = {
        "list": VIEW,
        "retrieve": VIEW,
        "margins": VIEW,
        "build": ["billing.change_settlementstatement"],
        "confirm": ["billing.confirm_settlementstatement"],
        "pay": ["billing.pay_settlementstatement"],
    }
    filterset_class = SettlementFilter
    filter_backends = [StrictFilterBackend, OrderingFilter]
    ordering_fields = ["period", "cost_amount", "margin_amount"]
    ordering = ["-period", "provider__code", "currency"]

    def get_queryset(self):
        statements = settlement_list(with_lines=self.action == "retrieve")
        if is_partner(self.request):
            statements = statements.filter(provider=self.request.user.provider)
        return statements

    def finalize_response(self, request, response, *args, **kwargs):
        if is_partner(request) and response.status_code == 200 and isinstance(response.data, dict):
            if self.action == "list":
                response.data["results"] = [_for_partner(row) for row in response.data["results"]]
            elif self.action == "retrieve":
                response.data = _for_partner(response.data)
        return super().finalize_response(request, response, *args, **kwargs)

    def get_serializer_class(self):
        return SettlementDetailSerializer if self.action == "retrieve" else SettlementSerializer

    def _render(self, statement: SettlementStatement) -> Response:
        return Response(
            SettlementDetailSerializer(settlement_list(with_lines=True).get(pk=statement.pk)).data
        )

    @extend_schema(
        request=SettlementBuildSerializer, responses={200: SettlementBuildResultSerializer, **WRITE_ERRORS}
    )
    @action(detail=False, methods=["post"])
    def build(self, request):
        """Create or refresh the drafts of a period from its issued invoices (idempotent)."""
        serializer = SettlementBuildSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        result = services.settlement_build(
            period=serializer.validated_data["period"],
            provider=serializer.validated_data.get("provider"),
            now=timezone.now(),
            actor=request.user,
        )
        return Response(SettlementBuildResultSerializer(result).data)

    @extend_schema(request=None, responses={200: SettlementDetailSerializer, **WRITE_ERRORS})
    @action(detail=True, methods=["post"])
    def confirm(self, request, pk=None):
        """Draft → confirmed: final; refused while a line has no cost (no supply agreement)."""
        statement = services.settlement_confirm(
            statement=self.get_object(), actor=request.user, now=timezone.now()
        )
        return self._render(statement)

    @extend_schema(
        request=SettlementPaySerializer, responses={200: SettlementDetailSerializer, **WRITE_ERRORS}
    )
    @action(detail=True, methods=["post"])
    def pay(self, request, pk=None):
        """Confirmed → paid, with the bank reference of the payment to the provider."""
        serializer = SettlementPaySerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        statement = services.settlement_mark_paid(
            statement=self.get_object(),
            actor=request.user,
            now=timezone.now(),
            reference=serializer.validated_data["reference"],
        )
        return self._render(statement)

    @extend_schema(
        parameters=[
            OpenApiParameter("period", str, description="YYYY-MM (or period_from and period_to)."),
            OpenApiParameter("period_from", str),
            OpenApiParameter("period_to", str),
            OpenApiParameter("group_by", str, enum=list(services.GROUPS), default="provider"),
            OpenApiParameter("provider", str, description="Provider code."),
        ],
        responses={200: MarginReportSerializer, **READ_ERRORS},
    )
    @action(detail=False, methods=["get"])
    def margins(self, request):
        """Net revenue − provider cost per contract, provider, GPU model or month."""
        params = request.query_params
        provider = None
        if params.get("provider"):
            provider = Provider.objects.filter(code=params["provider"]).first()
            if provider is None:
                raise ValidationError(
                    {
                        "provider": [
                            gettext("Unknown provider '%(code)s'.") % {"code": params["provider"][:60]}
                        ]
                    }
                )
        report = services.margin_report(
            period=params.get("period"),
            period_from=params.get("period_from"),
            period_to=params.get("period_to"),
            group_by=params.get("group_by", "provider"),
            provider=provider,
        )
        return Response(MarginReportSerializer(report).data)
