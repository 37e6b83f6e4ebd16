"""Invoices, credit notes, payments, billing runs and the upcoming invoice (docs/invoices.md).

Staff act through their model permissions, one per action (issue, void, record payment, …);
customer portal users read their own customers' invoices and credit notes (a foreign id answers
404) and download their PDFs, and may do nothing else (403). Writes are one service call each.
"""

from __future__ import annotations

import django_filters as filters
from django.db.models import QuerySet
from django.http import HttpResponse
from django.shortcuts import get_object_or_404
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound
from rest_framework.filters import OrderingFilter
from rest_framework.permissions import SAFE_METHODS, BasePermission
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.api.filters import SearchFilter
from apps.api.permissions import is_partner
from apps.api.v1.filters import StrictFilterBackend, period_filter
from apps.api.v1.serializers.billing import (
    BankTransferSerializer,
    BillingRunCreateSerializer,
    BillingRunSerializer,
    CreditNoteCreateSerializer,
    CreditNoteSerializer,
    InvoiceSerializer,
    IssueSerializer,
    PaymentCreateSerializer,
    UpcomingInvoiceSerializer,
    VoidSerializer,
)
from apps.billing.invoicing import selectors
from apps.billing.invoicing.pdf import credit_note_pdf, invoice_pdf
from apps.billing.invoicing.services.issuing import credit_note_create, invoice_issue, invoice_void
from apps.billing.invoicing.services.preview import invoice_preview, preview_period
from apps.billing.invoicing.services.runs import billing_run_request
from apps.billing.models import (
    BillingRun,
    BillingRunStatus,
    CreditNote,
    Invoice,
    InvoiceStatus,
)
from apps.billing.payments.services.credit import bank_transfer_record
from apps.core.choices import Currency
from apps.core.db_router import ReplicaReadsMixin
from apps.customers.selectors import customer_get

from .base import READ_ERRORS, WRITE_ERRORS, parent_pk

# ------------------------------------------------------------------------------------ permissions


PARTNER_ACTIONS = {"list", "retrieve"}


class BillingPermissions(BasePermission):
    """Staff: the permissions the view names for the action (``action_permissions``); an action
    not named is refused. Customer portal users (members of a customer): reads only, and only on
    views that serve them (``portal_readable``); which rows they see is the view's queryset.
    Partner systems: list and detail on views that serve them (``partner_readable``), their own
    provider's rows only (the view's queryset).
    """

    def has_permission(self, request, view) -> bool:
        user = request.user
        if not (user and user.is_authenticated):
            return False
        if is_partner(request):
            return (
                getattr(view, "partner_readable", False) and getattr(view, "action", None) in PARTNER_ACTIONS
            )
        if user.is_staff:
            action = getattr(view, "action", None)
            perms = view.action_permissions.get(action, [] if action == "metadata" else None)
            return perms is not None and user.has_perms(perms)
        return (
            getattr(view, "portal_readable", False)
            and request.method in SAFE_METHODS
            and user.memberships.exists()
        )


class PDFRenderer(BaseRenderer):
    """Lets ``Accept: application/pdf`` reach the PDF actions; errors still render as JSON."""

    media_type = "application/pdf"
    format = "pdf"
    charset = None
    render_style = "binary"

    def render(self, data, accepted_media_type=None, renderer_context=None):
        if isinstance(data, bytes):
            return data
        return JSONRenderer().render(data)


PDF_RESPONSE = {
    (200, "application/pdf"): OpenApiResponse(OpenApiTypes.BINARY, description="The PDF."),
    **READ_ERRORS,
}


def _pdf(content: bytes, filename: str) -> HttpResponse:
    response = HttpResponse(content, content_type="application/pdf")
    response["Content-Disposition"] = f'inline; filename="{filename}"'
    return response


def _today():
    return selectors.billing_today(timezone.now())


# ---------------------------------------------------------------------------------------- filters


class InvoiceFilter(filters.FilterSet):
    customer = filters.CharFilter(field_name="customer__code", help_text="Customer code.")
    period = period_filter()
    status = filters.ChoiceFilter(choices=InvoiceStatus.choices)
    overdue = filters.BooleanFilter(method="filter_overdue", help_text="Issued, unpaid, past due.")
    currency = filters.ChoiceFilter(choices=Currency.choices)
    number = filters.CharFilter(help_text="INV-YYYY-NNNNNN")

    class Meta:
        model = Invoice
        fields = ["customer", "period", "status", "overdue", "currency", "number"]

    def filter_overdue(self, queryset: QuerySet, name: str, value: bool) -> QuerySet:
        q = selectors.overdue_q(_today())
        return queryset.filter(q) if value else queryset.exclude(q)


class CreditNoteFilter(filters.FilterSet):
    invoice = filters.NumberFilter(field_name="invoice_id", help_text="Invoice id.")
    customer = filters.CharFilter(field_name="invoice__customer__code", help_text="Customer code.")
    number = filters.CharFilter(help_text="CN-YYYY-NNNNNN")

    class Meta:
        model = CreditNote
        fields = ["invoice", "customer", "number"]


class BillingRunFilter(filters.FilterSet):
    period = period_filter()
    status = filters.ChoiceFilter(choices=BillingRunStatus.choices)

    class Meta:
        model = BillingRun
        fields = ["period", "status"]


# --------------------------------------------------------------------------------------- invoices

VIEW_INVOICE = ["billing.view_invoice"]


@extend_schema_view(
    list=extend_schema(responses={200: InvoiceSerializer(many=True), **READ_ERRORS}),
    retrieve=extend_schema(responses={200: InvoiceSerializer, **READ_ERRORS}),
)
class InvoiceViewSet(
    ReplicaReadsMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet
):
    """Invoices with their lines, looked up by id; filter by ``?customer=<code>``, ``?period=``,
    ``?status=``, ``?overdue=true``, ``?currency=``, ``?number=``.

    Invoices are drafted by billing runs and never written directly: drafts are issued
    (``/issue/``), issued ones voided (``/void/``) or corrected by credit notes; payments are
    recorded at ``/payments/``.
    """

    serializer_class = InvoiceSerializer
    permission_classes = [BillingPermissions]
    portal_readable = True
    action_permissions = {
        "list": VIEW_INVOICE,
        "retrieve": VIEW_INVOICE,
        "pdf": VIEW_INVOICE,
        "issue": ["billing.issue_invoice"],
        "void": ["billing.void_invoice"],
        "payments": ["billing.record_payment"],
    }
    filterset_class = InvoiceFilter
    filter_backends = [StrictFilterBackend, SearchFilter, OrderingFilter]
    search_fields = ["number", "customer__code", "customer__name"]
    ordering_fields = ["period", "number", "issued_on", "due_on", "total_amount"]
    ordering = ["-period", "customer__code", "currency", "pk"]

    def get_queryset(self):
        invoices = selectors.invoice_list(user=self.request.user)
        if not self.request.user.is_staff:  # drafts change until issued: customers get 404
            invoices = invoices.exclude(status=InvoiceStatus.DRAFT)
        return invoices

    def get_serializer_context(self):
        return {**super().get_serializer_context(), "today": _today()}

    def _render(self, invoice: Invoice, status_code: int = status.HTTP_200_OK) -> Response:
        invoice = self.get_queryset().get(pk=invoice.pk)
        return Response(self.get_serializer(invoice).data, status=status_code)

    @extend_schema(request=IssueSerializer, responses={200: InvoiceSerializer, **WRITE_ERRORS})
    @action(detail=True, methods=["post"])
    def issue(self, request, pk=None):
        """Draft → issued: the next gapless number ``INV-YYYY-NNNNNN``, issue and due dates, and
        the fapiao data frozen with the invoice. Before the period has ended, ``early_reason`` is
        required (409 ``period_not_ended`` without it) and kept on the invoice."""
        invoice = self.get_object()
        serializer = IssueSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        invoice = invoice_issue(
            invoice=invoice,
            actor=request.user,
            now=timezone.now(),
            early_reason=serializer.validated_data.get("early_reason", ""),
        )
        return self._render(invoice)

    @extend_schema(request=VoidSerializer, responses={200: InvoiceSerializer, **WRITE_ERRORS})
    @action(detail=True, methods=["post"])
    def void(self, request, pk=None):
        """Issued → void (no payments, no credit notes); the number stays used."""
        invoice = self.get_object()
        serializer = VoidSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        invoice = invoice_void(
            invoice=invoice,
            actor=request.user,
            reason=serializer.validated_data["reason"],
            now=timezone.now(),
        )
        return self._render(invoice)

    @extend_schema(responses=PDF_RESPONSE)
    @action(detail=True, methods=["get"], renderer_classes=[JSONRenderer, PDFRenderer])
    def pdf(self, request, pk=None):
        """The bilingual invoice PDF with the fapiao data; drafts are marked 草稿 DRAFT."""
        invoice = self.get_object()
        return _pdf(invoice_pdf(invoice), f"{invoice.number or f'draft-{invoice.pk}'}.pdf")

    @extend_schema(request=PaymentCreateSerializer, responses={201: BankTransferSerializer, **WRITE_ERRORS})
    @action(detail=True, methods=["post"])
    def payments(self, request, pk=None):
        """Record a bank transfer (对公转账); partial payments are allowed, the invoice is paid once
        payments cover it, and what exceeds the amount due becomes the customer's credit."""
        invoice = self.get_object()
        serializer = PaymentCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        now = timezone.now()
        taken = bank_transfer_record(
            invoice=invoice,
            amount=data["amount"],
            reference=data["reference"],
            received_at=data.get("received_at") or now,
            actor=request.user,
            now=now,
        )
        return Response(BankTransferSerializer(taken).data, status=status.HTTP_201_CREATED)


# ----------------------------------------------------------------------------------- credit notes


@extend_schema_view(
    list=extend_schema(responses={200: CreditNoteSerializer(many=True), **READ_ERRORS}),
    retrieve=extend_schema(responses={200: CreditNoteSerializer, **READ_ERRORS}),
    create=extend_schema(
        request=CreditNoteCreateSerializer, responses={201: CreditNoteSerializer, **WRITE_ERRORS}
    ),
)
class CreditNoteViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.CreateModelMixin, viewsets.GenericViewSet
):
    """Credit notes ``CN-YYYY-NNNNNN``: full (no ``amount``) or partial corrections of an issued
    invoice; filter by ``?invoice=<id>``, ``?customer=<code>``, ``?number=``."""

    serializer_class = CreditNoteSerializer
    permission_classes = [BillingPermissions]
    portal_readable = True
    action_permissions = {
        "list": ["billing.view_creditnote"],
        "retrieve": ["billing.view_creditnote"],
        "pdf": ["billing.view_creditnote"],
        "create": ["billing.add_creditnote"],
    }
    filterset_class = CreditNoteFilter
    filter_backends = [StrictFilterBackend, OrderingFilter]
    ordering_fields = ["issued_at", "number"]
    ordering = ["-issued_at", "-pk"]

    def get_queryset(self):
        return selectors.credit_note_list(user=self.request.user)

    def create(self, request, *args, **kwargs):
        serializer = CreditNoteCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        invoice = get_object_or_404(
            selectors.invoice_list(user=request.user, with_lines=False), pk=data["invoice"]
        )
        note = credit_note_create(
            invoice=invoice,
            actor=request.user,
            reason=data["reason"],
            amount=data.get("amount"),
            now=timezone.now(),
        )
        note = self.get_queryset().get(pk=note.pk)
        return Response(self.get_serializer(note).data, status=status.HTTP_201_CREATED)

    @extend_schema(responses=PDF_RESPONSE)
    @action(detail=True, methods=["get"], renderer_classes=[JSONRenderer, PDFRenderer])
    def pdf(self, request, pk=None):
        note = self.get_object()
        return _pdf(credit_note_pdf(note), f"{note.number}.pdf")


# ----------------------------------------------------------------------------------- billing runs


@extend_schema_view(
    list=extend_schema(responses={200: BillingRunSerializer(many=True), **READ_ERRORS}),
    retrieve=extend_schema(responses={200: BillingRunSerializer, **READ_ERRORS}),
    create=extend_schema(
        request=BillingRunCreateSerializer,
        responses={201: BillingRunSerializer, 202: BillingRunSerializer, **WRITE_ERRORS},
    ),
)
class BillingRunViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.CreateModelMixin, viewsets.GenericViewSet
):
    """Billing runs (staff only): ``POST {"period": "YYYY-MM", "customer": code?}`` creates the
    period's drafts (issued invoices are never touched; running a period again is safe) — 202 while
    queued, 201 when it has already finished (an eager worker). ``GET`` shows the progress:
    customers done of total, invoices created, refreshed, unchanged, errors per customer code.
    """

    serializer_class = BillingRunSerializer
    permission_classes = [BillingPermissions]
    action_permissions = {
        "list": ["billing.view_billingrun"],
        "retrieve": ["billing.view_billingrun"],
        "create": ["billing.add_billingrun"],
    }
    filterset_class = BillingRunFilter
    filter_backends = [StrictFilterBackend, OrderingFilter]
    ordering_fields = ["created_at", "period"]
    ordering = ["-created_at", "-pk"]

    def get_queryset(self):
        return selectors.billing_run_list()

    def create(self, request, *args, **kwargs):
        serializer = BillingRunCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        run = billing_run_request(
            period=serializer.validated_data["period"],
            customer=serializer.validated_data.get("customer"),
            actor=request.user,
        )
        finished = run.status in (
            BillingRunStatus.DONE,
            BillingRunStatus.DONE_WITH_ERRORS,
            BillingRunStatus.FAILED,
        )
        code = status.HTTP_201_CREATED if finished else status.HTTP_202_ACCEPTED
        return Response(self.get_serializer(self.get_queryset().get(pk=run.pk)).data, status=code)


# ------------------------------------------------------------------------------- upcoming invoice


@extend_schema(
    parameters=[OpenApiParameter("customer_pk", OpenApiTypes.INT, OpenApiParameter.PATH)],
    responses={200: UpcomingInvoiceSerializer, **READ_ERRORS},
)
class UpcomingInvoiceView(APIView):
    """``GET /customers/{id}/upcoming-invoice/``: the running month's invoice, one per currency, as a
    billing run would draft it now (usage so far; recurring lines for the whole month). Nothing is
    saved. Customers see their own; staff need ``billing.view_invoice``.
    """

    permission_classes = [BillingPermissions]
    portal_readable = True
    action = "retrieve"
    action_permissions = {"retrieve": VIEW_INVOICE}

    def get(self, request, customer_pk):
        customer = customer_get(user=request.user, pk=parent_pk(customer_pk))
        if customer is None:
            raise NotFound()
        now = timezone.now()
        upcoming = {
            "customer": customer.code,
            "period": preview_period(as_of=now),
            "as_of": now,
            "invoices": invoice_preview(customer=customer, as_of=now),
        }
        return Response(UpcomingInvoiceSerializer(upcoming).data)
