"""API permissions: staff act through their Django model permissions; customers see only their own."""

from django.utils.translation import gettext_lazy
from rest_framework.exceptions import PermissionDenied
from rest_framework.permissions import SAFE_METHODS, BasePermission, DjangoModelPermissions

from apps.api.authentication import PartnerAPIKeyAuthentication
from apps.metering.models import AgentAPIKey, PartnerAPIKey


def is_partner(request) -> bool:
    """Signed with a provider's partner API key (``request.user`` is a ``PartnerSystem``) or a
    server's agent key (an ``AgentHost``): never a staff or customer user."""
    return isinstance(getattr(request, "auth", None), PartnerAPIKey | AgentAPIKey)


class PartnerKeyGate(PartnerAPIKeyAuthentication):
    """Partner API keys on every endpoint (a default authentication class), refused with 403 where
    the view does not serve partner systems (``partner_readable = True``: usage and the provider's
    own settlements; docs/security.md#roles). Without this, a key sent to another endpoint would
    be ignored and answer 401 as if it were missing; 403 says the key is good but not for this."""

    message = gettext_lazy("Partner API keys reach only the usage and settlement endpoints.")

    def authenticate(self, request):
        result = super().authenticate(request)
        if result is None:
            return None
        view = (getattr(request, "parser_context", None) or {}).get("view")
        if not getattr(view, "partner_readable", False):
            raise PermissionDenied(self.message, code="partner_key_not_allowed")
        return result


class StaffModelPermissions(DjangoModelPermissions):
    """Model permissions for every method, reads included (``view_*``), for staff users only.

    A customer portal user never acts through model permissions, even if some were granted by
    mistake: the catalogue and the hardware are none of their business (403).
    """

    perms_map = {
        **DjangoModelPermissions.perms_map,
        "GET": ["%(app_label)s.view_%(model_name)s"],
        "HEAD": ["%(app_label)s.view_%(model_name)s"],
        "OPTIONS": [],
    }

    def has_permission(self, request, view):
        if is_partner(request):
            return False
        if not super().has_permission(request, view):
            return False
        return getattr(view, "_ignore_model_permissions", False) or request.user.is_staff


class CustomerScopedPermissions(BasePermission):
    """Staff: their model permissions. Customer portal users (members of a customer): reads only;
    which rows they see is the view's queryset (``apps.customers.selectors``), so a foreign id
    answers 404, never 403. A non-staff user who belongs to no customer is refused (403).
    """

    staff_permissions = StaffModelPermissions()

    def has_permission(self, request, view):
        user = request.user
        if not (user and user.is_authenticated) or is_partner(request):
            return False
        if user.is_staff:
            return self.staff_permissions.has_permission(request, view)
        return request.method in SAFE_METHODS and user.memberships.exists()
