"""Stripe's webhook (docs/invoices.md#stripe): an interface module — parse, call the service, answer."""

from __future__ import annotations

from django.http import Http404, JsonResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from apps.billing.payments.services.stripe import stripe_configured, stripe_event_receive
from apps.core.errors import DomainError


@csrf_exempt
@require_POST
def stripe_webhook(request):
    """``POST /payments/stripe/webhook/``: 404 while Stripe is not configured; 400 with the API's
    error shape on a bad signature or payload; otherwise 200, once or many times per event."""
    if not stripe_configured():
        raise Http404("Stripe is not configured.")
    try:
        outcome = stripe_event_receive(
            payload=request.body, signature=request.headers.get("Stripe-Signature", ""), now=timezone.now()
        )
    except DomainError as exc:
        return JsonResponse(
            {"code": exc.code, "message": exc.message, "fields": exc.fields}, status=exc.http_status
        )
    event = outcome.event
    return JsonResponse({"id": event.event_id, "replayed": outcome.replayed, "outcome": event.outcome})
