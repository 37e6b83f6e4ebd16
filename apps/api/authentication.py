"""Partner systems authenticate with a provider's API key: ``Authorization: Api-Key <key>``
(docs/usage-api.md#authentication).

Keys are stored hashed (djangorestframework-api-key: the prefix is looked up, the rest is
checked against a SHA-512 hash). On success ``request.auth`` is the ``PartnerAPIKey`` and
``request.user`` a ``PartnerSystem`` that names its provider; it is never a staff or portal user,
so model permissions and customer scopes refuse it everywhere else.
"""

from __future__ import annotations

from django.contrib.auth.models import AnonymousUser
from django.utils.translation import gettext, gettext_lazy
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication
from rest_framework.permissions import BasePermission
from rest_framework_api_key.permissions import KeyParser

from apps.metering.models import PartnerAPIKey

KEYWORD = "Api-Key"


class PartnerSystem(AnonymousUser):
    """``request.user`` of a request signed with a partner API key."""

    is_active = True

    def __init__(self, api_key: PartnerAPIKey) -> None:
        self.api_key = api_key
        self.provider = api_key.provider

    @property
    def is_anonymous(self) -> bool:
        return False

    @property
    def is_authenticated(self) -> bool:
        return True

    @property
    def username(self) -> str:  # type: ignore[override]
        return f"partner:{self.provider.code}"

    def __str__(self) -> str:
        return f"partner system of {self.provider.code} (key {self.api_key.prefix})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, PartnerSystem) and other.api_key.pk == self.api_key.pk

    def __hash__(self) -> int:
        return hash(self.api_key.pk)


class PartnerAPIKeyAuthentication(BaseAuthentication):
    """``Authorization: Api-Key <prefix>.<secret>``; unknown, revoked or expired keys answer 401."""

    key_parser = KeyParser()

    def authenticate(self, request):
        key = self.key_parser.get_from_authorization(request)
        if key is None:
            return None  # another scheme, or none: not ours to judge
        key = key.strip()
        if not key:
            raise exceptions.AuthenticationFailed(gettext("No API key given after 'Api-Key'."))
        prefix, _, _ = key.partition(".")
        api_key = PartnerAPIKey.objects.select_related("provider").filter(prefix=prefix).first()
        if api_key is None or not api_key.is_valid(key):
            raise exceptions.AuthenticationFailed(gettext("Invalid API key."))
        if api_key.revoked:
            raise exceptions.AuthenticationFailed(gettext("This API key has been revoked."))
        if api_key.has_expired:
            raise exceptions.AuthenticationFailed(gettext("This API key has expired."))
        return PartnerSystem(api_key), api_key

    def authenticate_header(self, request) -> str:
        return KEYWORD  # makes a missing or refused key a 401 with WWW-Authenticate


class IsPartnerSystem(BasePermission):
    """Only requests authenticated with a partner API key."""

    message = gettext_lazy(
        "This endpoint is for partner systems: authenticate with 'Authorization: Api-Key <key>'."
    )

    def has_permission(self, request, view) -> bool:
        return isinstance(request.auth, PartnerAPIKey)


class PartnerAPIKeyScheme(OpenApiAuthenticationExtension):
    target_class = "apps.api.authentication.PartnerAPIKeyAuthentication"
    name = "partnerApiKey"

    def get_security_definition(self, auto_schema):
        return {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": "A provider's partner API key: `Authorization: Api-Key <key>`.",
        }
