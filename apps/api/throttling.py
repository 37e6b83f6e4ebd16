"""Throttles and request size limits of the API (docs/api.md#throttling-and-lockout).

Fair shares: every partner API key, every user (token or session) and every anonymous IP address
has its own budget per minute (``API_THROTTLE_RATES``: ``partner``, ``user``, ``anon``), so one
busy integrator cannot use up another's. The token login has a budget of its own per IP address
(``login``). Over budget: 429 ``throttled`` with ``Retry-After`` (seconds), in the usual error
shape. Counters live in the cache (``CACHES``; shared between web processes with ``CACHE_URL``).

Request bodies are limited before anything reads them: ``API_MAX_BODY_SIZE`` under ``/api/``
(413 ``request_too_large``), except the usage endpoints, which take batches up to
``DATA_UPLOAD_MAX_MEMORY_SIZE`` and answer 413 ``payload_too_large`` themselves
(docs/usage-api.md#limits); ``MAX_REQUEST_BODY_SIZE`` everywhere else (admin uploads, portal).
"""

from __future__ import annotations

import orjson
from django.conf import settings
from django.http import HttpResponse
from django.utils.translation import gettext
from rest_framework.throttling import SimpleRateThrottle

from apps.api.language import API_PREFIX
from apps.metering.models import PartnerAPIKey

DEFAULT_RATES = {"user": "600/min", "partner": "1200/min", "anon": "60/min", "login": "10/min"}
# Paths that check their own, larger limit (usage batches of up to 10,000 records).
OWN_LIMIT_PREFIXES = ("/api/v1/usage/",)


def throttle_rate(scope: str) -> str | None:
    """The rate of ``scope`` now (``override_settings`` in tests takes effect at once)."""
    return {**DEFAULT_RATES, **getattr(settings, "API_THROTTLE_RATES", {})}.get(scope)


class _ScopedRateThrottle(SimpleRateThrottle):
    """A rate per scope, read from the settings on every request, and the cache key of one principal."""

    cache_format = "throttle_%(scope)s_%(ident)s"

    def __init__(self) -> None:  # the scope is known per request (allow_request)
        self.rate = None

    def scope_and_ident(self, request) -> tuple[str, str]:
        """Whose budget this request spends: each subclass answers (an abstract hook, not a stub)."""
        raise NotImplementedError

    def allow_request(self, request, view) -> bool:
        self.scope, self.ident = self.scope_and_ident(request)
        self.rate = throttle_rate(self.scope)
        if not self.rate:
            return True
        self.num_requests, self.duration = self.parse_rate(self.rate)
        return super().allow_request(request, view)

    def get_cache_key(self, request, view) -> str:
        return self.cache_format % {"scope": self.scope, "ident": self.ident}


class PrincipalRateThrottle(_ScopedRateThrottle):
    """Each partner key, each user and each anonymous IP address on its own budget."""

    def scope_and_ident(self, request) -> tuple[str, str]:
        if isinstance(request.auth, PartnerAPIKey):
            return "partner", request.auth.prefix
        user = request.user
        if user is not None and user.is_authenticated and getattr(user, "pk", None) is not None:
            return "user", str(user.pk)
        return "anon", self.get_ident(request)


class LoginRateThrottle(_ScopedRateThrottle):
    """``POST /api/v1/auth/token/``: guesses per IP address (django-axes also locks username + IP)."""

    def scope_and_ident(self, request) -> tuple[str, str]:
        return "login", self.get_ident(request)


def _content_length(request) -> int:
    try:
        return max(int(request.META.get("CONTENT_LENGTH") or 0), 0)
    except ValueError:
        return 0


class RequestSizeLimitMiddleware:
    """413 for a declared body over the limit, before the body is read (after the language middleware)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        length = _content_length(request)
        if length:
            path = request.path
            if path.startswith(API_PREFIX):
                limit = settings.API_MAX_BODY_SIZE
                if length > limit and not path.startswith(OWN_LIMIT_PREFIXES):
                    body = {
                        "code": "request_too_large",
                        "message": gettext(
                            "The request body is too large: %(size)s bytes, at most %(limit)s."
                        )
                        % {"size": f"{length:,}", "limit": f"{limit:,}"},
                        "fields": {},
                    }
                    return HttpResponse(orjson.dumps(body), status=413, content_type="application/json")
            elif length > settings.MAX_REQUEST_BODY_SIZE:
                return HttpResponse(
                    "Request body too large 请求内容过大",
                    status=413,
                    content_type="text/plain; charset=utf-8",
                )
        return self.get_response(request)
