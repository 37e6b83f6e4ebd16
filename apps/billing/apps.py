from django.apps import AppConfig


class BillingConfig(AppConfig):
    """Billing: three peers, invoicing below vouchers and settlements (docs/architecture.md#layers)."""

    name = "apps.billing"
    label = "billing"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from apps.billing import tasks  # noqa: F401  (registers the Celery tasks the services queue by name)
        from apps.billing.invoicing.services.steps import invoicing_step_register
        from apps.billing.vouchers.services import voucher_apply_at_issue, voucher_reverse_for_invoice

        # Supplier-side vouchers pay their share when an invoice is issued and give it back on void.
        invoicing_step_register(event="issue", step=voucher_apply_at_issue)
        invoicing_step_register(event="void", step=voucher_reverse_for_invoice)
