"""What every v1 viewset shares."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import viewsets
from rest_framework.exceptions import NotFound
from rest_framework.filters import OrderingFilter

from apps.api.filters import SearchFilter
from apps.api.v1.filters import StrictFilterBackend
from apps.api.v1.serializers.common import ErrorSerializer

# Updates are PATCH only: a partial update says exactly what changes.
READ_WRITE_METHODS = ["get", "post", "patch", "delete", "head", "options"]
NO_DELETE_METHODS = ["get", "post", "patch", "head", "options"]

ERROR = OpenApiResponse(ErrorSerializer, description="`{code, message, fields}`")
WRITE_ERRORS = {400: ERROR, 401: ERROR, 403: ERROR, 404: ERROR, 409: ERROR}
READ_ERRORS = {401: ERROR, 403: ERROR, 404: ERROR}

_MAX_BIGINT = 2**63 - 1


class ApiViewSet(viewsets.ModelViewSet):
    """A model viewset with filtering, search and ordering; PATCH is the only update."""

    http_method_names = READ_WRITE_METHODS
    filter_backends = [StrictFilterBackend, SearchFilter, OrderingFilter]


def parent_pk(value: str) -> int:
    """A parent id from the URL, or 404 (``/servers/abc/cards/`` is a missing server, not a crash)."""
    if not value.isdigit() or int(value) > _MAX_BIGINT:
        raise NotFound()
    return int(value)


def crud_docs(
    serializer, *, request=None, actions=("list", "retrieve", "create", "partial_update", "destroy")
):
    """``extend_schema_view`` arguments documenting the error body next to ``serializer``."""
    docs = {
        "list": extend_schema(responses={200: serializer(many=True), **READ_ERRORS}),
        "retrieve": extend_schema(responses={200: serializer, **READ_ERRORS}),
        "create": extend_schema(request=request or serializer, responses={201: serializer, **WRITE_ERRORS}),
        "partial_update": extend_schema(
            request=request or serializer, responses={200: serializer, **WRITE_ERRORS}
        ),
        "destroy": extend_schema(responses={204: None, **WRITE_ERRORS}),
    }
    return {action: docs[action] for action in actions}
