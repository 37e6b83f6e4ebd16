"""The demo's hardware truth (docs/hardware-truth.md): a flagged draft, a card incident and an SLA
credit on the current month's drafts, made by the loader through the services; a second load
changes nothing."""

from __future__ import annotations

from decimal import Decimal

from apps.billing.models import Invoice
from apps.demo.steps import DemoContext
from apps.demo.steps.data import DEFAULT_SEED
from apps.demo.steps.hardware_truth import load_hardware_truth
from apps.inventory.models import CardIncident


def test_the_demo_has_a_flagged_draft_an_incident_and_an_sla_credit(demo):
    load_hardware_truth(DemoContext(seed=DEFAULT_SEED))  # as loaddemo runs it (a no-op once loaded)
    incidents = CardIncident.objects.filter(source_event_id="demo-xid79-2026-11").select_related("card")
    assert incidents.count() == 2
    assert {(i.kind, i.xid_code, (i.ended_at - i.started_at).total_seconds()) for i in incidents} == {
        ("fell_off_bus", 79, 60 * 3600.0)
    }
    flagged = Invoice.objects.get(customer__code="shenlan", period="2026-11")
    assert (flagged.status, flagged.reconciliation_status) == ("draft", "flagged")
    cards = flagged.reconciliation_cards.all()
    assert cards.count() == 4
    assert all(c.billed_hours > c.observed_hours > 0 and not c.within_tolerance for c in cards)
    leased = Invoice.objects.get(customer__code="jinghong", period="2026-11")
    assert leased.status == "draft"
    lease = leased.lines.get(kind="recurring")
    credit = leased.lines.get(kind="sla_credit")
    # 2 cards × 60 h of 16 × 720 card-hours: availability 98.96 %, under 99 % → 25 % of the lease
    assert "availability 98.96 %" in credit.description
    assert credit.amount == -(lease.amount * Decimal("0.25")).quantize(Decimal("0.01"))
    assert credit.tax_rate == lease.tax_rate


def test_a_second_load_changes_nothing(demo):
    load_hardware_truth(DemoContext(seed=DEFAULT_SEED))
    again = DemoContext(seed=DEFAULT_SEED)
    load_hardware_truth(again)
    assert again.tallies["hardware truth"].created == 0
    assert again.tallies["hardware truth"].updated == 0
