"""Partner systems authenticate with a provider's API key: ``Authorization: Api-Key <key>``
(docs/usage-api.md#authentication).

Keys are stored hashed (djangorestframework-api-key: the prefix is looked up, the rest is
checked against a SHA-512 hash). On success ``request.auth`` is the ``PartnerAPIKey`` and
``request.user`` a ``PartnerSystem`` that names its provider; it is never a staff or portal user,
so model permissions and customer scopes refuse it everywhere else.

The metering agent on a server authenticates the same way with that server's agent key
(``AgentAPIKey``, docs/hardware-truth.md#sources-and-incidents): ``request.user`` is then an
``AgentHost``. Each kind of key reaches only its own endpoints: an agent key anywhere but the
agent endpoints answers 403 ``agent_key_not_allowed``, a partner key on an agent endpoint 403
``permission_denied`` (as on every other endpoint not the partner's), each with a message that
names the right key.
"""

from __future__ import annotations

from django.contrib.auth.models import AnonymousUser
from django.utils.translation import gettext, gettext_lazy
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication
from rest_framework.permissions import BasePermission
from rest_framework_api_key.permissions import KeyParser

from apps.metering.models import AgentAPIKey, PartnerAPIKey

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


class AgentHost(PartnerSystem):
    """``request.user`` of a request signed with a server's agent API key."""

    def __init__(self, api_key: AgentAPIKey) -> None:
        self.api_key = api_key
        self.server = api_key.server
        self.provider = api_key.server.provider

    @property
    def username(self) -> str:  # type: ignore[override]
        return f"agent:{self.server.serial}"

    def __str__(self) -> str:
        return f"metering agent of server {self.server.serial} (key {self.api_key.prefix})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, AgentHost) and other.api_key.pk == self.api_key.pk

    def __hash__(self) -> int:
        return hash(("agent", self.api_key.pk))


class AgentKeyNotAllowed(exceptions.PermissionDenied):
    default_code = "agent_key_not_allowed"
    default_detail = gettext_lazy(
        "Agent API keys reach only the agent endpoints (/api/v1/agent/usage/ and /api/v1/agent/incidents/); "
        "partner usage takes the provider's partner key."
    )


class PartnerKeyNotAllowed(exceptions.PermissionDenied):
    # The code partner keys get on every endpoint not theirs (apps/api/permissions.py).
    default_code = "permission_denied"
    default_detail = gettext_lazy(
        "The agent endpoints take the server's agent API key (manage.py create_agent_key), not a partner key."
    )


def _is_agent_view(request) -> bool:
    view = (getattr(request, "parser_context", None) or {}).get("view")
    return bool(getattr(view, "agent_endpoint", False))


class PartnerAPIKeyAuthentication(BaseAuthentication):
    """``Authorization: Api-Key <prefix>.<secret>``; unknown, revoked or expired keys answer 401.

    A partner key on an agent endpoint, or an agent key anywhere else, answers 403 (the key is
    good, but not for this).
    """

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
        if api_key is None:
            api_key = AgentAPIKey.objects.select_related("server__provider").filter(prefix=prefix).first()
        if api_key is None or not api_key.is_valid(key):
            raise exceptions.AuthenticationFailed(gettext("Invalid API key."))
        if api_key.revoked:
            raise exceptions.AuthenticationFailed(gettext("This API key has been revoked."))
        if api_key.has_expired:
            raise exceptions.AuthenticationFailed(gettext("This API key has expired."))
        agent_view = _is_agent_view(request)
        if isinstance(api_key, AgentAPIKey):
            if not agent_view:
                raise AgentKeyNotAllowed()
            return AgentHost(api_key), api_key
        if agent_view:
            raise PartnerKeyNotAllowed()
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


class IsAgentHost(BasePermission):
    """Only requests authenticated with a server's agent API key."""

    message = gettext_lazy(
        "This endpoint is for the metering agent: authenticate with 'Authorization: Api-Key <agent key>'."
    )

    def has_permission(self, request, view) -> bool:
        return isinstance(request.auth, AgentAPIKey)


class PartnerAPIKeyScheme(OpenApiAuthenticationExtension):
    target_class = "apps.api.authentication.PartnerAPIKeyAuthentication"
    name = "partnerApiKey"

    def get_security_definition(self, auto_schema):
        return {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": (
                "A provider's partner API key, or on the agent endpoints a server's agent API key: "
                "`Authorization: Api-Key <key>`."
            ),
        }
