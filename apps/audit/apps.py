from django.apps import AppConfig
from django.db.models.signals import post_migrate

# Staff roles that read the audit trail in the admin (superusers read it too); nobody writes it.
READER_ROLES = ("finance", "operations", "sales_manager")


def grant_readers(sender, using="default", **kwargs) -> None:
    """Give the reading roles ``audit.view_auditevent`` after every migrate (idempotent; kept out of
    ``accounts.roles`` so that a later ``sync_roles`` of another app cannot take it away)."""
    from django.contrib.auth.models import Group, Permission

    permission = (
        Permission.objects.using(using)
        .filter(content_type__app_label="audit", codename="view_auditevent")
        .first()
    )
    if permission is None:
        return
    for group in Group.objects.using(using).filter(name__in=READER_ROLES):
        group.permissions.add(permission)


class AuditConfig(AppConfig):
    name = "apps.audit"
    label = "audit"
    verbose_name = "Audit trail 审计记录"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from apps.audit import receivers

        receivers.connect()
        post_migrate.connect(grant_readers, dispatch_uid="audit-grant-readers")
