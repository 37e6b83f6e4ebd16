"""``POST /api/v1/auth/token/``: username and password → a token."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth import authenticate, user_logged_in
from django.utils.translation import gettext
from drf_spectacular.utils import extend_schema
from rest_framework.authtoken.models import Token
from rest_framework.authtoken.views import ObtainAuthToken
from rest_framework.response import Response

from apps.api.exceptions import error_response
from apps.api.throttling import LoginRateThrottle
from apps.api.v1.serializers.auth import TokenRequestSerializer, TokenSerializer
from apps.core.errors import DomainError

from .base import ERROR


class ObtainTokenView(ObtainAuthToken):
    """Exchange a username and password for the user's API token (created on first use)."""

    authentication_classes = ()  # a browser session must not turn this into a CSRF check
    serializer_class = TokenRequestSerializer
    throttle_classes = [LoginRateThrottle]  # guesses per IP address (docs/api.md#throttling-and-lockout)

    @extend_schema(
        operation_id="auth_token_create",
        request=TokenRequestSerializer,
        responses={200: TokenSerializer, 400: ERROR, 413: ERROR, 429: ERROR},
        auth=[],
        tags=["auth"],
    )
    def post(self, request, *args, **kwargs):
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        user = authenticate(
            request=request,
            username=serializer.validated_data["username"],
            password=serializer.validated_data["password"],
        )
        if getattr(request, "axes_locked_out", False):
            # django-axes: too many failures for this username and IP address; even the right
            # password is refused until the cool-off has passed (docs/api.md#throttling-and-lockout).
            # Axes flags DRF's Request, not the Django request, so AxesMiddleware leaves this JSON
            # answer alone instead of swapping in its HTML lockout page.
            cool_off = int(settings.AXES_COOLOFF_TIME.total_seconds())
            response = error_response(
                "locked_out",
                gettext("Too many failed logins for this username: try again in %(minutes)s minutes.")
                % {"minutes": max(cool_off // 60, 1)},
                getattr(settings, "AXES_HTTP_RESPONSE_CODE", 429),
            )
            response["Retry-After"] = str(cool_off)
            return response
        if user is None:  # wrong password, unknown user or inactive user: one answer for all
            raise DomainError(
                gettext("Unable to log in with the username and password given."), code="invalid_credentials"
            )
        # As a login does: django-axes clears the username's failures (AXES_RESET_ON_SUCCESS).
        user_logged_in.send(sender=user.__class__, request=request, user=user)
        token, _ = Token.objects.get_or_create(user=user)
        return Response({"token": token.key})
