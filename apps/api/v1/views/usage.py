"""``POST /api/v1/usage/`` (usage ingestion) and ``DELETE /api/v1/usage/{event_id}/`` (void), for
partner systems with an API key (docs/usage-api.md#answers-and-error-codes).

Speed matters (a metering agent posts batches of up to 10,000 records), so the POST reads
``request.body`` itself (no DRF parser, no serializer per record), parses it with orjson and
hands the records to ``apps.metering.services.usage_ingest``.

Answers of the POST:

- 201 ``{"accepted": n, "duplicates": m}`` when anything new was stored; 200 with the same body
  when every record was a duplicate (nothing changed). A duplicate is a record whose event id the
  provider already sent with the same content (also when that record was voided since: it stays
  voided), or that repeats an earlier record of the same batch.
- 400 ``invalid_batch`` (a list) or ``invalid`` (one object): nothing stored; ``errors`` lists
  ``{"index", "event_id", "code": "invalid" | "conflict" | "usage_too_old", "errors": {field: [message]}}``
  per bad record (``fields`` holds the errors of a single object). A single record older than
  billing looks back (``USAGE_MAX_AGE_MONTHS``) answers 400 ``usage_too_old``.
- 409 ``usage_conflict``: a single object whose event id is stored with other content.
- 413 ``batch_too_large`` (over 10,000 records) or ``payload_too_large`` (body over
  ``DATA_UPLOAD_MAX_MEMORY_SIZE``); 400 ``malformed_request`` (not JSON, not UTF-8, empty);
  415 ``unsupported_media_type``; 401 without a valid, unrevoked, unexpired key.
- 503 ``retry_later``: the batch met a concurrent change (a card or server of the provider was
  deleted or changed hands while it was stored); nothing stored, send it again.
"""

from __future__ import annotations

import json
from typing import Any

import orjson
from django.core.exceptions import RequestDataTooBig
from django.http import HttpResponse
from django.utils import timezone
from django.utils.translation import gettext
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import exceptions
from rest_framework.views import APIView

from apps.api.authentication import IsPartnerSystem, PartnerAPIKeyAuthentication
from apps.api.v1.serializers.usage import (
    UsageBatchErrorSerializer,
    UsageIngestResultSerializer,
    UsageRecordInSerializer,
    UsageVoidSerializer,
)
from apps.core.memory import cycle_collection_paused
from apps.metering import services, validation
from apps.metering.models import UsageSource
from apps.metering.validation import MAX_BATCH_RECORDS

from .base import ERROR
from .usage_reads import USAGE_BATCH_EXAMPLE, UsageListMixin

_JSON = "application/json"


def _json(body: Any, status: int) -> HttpResponse:
    return HttpResponse(orjson.dumps(body), status=status, content_type=_JSON)


def _error(code: str, message: str, status: int, **extra: Any) -> HttpResponse:
    return _json({"code": code, "message": message, "fields": {}, **extra}, status)


def _has_lone_surrogate(value: Any) -> bool:
    """Whether a parsed JSON value holds a string (or key) with a lone UTF-16 surrogate (``"\\ud800"``):
    JSON lets the escape through, but no UTF-8 text, database or JSON encoder takes it."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return True
        return False
    if isinstance(value, dict):
        return any(_has_lone_surrogate(k) or _has_lone_surrogate(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_lone_surrogate(item) for item in value)
    return False


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not JSON")


def _parse(body: bytes) -> tuple[Any, HttpResponse | None]:
    """The JSON value of ``body``, or an error answer."""
    if not body.strip():
        return None, _error("malformed_request", gettext("The request body is empty: send JSON."), 400)
    try:
        return orjson.loads(body), None
    except orjson.JSONDecodeError:
        pass
    # orjson refuses some valid JSON (integers beyond 64 bits): let the standard library decide,
    # so such a value is a per-record error rather than "malformed".
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        return None, _error(
            "malformed_request",
            gettext("The request body is not valid UTF-8 (byte %(byte)s).") % {"byte": exc.start},
            400,
        )
    try:
        value = json.loads(text, parse_constant=_reject_constant)
    except (ValueError, RecursionError) as exc:
        if isinstance(exc, json.JSONDecodeError):
            message = gettext(
                "The request body is not valid JSON: %(problem)s at line %(line)s column %(column)s."
            ) % {
                "problem": gettext(exc.msg),
                "line": exc.lineno,
                "column": exc.colno,
            }
        else:
            message = gettext("The request body is not valid JSON.")
        return None, _error("malformed_request", message, 400)
    try:
        lone_surrogate = _has_lone_surrogate(value)
    except RecursionError:
        lone_surrogate = True
    if lone_surrogate:
        # orjson refused it above; echoing it back in an error would fail too: a 400 of its own.
        return None, _error(
            "invalid_text",
            gettext(
                "The request body has a lone UTF-16 surrogate (\\ud800 to \\udfff) in a string; send valid Unicode text."
            ),
            400,
        )
    return value, None


def _is_json(content_type: str) -> bool:
    """JSON media type (``application/json`` or ``*+json``, any case), with no charset or UTF-8."""
    media_type, _, params = content_type.partition(";")
    media_type = media_type.strip().lower()
    if media_type and media_type != _JSON and not media_type.endswith("+json"):
        return False
    for param in params.split(";"):
        name, _, value = param.partition("=")
        if name.strip().lower() == "charset" and value.strip().strip('"').lower() not in ("utf-8", "utf8"):
            return False
    return True


class PartnerAPIView(APIView):
    """A view for partner systems: API key authentication, no DRF parsing."""

    authentication_classes = [PartnerAPIKeyAuthentication]
    permission_classes = [IsPartnerSystem]
    parser_classes: list = []  # the body is read and parsed by the view, with orjson

    def permission_denied(self, request, message=None, code=None):
        if request.authenticators and not request.successful_authenticator:
            raise exceptions.NotAuthenticated(IsPartnerSystem.message)
        super().permission_denied(request, message=message, code=code)


# The answers of a usage batch, as partner systems and the metering agent get them.
USAGE_BATCH_RESPONSES = {
    200: OpenApiResponse(UsageIngestResultSerializer, description="Every record was a duplicate."),
    201: OpenApiResponse(UsageIngestResultSerializer, description="New records stored."),
    400: OpenApiResponse(UsageBatchErrorSerializer, description="Nothing stored; `errors` per record."),
    401: ERROR,
    403: ERROR,
    409: OpenApiResponse(UsageBatchErrorSerializer, description="A single record conflicts."),
    413: ERROR,
    415: ERROR,
}


class UsageView(UsageListMixin, PartnerAPIView):
    """Partner systems push usage records here (docs/usage-api.md#batch-rules): one record, or
    a list of up to 10,000. ``GET`` lists records (``UsageListMixin``, docs/api.md#usage-reads).

    The batch is atomic. A record whose event id is already stored with the same content is a
    duplicate (counted, not stored again); with other content it is a conflict. Records may name
    only the provider's own cards and servers.
    """

    @extend_schema(
        operation_id="usage_create",
        # The view parses the body itself (no DRF parser), so the media type is named here.
        request={_JSON: UsageRecordInSerializer(many=True)},
        examples=[USAGE_BATCH_EXAMPLE],
        responses=USAGE_BATCH_RESPONSES,
        tags=["usage"],
        description=(
            "Body: one usage record object or a list of up to 10,000. "
            "201 `{accepted, duplicates}` when something new was stored, 200 when all were duplicates."
        ),
    )
    def post(self, request, *args, **kwargs):
        if not _is_json(request.content_type):
            return _error(
                "unsupported_media_type",
                gettext("Send application/json, not %(content_type)s.")
                % {"content_type": request.content_type},
                415,
            )
        try:
            body = request.body
        except RequestDataTooBig:
            return _error(
                "payload_too_large", gettext("The request body is too large; send smaller batches."), 413
            )
        with cycle_collection_paused():
            return self._ingest(request, body)

    def _ingest(self, request, body: bytes) -> HttpResponse:
        # The agent's shape is decoded straight into typed structs; anything else is parsed as JSON.
        payload = validation.decode_agent_batch(body)
        if payload is None:
            payload, problem = _parse(body)
            if problem is not None:
                return problem
        single = isinstance(payload, dict)
        if single:
            records = [payload]
        elif isinstance(payload, list):
            records = payload
            if not records:
                return _error("invalid", gettext("The batch is empty: send 1 to 10,000 records."), 400)
            if len(records) > MAX_BATCH_RECORDS:
                return _error(
                    "batch_too_large",
                    gettext("A batch holds at most %(limit)s records; this one has %(count)s.")
                    % {"limit": f"{MAX_BATCH_RECORDS:,}", "count": f"{len(records):,}"},
                    413,
                )
        else:
            return _error("invalid", gettext("Expected a usage record object or a list of them."), 400)
        refused = self._refused_source(records)
        if refused is not None:
            return refused
        try:
            result = self._store_records(request, records)
        except services.UsageRejected as rejected:
            return self._rejected(rejected, single=single)
        return _json(
            {"accepted": result.accepted, "duplicates": result.duplicates},
            201 if result.accepted else 200,
        )

    # The source the records of this endpoint have (docs/hardware-truth.md#sources-and-incidents).
    source = UsageSource.PARTNER

    def _refused_source(self, records: list[Any]) -> HttpResponse | None:
        """A record may say ``"source"``, but only this endpoint's (the key dropped before
        validation); claiming the other answers 403 ``source_not_allowed`` (nothing stored)."""
        if isinstance(records, validation.AgentBatch):
            return None  # the agent's shape has no source
        for record in records:
            if isinstance(record, dict) and "source" in record:
                if record["source"] != self.source:
                    return _error(
                        "source_not_allowed",
                        gettext(
                            "Records with source %(claimed)s are not taken here: this endpoint stores "
                            "%(source)s usage (agent usage goes to /api/v1/agent/usage/ with the "
                            "server's agent key)."
                        )
                        % {"claimed": json.dumps(record["source"])[:40], "source": self.source},
                        403,
                    )
                del record["source"]
        return None

    def _store_records(self, request, records: list[Any]) -> services.IngestResult:
        return services.usage_ingest(
            provider=request.auth.provider, payload_records=records, received_at=timezone.now()
        )

    @staticmethod
    def _rejected(rejected: services.UsageRejected, *, single: bool) -> HttpResponse:
        if not single:
            return _error("invalid_batch", rejected.message, 400, errors=rejected.errors)
        fields = rejected.errors[0]["errors"]
        first = next(iter(fields.items()))
        message = first[1][0] if first[0] == "non_field_errors" else f"{first[0]}: {first[1][0]}"
        if rejected.only_conflicts:
            return _json(
                {"code": "usage_conflict", "message": message, "fields": fields, "errors": rejected.errors},
                409,
            )
        code = rejected.errors[0]["code"]  # usage_too_old, or invalid
        return _json(
            {
                "code": code if code == validation.CODE_TOO_OLD else "invalid",
                "message": message,
                "fields": fields,
                "errors": rejected.errors,
            },
            400,
        )


class UsageRecordView(PartnerAPIView):
    """Void one of the provider's records while no issued invoice has billed it."""

    @extend_schema(
        operation_id="usage_void",
        parameters=[
            OpenApiParameter("event_id", OpenApiTypes.STR, OpenApiParameter.PATH),
            OpenApiParameter(
                "reason", OpenApiTypes.STR, OpenApiParameter.QUERY, description="Why (also as JSON body)."
            ),
        ],
        request=UsageVoidSerializer,
        responses={204: None, 400: ERROR, 401: ERROR, 403: ERROR, 404: ERROR, 409: ERROR},
        tags=["usage"],
        description=(
            "Voids the record (billing leaves it out); 409 `already_invoiced` once an issued "
            "invoice has billed it. Voiding a voided record again answers 204."
        ),
    )
    def delete(self, request, event_id: str, *args, **kwargs):
        reason = request.query_params.get("reason", "")
        try:
            body = request.body
        except RequestDataTooBig:
            return _error("payload_too_large", gettext("The request body is too large."), 413)
        if body.strip():
            payload, problem = _parse(body)
            if problem is not None:
                return problem
            value = payload.get("reason") if isinstance(payload, dict) else None
            if not isinstance(value, str) and value is not None:
                return _json(
                    {
                        "code": "invalid",
                        "message": gettext("reason: expected a string."),
                        "fields": {"reason": [gettext("Expected a string.")]},
                    },
                    400,
                )
            reason = value or reason
        services.usage_void(
            provider=request.auth.provider,
            event_id=event_id,
            reason=reason.strip(),
            now=timezone.now(),
            actor=request.user,
        )
        return HttpResponse(status=204)
