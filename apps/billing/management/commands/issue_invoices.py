"""``issue_invoices --period YYYY-MM [--customer CODE] [--early-reason TEXT]``: issue a period's
drafts, with a progress bar. A period that has not ended is issued only with ``--early-reason``.
"""

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone
from tqdm import tqdm

from apps.billing.invoicing.services.issuing import invoice_issue_period
from apps.core.errors import DomainError
from apps.customers.models import Customer


class Command(BaseCommand):
    help = "Issue every draft invoice of a period (gapless numbers INV-YYYY-NNNNNN); prints the numbers."

    def add_arguments(self, parser):
        parser.add_argument("--period", required=True, help="YYYY-MM")
        parser.add_argument("--customer", help="customer code: issue only this customer's drafts")
        parser.add_argument(
            "--early-reason",
            default="",
            help="why the period is issued before it has ended (required then; kept on each invoice)",
        )
        parser.add_argument("--no-progress", action="store_true")

    def handle(self, *args, period, customer, early_reason, no_progress, **options):
        target = None
        if customer:
            target = Customer.objects.filter(code=customer).first()
            if target is None:
                raise CommandError(f"Unknown customer {customer!r}.")
        bar = tqdm(total=0, unit="invoice", disable=no_progress, desc=f"issuing {period}")

        def progress(done: int, total: int) -> None:
            bar.total = total
            bar.update(1)

        try:
            outcome = invoice_issue_period(
                period=period,
                customer=target,
                now=timezone.now(),
                progress=progress,
                early_reason=early_reason,
            )
        except DomainError as exc:
            raise CommandError(exc.message) from None
        finally:
            bar.close()
        for invoice in outcome.issued:
            self.stdout.write(
                f"{invoice.number}  {invoice.customer.code}  {invoice.total_amount} {invoice.currency}"
            )
        self.stdout.write(
            f"Issued {len(outcome.issued)} invoice(s) of {period}; failed {len(outcome.errors)}."
        )
        for draft, message in outcome.errors.items():
            self.stderr.write(f"  {draft}: {message}")
        if outcome.errors:
            raise CommandError(f"{len(outcome.errors)} draft(s) could not be issued; see above.")
