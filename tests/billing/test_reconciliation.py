"""Reconciliation before issue: partner hours against the agent's observed hours, the flag, the
tolerance, finance's decision and the re-rate (docs/hardware-truth.md#reconciliation).

Every contract here: one card at 10.00 per card-hour, prices including 6 % VAT, November 2026
(a 30-day month, 720 hours), the provider's default tolerance of 1 % or 0.5 h per card-month.
"""

from __future__ import annotations

import datetime
import itertools
from decimal import Decimal

import pytest

from apps.accounts import roles
from apps.audit.models import AuditEvent
from apps.billing.invoicing.reconciliation import provider_reconciliation_rate
from apps.billing.invoicing.services.issuing import invoice_issue, invoice_issue_period
from apps.billing.invoicing.services.reconciliation import invoice_reconciliation_decide
from apps.billing.models import BillingRun, Invoice, ReconciliationCard
from apps.contracts.models import ContractLine
from apps.core.errors import DomainError, InvalidState
from apps.metering.services import usage_ingest
from tests.factories.billing_flows import at, bill, card_contract, next_month_start, use
from tests.factories.catalogue import CustomerFactory, ServerFactory

pytestmark = pytest.mark.django_db

_ids = itertools.count(1)
ISSUE_AT = next_month_start("2026-11", 10)


def observe(server, start, end, *, slot: int = 0, utilization: str | None = None) -> None:
    """One agent record of a card (received an hour after it ends), as the agent posts it."""
    record = {
        "event_id": f"agent-{next(_ids)}",
        "card": server.cards.get(slot=slot).uuid,
        "start": start.isoformat(),
        "end": end.isoformat(),
    }
    if utilization is not None:
        record["telemetry"] = {"utilization_percent": float(utilization)}
    usage_ingest(
        provider=server.provider,
        payload_records=[record],
        received_at=end + datetime.timedelta(hours=1),
        source="agent",
        server=server,
    )


def observe_hours(server, hours: float, *, slot: int = 0, day: int = 2, **kwargs) -> None:
    start = at(day)
    observe(server, start, start + datetime.timedelta(hours=hours), slot=slot, **kwargs)


@pytest.fixture
def am(make_staff):
    return make_staff(roles.ACCOUNT_MANAGER, username="am1")


@pytest.fixture
def finance(make_staff):
    return make_staff(roles.FINANCE, username="finance1")


@pytest.fixture
def world(am):
    customer = CustomerFactory(auto_issue=True)
    server = ServerFactory()
    contract = card_contract(customer, am, server, price="10.00")
    return customer, server, contract


def figures(invoice: Invoice) -> list[tuple]:
    return list(
        ReconciliationCard.objects.filter(invoice=invoice).values_list(
            "billed_hours",
            "observed_hours",
            "matched_hours",
            "billed_not_observed_hours",
            "observed_not_billed_hours",
            "within_tolerance",
        )
    )


def test_an_exact_match_auto_issues(world):
    customer, server, _ = world
    use(server, 100)
    observe_hours(server, 100)
    invoice = bill(customer)
    assert (invoice.status, invoice.reconciliation_status) == ("issued", "matched")
    assert invoice.total_amount == Decimal("1000.00")
    assert figures(invoice) == [
        (Decimal("100"), Decimal("100"), Decimal("100"), Decimal("0"), Decimal("0"), True)
    ]


def test_a_provider_over_reporting_10_percent_is_flagged_and_held(world, finance):
    customer, server, _ = world
    use(server, 110)  # the provider reports 110 h
    observe_hours(server, 100)  # the card was busy for 100 h of them
    invoice = bill(customer)
    assert (invoice.status, invoice.reconciliation_status) == ("draft", "flagged")
    assert invoice.total_amount == Decimal("1100.00")
    assert figures(invoice) == [
        (Decimal("110"), Decimal("100"), Decimal("100"), Decimal("10"), Decimal("0"), False)
    ]
    # tolerance: max(1 % × 110 h, 0.5 h × the whole month) = 1.1 h
    assert ReconciliationCard.objects.get(invoice=invoice).tolerance_hours == Decimal("1.1")
    run = BillingRun.objects.get(customer=customer)
    assert (
        "not issued" in run.errors[customer.code] and "flagged by reconciliation" in run.errors[customer.code]
    )
    # neither the single issue nor the period's bulk issue can issue it
    with pytest.raises(InvalidState, match="flagged by reconciliation"):
        invoice_issue(invoice=invoice, now=ISSUE_AT)
    outcome = invoice_issue_period(period="2026-11", now=ISSUE_AT)
    assert outcome.issued == []
    assert list(outcome.errors.values()) == [
        f"{invoice} is flagged by reconciliation: billed hours differ "
        "from the hours the agent observed. Finance decides how to bill it first."
    ]
    # finance holds it: it stays a draft and still cannot be issued, even after another run
    invoice_reconciliation_decide(invoice=invoice, decision="hold", actor=finance, now=ISSUE_AT)
    invoice = bill(customer)
    assert (invoice.status, invoice.reconciliation_status, invoice.reconciliation_decision) == (
        "draft",
        "decided",
        "hold",
    )
    assert invoice.reconciliation_decided_by == finance
    assert invoice.reconciliation_decided_at == ISSUE_AT
    with pytest.raises(InvalidState, match="held after reconciliation"):
        invoice_issue(invoice=invoice, now=ISSUE_AT)
    assert Invoice.objects.get(pk=invoice.pk).number is None


def test_billing_the_observed_hours_re_rates_the_line(world, finance):
    customer, server, _ = world
    customer.auto_issue = False  # finance issues by hand: the draft stays one across runs
    customer.save()
    use(server, 110)
    observe_hours(server, 100)
    invoice = bill(customer)
    decided = invoice_reconciliation_decide(invoice=invoice, decision="observed", actor=finance, now=ISSUE_AT)
    # 100 observed hours × 10.00 = 1,000.00 including 6 % VAT: net 1,000 / 1.06 = 943.40, tax 56.60
    line = decided.lines.get()
    assert (line.quantity, line.amount, line.net_amount, line.tax_amount) == (
        Decimal("100"),
        Decimal("1000.00"),
        Decimal("943.40"),
        Decimal("56.60"),
    )
    assert (decided.total_amount, decided.net_amount, decided.tax_amount) == (
        Decimal("1000.00"),
        Decimal("943.40"),
        Decimal("56.60"),
    )
    assert ReconciliationCard.objects.get(invoice=invoice).invoice_line_id == line.pk
    # the audit trail names who decided, and the total it changed
    event = AuditEvent.objects.filter(object_id=str(invoice.pk), actor=finance).latest("occurred_at")
    assert event.reason == "reconciliation: observed"
    assert event.changes["total_amount"] == ["1100.00", "1000.00"]
    # a later run refreshes the draft from the partner's records; the decision stands on the same figures
    invoice = bill(customer)
    assert (invoice.reconciliation_status, invoice.reconciliation_decision) == ("decided", "observed")
    assert invoice.total_amount == Decimal("1000.00")
    assert BillingRun.objects.filter(customer=customer).latest("pk").draft_changes == {}  # nothing changed
    # back to bill as reported: 1,100.00 again, and it can be issued
    invoice_reconciliation_decide(invoice=invoice, decision="as_reported", actor=finance, now=ISSUE_AT)
    issued = invoice_issue(invoice=invoice, now=ISSUE_AT)
    assert (issued.status, issued.total_amount) == ("issued", Decimal("1100.00"))


def test_new_figures_undo_a_decision(world, finance):
    customer, server, _ = world
    use(server, 110)
    observe_hours(server, 100)
    invoice_reconciliation_decide(invoice=bill(customer), decision="as_reported", actor=finance, now=ISSUE_AT)
    use(server, 5, day=20)  # more reported usage arrives before the next run
    invoice = bill(customer)
    assert (invoice.status, invoice.reconciliation_status, invoice.reconciliation_decision) == (
        "draft",
        "flagged",
        "",
    )
    assert invoice.reconciliation_decided_by is None


@pytest.mark.parametrize(
    ("billed", "observed_minutes", "status"),
    [
        (100, 99 * 60, "matched"),  # 1 h off, 1 % of 100 h = 1 h: at the edge, within
        (100, 99 * 60 - 1, "flagged"),  # a minute more
        (20, 19 * 60 + 30, "matched"),  # 0.5 h off: 1 % is 0.2 h, the 0.5 h floor holds
        (20, 19 * 60 + 29, "flagged"),
    ],
)
def test_tolerance_edges(world, billed, observed_minutes, status):
    customer, server, _ = world
    use(server, billed)
    start = at(2)
    observe(server, start, start + datetime.timedelta(minutes=observed_minutes))
    assert bill(customer).reconciliation_status == status


def test_a_provider_may_be_given_a_wider_tolerance(world):
    customer, server, _ = world
    server.provider.reconciliation_tolerance_percent = Decimal("10.00")
    server.provider.save()
    use(server, 110)
    observe_hours(server, 100)
    invoice = bill(customer)
    assert (invoice.status, invoice.reconciliation_status) == ("issued", "matched")


def test_the_busy_threshold_counts_only_busy_agent_records(world):
    customer, server, contract = world
    ContractLine.objects.filter(contract=contract).update(observed_busy_threshold_percent=Decimal("50"))
    use(server, 100)
    observe(server, at(2), at(2) + datetime.timedelta(hours=60), utilization="80")
    observe(
        server, at(2) + datetime.timedelta(hours=60), at(2) + datetime.timedelta(hours=100), utilization="10"
    )
    invoice = bill(customer)
    assert invoice.reconciliation_status == "flagged"
    assert figures(invoice) == [
        (Decimal("100"), Decimal("60"), Decimal("60"), Decimal("40"), Decimal("0"), False)
    ]


def test_a_card_the_agent_saw_only_idle_shows_no_busy_hours(world):
    customer, server, contract = world
    ContractLine.objects.filter(contract=contract).update(observed_busy_threshold_percent=Decimal("50"))
    use(server, 100)
    observe_hours(server, 100, utilization="5")
    invoice = bill(customer)
    assert invoice.reconciliation_status == "flagged"
    assert figures(invoice) == [
        (Decimal("100"), Decimal("0"), Decimal("0"), Decimal("100"), Decimal("0"), False)
    ]


def test_without_agent_records_nothing_is_reconciled(world):
    customer, server, _ = world
    use(server, 100)
    invoice = bill(customer)
    assert (invoice.status, invoice.reconciliation_status) == ("issued", "not_needed")
    assert not ReconciliationCard.objects.exists()


def test_reconciliation_looks_only_when_the_agent_reported_near_the_period(world, am):
    """Evidence is an agent record in a line's window: with none from 31 days before the period
    to its end, nothing is read; one in late October makes it look, and find no evidence for
    November; one in November is compared."""
    from apps.billing.invoicing.reconciliation import agent_records_exist

    customer, server, _ = world
    use(server, 100)
    observe(server, at(10, month=9), at(10, 2, month=9))  # September: too early to matter
    invoice = bill(customer)
    assert not agent_records_exist(invoice_ids=[invoice.pk])
    assert (invoice.status, invoice.reconciliation_status) == ("issued", "not_needed")
    other = CustomerFactory(auto_issue=False)
    other_server = ServerFactory()
    card_contract(other, am, other_server, price="10.00")
    use(other_server, 10)
    observe(other_server, at(20, month=10), at(20, 2, month=10))  # inside the reach, before the line
    draft = bill(other)
    assert agent_records_exist(invoice_ids=[draft.pk])
    assert draft.reconciliation_status == "not_needed" and not ReconciliationCard.objects.exists()
    observe_hours(other_server, 10)
    draft = bill(other)
    assert draft.reconciliation_status == "matched"
    assert figures(draft) == [(Decimal("10"), Decimal("10"), Decimal("10"), Decimal("0"), Decimal("0"), True)]


def test_a_line_that_bills_the_agent_bills_its_records_and_is_not_reconciled(world):
    customer, server, contract = world
    ContractLine.objects.filter(contract=contract).update(usage_source="agent")
    use(server, 110)
    observe_hours(server, 100)
    invoice = bill(customer)
    assert (invoice.status, invoice.reconciliation_status) == ("issued", "not_needed")
    assert invoice.total_amount == Decimal("1000.00")


def test_only_finance_decides(world, am, finance):
    customer, server, _ = world
    use(server, 110)
    observe_hours(server, 100)
    invoice = bill(customer)
    with pytest.raises(DomainError, match="Only finance decides") as refused:
        invoice_reconciliation_decide(invoice=invoice, decision="as_reported", actor=am, now=ISSUE_AT)
    assert refused.value.code == "permission_denied"
    with pytest.raises(DomainError, match="Unknown decision"):
        invoice_reconciliation_decide(invoice=invoice, decision="split", actor=finance, now=ISSUE_AT)
    assert Invoice.objects.get(pk=invoice.pk).reconciliation_status == "flagged"


def test_a_matched_draft_has_nothing_to_decide(world, finance):
    customer, server, _ = world
    use(server, 100)
    observe_hours(server, 100)
    invoice = bill(customer)
    with pytest.raises(InvalidState, match="no reconciliation to decide"):
        invoice_reconciliation_decide(invoice=invoice, decision="hold", actor=finance, now=ISSUE_AT)


def test_provider_reconciliation_rate(world):
    customer, server, _ = world
    use(server, 110)
    observe_hours(server, 100)
    bill(customer)
    rate = provider_reconciliation_rate(provider_id=server.provider_id, period="2026-11")
    assert (rate.billed_hours, rate.matched_hours, rate.percent) == (
        Decimal("110"),
        Decimal("100"),
        Decimal("90.91"),
    )
