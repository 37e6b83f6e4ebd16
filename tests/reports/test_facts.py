"""Revenue facts (docs/reports.md#revenue-facts): the facts equal the live computation after an
invoice is issued or voided and after settlement statements are built; the reports read the facts
for keys not marked changed and the live invoices for the marked ones, in one query."""

from __future__ import annotations

from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import connection
from django.db.models import F

from apps.accounts import roles
from apps.billing.invoicing.services.issuing import invoice_issue, invoice_void
from apps.billing.models import Invoice
from apps.billing.settlements.services.statements import settlement_build
from apps.core.periods import Period
from apps.providers.models import Site
from apps.reports import attribution, facts
from apps.reports.models import FactChange, RevenueFact
from apps.reports.selectors import PeriodRange
from tests.factories.invoices import ISSUED_AT, metered_invoice

pytestmark = pytest.mark.django_db

YEAR = PeriodRange(Period(2025, 1), Period(2026, 12))
FIELDS = ("period", "customer_id", "currency", "hardware", "settled", "gpu_model_id", "provider_id", "hub")


def stored() -> list[tuple]:
    """The facts as rows, zero rows left out, in a stable order."""
    rows = RevenueFact.objects.values_list(*FIELDS, "revenue", "cost")
    return sorted((r for r in rows if r[-2] or r[-1] or r[3] is None), key=repr)


def live() -> list[tuple]:
    """The live computation of every billed invoice's parts, as the facts store them."""
    with connection.cursor() as cursor:
        cursor.execute(facts.parts_sql("true"), facts.parameters())
        rows = cursor.fetchall()
    return sorted((r for r in rows if r[-2] or r[-1] or r[3] is None), key=repr)


def figures(by: str) -> list[tuple]:
    return [
        (r.key, r.currency, r.revenue_amount, r.cost_amount, r.unsettled_amount)
        for r in attribution.revenue_margin(period_range=YEAR, by=by)
    ]


def test_facts_equal_the_live_computation_after_issue_void_and_settlement(make_staff):
    am = make_staff(roles.ACCOUNT_MANAGER, username="am1")
    kept = invoice_issue(invoice=metered_invoice(am), now=ISSUED_AT)
    draft = metered_invoice(am)
    facts.facts_rebuild()
    assert not FactChange.objects.exists()
    assert stored() == live()
    assert sum(f.revenue for f in RevenueFact.objects.all()) == kept.net_amount > 0

    invoice_issue(invoice=draft, now=ISSUED_AT)
    assert FactChange.objects.filter(period=draft.period, customer_id=draft.customer_id).exists()
    facts.facts_refresh()
    assert stored() == live()
    issued = RevenueFact.objects.filter(period=draft.period, customer_id=draft.customer_id)
    assert sum(f.revenue for f in issued) >= draft.net_amount > 0

    before = sum(f.revenue for f in issued)
    invoice_void(invoice=Invoice.objects.get(pk=draft.pk), reason="report facts test", now=ISSUED_AT)
    facts.facts_refresh()
    assert stored() == live()
    after = RevenueFact.objects.filter(period=draft.period, customer_id=draft.customer_id)
    assert sum((f.revenue for f in after), Decimal("0.00")) == before - draft.net_amount

    settled_before = RevenueFact.objects.filter(settled=True).count()
    settlement_build(period="2026-11", now=ISSUED_AT)
    facts.facts_refresh()
    assert stored() == live()
    assert not FactChange.objects.exists()
    assert RevenueFact.objects.filter(settled=True).count() > settled_before == 0
    assert RevenueFact.objects.filter(settled=True, provider_id__isnull=False).exists()


def test_reports_read_the_facts_and_marked_keys_live(demo, django_assert_max_num_queries):
    facts.facts_rebuild()
    by_month = figures("month")
    by_customer = figures("customer")
    fact = RevenueFact.objects.filter(hardware__isnull=False).order_by("pk").first()

    # a fact changed behind the reports' back shows: they read the facts
    RevenueFact.objects.filter(pk=fact.pk).update(revenue=F("revenue") + 1000)
    changed = {(key, currency): revenue for key, currency, revenue, *_ in figures("month")}
    expected = {(key, currency): revenue for key, currency, revenue, *_ in by_month}
    assert changed[(fact.period, fact.currency)] == expected[(fact.period, fact.currency)] + 1000

    # once its key is marked changed, the key is read live again, in the same one query
    FactChange.objects.create(period=fact.period, customer_id=fact.customer_id)
    with django_assert_max_num_queries(1):
        assert figures("month") == by_month
    assert figures("customer") == by_customer

    # the refresh puts the fact right
    assert facts.facts_refresh()["changes"] == 1
    assert stored() == live()
    assert figures("month") == by_month


def test_a_site_moved_to_another_hub_marks_every_key(demo):
    facts.facts_rebuild()
    by_hub = figures("hub")
    site = Site.objects.order_by("pk").first()
    Site.objects.filter(pk=site.pk).update(hub="chengyu" if site.hub != "chengyu" else "greater_bay")
    assert FactChange.objects.filter(period=None, customer_id=None).exists()
    moved = figures("hub")
    facts.facts_refresh()
    assert figures("hub") == moved
    assert stored() == live()
    assert by_hub is not None


def test_rebuild_command_recomputes_every_period(demo):
    RevenueFact.objects.all().delete()
    FactChange.objects.all().delete()
    out = StringIO()
    call_command("rebuild_report_facts", "--no-progress", stdout=out)
    assert stored() == live()
    periods = len(facts.fact_periods())
    assert out.getvalue().startswith(f"{periods} periods, ")
    # idempotent
    call_command("rebuild_report_facts", "--no-progress", stdout=StringIO())
    assert stored() == live()
