"""Voucher programmes and vouchers (docs/vouchers.md#programmes): the redemption report and the claim pack.

Staff act through their model permissions, one per action; customer portal users read their own
customers' vouchers (with the ledger) and download claim packs for them, nothing else.
"""

from __future__ import annotations

import django_filters as filters
from django.http import HttpResponse
from django.utils import timezone
from django.utils.dateparse import parse_date
from django.utils.translation import gettext
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.filters import OrderingFilter
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.response import Response

from apps.api.filters import SearchFilter
from apps.api.v1.filters import StrictFilterBackend
from apps.api.v1.serializers.vouchers import (
    ClaimSerializer,
    RedemptionReportSerializer,
    VoucherCreateSerializer,
    VoucherDetailSerializer,
    VoucherLedgerEntrySerializer,
    VoucherProgrammeSerializer,
    VoucherSerializer,
)
from apps.billing.models import Voucher, VoucherFlow, VoucherProgramme, VoucherStatus
from apps.billing.vouchers import services as services
from apps.billing.vouchers.selectors import voucher_list, voucher_programme_list

from .base import READ_ERRORS, WRITE_ERRORS
from .billing import BillingPermissions


class ZipRenderer(BaseRenderer):
    """Lets ``Accept: application/zip`` reach the claim pack; errors still render as JSON."""

    media_type = "application/zip"
    format = "zip"
    charset = None
    render_style = "binary"

    def render(self, data, accepted_media_type=None, renderer_context=None):
        return data if isinstance(data, bytes) else JSONRenderer().render(data)


class VoucherProgrammeFilter(filters.FilterSet):
    code = filters.CharFilter()
    flow = filters.ChoiceFilter(choices=VoucherFlow.choices)

    class Meta:
        model = VoucherProgramme
        fields = ["code", "flow", "currency"]


class VoucherFilter(filters.FilterSet):
    customer = filters.CharFilter(field_name="customer__code", help_text="Customer code.")
    programme = filters.CharFilter(field_name="programme__code", help_text="Programme code.")
    status = filters.ChoiceFilter(choices=VoucherStatus.choices)
    number = filters.CharFilter(help_text="VCH-YYYY-NNNNNN")

    class Meta:
        model = Voucher
        fields = ["customer", "programme", "status", "number"]


FILTER_BACKENDS = [StrictFilterBackend, SearchFilter, OrderingFilter]
PERIOD_PARAMETERS = [
    OpenApiParameter("period", str, description="YYYY-MM (or give date_from and date_to)."),
    OpenApiParameter("date_from", OpenApiTypes.DATE),
    OpenApiParameter("date_to", OpenApiTypes.DATE, description="Inclusive."),
]


def _date(request, name: str):
    value = request.query_params.get(name)
    if not value:
        return None
    try:
        parsed = parse_date(value)
    except ValueError:
        parsed = None
    if parsed is None:
        raise ValidationError({name: [gettext("Expected a date YYYY-MM-DD.")]})
    return parsed


@extend_schema_view(
    list=extend_schema(responses={200: VoucherProgrammeSerializer(many=True), **READ_ERRORS}),
    retrieve=extend_schema(responses={200: VoucherProgrammeSerializer, **READ_ERRORS}),
    create=extend_schema(responses={201: VoucherProgrammeSerializer, **WRITE_ERRORS}),
    partial_update=extend_schema(responses={200: VoucherProgrammeSerializer, **WRITE_ERRORS}),
)
class VoucherProgrammeViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    viewsets.GenericViewSet,
):
    """Voucher programmes (算力券项目): issuer, flow (``supplier_side`` | ``customer_claim``),
    coverage, caps and eligibility rules. Filter by ``?code=``, ``?flow=``, ``?currency=``.
    ``/redemptions/?period=YYYY-MM`` is the report the platform files with the issuer."""

    http_method_names = ["get", "post", "patch", "head", "options"]
    serializer_class = VoucherProgrammeSerializer
    permission_classes = [BillingPermissions]
    action_permissions = {
        "list": ["billing.view_voucherprogramme"],
        "retrieve": ["billing.view_voucherprogramme"],
        "redemptions": ["billing.view_voucherprogramme", "billing.view_voucher"],
        "create": ["billing.add_voucherprogramme"],
        "partial_update": ["billing.change_voucherprogramme"],
    }
    filterset_class = VoucherProgrammeFilter
    filter_backends = FILTER_BACKENDS
    search_fields = ["code", "name", "issuer"]
    ordering_fields = ["code", "valid_from", "valid_to"]
    ordering = ["-valid_from", "code"]

    def get_queryset(self):
        return voucher_programme_list()

    def perform_create(self, serializer):
        data = dict(serializer.validated_data)
        serializer.instance = services.voucher_programme_create(actor=self.request.user, **data)

    def perform_update(self, serializer):
        serializer.instance = services.voucher_programme_update(
            programme=serializer.instance, actor=self.request.user, **serializer.validated_data
        )

    @extend_schema(parameters=PERIOD_PARAMETERS, responses={200: RedemptionReportSerializer, **READ_ERRORS})
    @action(detail=True, methods=["get"])
    def redemptions(self, request, pk=None):
        """Every redemption and reversal of the programme in a period, per customer and in total."""
        report = services.voucher_redemption_report(
            programme=self.get_object(),
            period=request.query_params.get("period"),
            date_from=_date(request, "date_from"),
            date_to=_date(request, "date_to"),
        )
        return Response(RedemptionReportSerializer(report).data)


ZIP_RESPONSE = {
    (200, "application/zip"): OpenApiResponse(OpenApiTypes.BINARY, description="The claim pack."),
    **READ_ERRORS,
    400: WRITE_ERRORS[400],
}


@extend_schema_view(
    list=extend_schema(responses={200: VoucherSerializer(many=True), **READ_ERRORS}),
    retrieve=extend_schema(responses={200: VoucherDetailSerializer, **READ_ERRORS}),
    create=extend_schema(
        request=VoucherCreateSerializer, responses={201: VoucherDetailSerializer, **WRITE_ERRORS}
    ),
)
class VoucherViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.CreateModelMixin, viewsets.GenericViewSet
):
    """Vouchers (算力券) ``VCH-YYYY-NNNNNN``; the detail shows the ledger of every movement.
    Filter by ``?customer=<code>``, ``?programme=<code>``, ``?status=``, ``?number=``.

    ``/claim-pack/?invoices=1,2`` is the ZIP a customer files with a ``customer_claim``
    programme; ``/claims/`` records a filed claim; ``/expire/`` ends a voucher now.
    """

    serializer_class = VoucherSerializer
    permission_classes = [BillingPermissions]
    portal_readable = True
    action_permissions = {
        "list": ["billing.view_voucher"],
        "retrieve": ["billing.view_voucher"],
        "claim_pack": ["billing.view_voucher"],
        "create": ["billing.add_voucher"],
        "claims": ["billing.change_voucher"],
        "expire": ["billing.expire_voucher"],
    }
    filterset_class = VoucherFilter
    filter_backends = FILTER_BACKENDS
    search_fields = ["number", "customer__code", "customer__name", "programme__code"]
    ordering_fields = ["issued_at", "valid_to", "balance"]
    ordering = ["-issued_at", "-pk"]

    def get_queryset(self):
        return voucher_list(user=self.request.user, with_ledger=self.action == "retrieve")

    def get_serializer_class(self):
        return VoucherDetailSerializer if self.action == "retrieve" else VoucherSerializer

    def _render(self, voucher: Voucher, status_code: int = status.HTTP_200_OK) -> Response:
        voucher = voucher_list(user=self.request.user, with_ledger=True).get(pk=voucher.pk)
        return Response(VoucherDetailSerializer(voucher).data, status=status_code)

    def create(self, request, *args, **kwargs):
        serializer = VoucherCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        voucher = services.voucher_issue(actor=request.user, now=timezone.now(), **serializer.validated_data)
        return self._render(voucher, status.HTTP_201_CREATED)

    @extend_schema(
        parameters=[OpenApiParameter("invoices", str, required=True, description="Invoice ids, e.g. 1,2.")],
        responses=ZIP_RESPONSE,
    )
    @action(detail=True, methods=["get"], url_path="claim-pack", renderer_classes=[JSONRenderer, ZipRenderer])
    def claim_pack(self, request, pk=None):
        """Invoice PDFs, contract summaries, the usage delivery report (CSV) and the claim summary
        with the claimable amount, zipped. Reads only: nothing changes."""
        voucher = self.get_object()
        raw = request.query_params.get("invoices", "")
        try:
            ids = [int(part) for part in raw.split(",") if part.strip()]
        except ValueError:
            ids = None
        if not ids or any(i <= 0 or i > 2**63 - 1 for i in ids):
            raise ValidationError(
                {"invoices": [gettext("Give invoice ids separated by commas, e.g. ?invoices=1,2.")]}
            )
        content = services.claim_pack(
            customer=voucher.customer,
            programme=voucher.programme,
            invoices=ids,
            now=timezone.now(),
            voucher=voucher,
        )
        response = HttpResponse(content, content_type="application/zip")
        response["Content-Disposition"] = f'attachment; filename="claim-pack-{voucher.number}.zip"'
        return response

    @extend_schema(
        request=ClaimSerializer,
        # A plain list (not a page): the ledger entries the claim wrote.
        responses={
            201: OpenApiResponse(
                {"type": "array", "items": {"$ref": "#/components/schemas/VoucherLedgerEntry"}},
                description="The ledger entries the claim wrote, one per invoice.",
            ),
            **WRITE_ERRORS,
        },
    )
    @action(detail=True, methods=["post"])
    def claims(self, request, pk=None):
        """Record that the customer filed a claim for these (paid) invoices: the claimable amount
        leaves the voucher; each invoice can be claimed once per programme."""
        voucher = self.get_object()
        serializer = ClaimSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        entries = services.voucher_claim_record(
            voucher=voucher,
            invoices=serializer.validated_data["invoices"],
            now=timezone.now(),
            actor=request.user,
        )
        return Response(VoucherLedgerEntrySerializer(entries, many=True).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=None, responses={200: VoucherDetailSerializer, **WRITE_ERRORS})
    @action(detail=True, methods=["post"])
    def expire(self, request, pk=None):
        """End the voucher now; its balance leaves with an ``expire`` ledger entry."""
        voucher = services.voucher_expire(voucher=self.get_object(), now=timezone.now(), actor=request.user)
        return self._render(voucher)
