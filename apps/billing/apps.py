from django.apps import AppConfig


class BillingConfig(AppConfig):
    """Billing: three peers, invoicing below vouchers and settlements (docs/architecture.md#layers)."""

    name = "apps.billing"
    label = "billing"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from apps.billing import tasks  # noqa: F401  (registers the Celery tasks the services queue by name)
        from apps.billing.invoicing.services.steps import invoicing_step_register
        from apps.billing.payments.services.credit import credit_apply_at_issue, credit_return_for_credit_note
        from apps.billing.vouchers.services import (
            voucher_apply_at_issue,
            voucher_return_for_credit_note,
            voucher_reverse_for_invoice,
        )

        # Supplier-side vouchers pay their share when an invoice is issued and give it back on void.
        invoicing_step_register(event="issue", step=voucher_apply_at_issue)
        invoicing_step_register(event="void", step=voucher_reverse_for_invoice)
        # Customer credit pays what the vouchers left (docs/invoices.md#customer-credit): after them.
        invoicing_step_register(event="issue", step=credit_apply_at_issue)
        # A credit note gives back its share: to the vouchers first, then to the customer's credit
        # (docs/invoices.md#credit-notes-and-payments).
        invoicing_step_register(event="credit_note", step=voucher_return_for_credit_note)
        invoicing_step_register(event="credit_note", step=credit_return_for_credit_note)

        from apps.billing.notices.services import notice_queue_at_issue, notice_queue_at_payment

        # E-mails to the customer, queued after commit: the invoice with its PDF, a receipt per payment.
        invoicing_step_register(event="issue", step=notice_queue_at_issue)
        invoicing_step_register(event="payment", step=notice_queue_at_payment)
