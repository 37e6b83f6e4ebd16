"""``run_billing --period YYYY-MM [--customer CODE] [--workers N]``: bill a period synchronously, with a
progress bar; ``--workers`` bills that many chunks of customers at once in forked processes."""

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from apps.billing.invoicing.services.runs import billing_run_create, billing_run_execute
from apps.core.errors import DomainError
from apps.customers.models import Customer


class Command(BaseCommand):
    help = "Create or refresh the draft invoices of a period (issued invoices are never touched)."

    def add_arguments(self, parser):
        parser.add_argument("--period", required=True, help="YYYY-MM")
        parser.add_argument("--customer", help="customer code: bill only this customer")
        parser.add_argument("--no-progress", action="store_true")
        parser.add_argument(
            "--workers",
            type=int,
            default=1,
            help="processes billing chunks of customers at once (default 1; the machine's cores at most)",
        )

    def handle(self, *args, period, customer, no_progress, workers, **options):
        if workers < 1:
            raise CommandError("--workers must be at least 1.")
        target = None
        if customer:
            target = Customer.objects.filter(code=customer).first()
            if target is None:
                raise CommandError(f"Unknown customer {customer!r}.")
        try:
            run = billing_run_create(period=period, customer=target)
        except DomainError as exc:
            raise CommandError(exc.message) from None
        bar = tqdm(total=0, unit="customer", disable=no_progress, desc=f"billing {run.period}")

        def progress(done: int) -> None:
            if bar.total == 0:
                bar.total = run.__class__.objects.get(pk=run.pk).customers_total
            bar.update(done)

        run = billing_run_execute(run=run, progress=progress, workers=workers)
        bar.close()
        self.stdout.write(
            f"Billing run #{run.pk} {run.period}: {run.status}; customers {run.customers_done}/{run.customers_total}, "
            f"invoices created {run.invoices_created}, refreshed {run.invoices_refreshed}, "
            f"unchanged {run.invoices_unchanged}, errors {len(run.errors)}"
        )
        for code, message in run.errors.items():
            self.stderr.write(f"  {code}: {message}")
        if run.errors:
            raise CommandError(f"{len(run.errors)} customer(s) failed; see above.")
