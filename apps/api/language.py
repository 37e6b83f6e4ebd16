"""One language per API response (docs/api.md#language).

The request's ``Accept-Language`` decides when it has one: ``zh*`` → Chinese, anything else →
English. Without it: English for partner API keys, staff and anonymous callers; a customer's
portal user gets the customer's language (``Customer.language``, also the language of its
e-mails). Every message of the response — the error's ``message`` and every ``fields`` entry,
Django REST framework's own texts and the services' ``DomainError`` texts alike — is then
written in that language, and the response says which in ``Content-Language``.
"""

from __future__ import annotations

from django.conf import settings
from django.utils import translation
from django.utils.cache import patch_vary_headers
from django.utils.translation.trans_real import parse_accept_lang_header

CHINESE = "zh-hans"
ENGLISH = "en"
API_PREFIX = "/api/"


def header_language(header: str) -> str | None:
    """The language an ``Accept-Language`` header asks for, or ``None`` when it names none."""
    for code, _quality in parse_accept_lang_header(header.strip()):
        code = code.lower()
        if code == "*":
            continue
        return CHINESE if code.startswith("zh") else ENGLISH
    return None


def _token_user(request):
    """The user of a ``Token`` authorization header (DRF authenticates later; this only reads)."""
    scheme, _, key = request.META.get("HTTP_AUTHORIZATION", "").strip().partition(" ")
    if scheme.lower() != "token" or not key.strip():
        return None
    from rest_framework.authtoken.models import Token

    token = Token.objects.select_related("user").filter(key=key.strip()).first()
    return token.user if token is not None else None


def user_language(user) -> str:
    """English for staff; a customer's portal user gets the customer's language."""
    if user is None or not getattr(user, "is_authenticated", False) or user.is_staff:
        return ENGLISH
    language = user.memberships.order_by("pk").values_list("customer__language", flat=True).first()
    return CHINESE if (language or "").lower().startswith("zh") else ENGLISH


def request_language(request) -> str:
    header = request.META.get("HTTP_ACCEPT_LANGUAGE", "")
    if header.strip():
        return header_language(header) or ENGLISH
    authorization = request.META.get("HTTP_AUTHORIZATION", "").strip()
    if authorization.lower().startswith("api-key"):
        return ENGLISH
    user = _token_user(request)
    if user is None and not authorization:
        user = getattr(request, "user", None)  # a browser session (the browsable API)
    return user_language(user)


class ApiLanguageMiddleware:
    """Chooses the language of requests under ``/api/`` (after ``AuthenticationMiddleware``)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if not request.path.startswith(API_PREFIX):
            return self.get_response(request)
        language = request_language(request)
        translation.activate(language)
        request.LANGUAGE_CODE = language
        try:
            response = self.get_response(request)
        finally:
            # Leave the thread as the settings have it: the next request (or a task, or a test
            # calling a service) does not inherit this caller's language.
            translation.activate(settings.LANGUAGE_CODE)
        response.headers["Content-Language"] = language
        patch_vary_headers(response, ("Accept-Language", "Authorization"))
        return response
