"""``manage.py loaddemo``: a realistic demo, loaded in one go, and a second run changes nothing."""

from __future__ import annotations

import datetime
import re
from collections import defaultdict
from decimal import Decimal
from io import StringIO

import time_machine
from django.apps import apps
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.db.models import Max

from apps.accounts import roles
from apps.contracts.models import Allocation, Contract, ContractStatus, PriceList, PriceListItem
from apps.core.choices import LeaseTerm, ResourceKind
from apps.core.validators import uscc_problem, validate_nvml_uuid
from apps.customers.models import Customer
from apps.demo.steps import DemoContext
from apps.demo.steps.hardware import card_uuid, server_plan
from apps.inventory.models import Card, Server
from apps.providers.models import Provider, ProviderType, Site, SupplyAgreement

SHANGHAI = datetime.timezone(datetime.timedelta(hours=8))
# On the suite's clock (2026-11-28) the demo bills the eleven months before November.
CLOSED_MONTHS = ["2025-12"] + [f"2026-{m:02d}" for m in range(1, 11)]
LOWERCASE_NVML = re.compile(r"^GPU-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def loaddemo() -> str:
    out = StringIO()
    call_command("loaddemo", stdout=out, stderr=StringIO())
    return out.getvalue()


def snapshot() -> dict[str, tuple]:
    """Row count and latest ``updated_at`` of every table (history tables included)."""
    state = {}
    for model in apps.get_models():
        if model._meta.app_label in {"sessions", "admin"}:
            continue
        qs = model._default_manager.all()
        has_updated_at = any(f.name == "updated_at" for f in model._meta.concrete_fields)
        latest = qs.aggregate(m=Max("updated_at"))["m"] if has_updated_at else None
        state[model._meta.label] = (qs.count(), latest)
    User = get_user_model()
    state["passwords"] = tuple(User.objects.order_by("username").values_list("username", "password"))
    return state


def test_the_demo_has_providers_of_every_type_across_the_hubs(demo):
    assert Provider.objects.count() >= 7
    assert set(Provider.objects.values_list("type", flat=True)) == set(ProviderType.values)
    assert Site.objects.values("hub").distinct().count() >= 5
    assert Provider.objects.filter(code__in=["cu-qinghai", "bj-idc"]).count() == 2
    for provider in Provider.objects.prefetch_related("sites"):
        assert 1 <= len(provider.sites.all()) <= 3


def test_the_demo_has_about_300_servers_of_8_cards_with_unique_valid_uuids(demo):
    servers = Server.objects.count()
    assert 290 <= servers <= 320
    assert Card.objects.count() == servers * 8
    uuids = list(Card.objects.values_list("uuid", flat=True))
    assert len(set(uuids)) == len(uuids)
    for value in uuids:
        validate_nvml_uuid(value)
        assert LOWERCASE_NVML.match(value), value
    # Cards are numbered 0..7 in every server and their UUIDs derive from serial and slot.
    card = Card.objects.select_related("server").get(server__serial="SRV-BJ-0001", slot=3)
    assert card.uuid == card_uuid("SRV-BJ-0001", 3)
    assert set(Card.objects.values_list("slot", flat=True)) == set(range(8))

    models = set(Server.objects.values_list("gpu_model__name", flat=True))
    assert {"A100-SXM4-40GB", "A100-SXM4-80GB", "A800-SXM4-80GB", "H800-SXM5-80GB"} <= models
    assert {"H20-96GB", "L40S-48GB", "RTX4090-24GB", "Ascend-910B-64GB"} <= models
    assert Server.objects.filter(status="maintenance").exists()
    assert Server.objects.filter(status="retired").exists()
    assert all(re.match(r"^SRV-[A-Z]+-\d{4}$", s) for s in Server.objects.values_list("serial", flat=True))


def test_platform_owned_servers_carry_the_white_papers_costs(demo):
    owned = Server.objects.filter(purchase_cost_amount__isnull=False)
    assert owned.count() == 2
    for server in owned:
        assert server.purchase_cost_amount == Decimal("1800000.00")
        assert server.annual_cash_cost_amount == Decimal("240000.00")
        assert server.gpu_model.name == "A100-SXM4-40GB"


def test_supply_costs_leave_a_margin_below_every_list_price(demo):
    effective = {}
    for item in PriceListItem.objects.select_related("gpu_model"):
        key = (item.gpu_model.name, item.resource, item.term)
        price = item.list_unit_price * (1 - item.term_discount_percent / 100)
        effective[key] = min(price, effective.get(key, price))
    agreements = list(SupplyAgreement.objects.select_related("provider", "gpu_model"))
    assert len(agreements) >= 20
    assert Provider.objects.exclude(supply_agreements__isnull=False).count() == 0
    for agreement in agreements:
        key = (agreement.gpu_model.name, agreement.resource, agreement.term)
        assert key in effective, f"{agreement} has no list price"
        assert 0 < agreement.cost_unit_price < effective[key], agreement
    assert SupplyAgreement.objects.get(
        provider__code="bj-idc", gpu_model__name="A100-SXM4-40GB", resource="card", term="hourly"
    ).cost_unit_price == Decimal("12.00")


def test_the_standard_price_list_is_the_default_and_prices_every_model_the_demo_leases(demo):
    standard = PriceList.objects.get(code="suanli-standard-2026")
    assert standard.is_default is True
    assert PriceList.objects.get(is_default=True, currency="CNY") == standard
    assert PriceList.objects.get(code="market-reference").is_default is False  # kept as a reference
    items = standard.items.select_related("gpu_model", "tax_category")
    leased = set(Server.objects.values_list("gpu_model__name", flat=True))
    assert {i.gpu_model.name for i in items} == leased
    for model in leased:  # the four terms every model is drafted in
        assert {("card", "hourly"), ("server", "monthly"), ("server", "yearly"), ("p_unit", "yearly")} <= {
            (i.resource, i.term) for i in items if i.gpu_model.name == model
        }, model
    a800 = items.get(gpu_model__name="A800-SXM4-80GB", resource="p_unit", term="yearly")
    assert (a800.list_unit_price, a800.term_discount_percent) == (Decimal("200000"), Decimal("15"))
    assert a800.tax_category.code == "it_service"
    assert items.get(
        gpu_model__name="H800-SXM5-80GB", resource="server", term="monthly"
    ).tax_category.code == ("equipment_lease")


def _item(price_list, model, resource, term):
    return price_list.items.get(gpu_model__name=model, resource=resource, term=term)


def test_the_default_list_prices_the_a100s_by_card_server_and_p_unit(demo):
    standard = PriceList.objects.get(is_default=True, currency="CNY")
    reference = PriceList.objects.get(code="market-reference")
    prices = {
        (model, resource, term): (item.list_unit_price, item.term_discount_percent)
        for model in ("A100-SXM4-40GB", "A100-SXM4-80GB")
        for resource, term in [
            ("card", "hourly"),
            ("server", "hourly"),
            ("server", "monthly"),
            ("server", "yearly"),
            ("p_unit", "monthly"),
            ("p_unit", "yearly"),
        ]
        for item in [_item(standard, model, resource, term)]
    }
    # the white paper's 8 × A100-40G NVLink server at 180 per server-hour
    assert prices[("A100-SXM4-40GB", "server", "hourly")] == (Decimal("180.00"), Decimal("0"))
    # P-years as the A800 (same 312 TFLOPS a card): 200,000 at 8.5折
    assert prices[("A100-SXM4-40GB", "p_unit", "yearly")] == (Decimal("200000"), Decimal("15"))
    assert prices[("A100-SXM4-80GB", "p_unit", "yearly")] == (Decimal("220000"), Decimal("15"))
    assert prices[("A100-SXM4-40GB", "p_unit", "monthly")] == (Decimal("19000.00"), Decimal("0"))
    # card and server prices are the market reference list's, so either list drafts the same price
    for model, resource, term in [
        ("A100-SXM4-40GB", "card", "hourly"),
        ("A100-SXM4-80GB", "card", "hourly"),
        ("A100-SXM4-40GB", "server", "monthly"),
        ("A100-SXM4-80GB", "server", "monthly"),
        ("A100-SXM4-80GB", "server", "yearly"),
    ]:
        market = _item(reference, model, resource, term)
        assert prices[(model, resource, term)] == (market.list_unit_price, market.term_discount_percent)
    assert prices[("A100-SXM4-40GB", "card", "hourly")] == (Decimal("22.70"), Decimal("0"))
    assert prices[("A100-SXM4-80GB", "server", "monthly")] == (Decimal("143500.00"), Decimal("0"))


def test_every_line_the_demo_drafts_has_an_item_in_its_list_or_the_default(demo):
    from apps.contracts.models import ContractLine
    from apps.contracts.services import price_list_item_get

    lines = list(ContractLine.objects.select_related("contract__price_list", "gpu_model", "tax_category"))
    assert len(lines) >= 18
    for line in lines:
        item = price_list_item_get(
            price_list=line.contract.price_list,
            gpu_model=line.gpu_model,
            resource=line.resource,
            term=line.term,
        )
        key = (line.contract.number, line.gpu_model.name, line.resource, line.term)
        assert item is not None, key
        assert item.price_list.code == "suanli-standard-2026", key
        # the item is the price the line carries (only the negotiated discount is the line's own)
        assert (item.list_unit_price, item.tax_category) == (line.list_unit_price, line.tax_category), key
        assert _item(item.price_list, line.gpu_model.name, line.resource, line.term) == item


def test_a100_p_units_have_a_supply_agreement_below_their_price(demo):
    standard = PriceList.objects.get(code="suanli-standard-2026")
    for model in ("A100-SXM4-40GB", "A100-SXM4-80GB"):
        for term in ("monthly", "yearly"):
            item = _item(standard, model, "p_unit", term)
            effective = item.list_unit_price * (1 - item.term_discount_percent / 100)
            agreements = SupplyAgreement.objects.filter(gpu_model__name=model, resource="p_unit", term=term)
            assert agreements.exists(), (model, term)
            assert all(0 < a.cost_unit_price < effective for a in agreements), (model, term)
    assert SupplyAgreement.objects.get(
        provider__code="bj-idc", gpu_model__name="A100-SXM4-40GB", resource="p_unit", term="yearly"
    ).cost_unit_price == Decimal("140000.00")


def test_voucher_ledger_notes_read_percentages_as_people_write_them(demo):
    from apps.billing.vouchers.models import VoucherLedgerEntry

    notes = list(VoucherLedgerEntry.objects.filter(kind="redeem").values_list("note", flat=True))
    assert notes
    assert all(note.startswith("30% of ") for note in notes), notes
    assert not any("E+" in note for note in notes)


def test_30_customers_with_valid_credit_codes(demo):
    customers = list(Customer.objects.select_related("account_manager"))
    assert len(customers) == 30
    for customer in customers:
        assert uscc_problem(customer.tax_id) is None, (customer.code, customer.tax_id)
        customer.full_clean()
    assert Customer.objects.filter(code="acme").exists()
    assert {c.invoice_type for c in customers} == {"vat_special", "vat_general"}
    assert 1 <= sum(c.auto_issue for c in customers) < 10
    assert {c.account_manager.username for c in customers} == {"am1", "am2"}


def test_demo_users_log_in_with_the_demo_password(demo, client):
    User = get_user_model()
    expected_roles = {
        "am1": roles.ACCOUNT_MANAGER,
        "am2": roles.ACCOUNT_MANAGER,
        "sales1": roles.SALES_MANAGER,
        "finance1": roles.FINANCE,
        "ops1": roles.OPERATIONS,
    }
    for username, role in expected_roles.items():
        user = User.objects.get(username=username)
        assert user.is_staff and not user.is_superuser
        assert list(user.groups.values_list("name", flat=True)) == [role]
    assert User.objects.get(username="admin").is_superuser

    for username in ["admin", *expected_roles]:
        assert client.login(username=username, password="suanli-demo"), username
        assert client.get("/admin/").status_code == 200
        client.logout()

    portal = User.objects.get(username="acme-user")
    assert not portal.is_staff
    assert list(portal.memberships.values_list("customer__code", flat=True)) == ["acme"]
    assert client.login(username="acme-user", password="suanli-demo")
    assert client.get("/admin/").status_code == 302  # not staff: sent to the login page


def test_contracts_of_every_kind_in_every_state(demo):
    contracts = list(Contract.objects.prefetch_related("lines"))
    assert len(contracts) >= 12
    pairs = {(line.resource, line.term) for c in contracts for line in c.lines.all()}
    assert pairs == {(r, t) for r in ResourceKind.values for t in LeaseTerm.values}
    by_status = {status: [c for c in contracts if c.status == status] for status in ContractStatus.values}
    assert len(by_status["pending_approval"]) == 1
    assert len(by_status["suspended"]) == 1
    assert len(by_status["terminated"]) == 1
    assert len(by_status["active"]) >= 10
    assert sum(c.minimum_monthly_amount is not None for c in contracts) == 1
    lines = [line for c in contracts for line in c.lines.all()]
    assert any(line.yearly_billing == "upfront" for line in lines)
    assert sum(line.term_discount_percent > 0 for line in lines) >= 3
    assert all(c.notes.startswith("demo:") for c in contracts)
    assert len({c.customer_id for c in contracts}) >= 10
    # Pending approval means a discount above the threshold; one such contract was approved.
    (pending,) = by_status["pending_approval"]
    assert max(line.combined_discount_percent for line in pending.lines.all()) > 20
    # Above the threshold, the sales manager approved; under it, activation recorded the account
    # manager's auto-approval.
    approved = [c for c in by_status["active"] if c.approved_by.username == "sales1"]
    assert len(approved) == 1
    assert max(line.combined_discount_percent for line in approved[0].lines.all()) > 20
    assert all(c.approved_by == c.account_manager for c in by_status["active"] if c not in approved)
    # Live and ended contracts hold their hardware firmly; no card or server serves two of them at
    # once (the platform's own servers served moyan until November, then acme's cards and baize).
    firm = Allocation.objects.filter(firm=True)
    assert (
        firm.count()
        == Allocation.objects.exclude(line__contract__status__in=["draft", "pending_approval"]).count()
    )
    held = defaultdict(list)
    for allocation in firm.order_by("start_at"):
        held[allocation.server_id].append(allocation)
    reused = 0
    for allocations in held.values():
        for i, first in enumerate(allocations):
            for second in allocations[i + 1 :]:
                same = first.card_id is None or second.card_id is None or first.card_id == second.card_id
                if same:
                    assert first.end_at is not None and first.end_at <= second.start_at, (first, second)
                    reused += 1
    assert reused >= 2  # the two platform-owned servers, after moyan's contract ended
    assert not firm.filter(server__status__in=["retired", "maintenance"]).exists()
    assert not firm.filter(card__status__in=["retired", "maintenance"]).exists()
    (terminated,) = by_status["terminated"]
    assert terminated.end_at.isoformat() == "2026-11-15T16:00:00+00:00"
    # Customers joined over the year: contracts start on the first of the twelve months to November.
    firsts = {
        datetime.datetime(2025 + (11 + m) // 12, (11 + m) % 12 + 1, 1, tzinfo=SHANGHAI) for m in range(12)
    }
    starts = {c.start_at for c in contracts}
    assert starts <= firsts and len(starts) >= 9
    assert min(starts).isoformat() == "2025-11-30T16:00:00+00:00"  # 2025-12-01 in Shanghai
    # A few ended at their end date; the daily job's service marked them expired.
    expired = by_status["expired"]
    assert len(expired) >= 3
    assert all(c.end_at <= demo and c.ended_at == c.end_at for c in expired)
    assert Contract.objects.filter(customer__code="wenlan", status="active", lines__term="yearly").exists()


def test_a_second_run_changes_nothing(demo):
    before = snapshot()
    contracts = (Contract.objects.count(), Contract.history.count(), Allocation.history.count())
    # An hour later, so a row saved without a change would show a later ``updated_at``.
    with time_machine.travel(demo + datetime.timedelta(hours=1), tick=False):
        output = loaddemo()
    assert snapshot() == before
    assert (Contract.objects.count(), Contract.history.count(), Allocation.history.count()) == contracts
    assert re.search(r"servers\s+\d+\s+\(0 created, 0 updated, \d+ unchanged\)", output)
    assert re.search(r"contracts\s+\d+\s+\(0 created, 0 updated, \d+ unchanged\)", output)
    assert "suanli-demo" in output


def test_a_second_run_restores_deleted_demo_rows_and_leaves_changed_servers_alone(demo):
    # yufeng has no contract or invoice (they would protect it from deletion)
    Customer.objects.filter(code="yufeng").delete()
    server = Server.objects.get(serial="SRV-QH-0001")
    server.status = "allocated"
    server.save()
    output = loaddemo()
    assert Customer.objects.filter(code="yufeng").exists()
    assert re.search(r"customers\s+30\s+\(1 created, 0 updated, 29 unchanged\)", output)
    server.refresh_from_db()
    assert server.status == "allocated"


def test_the_plan_depends_on_the_seed_only():
    assert server_plan(DemoContext(seed=7)) == server_plan(DemoContext(seed=7))
    assert [p.status for p in server_plan(DemoContext(seed=7))] != [
        p.status for p in server_plan(DemoContext(seed=8))
    ]


def test_the_demo_ends_with_months_billed_a_voucher_payment_a_credit_note_and_late_usage(demo):
    from apps.billing.models import CreditNote, Invoice, Payment
    from apps.metering.models import UsageRecord

    # 2026-11-28: the eleven months to October are billed; November has not ended, so it is not billed
    # but for two drafts billed as of today (docs/hardware-truth.md#in-the-demo)
    assert (
        sorted(set(Invoice.objects.exclude(status="draft").values_list("period", flat=True))) == CLOSED_MONTHS
    )
    drafts = Invoice.objects.filter(status="draft").values_list("customer__code", "period")
    assert sorted(drafts) == [("jinghong", "2026-11"), ("shenlan", "2026-11")]
    acme_october = Invoice.objects.get(customer__code="acme", period="2026-10")
    voucher = Payment.objects.get(invoice=acme_october, method="voucher")
    assert voucher.amount == (acme_october.total_amount * Decimal("0.30")).quantize(Decimal("0.01"))
    # acme paid 50,000.00 of the rest by transfer; the remainder is overdue under 15-day terms
    transfer = Payment.objects.get(invoice=acme_october, method="bank_transfer")
    assert transfer.amount == Decimal("50000.00")
    assert acme_october.status == "issued"
    assert acme_october.amount_due == acme_october.total_amount - voucher.amount - Decimal("50000.00")
    assert acme_october.due_on.isoformat() < "2026-11-28"
    assert Invoice.objects.get(customer__code="acme", period="2026-09").status == "paid"
    note = CreditNote.objects.get()
    assert (note.number, note.total_amount, note.invoice.customer.code) == (
        "CN-2026-000001",
        Decimal("1000.00"),
        "qiming",
    )
    late = UsageRecord.objects.get(event_id="demo-late-2026-10-30")
    assert late.received_at.isoformat() == "2026-11-05T01:00:00+00:00"  # waits for November's invoice
    assert Invoice.objects.filter(period="2026-10", status="issued").count() == 3  # left open on purpose


def test_the_demo_records_nothing_after_now(demo):
    from django.utils import timezone

    from apps.billing.models import BillingRun, CreditNote, Invoice, Payment
    from apps.billing.settlements.models import SettlementStatement
    from apps.billing.vouchers.models import Voucher
    from apps.metering.models import UsageRecord

    now = timezone.now()
    assert not UsageRecord.objects.filter(end_at__gt=now).exists()
    assert not UsageRecord.objects.filter(received_at__gt=now).exists()
    assert not Invoice.objects.filter(issued_at__gt=now).exists()
    assert not Payment.objects.filter(received_at__gt=now).exists()
    assert not BillingRun.objects.filter(created_at__gt=now).exists()
    assert not CreditNote.objects.filter(issued_at__gt=now).exists()
    assert not Voucher.objects.filter(issued_at__gt=now).exists()
    assert not Contract.objects.filter(ended_at__gt=now).exists()
    for field in ["built_at", "confirmed_at", "paid_at"]:
        assert not SettlementStatement.objects.filter(**{f"{field}__gt": now}).exists(), field
    assert not UsageRecord.objects.filter(start_at__gte="2026-11-28T00:00+08:00").exists()  # today: not yet
    assert UsageRecord.objects.filter(start_at__gte="2026-11-27T00:00+08:00").exists()  # yesterday: reported

    numbers = sorted(Invoice.objects.exclude(number=None).values_list("number", flat=True))
    assert numbers == [f"INV-2026-{n:06d}" for n in range(1, len(numbers) + 1)]  # gapless


def test_the_demo_dates_each_billing_run_when_it_ran_before_its_invoices_were_issued(demo):
    from apps.billing.models import BillingRun, Invoice

    runs = list(BillingRun.objects.filter(customer=None).order_by("period"))  # the monthly runs
    assert [run.period for run in runs] == CLOSED_MONTHS
    for run in runs:
        issued = Invoice.objects.filter(period=run.period).exclude(issued_at=None)
        first_issue = min(issued.values_list("issued_at", flat=True))
        assert run.created_at == run.started_at == run.finished_at == run.as_of
        assert run.finished_at <= first_issue


def test_the_demo_mails_no_customer_about_its_history(demo):
    from apps.billing.notices.models import Notice

    assert Notice.objects.exists()
    assert set(Notice.objects.values_list("status", "error").distinct()) == {
        ("skipped", "demo history: not mailed")
    }


def test_the_demo_has_a_year_of_history_with_customers_joining_and_revenue_growing(demo):
    from django.db.models import Count, Min, Sum

    from apps.billing.models import Invoice

    months = {
        row["period"]: row
        for row in Invoice.objects.exclude(status="draft")
        .values("period")
        .annotate(invoices=Count("pk"), net=Sum("net_amount"))
    }
    assert sorted(months) == CLOSED_MONTHS
    invoices = [months[period]["invoices"] for period in CLOSED_MONTHS]
    # moyan alone in December (the platform's own servers); every month a customer or more joins
    assert invoices[0] == 1 and invoices[-1] >= 15
    assert invoices == sorted(invoices)
    assert months["2026-10"]["net"] > 5 * months["2025-12"]["net"]
    joined = Invoice.objects.values("customer").annotate(first=Min("period")).values_list("first", flat=True)
    assert len(set(joined)) >= 8  # customers' first invoices fall in at least eight different months
    assert Invoice.objects.values("customer").distinct().count() >= 18


def test_customers_pay_mostly_on_time_some_late_and_receivables_age_into_every_bucket(demo):
    from apps.billing.models import Invoice
    from apps.reports.selectors import ar_aging

    paid = list(Invoice.objects.filter(status="paid").prefetch_related("payments"))
    late = [
        invoice
        for invoice in paid
        if max(p.received_at for p in invoice.payments.all()).astimezone(SHANGHAI).date() > invoice.due_on
    ]
    assert len(paid) >= 50
    assert 3 <= len(late) <= len(paid) // 4
    aging = {
        row["label"]: [c["customer_code"] for c in row["customers"]] for row in ar_aging(today=demo.date())
    }
    assert list(aging.values()) == [
        ["xingyao", "zhiyuan"],  # October, due on 2 December
        ["acme"],  # October, due on 16 November under 15-day terms
        ["hongtu"],  # August, due on 2 October
        ["hongtu"],  # July, due on 1 September
        ["guanlan"],  # May, disputed
    ]


def test_the_platforms_own_servers_run_round_the_clock_and_pay_back_in_under_two_years(demo):
    from apps.core.periods import Period
    from apps.reports.selectors import PeriodRange, server_payback

    rows = server_payback(period_range=PeriodRange(Period(2025, 12), Period(2026, 11)))
    assert [row["serial"] for row in rows] == ["SRV-BJ-0001", "SRV-BJ-0002"]
    # 180.00 a server-hour including 6 % VAT, December to October (335 days) round the clock at most
    ceiling = Decimal(335 * 24 * 180) / Decimal("1.06")
    for row in rows:
        assert Decimal("0.95") * ceiling < row["revenue_amount"] <= ceiling
        assert row["annual_revenue_amount"] == row["revenue_amount"]  # twelve months in the range
        expected = Decimal("1800000") / (row["annual_revenue_amount"] - Decimal("240000")) * 12
        assert row["payback_months"] == expected.quantize(Decimal("0.1"))
        assert Decimal("18") <= row["payback_months"] <= Decimal("21")  # the white paper's 16.2 at 8,760 h


def test_providers_are_settled_every_month(demo):
    from apps.billing.settlements.models import SettlementStatement

    statements = list(SettlementStatement.objects.select_related("provider"))
    assert sorted({s.period for s in statements}) == CLOSED_MONTHS
    assert all(s.warning_count == 0 and s.cost_amount > 0 for s in statements)
    assert all(s.margin_amount == s.revenue_net_amount - s.cost_amount for s in statements)
    by_status = defaultdict(set)
    for s in statements:
        by_status[s.status].add(s.period)
    # October's statements are confirmed (paid after the provider's terms); the months before are paid
    assert by_status["confirmed"] >= {"2026-10"} and "draft" not in by_status
    assert {p for p in CLOSED_MONTHS if p < "2026-09"} <= by_status["paid"] - by_status["confirmed"]
    for s in statements:
        if s.status == "paid":
            assert (s.paid_at - s.confirmed_at).days == s.provider.settlement_terms_days


def test_vouchers_pay_part_of_invoices_over_several_months_and_a_little_usage_goes_unrated(demo):
    from apps.billing.models import Payment
    from apps.core.periods import Period
    from apps.reports.selectors import PeriodRange, unrated_by_provider

    redeemed = Payment.objects.filter(method="voucher")
    assert redeemed.values("invoice__customer").distinct().count() == 4
    assert redeemed.values("invoice__period").distinct().count() >= 6
    unrated = unrated_by_provider(period_range=PeriodRange(Period(2025, 12), Period(2026, 11)))
    assert [(row["provider_code"], row["records"]) for row in unrated] == [("yunqiong-cloud", 6)]


def test_the_demo_calendar_counts_from_the_month_of_now():
    from apps.demo.steps import dates

    with time_machine.travel(datetime.datetime(2027, 3, 4, 1, 0, tzinfo=SHANGHAI), tick=False):
        assert dates.history()[0] == "2026-04" and dates.history()[-1] == "2027-03"
        assert dates.at(-1, 31, 10).isoformat() == "2027-02-28T10:00:00+08:00"  # the month's last day
        assert dates.offset_of("2026-12") == -3
        assert dates.today_start().isoformat() == "2027-03-04T00:00:00+08:00"
    with time_machine.travel(datetime.datetime(2026, 11, 30, 16, 30, tzinfo=datetime.UTC), tick=False):
        assert dates.month(0) == "2026-12"  # already 1 December in Shanghai
