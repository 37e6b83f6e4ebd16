"""Provider settlements (docs/settlements.md): cost at the supply agreement on the customer's quantity basis,
revenue and margin, idempotent drafts, frozen confirmed statements, the margin report."""

from __future__ import annotations

import datetime
from decimal import Decimal

import pytest
import time_machine
from django.db import IntegrityError, connection, transaction
from django.test.utils import CaptureQueriesContext

from apps.accounts import roles
from apps.billing.models import SettlementLine, SettlementStatement
from apps.billing.settlements import services as svc
from apps.billing.settlements.services import Planner
from apps.billing.tasks import monthly_settlements_task
from apps.contracts.services import AllocationData, LineData
from apps.core.errors import DomainError, InvalidState
from apps.core.periods import Period
from apps.providers.models import SupplyAgreement
from tests.factories.billing_flows import SH, active_contract, at, bill, issue
from tests.factories.catalogue import CustomerFactory, ProviderFactory, ServerFactory, SiteFactory, gpu_model
from tests.factories.contracts import card_line, server_line
from tests.factories.usage import usage

pytestmark = pytest.mark.django_db

NOW = datetime.datetime(2026, 12, 2, 9, tzinfo=SH)


@pytest.fixture
def am(make_staff):
    return make_staff(roles.ACCOUNT_MANAGER, username="am1")


@pytest.fixture
def finance(make_staff):
    return make_staff(roles.FINANCE, username="fin1")


def provider_with_server(code: str, model="A100-SXM4-40GB"):
    provider = ProviderFactory(code=code, name=f"Provider {code.upper()}")
    return provider, ServerFactory(site=SiteFactory(provider=provider), gpu_model=gpu_model(model))


def agreement(provider, price: str, *, resource="card", term="hourly", model="A100-SXM4-40GB", **kwargs):
    return SupplyAgreement.objects.create(
        provider=provider,
        gpu_model=gpu_model(model),
        resource=resource,
        term=term,
        cost_unit_price=Decimal(price),
        valid_from=kwargs.pop("valid_from", datetime.date(2026, 1, 1)),
        **kwargs,
    )


def metered(customer, am, server):
    """The metered example on ``server`` (docs/rating.md#worked-examples): 12 card-hours at 22.70
    −10 % = 245.16 (net 231.28)."""
    active_contract(customer, am, [card_line(server, 2, price="22.70", discount="10")])
    card0, card1 = server.cards.order_by("slot")[:2]
    usage(card=card0, start=at(3, 8), end=at(3, 16), received_at=at(3, 17))
    usage(card=card1, start=at(4, 8), end=at(4, 12), received_at=at(4, 13))
    invoice = issue(bill(customer))
    assert (invoice.total_amount, invoice.net_amount) == (Decimal("245.16"), Decimal("231.28"))
    return invoice


def lines_of(provider, period="2026-11") -> list[SettlementLine]:
    return list(SettlementLine.objects.filter(statement__provider=provider, statement__period=period))


def test_card_hours_cost_at_the_supply_price_and_margin_is_net_revenue_minus_cost(am):
    provider, server = provider_with_server("prov-a")
    agreement(provider, "12.00")
    invoice = metered(CustomerFactory(), am, server)

    result = svc.settlement_build(period="2026-11", now=NOW)

    assert (result.created, result.warnings, result.unattributed) == (1, [], [])
    statement = SettlementStatement.objects.get(provider=provider, period="2026-11")
    (line,) = lines_of(provider)
    assert (line.kind, line.quantity, line.unit, line.cost_unit_price) == (
        "usage",
        Decimal("12.000000"),
        "card_hour",
        Decimal("12.000000"),
    )
    assert (line.cost_amount, line.revenue_net_amount, line.margin_amount) == (
        Decimal("144.00"),
        Decimal("231.28"),
        Decimal("87.28"),
    )
    assert line.invoice_line == invoice.lines.get() and line.allocation is None  # two card allocations
    assert line.supply_agreement.cost_unit_price == Decimal("12.000000") and line.warning == ""
    assert (
        statement.status,
        statement.cost_amount,
        statement.revenue_net_amount,
        statement.margin_amount,
    ) == (
        "draft",
        Decimal("144.00"),
        Decimal("231.28"),
        Decimal("87.28"),
    )
    assert (statement.line_count, statement.warning_count, statement.built_at) == (1, 0, NOW)


def test_one_line_on_two_providers_cards_is_split_by_their_card_hours(am):
    a, server_a = provider_with_server("prov-a")
    b, server_b = provider_with_server("prov-b")
    agreement(a, "12.00")
    agreement(b, "11.00")
    customer = CustomerFactory()
    card_a, card_b = server_a.cards.get(slot=0), server_b.cards.get(slot=0)
    line = LineData(
        resource="card",
        gpu_model=gpu_model("A100-SXM4-40GB"),
        quantity=Decimal(2),
        term="hourly",
        list_unit_price=Decimal("22.70"),
        discount_percent=Decimal("10"),
        allocations=[AllocationData(card=card_a), AllocationData(card=card_b)],
    )
    active_contract(customer, am, [line])
    usage(card=card_a, start=at(3, 8), end=at(3, 16), received_at=at(3, 17))  # 8 h on A
    usage(card=card_b, start=at(4, 8), end=at(4, 12), received_at=at(4, 13))  # 4 h on B
    usage(card=card_b, start=at(4, 10), end=at(4, 11), received_at=at(4, 13))  # overlaps: counts once
    issue(bill(customer))

    svc.settlement_build(period="2026-11", now=NOW)

    (on_a,) = lines_of(a)
    (on_b,) = lines_of(b)
    assert (on_a.quantity, on_a.cost_amount, on_a.allocation.card) == (Decimal("8"), Decimal("96.00"), card_a)
    assert (on_b.quantity, on_b.cost_amount, on_b.allocation.card) == (Decimal("4"), Decimal("44.00"), card_b)
    # 231.28 split 8 : 4; the parts add up to the customer's net revenue
    assert (on_a.revenue_net_amount, on_b.revenue_net_amount) == (Decimal("154.19"), Decimal("77.09"))
    assert (on_a.margin_amount, on_b.margin_amount) == (Decimal("58.19"), Decimal("33.09"))


def test_a_server_month_is_prorated_like_the_customer_line(am):
    provider, server = provider_with_server("prov-a")
    agreement(provider, "20000.00", resource="server", term="monthly")
    customer = CustomerFactory()
    active_contract(customer, am, [server_line(server, price="30000.00", term_discount="0")], start=at(16))
    invoice = issue(bill(customer))
    customer_line = invoice.lines.get()
    assert customer_line.amount == Decimal("15000.00")  # half of November

    svc.settlement_build(period="2026-11", now=NOW)

    (line,) = lines_of(provider)
    assert (line.kind, line.quantity, line.unit) == ("recurring", Decimal("0.500000"), "server_month")
    assert (line.cost_unit_price, line.cost_amount) == (Decimal("20000.000000"), Decimal("10000.00"))
    assert line.revenue_net_amount == customer_line.net_amount == Decimal("13274.34")  # 13 % VAT out
    assert line.margin_amount == Decimal("3274.34")
    assert line.allocation.server == server


def test_a_server_swapped_mid_month_splits_a_recurring_line_by_time(am):
    a, server_a = provider_with_server("prov-a")
    b, server_b = provider_with_server("prov-b")
    agreement(a, "20000.00", resource="server", term="monthly")
    agreement(b, "18000.00", resource="server", term="monthly")
    customer = CustomerFactory()
    line = LineData(
        resource="server",
        gpu_model=gpu_model("A100-SXM4-40GB"),
        quantity=Decimal(1),
        term="monthly",
        list_unit_price=Decimal("30000.00"),
        term_discount_percent=Decimal(0),
        allocations=[
            AllocationData(server=server_a, end_at=at(11)),  # 10 days of 30
            AllocationData(server=server_b, start_at=at(11)),
        ],
    )
    active_contract(customer, am, [line])
    issue(bill(customer))

    svc.settlement_build(period="2026-11", now=NOW)

    (on_a,), (on_b,) = lines_of(a), lines_of(b)
    assert on_a.quantity + on_b.quantity == Decimal("1.000000")
    assert (on_a.cost_amount, on_b.cost_amount) == (Decimal("6666.67"), Decimal("12000.00"))


def test_a_missing_agreement_is_reported_and_blocks_confirmation_until_rebuilt(am, finance):
    provider, server = provider_with_server("prov-a")
    metered(CustomerFactory(), am, server)

    result = svc.settlement_build(period="2026-11", now=NOW)

    (line,) = lines_of(provider)
    assert (line.cost_amount, line.margin_amount) == (Decimal("0.00"), Decimal("231.28"))
    assert "no supply agreement for prov-a A100-SXM4-40GB card/hourly valid on 2026-11-01" in line.warning
    assert len(result.warnings) == 1 and "no supply agreement" in result.warnings[0]
    statement = line.statement
    assert statement.warning_count == 1
    with pytest.raises(DomainError, match="without a cost") as exc:
        svc.settlement_confirm(statement=statement, actor=finance, now=NOW)
    assert exc.value.code == "settlement_has_warnings"

    agreement(provider, "12.00", currency="USD")  # another currency does not count
    svc.settlement_build(period="2026-11", now=NOW)
    assert "in USD" in lines_of(provider)[0].warning
    agreement(provider, "12.00", valid_from=datetime.date(2026, 6, 1))
    again = svc.settlement_build(period="2026-11", now=NOW)
    assert (again.refreshed, again.warnings) == (1, [])
    statement.refresh_from_db()
    assert (statement.cost_amount, statement.warning_count) == (Decimal("144.00"), 0)
    svc.settlement_confirm(statement=statement, actor=finance, now=NOW)


def test_rebuilding_is_idempotent(am):
    provider, server = provider_with_server("prov-a")
    agreement(provider, "12.00")
    metered(CustomerFactory(), am, server)
    svc.settlement_build(period="2026-11", now=NOW)
    before = list(SettlementLine.objects.values_list("pk", "cost_amount", "revenue_net_amount"))

    again = svc.settlement_build(period="2026-11", now=NOW + datetime.timedelta(hours=1))

    assert (again.created, again.refreshed, again.unchanged) == (0, 0, 1)
    assert list(SettlementLine.objects.values_list("pk", "cost_amount", "revenue_net_amount")) == before
    assert SettlementStatement.objects.get().built_at == NOW


def test_a_confirmed_statement_never_changes(am, finance):
    provider, server = provider_with_server("prov-a")
    cost = agreement(provider, "12.00")
    metered(CustomerFactory(), am, server)
    svc.settlement_build(period="2026-11", now=NOW)
    statement = svc.settlement_confirm(statement=SettlementStatement.objects.get(), actor=finance, now=NOW)
    assert (statement.status, statement.confirmed_by, statement.confirmed_at) == ("confirmed", finance, NOW)

    SupplyAgreement.objects.filter(pk=cost.pk).update(cost_unit_price=Decimal("15.00"))
    result = svc.settlement_build(period="2026-11", now=NOW)

    assert (result.locked, result.refreshed) == (1, 0)
    statement.refresh_from_db()
    assert statement.cost_amount == Decimal("144.00")
    assert lines_of(provider)[0].cost_amount == Decimal("144.00")
    with pytest.raises(IntegrityError, match="frozen"), transaction.atomic():
        SettlementStatement.objects.filter(pk=statement.pk).update(cost_amount=Decimal("1.00"))
    with pytest.raises(IntegrityError, match="frozen"), transaction.atomic():
        SettlementLine.objects.filter(statement=statement).update(description="edited")
    with pytest.raises(IntegrityError, match="frozen"), transaction.atomic():
        SettlementStatement.objects.filter(pk=statement.pk).update(status="draft")
    with pytest.raises(IntegrityError, match="frozen"), transaction.atomic():
        SettlementLine.objects.filter(statement=statement).delete()
    with pytest.raises(InvalidState, match="only drafts"):
        svc.settlement_confirm(statement=statement, actor=finance, now=NOW)

    paid = svc.settlement_mark_paid(statement=statement, actor=finance, now=NOW, reference="BANK-123")
    assert (paid.status, paid.paid_at, paid.payment_reference) == ("paid", NOW, "BANK-123")
    with pytest.raises(InvalidState, match="only confirmed"):
        svc.settlement_mark_paid(statement=statement, actor=finance, now=NOW)


def test_only_issued_invoices_are_settled_and_empty_drafts_go_away(am):
    provider, server = provider_with_server("prov-a")
    agreement(provider, "12.00")
    customer = CustomerFactory()
    active_contract(customer, am, [card_line(server, 1, price="10.00", discount="0")])
    usage(card=server.cards.get(slot=0), start=at(2), end=at(2, 5), received_at=at(2, 6))
    draft = bill(customer)
    assert svc.settlement_build(period="2026-11", now=NOW).statement_ids == []
    assert svc.invoice_drafts_count(period="2026-11") == 1
    from apps.billing.invoicing.services.issuing import invoice_void

    invoice = issue(draft)
    assert svc.settlement_build(period="2026-11", now=NOW).created == 1
    invoice_void(invoice=invoice, reason="wrong", now=NOW)
    result = svc.settlement_build(period="2026-11", now=NOW)
    assert (result.deleted, SettlementStatement.objects.count()) == (1, 0)


def test_late_usage_is_settled_with_the_invoice_that_billed_it(am):
    provider, server = provider_with_server("prov-a")
    agreement(provider, "12.00")
    customer = CustomerFactory()
    active_contract(customer, am, [card_line(server, 1, price="10.00", discount="0")])
    card = server.cards.get(slot=0)
    usage(card=card, start=at(2), end=at(2, 5), received_at=at(2, 6))
    issue(bill(customer))
    late_at = datetime.datetime(2026, 12, 5, tzinfo=SH)
    usage(card=card, start=at(2, 4), end=at(2, 6), received_at=late_at)  # 1 h new, 1 h billed before
    usage(card=card, start=at(2, 1, month=12), end=at(2, 3, month=12), received_at=late_at)
    issue(bill(customer, "2026-12"))

    svc.settlement_build(period="2026-12", now=NOW)

    lines = {line.kind: line for line in lines_of(provider, "2026-12")}
    assert (lines["usage"].quantity, lines["usage"].cost_amount) == (Decimal("2"), Decimal("24.00"))
    assert (lines["late_usage"].quantity, lines["late_usage"].cost_amount) == (Decimal("1"), Decimal("12.00"))
    assert "2026-11" in lines["late_usage"].description


def test_building_for_one_provider_leaves_the_others(am):
    a, server_a = provider_with_server("prov-a")
    b, server_b = provider_with_server("prov-b")
    agreement(a, "12.00")
    agreement(b, "12.00")
    metered(CustomerFactory(), am, server_a)
    metered(CustomerFactory(), am, server_b)
    result = svc.settlement_build(period="2026-11", provider=b, now=NOW)
    assert result.created == 1
    assert list(SettlementStatement.objects.values_list("provider__code", flat=True)) == ["prov-b"]


def test_planning_reads_a_constant_number_of_queries(am):
    a, server_a = provider_with_server("prov-a")
    agreement(a, "12.00")
    metered(CustomerFactory(), am, server_a)
    with CaptureQueriesContext(connection) as small:
        Planner(Period(2026, 11), None).plan()
    for _ in range(4):
        _, server = provider_with_server(f"prov-{_}x")
        agreement(server.provider, "12.00")
        metered(CustomerFactory(), am, server)
    with CaptureQueriesContext(connection) as big:
        planned, _ = Planner(Period(2026, 11), None).plan()
    assert len(planned) == 5
    assert len(big.captured_queries) == len(small.captured_queries), [q["sql"] for q in big.captured_queries]


def test_margin_report_by_provider_and_gpu_model(am):
    a, a40 = provider_with_server("prov-a")
    b, b80 = provider_with_server("prov-b", model="A100-SXM4-80GB")
    agreement(a, "12.00")
    agreement(b, "20000.00", resource="server", term="monthly", model="A100-SXM4-80GB")
    metered(CustomerFactory(), am, a40)
    customer = CustomerFactory()
    active_contract(customer, am, [server_line(b80, price="30000.00", term_discount="0")], start=at(16))
    issue(bill(customer))
    svc.settlement_build(period="2026-11", now=NOW)

    with CaptureQueriesContext(connection) as ctx:
        by_provider = svc.margin_report(period="2026-11", group_by="provider")
    assert len(ctx.captured_queries) == 2
    assert [
        (r.key, r.label, r.revenue_net_amount, r.cost_amount, r.margin_amount) for r in by_provider.rows
    ] == [
        ("prov-a", "Provider PROV-A", Decimal("231.28"), Decimal("144.00"), Decimal("87.28")),
        ("prov-b", "Provider PROV-B", Decimal("13274.34"), Decimal("10000.00"), Decimal("3274.34")),
    ]
    assert by_provider.totals == {
        "CNY": {"revenue": Decimal("13505.62"), "cost": Decimal("10144.00"), "margin": Decimal("3361.62")}
    }
    assert by_provider.rows[0].margin_percent == Decimal("37.7")

    by_model = svc.margin_report(period_from="2026-10", period_to="2026-11", group_by="gpu_model")
    assert [(r.key, r.margin_amount) for r in by_model.rows] == [
        ("A100-SXM4-40GB", Decimal("87.28")),
        ("A100-SXM4-80GB", Decimal("3274.34")),
    ]
    by_month = svc.margin_report(period="2026-11", group_by="month")
    assert [(r.key, r.margin_amount, r.line_count) for r in by_month.rows] == [
        ("2026-11", Decimal("3361.62"), 2)
    ]
    by_contract = svc.margin_report(period="2026-11", group_by="contract")
    assert len(by_contract.rows) == 2
    assert svc.margin_report(period="2026-11", group_by="provider", statuses=["confirmed"]).rows == []
    with pytest.raises(DomainError, match="group_by"):
        svc.margin_report(period="2026-11", group_by="customer")


def test_the_monthly_task_builds_last_month_and_is_safe_to_repeat(am):
    provider, server = provider_with_server("prov-a")
    agreement(provider, "12.00")
    metered(CustomerFactory(), am, server)
    with time_machine.travel(datetime.datetime(2026, 12, 1, 4, tzinfo=SH), tick=False):
        assert monthly_settlements_task() == 1
        assert monthly_settlements_task() == 1
    statement = SettlementStatement.objects.get()
    assert (statement.period, statement.cost_amount) == ("2026-11", Decimal("144.00"))
