"""API permissions: staff act through their Django model permissions; customers see only their own."""

from rest_framework.permissions import SAFE_METHODS, BasePermission, DjangoModelPermissions


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
        if not (user and user.is_authenticated):
            return False
        if user.is_staff:
            return self.staff_permissions.has_permission(request, view)
        return request.method in SAFE_METHODS and user.memberships.exists()
