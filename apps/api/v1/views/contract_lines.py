"""Draft contract lines changed and removed through the API (docs/api.md#draft-line-edits).

``PATCH /api/v1/contracts/{id}/lines/{line_pk}/`` changes the fields given and saves the line with
``apps.contracts.services.line_save``; ``DELETE`` removes it (with its tentative allocations and
tiers) with ``line_delete``. The permissions are the admin's: staff who may change contracts and
draft them (account managers; each sees only their own contracts, so another's answers 404), drafts
only (anything else 409 ``invalid_state``); customer portal users write nothing (403).
"""

from __future__ import annotations

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.exceptions import ValidationError
from rest_framework.generics import GenericAPIView
from rest_framework.permissions import BasePermission
from rest_framework.response import Response

from apps.api.v1.serializers.contract_lines import LineUpdateSerializer
from apps.api.v1.serializers.contracts import ContractLineSerializer, error_paths
from apps.contracts import services
from apps.contracts.models import ContractLine, ContractStatus
from apps.contracts.rules import line_problems
from apps.contracts.selectors import contract_list
from apps.core.errors import DomainError

from .base import WRITE_ERRORS, parent_pk
from .contracts import LINE_PK, _line_with_allocations

# Drafts are the account managers' own work (the admin's rule): changing one needs add_contract too.
LINE_PERMISSIONS = {
    "PATCH": ("contracts.add_contract", "contracts.change_contract", "contracts.change_contractline"),
    "DELETE": ("contracts.add_contract", "contracts.change_contract", "contracts.delete_contractline"),
    "OPTIONS": (),
}


class DraftLinePermissions(BasePermission):
    def has_permission(self, request, view):
        user = request.user
        if not (user and user.is_authenticated and user.is_staff):
            return False
        needed = LINE_PERMISSIONS.get(request.method)
        return needed is not None and user.has_perms(needed)


class ContractLineView(GenericAPIView):
    """One line of a draft contract: change it (any subset of its fields) or remove it."""

    permission_classes = [DraftLinePermissions]
    serializer_class = LineUpdateSerializer
    http_method_names = ["patch", "delete", "options"]

    def get_queryset(self):
        return ContractLine.objects.none()  # the line is looked up under a contract the user may see

    def _line(self) -> ContractLine:
        contract = get_object_or_404(contract_list(user=self.request.user), pk=parent_pk(self.kwargs["pk"]))
        return get_object_or_404(
            ContractLine.objects.select_related("contract", "gpu_model", "tax_category"),
            pk=parent_pk(self.kwargs["line_pk"]),
            contract=contract,
        )

    @extend_schema(
        operation_id="contracts_lines_partial_update",
        summary="Change a draft's line (the fields given)",
        parameters=[LINE_PK],
        request=LineUpdateSerializer,
        responses={200: ContractLineSerializer, **WRITE_ERRORS},
        tags=["contracts"],
        description=(
            "Only lines of drafts (409 `invalid_state` otherwise). Fields left out keep their values; "
            "`list_unit_price`, `term_discount_percent` or `tax_category` set to null take the price list's."
        ),
    )
    def patch(self, request, *args, **kwargs):
        line = self._line()
        serializer = LineUpdateSerializer(data=request.data, partial=True)
        if not serializer.is_valid():
            raise ValidationError(error_paths(serializer.errors))
        changes = serializer.validated_data
        for name, value in changes.items():
            setattr(line, name, value)
        if line.contract.status == ContractStatus.DRAFT:  # line_save refuses anything else (409)
            problems = line_problems(
                line, contract_start=line.contract.start_at, contract_end=line.contract.end_at
            )
            if problems:
                first, messages = next(iter(problems.items()))
                raise DomainError(f"{first}: {messages[0]}", code="invalid", fields=problems)
        services.line_save(line=line, actor=request.user)
        return Response(
            ContractLineSerializer(_line_with_allocations(line), context=self.get_serializer_context()).data
        )

    @extend_schema(
        operation_id="contracts_lines_destroy",
        summary="Remove a line (with its tentative allocations) from a draft",
        parameters=[LINE_PK],
        request=None,
        responses={204: None, **WRITE_ERRORS},
        tags=["contracts"],
    )
    def delete(self, request, *args, **kwargs):
        services.line_delete(line=self._line(), actor=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)
