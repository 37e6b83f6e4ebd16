from django.apps import AppConfig


class WebhooksConfig(AppConfig):
    """Outgoing webhooks (docs/webhooks.md): endpoints, the outbox, signed delivery. The roles'
    permissions are in ``apps.accounts.roles`` (granted by migration 0002)."""

    name = "apps.webhooks"
    label = "webhooks"
    verbose_name = "Webhooks 回调"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from apps.billing.invoicing.services.steps import invoicing_step_register
        from apps.core.events import event_subscribe
        from apps.webhooks import hooks, services, tasks  # noqa: F401  (tasks: registers the Celery tasks)

        event_subscribe(services.webhook_events_record)
        invoicing_step_register(event="issue", step=hooks.invoice_issued_step)
        invoicing_step_register(event="credit_note", step=hooks.credit_note_issued_step)
