"""``manage.py loaddemo``: load the demo data (idempotent; see apps/demo/steps)."""

from __future__ import annotations

import time
from contextlib import contextmanager

from django.core.management.base import BaseCommand
from tqdm import tqdm

from apps.demo.steps import DEFAULT_SEED, DEMO_PASSWORD, load_demo
from apps.demo.steps.data import PORTAL_USERS, STAFF_USERS


class Command(BaseCommand):
    help = (
        "Load the demo: users, providers, sites, ~300 servers with cards, prices, customers, contracts and a "
        "year of usage, invoices, payments and settlements ending today. Safe to rerun."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--seed", type=int, default=DEFAULT_SEED, help="Seed of the generated data (default %(default)s)."
        )

    def handle(self, *args, seed: int, verbosity: int, **options):
        @contextmanager
        def progress(*, total: int, desc: str, unit: str = "it"):
            with tqdm(total=total, desc=desc, unit=unit, file=self.stderr._out, disable=verbosity < 1) as bar:
                yield bar

        started = time.monotonic()
        tallies = load_demo(seed=seed, progress=progress)
        elapsed = time.monotonic() - started

        if verbosity < 1:
            return
        self.stdout.write(self.style.SUCCESS(f"Demo data loaded in {elapsed:.1f} s (seed {seed}):"))
        width = max(len(label) for label in tallies)
        for label, tally in tallies.items():
            self.stdout.write(
                f"  {label:<{width}}  {tally.total:>5}  "
                f"({tally.created} created, {tally.updated} updated, {tally.unchanged} unchanged)"
            )
        staff = ", ".join(u.username for u in STAFF_USERS)
        portal = ", ".join(u[0] for u in PORTAL_USERS)
        self.stdout.write(
            f"  Log in with password {DEMO_PASSWORD!r}: staff {staff} at /admin/; "
            f"customer {portal} at /portal/ (and the API)."
        )
