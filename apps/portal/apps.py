from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class PortalConfig(AppConfig):
    """The customer portal (/portal/): views and forms over the domain selectors; no models."""

    name = "apps.portal"
    label = "portal"
    verbose_name = _("Customer portal")
