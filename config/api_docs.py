"""The OpenAPI schema (/api/schema/) and Swagger UI (/api/docs/), behind a login where
``API_DOCS_REQUIRE_LOGIN`` says so (on in production; docs/security.md#hardening).

The schema answers a signed-in session or an API token (401/403 in the error shape otherwise);
the docs page sends an anonymous browser to the admin login and comes back. Swagger UI's
settings script is served from its own URL, not inline, so the Content-Security-Policy needs no
inline script.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.views import redirect_to_login
from drf_spectacular.utils import extend_schema
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView
from rest_framework.permissions import AllowAny, IsAuthenticated


def _login_required() -> bool:
    return bool(getattr(settings, "API_DOCS_REQUIRE_LOGIN", False))


class SchemaView(SpectacularAPIView):
    def get_permissions(self):
        return [IsAuthenticated()] if _login_required() else [AllowAny()]


class DocsView(SpectacularSwaggerSplitView):
    @extend_schema(exclude=True)
    def get(self, request, *args, **kwargs):
        if _login_required() and not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path(), settings.LOGIN_URL)
        return super().get(request, *args, **kwargs)
