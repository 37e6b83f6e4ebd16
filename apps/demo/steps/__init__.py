"""The demo data behind ``manage.py loaddemo`` (docs/operations.md#demo-data).

A year of plausible history that ends now: the eleven closed months before the current one are
billed, issued, paid (mostly on time, some late, a few still overdue) and settled with the
providers; customers join over the year, a few contracts end, the platform's own servers earn
their payback; the current month shows as a preview. Dates count from the current month (dates.py).

The load is a list of steps run in order inside one transaction. Each step finds its rows by
natural key and writes only what is missing or different, so a second run changes nothing.
Randomness comes from ``DemoContext.rng(step, ...)``, seeded per step, never from the clock.
New steps are appended to ``STEPS``; each goes through the services, like a user would.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from django.db import transaction

from . import billing, contracts, customers, hardware, hardware_truth, people, prices
from .base import DemoContext, ProgressFactory, Tally, no_progress
from .data import DEFAULT_SEED, DEMO_PASSWORD


@dataclass(frozen=True)
class Step:
    name: str
    run: Callable[[DemoContext], None]


STEPS: list[Step] = [
    Step("staff users", people.load_staff),
    Step("providers and sites", hardware.load_providers),
    Step("servers and cards", hardware.load_servers),
    Step("price lists", prices.load_price_lists),
    Step("supply agreements", hardware.load_supply_agreements),
    Step("customers", customers.load_customers),
    Step("portal users", people.load_portal_users),
    Step("contracts", contracts.load_contracts),
    Step("usage", billing.load_usage),
    Step("billing", billing.load_billing),
    Step("hardware truth", hardware_truth.load_hardware_truth),
]


def load_demo(*, seed: int = DEFAULT_SEED, progress: ProgressFactory = no_progress) -> dict[str, Tally]:
    """Load (or complete) the demo data; returns created/updated/unchanged counts per kind of row."""
    ctx = DemoContext(seed=seed, progress=progress)
    with transaction.atomic():
        for step in STEPS:
            step.run(ctx)
    return ctx.tallies


__all__ = ["DEFAULT_SEED", "DEMO_PASSWORD", "STEPS", "DemoContext", "Step", "Tally", "load_demo"]
