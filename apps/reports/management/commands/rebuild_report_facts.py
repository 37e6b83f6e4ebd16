"""``rebuild_report_facts``: recompute the revenue facts of every billed period, one period per
transaction, with a progress bar (docs/reports.md#revenue-facts). Idempotent; the reports stay
exact while it runs (what is marked changed is read live)."""

from django.core.management.base import BaseCommand
from tqdm import tqdm

from apps.reports import facts


class Command(BaseCommand):
    help = "Recompute the finance reports' revenue facts, period by period."

    def add_arguments(self, parser):
        parser.add_argument("--no-progress", action="store_true")

    def handle(self, *args, no_progress, **options):
        periods = facts.fact_periods()
        written = 0
        for period in tqdm(periods, unit="period", disable=no_progress, desc="revenue facts"):
            written += facts.facts_rebuild(period=period)["written"]
        leftover = facts.facts_refresh()  # whatever else is marked (a customer's every period …)
        self.stdout.write(f"{len(periods)} periods, {written + leftover['written']} fact rows written.")
