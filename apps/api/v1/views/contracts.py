"""Contracts (docs/api.md#resources): drafting with nested lines and allocations, the lifecycle, the quote.

Every write is one call of ``apps.contracts.services`` with ``now=timezone.now()``; what a user may
see is ``apps.contracts.selectors.contract_list``. Errors of the nested payload name the path of
the offending value, ``lines.1.allocations.0.card``, so an integrator can point at it.
"""

from __future__ import annotations

from collections.abc import Callable

import django_filters as filters
from django.db.models import Prefetch, QuerySet
from django.shortcuts import get_object_or_404
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import status
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.permissions import SAFE_METHODS, BasePermission
from rest_framework.response import Response

from apps.api.v1.serializers.contracts import (
    ActionSerializer,
    AllocationCreateSerializer,
    AllocationSerializer,
    AmendSerializer,
    ContractCreateSerializer,
    ContractLineSerializer,
    ContractSerializer,
    LineCreateSerializer,
    QuoteQuerySerializer,
    QuoteSerializer,
    SuspendSerializer,
    TerminateSerializer,
    allocation_data,
    error_paths,
    line_data,
)
from apps.contracts import services
from apps.contracts.models import Allocation, Contract, ContractLine, ContractStatus
from apps.contracts.quotes import contract_quote
from apps.contracts.selectors import contract_list
from apps.core.choices import LeaseTerm, ResourceKind
from apps.core.errors import DomainError, InvalidState

from .base import ERROR, READ_ERRORS, WRITE_ERRORS, ApiViewSet, parent_pk

# ---------------------------------------------------------------------------------------- filters


class ContractFilter(filters.FilterSet):
    customer = filters.CharFilter(field_name="customer__code", help_text="Customer code.")
    status = filters.ChoiceFilter(choices=ContractStatus.choices)
    account_manager = filters.CharFilter(
        field_name="account_manager__username", help_text="Username of the account manager."
    )
    gpu_model = filters.CharFilter(
        field_name="lines__gpu_model__name", distinct=True, help_text="GPU model name of one of its lines."
    )
    term = filters.ChoiceFilter(
        field_name="lines__term",
        choices=LeaseTerm.choices,
        distinct=True,
        help_text="Term of one of its lines.",
    )
    resource = filters.ChoiceFilter(
        field_name="lines__resource",
        choices=ResourceKind.choices,
        distinct=True,
        help_text="Resource of one of its lines.",
    )
    number = filters.CharFilter(help_text="Contract number, C-YYYY-NNNNNN (all its versions).")

    class Meta:
        model = Contract
        fields = ["customer", "status", "account_manager", "gpu_model", "term", "resource", "number"]


# ---------------------------------------------------------------------------------------- permissions

VIEW = "contracts.view_contract"
ACTION_PERMISSIONS: dict[str, tuple[str, ...]] = {
    "metadata": (),
    "list": (VIEW,),
    "retrieve": (VIEW,),
    "quote": (VIEW,),
    "create": ("contracts.add_contract",),
    "destroy": ("contracts.delete_contract",),
    "submit": ("contracts.change_contract",),
    "approve": ("contracts.approve_contract",),
    "activate": ("contracts.activate_contract",),
    "suspend": ("contracts.activate_contract",),
    "resume": ("contracts.activate_contract",),
    "terminate": ("contracts.terminate_contract",),
    "amend": ("contracts.add_contract",),
    "add_line": ("contracts.change_contract", "contracts.add_contractline"),
    "add_allocation": ("contracts.change_contract", "contracts.add_allocation"),
    "remove_allocation": ("contracts.change_contract", "contracts.delete_allocation"),
}
# Customer portal users read their own contracts; the quote shows provider costs and margins.
PORTAL_ACTIONS = {"metadata", "list", "retrieve"}


class ContractPermissions(BasePermission):
    """Staff: the permission each action needs (``ACTION_PERMISSIONS``; approval is the sales
    manager's, activation and termination have their own). Customer portal users: reads only
    (which rows, ``contract_list``), so a foreign id answers 404 and any write 403.
    """

    def has_permission(self, request, view):
        user = request.user
        if not (user and user.is_authenticated):
            return False
        if not user.is_staff:
            return (
                request.method in SAFE_METHODS and view.action in PORTAL_ACTIONS and user.memberships.exists()
            )
        needed = ACTION_PERMISSIONS.get(view.action)
        return needed is not None and user.has_perms(needed)


# ---------------------------------------------------------------------------------------- helpers


def _with_lines(queryset: QuerySet[Contract]) -> QuerySet[Contract]:
    """Contracts with everything the serializer reads, in a constant number of queries."""
    allocations = Allocation.objects.select_related("card", "server")
    lines = ContractLine.objects.select_related("gpu_model", "tax_category").prefetch_related(
        "tiers", Prefetch("allocations", queryset=allocations)
    )
    return queryset.select_related("price_list").prefetch_related(Prefetch("lines", queryset=lines))


def _line_with_allocations(line: ContractLine) -> ContractLine:
    return (
        ContractLine.objects.select_related("contract", "gpu_model", "tax_category")
        .prefetch_related(
            "tiers", Prefetch("allocations", queryset=Allocation.objects.select_related("card", "server"))
        )
        .get(pk=line.pk)
    )


def _write_naming_paths(write: Callable[[], object]):
    """``write()``; a refusal is re-raised with its fields as dotted paths (``lines.1.allocations.0.card``).

    The services nest an item's errors under its place in the payload (``{"lines": {1: …}}``).
    """
    try:
        return write()
    except InvalidState:
        raise
    except DomainError as exc:
        fields = error_paths(exc.fields) or {"non_field_errors": [exc.message]}
        first, messages = next(iter(fields.items()))
        message = exc.message if first == "non_field_errors" else f"{first}: {messages[0]}"
        raise type(exc)(message, code=exc.code, fields=fields, http_status=exc.http_status) from None


# ---------------------------------------------------------------------------------------- views

LINE_PK = OpenApiParameter("line_pk", OpenApiTypes.INT, OpenApiParameter.PATH, description="Line id.")
ALLOCATION_PK = OpenApiParameter(
    "allocation_pk", OpenApiTypes.INT, OpenApiParameter.PATH, description="Allocation id."
)
TRANSITION_ERRORS = {400: ERROR, 401: ERROR, 403: ERROR, 404: ERROR, 409: ERROR}


def _transition_docs(summary: str, request=ActionSerializer):
    return extend_schema(
        summary=summary, request=request, responses={200: ContractSerializer, **TRANSITION_ERRORS}
    )


@extend_schema_view(
    list=extend_schema(responses={200: ContractSerializer(many=True), **READ_ERRORS}),
    retrieve=extend_schema(responses={200: ContractSerializer, **READ_ERRORS}),
    create=extend_schema(
        request=ContractCreateSerializer, responses={201: ContractSerializer, **WRITE_ERRORS}
    ),
    destroy=extend_schema(
        responses={204: None, **WRITE_ERRORS}, description="Only drafts; anything else answers 409."
    ),
)
class ContractViewSet(ApiViewSet):
    """Contracts (each version its own id) with their lines and allocations.

    Filter by ``?customer=<code>``, ``?status=``, ``?account_manager=<username>``,
    ``?gpu_model=<name>``, ``?term=``, ``?resource=``, ``?number=``; ``?search=`` matches the number
    and the customer. Account managers see their own contracts, sales, finance and operations all;
    a customer portal user reads their customer's contracts (not drafts) and writes nothing.

    A draft is written in one request (all or nothing), grows by ``lines/`` and
    ``lines/{line_pk}/allocations/``, and moves by the actions ``submit``, ``approve``, ``activate``,
    ``suspend``, ``resume``, ``terminate``; an active contract changes by ``amend`` (a new version).
    """

    http_method_names = ["get", "post", "delete", "head", "options"]
    permission_classes = [ContractPermissions]
    serializer_class = ContractSerializer
    filterset_class = ContractFilter
    search_fields = ["number", "customer__code", "customer__name"]
    ordering_fields = ["number", "version", "status", "start_at", "created_at"]

    def get_queryset(self):
        visible = contract_list(user=self.request.user)
        return _with_lines(visible) if self.action in ("list", "retrieve") else visible

    # -- helpers

    def _validated(self, serializer_class, data) -> dict:
        serializer = serializer_class(data=data, context=self.get_serializer_context())
        if not serializer.is_valid():
            raise ValidationError(error_paths(serializer.errors))
        return serializer.validated_data

    def _render(self, contract: Contract, status_code: int = status.HTTP_200_OK) -> Response:
        # Rendered whoever may list it: an account manager may draft for a colleague.
        base = Contract.objects.select_related("customer", "account_manager", "approved_by")
        contract = _with_lines(base).get(pk=contract.pk)
        return Response(
            ContractSerializer(contract, context=self.get_serializer_context()).data, status=status_code
        )

    def _transition(self, request, service, body=ActionSerializer) -> Response:
        """One lifecycle service on the contract, with the body's arguments (``reason``, ``at``)."""
        contract = self.get_object()
        attrs = self._validated(body, request.data)
        contract = service(contract=contract, actor=request.user, now=timezone.now(), **attrs)
        return self._render(contract)

    # -- drafting

    def create(self, request, *args, **kwargs):
        attrs = dict(self._validated(ContractCreateSerializer, request.data))
        lines = [line_data(line) for line in attrs.pop("lines")]

        contract = _write_naming_paths(
            lambda: services.contract_create(actor=request.user, lines=lines, **attrs)
        )
        return self._render(contract, status.HTTP_201_CREATED)

    def destroy(self, request, *args, **kwargs):
        services.contract_delete(contract=self.get_object(), actor=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(
        summary="Add a line (with its allocations) to a draft",
        request=LineCreateSerializer,
        responses={201: ContractLineSerializer, **WRITE_ERRORS},
    )
    @action(detail=True, methods=["post"], url_path="lines", url_name="lines")
    def add_line(self, request, pk=None):
        contract = self.get_object()
        data = line_data(self._validated(LineCreateSerializer, request.data))

        line = _write_naming_paths(
            lambda: services.line_add(contract=contract, data=data, actor=request.user)
        )
        return Response(
            ContractLineSerializer(_line_with_allocations(line), context=self.get_serializer_context()).data,
            status=status.HTTP_201_CREATED,
        )

    @extend_schema(
        summary="Allocate a card or a server to a draft's line",
        parameters=[LINE_PK],
        request=AllocationCreateSerializer,
        responses={201: AllocationSerializer, **WRITE_ERRORS},
    )
    @action(
        detail=True,
        methods=["post"],
        url_path=r"lines/(?P<line_pk>[^/.]+)/allocations",
        url_name="line-allocations",
    )
    def add_allocation(self, request, pk=None, line_pk=None):
        contract = self.get_object()
        line = get_object_or_404(contract.lines.all(), pk=parent_pk(line_pk))
        data = allocation_data(self._validated(AllocationCreateSerializer, request.data))
        allocation = services.allocation_add(
            line=line,
            actor=request.user,
            card=data.card,
            server=data.server,
            start_at=data.start_at,
            end_at=data.end_at,
        )
        allocation = Allocation.objects.select_related("card", "server").get(pk=allocation.pk)
        return Response(AllocationSerializer(allocation).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        summary="Remove an allocation from a draft's line",
        parameters=[LINE_PK, ALLOCATION_PK],
        request=None,
        responses={204: None, **WRITE_ERRORS},
    )
    @action(
        detail=True,
        methods=["delete"],
        url_path=r"lines/(?P<line_pk>[^/.]+)/allocations/(?P<allocation_pk>[^/.]+)",
        url_name="line-allocation",
    )
    def remove_allocation(self, request, pk=None, line_pk=None, allocation_pk=None):
        contract = self.get_object()
        allocation = get_object_or_404(
            Allocation.objects.select_related("line__contract"),
            pk=parent_pk(allocation_pk),
            line_id=parent_pk(line_pk),
            line__contract=contract,
        )
        services.allocation_remove(allocation=allocation, actor=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)

    # -- lifecycle

    @_transition_docs("Submit a draft for a sales manager's approval")
    @action(detail=True, methods=["post"])
    def submit(self, request, pk=None):
        return self._transition(request, services.contract_submit)

    @_transition_docs("Approve the discounts (sales manager; not the contract's own account manager)")
    @action(detail=True, methods=["post"])
    def approve(self, request, pk=None):
        return self._transition(request, services.contract_approve)

    @_transition_docs("Activate: allocations become firm (approval first above the discount threshold)")
    @action(detail=True, methods=["post"])
    def activate(self, request, pk=None):
        return self._transition(request, services.contract_activate)

    @_transition_docs("Suspend an active contract", request=SuspendSerializer)
    @action(detail=True, methods=["post"])
    def suspend(self, request, pk=None):
        return self._transition(request, services.contract_suspend, body=SuspendSerializer)

    @_transition_docs("Resume a suspended contract")
    @action(detail=True, methods=["post"])
    def resume(self, request, pk=None):
        return self._transition(request, services.contract_resume)

    @_transition_docs("Terminate at a time (default now); billing stops there", request=TerminateSerializer)
    @action(detail=True, methods=["post"])
    def terminate(self, request, pk=None):
        return self._transition(request, services.contract_terminate, body=TerminateSerializer)

    @extend_schema(
        summary="Amend: a new draft version taking over at effective_at",
        request=AmendSerializer,
        responses={201: ContractSerializer, **TRANSITION_ERRORS},
    )
    @action(detail=True, methods=["post"])
    def amend(self, request, pk=None):
        contract = self.get_object()
        attrs = self._validated(AmendSerializer, request.data)
        new = services.contract_amend(
            contract=contract, actor=request.user, effective_at=attrs["effective_at"]
        )
        return self._render(new, status.HTTP_201_CREATED)

    # -- quote

    @extend_schema(
        summary="Quote preview: the first full month, per line and in total",
        parameters=[QuoteQuerySerializer],
        responses={200: QuoteSerializer, 400: ERROR, **READ_ERRORS},
    )
    @action(detail=True, methods=["get"])
    def quote(self, request, pk=None):
        contract = self.get_object()
        attrs = self._validated(QuoteQuerySerializer, request.query_params)
        quote = contract_quote(contract=contract, utilisation_percent=attrs["utilisation"])
        return Response(QuoteSerializer(quote, context=self.get_serializer_context()).data)
