from django.apps import AppConfig
from django.db.models.signals import post_migrate

# Who reaches webhooks in the admin and the API (docs/webhooks.md#who-manages-endpoints): finance
# and operations manage endpoints and re-send deliveries; account managers read the endpoints and
# deliveries of their own customers (the admin scopes the rows).
_MANAGE = [
    "view_webhookendpoint",
    "add_webhookendpoint",
    "change_webhookendpoint",
    "delete_webhookendpoint",
    "view_webhookdelivery",
    "resend_webhookdelivery",
]
ROLE_GRANTS = {
    "finance": _MANAGE,
    "operations": _MANAGE,
    "account_manager": ["view_webhookendpoint", "view_webhookdelivery"],
}


def grant_roles(sender, using="default", **kwargs) -> None:
    """Add the webhook permissions to the role groups after every migrate (idempotent; kept out of
    ``accounts.roles`` so that a later ``sync_roles`` of another app cannot take them away)."""
    from django.contrib.auth.models import Group, Permission

    for group in Group.objects.using(using).filter(name__in=ROLE_GRANTS):
        group.permissions.add(
            *Permission.objects.using(using).filter(
                content_type__app_label="webhooks", codename__in=ROLE_GRANTS[group.name]
            )
        )


class WebhooksConfig(AppConfig):
    """Outgoing webhooks (docs/webhooks.md): endpoints, the outbox, signed delivery."""

    name = "apps.webhooks"
    label = "webhooks"
    verbose_name = "Webhooks 回调"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from apps.billing.invoicing.services.steps import invoicing_step_register
        from apps.core.events import event_subscribe
        from apps.webhooks import hooks, services, tasks  # noqa: F401  (tasks: registers the Celery tasks)

        event_subscribe(subscriber=services.webhook_event_record)
        invoicing_step_register(event="issue", step=hooks.invoice_issued_step)
        invoicing_step_register(event="credit_note", step=hooks.credit_note_issued_step)
        post_migrate.connect(grant_roles, dispatch_uid="webhooks-grant-roles")
