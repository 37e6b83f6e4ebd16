"""The metering agent's endpoints, for a server's agent API key only
(docs/hardware-truth.md#sources-and-incidents):

- ``POST /api/v1/agent/usage/``: usage records of the server's cards, stored with source
  ``agent`` (the body and answers of ``POST /api/v1/usage/``, docs/usage-api.md#answers-and-error-codes);
  a card of another server is a per-record ``invalid``;
- ``POST /api/v1/agent/incidents/``: hardware incidents of the server's cards (one object or a
  list of up to 1,000), idempotent by the agent's ``event_id`` per card. 201 ``{created, ended,
  unchanged}`` when something changed, 200 when every incident was a resend; 400 ``invalid_batch``
  with ``errors`` per incident (nothing stored).

A partner key here answers 403 ``permission_denied`` (its message names the agent key); an agent
key anywhere else 403 ``agent_key_not_allowed`` (apps/api/authentication.py).
"""

from __future__ import annotations

from django.utils import timezone
from django.utils.translation import gettext
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import exceptions
from rest_framework.parsers import JSONParser
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.api.authentication import IsAgentHost, PartnerAPIKeyAuthentication
from apps.api.v1.serializers.agent import CardIncidentInSerializer, CardIncidentReportResultSerializer
from apps.api.v1.serializers.usage import (
    UsageBatchErrorSerializer,
    UsageRecordInSerializer,
)
from apps.inventory import services as inventory_services
from apps.metering import services
from apps.metering.models import UsageSource

from .base import ERROR
from .usage import USAGE_BATCH_RESPONSES, UsageView

MAX_INCIDENTS = 1_000


class AgentAPIView(APIView):
    authentication_classes = [PartnerAPIKeyAuthentication]
    permission_classes = [IsAgentHost]
    agent_endpoint = True  # agent keys only (apps/api/authentication.py)

    def permission_denied(self, request, message=None, code=None):
        if request.authenticators and not request.successful_authenticator:
            raise exceptions.NotAuthenticated(IsAgentHost.message)
        super().permission_denied(request, message=message, code=code)


class AgentUsageView(AgentAPIView, UsageView):
    """Usage the agent observed on its server's cards (source ``agent``: evidence, unless a
    contract line bills the agent's usage)."""

    http_method_names = ["post", "options"]
    source = UsageSource.AGENT

    def get_authenticators(self):
        return [PartnerAPIKeyAuthentication()]

    def get_permissions(self):
        return [IsAgentHost()]

    def _store_records(self, request, records):
        return services.usage_ingest(
            provider=request.user.provider,
            server=request.user.server,
            source=UsageSource.AGENT,
            payload_records=records,
            received_at=timezone.now(),
        )

    @extend_schema(
        operation_id="agent_usage_create",
        request={"application/json": UsageRecordInSerializer(many=True)},
        responses=USAGE_BATCH_RESPONSES,
        tags=["agent"],
        description=(
            "The metering agent's usage of its server's cards, stored with source `agent`. Same body "
            "and answers as `POST /api/v1/usage/`; only the server's agent API key is taken."
        ),
    )
    def post(self, request, *args, **kwargs):
        return super().post(request, *args, **kwargs)


class AgentIncidentView(AgentAPIView):
    """Hardware incidents of the server's cards, as the agent reads them from NVML."""

    parser_classes = [JSONParser]

    @extend_schema(
        operation_id="agent_incidents_create",
        request=CardIncidentInSerializer(many=True),
        responses={
            200: OpenApiResponse(
                CardIncidentReportResultSerializer, description="Every incident was a resend."
            ),
            201: OpenApiResponse(CardIncidentReportResultSerializer, description="Something new stored."),
            400: OpenApiResponse(
                UsageBatchErrorSerializer, description="Nothing stored; `errors` per incident."
            ),
            401: ERROR,
            403: ERROR,
        },
        tags=["agent"],
        description=(
            "One incident or a list of up to 1,000: Xid errors, double-bit ECC errors, a card fallen "
            "off the bus, thermal or power throttling. Sent again with its `end` once the card is "
            "healthy; idempotent by `event_id` per card."
        ),
    )
    def post(self, request, *args, **kwargs):
        data = request.data
        items = [data] if isinstance(data, dict) else data
        if not isinstance(items, list) or not items:
            return Response(
                {
                    "code": "invalid",
                    "message": gettext("Send an incident object or a list of 1 to 1,000."),
                    "fields": {},
                },
                status=400,
            )
        if len(items) > MAX_INCIDENTS:
            return Response(
                {
                    "code": "batch_too_large",
                    "message": gettext("A batch holds at most 1,000 incidents."),
                    "fields": {},
                },
                status=413,
            )
        now = timezone.now()
        errors, incidents = [], []
        for index, item in enumerate(items):
            serializer = CardIncidentInSerializer(data=item, context={"now": now})
            if serializer.is_valid():
                incidents.append(serializer.validated_data)
            else:
                event_id = item.get("event_id") if isinstance(item, dict) else None
                errors.append(
                    {
                        "index": index,
                        "event_id": event_id if isinstance(event_id, str) else None,
                        "code": "invalid",
                        "errors": {key: [str(m) for m in value] for key, value in serializer.errors.items()},
                    }
                )
        if errors:
            return self._rejected(errors)
        try:
            result = inventory_services.card_incidents_report(
                server=request.user.server, incidents=incidents, now=now
            )
        except inventory_services.IncidentsRejected as rejected:
            return self._rejected(rejected.errors)
        body = {"created": result.created, "ended": result.ended, "unchanged": result.unchanged}
        return Response(body, status=201 if result.created or result.ended else 200)

    @staticmethod
    def _rejected(errors: list[dict]) -> Response:
        return Response(
            {
                "code": "invalid_batch",
                "message": gettext(
                    "%(count)s incident(s) of the batch are invalid or conflicting; nothing was stored."
                )
                % {"count": len(errors)},
                "fields": {},
                "errors": errors,
            },
            status=400,
        )
