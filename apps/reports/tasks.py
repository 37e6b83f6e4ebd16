"""Celery tasks of the finance reports: fold changed keys into the revenue facts
(docs/reports.md#revenue-facts). Safe to run twice: a refresh takes an advisory lock and reads
only what is marked."""

from __future__ import annotations

from celery import shared_task

from apps.reports import facts


@shared_task(name="reports.refresh_facts")
def refresh_facts_task() -> int:
    """Every five minutes on Celery beat; returns the number of marks folded in."""
    return facts.facts_refresh()["changes"]
