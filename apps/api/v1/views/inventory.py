"""GPU models, servers and their cards. Servers and cards are written by ``apps.inventory.services``."""

from __future__ import annotations

from django.db.models import Prefetch
from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import mixins, status, viewsets
from rest_framework.response import Response

from apps.api.v1.filters import GpuModelFilter, ServerFilter
from apps.api.v1.serializers.inventory import (
    CardCreateSerializer,
    CardSerializer,
    GpuModelSerializer,
    ServerCreateSerializer,
    ServerSerializer,
    ServerUpdateSerializer,
)
from apps.inventory import services
from apps.inventory.models import Card, GpuModel, Server

from .base import NO_DELETE_METHODS, READ_ERRORS, WRITE_ERRORS, ApiViewSet, crud_docs, parent_pk


@extend_schema_view(**crud_docs(GpuModelSerializer))
class GpuModelViewSet(ApiViewSet):
    """The GPU catalogue (dense figures), looked up by id; filter by ``?name=`` or ``?vendor=``."""

    queryset = GpuModel.objects.all()
    serializer_class = GpuModelSerializer
    filterset_class = GpuModelFilter
    search_fields = ["name", "vendor"]
    ordering_fields = ["vendor", "name", "fp16_dense_tflops", "memory_gb"]


@extend_schema_view(
    **crud_docs(
        ServerSerializer,
        actions=("list", "retrieve"),
    ),
    create=extend_schema(request=ServerCreateSerializer, responses={201: ServerSerializer, **WRITE_ERRORS}),
    partial_update=extend_schema(
        request=ServerUpdateSerializer, responses={200: ServerSerializer, **WRITE_ERRORS}
    ),
)
class ServerViewSet(ApiViewSet):
    """Servers with their cards, looked up by id.

    Natural keys are filters: ``?serial=``, ``?provider=<code>``, ``?site=<name>``, ``?hub=``,
    ``?gpu_model=<name>``, ``?status=``, ``?card=<uuid>``. A server is registered with its cards in
    one request (all or nothing) and is never deleted: retire it with ``{"status": "retired"}``.
    """

    http_method_names = NO_DELETE_METHODS
    serializer_class = ServerSerializer
    filterset_class = ServerFilter
    search_fields = ["serial", "provider__code", "site__name", "gpu_model__name"]
    ordering_fields = ["serial", "status", "created_at"]

    def get_queryset(self):
        return Server.objects.select_related("provider", "site", "gpu_model").prefetch_related(
            Prefetch("cards", queryset=Card.objects.order_by("slot"))
        )

    def _render(self, server: Server, status_code: int) -> Response:
        server = self.get_queryset().get(pk=server.pk)
        return Response(
            ServerSerializer(server, context=self.get_serializer_context()).data, status=status_code
        )

    def create(self, request, *args, **kwargs):
        serializer = ServerCreateSerializer(data=request.data, context=self.get_serializer_context())
        serializer.is_valid(raise_exception=True)
        server = services.server_create(actor=request.user, **serializer.validated_data)
        return self._render(server, status.HTTP_201_CREATED)

    def partial_update(self, request, *args, **kwargs):
        server = self.get_object()
        serializer = ServerUpdateSerializer(data=request.data, context=self.get_serializer_context())
        serializer.is_valid(raise_exception=True)
        server = services.server_update(server=server, actor=request.user, **serializer.validated_data)
        return self._render(server, status.HTTP_200_OK)


@extend_schema_view(
    list=extend_schema(responses={200: CardSerializer(many=True), **READ_ERRORS}),
    create=extend_schema(request=CardCreateSerializer, responses={201: CardSerializer, **WRITE_ERRORS}),
)
@extend_schema(parameters=[OpenApiParameter("server_pk", OpenApiTypes.INT, OpenApiParameter.PATH)])
class ServerCardViewSet(mixins.ListModelMixin, mixins.CreateModelMixin, viewsets.GenericViewSet):
    """``/servers/{server_pk}/cards/``: a server's cards by slot; POST puts a card in a free slot.

    Permissions are those of the card model (``inventory.view_card``, ``inventory.add_card``).
    """

    serializer_class = CardSerializer
    pagination_class = None  # at most 16 cards

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # schema generation: no URL kwargs
            return Card.objects.none()
        return Card.objects.filter(server_id=parent_pk(self.kwargs["server_pk"])).order_by("slot")

    def get_server(self) -> Server:
        return get_object_or_404(Server, pk=parent_pk(self.kwargs["server_pk"]))

    def list(self, request, *args, **kwargs):
        self.get_server()
        return super().list(request, *args, **kwargs)

    def create(self, request, *args, **kwargs):
        server = self.get_server()
        serializer = CardCreateSerializer(data=request.data, context=self.get_serializer_context())
        serializer.is_valid(raise_exception=True)
        card = services.card_add(server=server, actor=request.user, **serializer.validated_data)
        return Response(CardSerializer(card).data, status=status.HTTP_201_CREATED)
