"""Webhook endpoints (docs/webhooks.md#the-api): ``/api/v1/webhook-endpoints/``.

Staff act through their model permissions (finance and operations manage all endpoints; account
managers read their customers'). Customer portal users who are an *admin* member of a customer
manage that customer's endpoints, and see no other; billing and viewer members, and partner API
keys, are refused (403). A foreign id answers 404.
"""

from __future__ import annotations

import django_filters as filters
from django.utils import timezone
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import status
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound
from rest_framework.permissions import BasePermission
from rest_framework.response import Response

from apps.accounts.models import User
from apps.api.v1.serializers.webhooks import (
    WebhookEndpointCreatedSerializer,
    WebhookEndpointSerializer,
    WebhookSecretSerializer,
)
from apps.customers.models import Customer
from apps.providers.models import Provider
from apps.webhooks import selectors, services
from apps.webhooks.models import WebhookEndpoint

from .base import READ_ERRORS, WRITE_ERRORS, ApiViewSet


class WebhookEndpointFilter(filters.FilterSet):
    customer = filters.CharFilter(field_name="customer__code", help_text="Customer code.")
    provider = filters.CharFilter(field_name="provider__code", help_text="Provider code.")

    class Meta:
        model = WebhookEndpoint
        fields = ["customer", "provider", "enabled"]


class WebhookEndpointPermissions(BasePermission):
    """Staff: the model permission of the action. Portal users: admins of a customer only."""

    action_permissions = {
        "list": "webhooks.view_webhookendpoint",
        "retrieve": "webhooks.view_webhookendpoint",
        "create": "webhooks.add_webhookendpoint",
        "partial_update": "webhooks.change_webhookendpoint",
        "rotate_secret": "webhooks.change_webhookendpoint",
        "destroy": "webhooks.delete_webhookendpoint",
        "metadata": None,
    }

    def has_permission(self, request, view) -> bool:
        user = request.user
        if not (user and user.is_authenticated and isinstance(user, User)):
            return False
        if user.is_staff:
            if view.action not in self.action_permissions:
                return False
            perm = self.action_permissions[view.action]
            return perm is None or user.has_perm(perm)
        return selectors.customer_admin_of(user=user).exists()


@extend_schema_view(
    list=extend_schema(responses={200: WebhookEndpointSerializer(many=True), **READ_ERRORS}),
    retrieve=extend_schema(responses={200: WebhookEndpointSerializer, **READ_ERRORS}),
    create=extend_schema(
        request=WebhookEndpointSerializer, responses={201: WebhookEndpointCreatedSerializer, **WRITE_ERRORS}
    ),
    partial_update=extend_schema(
        request=WebhookEndpointSerializer, responses={200: WebhookEndpointSerializer, **WRITE_ERRORS}
    ),
    destroy=extend_schema(responses={204: None, **WRITE_ERRORS}),
)
class WebhookEndpointViewSet(ApiViewSet):
    """Where a customer's or a provider's events are POSTed, signed (docs/webhooks.md). The
    signing secret is in the answer of the ``POST`` that creates the endpoint and of
    ``rotate-secret`` only. Filter by ``?customer=`` or ``?provider=`` (codes), ``?enabled=``."""

    serializer_class = WebhookEndpointSerializer
    permission_classes = [WebhookEndpointPermissions]
    filterset_class = WebhookEndpointFilter
    search_fields = ["url", "description"]
    ordering_fields = ["id", "created_at", "updated_at"]
    ordering = ["id"]

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return WebhookEndpoint.objects.none()
        return selectors.webhook_endpoint_list(user=self.request.user)

    def get_serializer(self, *args, **kwargs):
        user = getattr(self.request, "user", None)
        if user is not None and isinstance(user, User) and not user.is_staff:
            kwargs.setdefault("customers", selectors.customer_admin_of(user=user))
            kwargs.setdefault("providers", Provider.objects.none())
        elif user is not None and isinstance(user, User):
            kwargs.setdefault("customers", Customer.objects.all())
        return super().get_serializer(*args, **kwargs)

    def create(self, request, *args, **kwargs):
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        endpoint, secret = services.webhook_endpoint_create(
            owner=data.get("customer") or data.get("provider"),
            url=data["url"],
            events=data.get("events") or [],
            enabled=data.get("enabled", True),
            description=data.get("description", ""),
            actor=request.user,
        )
        body = WebhookEndpointCreatedSerializer(
            endpoint, context={**self.get_serializer_context(), "secret": secret}
        )
        return Response(body.data, status=status.HTTP_201_CREATED)

    def partial_update(self, request, *args, **kwargs):
        endpoint = self.get_object()
        serializer = self.get_serializer(endpoint, data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        changes = {
            name: value
            for name, value in serializer.validated_data.items()
            if name in ("url", "events", "enabled", "description")
        }
        endpoint = services.webhook_endpoint_update(endpoint=endpoint, actor=request.user, **changes)
        return Response(WebhookEndpointSerializer(endpoint, context=self.get_serializer_context()).data)

    def perform_destroy(self, instance):
        services.webhook_endpoint_delete(endpoint=instance, actor=self.request.user)

    def get_object(self):
        lookup = self.kwargs.get(self.lookup_url_kwarg or self.lookup_field)
        endpoint = selectors.webhook_endpoint_get(user=self.request.user, pk=lookup)
        if endpoint is None or not str(lookup).isdigit():
            raise NotFound()
        self.check_object_permissions(self.request, endpoint)
        return endpoint

    @extend_schema(request=None, responses={200: WebhookSecretSerializer, **WRITE_ERRORS})
    @action(detail=True, methods=["post"], url_path="rotate-secret")
    def rotate_secret(self, request, pk=None):
        """A new signing secret (in this answer only); the previous one keeps signing deliveries
        for ``WEBHOOK_SECRET_ROTATION_GRACE_HOURS`` (24 h), as a second ``v1=`` signature."""
        endpoint, secret = services.webhook_endpoint_rotate_secret(
            endpoint=self.get_object(), now=timezone.now(), actor=request.user
        )
        return Response(
            WebhookSecretSerializer(
                {"secret": secret, "previous_secret_expires_at": endpoint.previous_secret_expires_at}
            ).data
        )
