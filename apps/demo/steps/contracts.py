"""Demo contracts of every kind, drafted and moved through their lifecycle by the services.

Cards, servers and P-units × hourly, daily, monthly and yearly; term discounts, an ``upfront``
yearly line, a minimum monthly commitment, one contract waiting for a sales manager's approval,
one approved above the threshold, one suspended, one terminated and one draft. Dates and ``now``
are fixed instants, never the wall clock; hardware is the first free ``available`` servers and
cards of the model by serial, so the same database state always gets the same hardware.

A demo contract carries ``demo:<key>`` on the first line of its notes; a contract already there
is left alone (whatever happened to it since), so a second run changes nothing.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field
from decimal import Decimal

from django.contrib.auth import get_user_model

from apps.contracts import services
from apps.contracts.models import Contract, PriceList, YearlyBilling
from apps.contracts.services import AllocationData, LineData
from apps.customers.models import Customer
from apps.inventory.models import Card, GpuModel, HardwareStatus, Server

from .base import CREATED, UNCHANGED, DemoContext
from .data import A100_40, A100_80, A800, ASCEND, CARDS_PER_SERVER, H20, H800, L40S, RTX4090

SHANGHAI = datetime.timezone(datetime.timedelta(hours=8), "Asia/Shanghai")
SEP_1 = datetime.datetime(2026, 9, 1, tzinfo=SHANGHAI)
OCT_1 = datetime.datetime(2026, 10, 1, tzinfo=SHANGHAI)
NOV_1 = datetime.datetime(2026, 11, 1, tzinfo=SHANGHAI)
# The account managers draft and activate on this (fixed) day, before the first start.
DRAFTED_AT = datetime.datetime(2026, 8, 28, 10, 0, tzinfo=SHANGHAI)
# The terminated contract: notice given on the 15th, billing stops at the start of the 16th.
TERMINATION_NOTICE_AT = datetime.datetime(2026, 11, 15, 17, 30, tzinfo=SHANGHAI)
TERMINATED_AT = datetime.datetime(2026, 11, 16, tzinfo=SHANGHAI)

STANDARD = "suanli-standard-2026"  # the demo list, the default CNY list (every model the demo leases)
SALES_MANAGER = "sales1"
FINANCE = "finance1"

DRAFT = "draft"
PENDING_APPROVAL = "pending_approval"
ACTIVE = "active"
SUSPENDED = "suspended"
TERMINATED = "terminated"


def a_year_from(start: datetime.datetime) -> datetime.datetime:
    return start.replace(year=start.year + 1)


@dataclass(frozen=True)
class LineSpec:
    resource: str
    gpu_model: str
    term: str
    servers: int = 0  # whole servers allocated (server and P-unit lines)
    cards: int = 0  # single cards allocated (card lines)
    quantity: Decimal | None = None  # default: what the allocation covers (cards, servers or P)
    list_unit_price: Decimal | None = None  # default: the price list's
    term_discount_percent: Decimal | None = None  # default: the price list's
    discount_percent: Decimal = Decimal("0")
    yearly_billing: str = YearlyBilling.MONTHLY_INSTALMENTS


@dataclass(frozen=True)
class ContractSpec:
    key: str
    customer: str
    description: str
    start: datetime.datetime
    lines: tuple[LineSpec, ...]
    outcome: str = ACTIVE
    end: datetime.datetime | None = None
    price_list: str | None = None  # default: the default list of the currency (Suanli standard 2026)
    minimum_monthly_amount: Decimal | None = None
    reason: str = ""

    @property
    def marker(self) -> str:
        return f"demo:{self.key}\n"


CONTRACTS: list[ContractSpec] = [
    ContractSpec(
        "acme-cards-hourly",
        "acme",
        "Pay-as-you-go A100 cards with a 10 % negotiated discount and a monthly minimum.",
        NOV_1,
        (LineSpec("card", A100_40, "hourly", cards=8, discount_percent=Decimal("10")),),
        minimum_monthly_amount=Decimal("50000.00"),
    ),
    ContractSpec(
        "acme-server-monthly",
        "acme",
        "One dedicated 8 × A100-80GB server by the month.",
        SEP_1,
        (LineSpec("server", A100_80, "monthly", servers=1, discount_percent=Decimal("5")),),
    ),
    ContractSpec(
        "qiming-p-yearly",
        "qiming",
        "Training capacity by the P-year on H800 (8.5折 yearly term discount), monthly instalments.",
        SEP_1,
        (LineSpec("p_unit", H800, "yearly", servers=2),),
        end=a_year_from(SEP_1),
        price_list=STANDARD,
    ),
    ContractSpec(
        "yunjing-p-yearly-upfront",
        "yunjing",
        "A800 P-units for a year, paid upfront.",
        OCT_1,
        (LineSpec("p_unit", A800, "yearly", servers=2, yearly_billing=YearlyBilling.UPFRONT),),
        end=a_year_from(OCT_1),
        price_list=STANDARD,
    ),
    ContractSpec(
        "lingxi-server-yearly",
        "lingxi",
        "Two H20 inference servers on a yearly lease.",
        SEP_1,
        (LineSpec("server", H20, "yearly", servers=2),),
        end=a_year_from(SEP_1),
        price_list=STANDARD,
    ),
    ContractSpec(
        "tianyan-cards-daily",
        "tianyan",
        "L40S cards by the day for a protein-folding campaign.",
        NOV_1,
        (LineSpec("card", L40S, "daily", cards=8, list_unit_price=Decimal("260.00")),),
        price_list=STANDARD,
    ),
    ContractSpec(
        "jiuzhou-cards-monthly",
        "jiuzhou",
        "RTX 4090 cards by the month for simulation rendering.",
        OCT_1,
        (
            LineSpec(
                "card",
                RTX4090,
                "monthly",
                cards=16,
                list_unit_price=Decimal("4200.00"),
                discount_percent=Decimal("5"),
            ),
        ),
        price_list=STANDARD,
    ),
    ContractSpec(
        "fengchi-cards-yearly",
        "fengchi",
        "Ascend 910B cards on a yearly term (10 % term discount), monthly instalments.",
        SEP_1,
        (
            LineSpec(
                "card",
                ASCEND,
                "yearly",
                cards=8,
                list_unit_price=Decimal("120000.00"),
                term_discount_percent=Decimal("10"),
            ),
        ),
        end=a_year_from(SEP_1),
        price_list=STANDARD,
    ),
    ContractSpec(
        "baize-server-hourly",
        "baize",
        "A whole 8 × A100-40GB server by the hour (the white paper's 180 per server-hour).",
        NOV_1,
        (LineSpec("server", A100_40, "hourly", servers=1, list_unit_price=Decimal("180.00")),),
    ),
    ContractSpec(
        "xuanji-server-daily",
        "xuanji",
        "An A800 server by the day for back-testing.",
        NOV_1,
        (LineSpec("server", A800, "daily", servers=1, list_unit_price=Decimal("4300.00")),),
        price_list=STANDARD,
    ),
    ContractSpec(
        "haina-p-hourly",
        "haina",
        "H20 P-units metered by the hour.",
        NOV_1,
        (LineSpec("p_unit", H20, "hourly", servers=1, list_unit_price=Decimal("95.00")),),
        price_list=STANDARD,
    ),
    ContractSpec(
        "zhiyuan-p-daily",
        "zhiyuan",
        "RTX 4090 P-units by the day.",
        OCT_1,
        (LineSpec("p_unit", RTX4090, "daily", servers=1, list_unit_price=Decimal("650.00")),),
        price_list=STANDARD,
    ),
    ContractSpec(
        "qingluan-p-monthly",
        "qingluan",
        "Ascend 910B P-units by the month, for October to December: ends within 60 days.",
        OCT_1,
        (LineSpec("p_unit", ASCEND, "monthly", servers=1, list_unit_price=Decimal("17500.00")),),
        price_list=STANDARD,
        end=datetime.datetime(2027, 1, 1, tzinfo=OCT_1.tzinfo),
    ),
    ContractSpec(
        "chuyun-pending-approval",
        "chuyun",
        "H800 server for a year at 15 % term and 10 % negotiated (23.5 % combined): awaiting approval.",
        NOV_1,
        (LineSpec("server", H800, "yearly", servers=1, discount_percent=Decimal("10")),),
        outcome=PENDING_APPROVAL,
        end=a_year_from(NOV_1),
        price_list=STANDARD,
    ),
    ContractSpec(
        "shanhai-approved",
        "shanhai",
        "A800 P-year at 15 % term and 8 % negotiated (21.8 %), approved by the sales manager.",
        NOV_1,
        (LineSpec("p_unit", A800, "yearly", servers=1, discount_percent=Decimal("8")),),
        end=a_year_from(NOV_1),
        price_list=STANDARD,
    ),
    ContractSpec(
        "xingyao-suspended",
        "xingyao",
        "An L40S server by the month, suspended for an overdue invoice.",
        SEP_1,
        (LineSpec("server", L40S, "monthly", servers=1),),
        outcome=SUSPENDED,
        price_list=STANDARD,
        reason="Payment overdue",
    ),
    ContractSpec(
        "mingjing-terminated",
        "mingjing",
        "A100-80GB cards by the hour, terminated mid-November.",
        SEP_1,
        (LineSpec("card", A100_80, "hourly", cards=4),),
        outcome=TERMINATED,
        reason="Customer moved the workload in-house",
    ),
    ContractSpec(
        "zhuque-draft",
        "zhuque",
        "H800 cards by the hour, still being drafted.",
        NOV_1,
        (LineSpec("card", H800, "hourly", cards=8),),
        outcome=DRAFT,
        price_list=STANDARD,
    ),
]


@dataclass
class _Hardware:
    """Free hardware, first come first served in serial order (never what a contract holds)."""

    servers_taken: set[int] = field(default_factory=set)
    cards_taken: set[int] = field(default_factory=set)

    def _free_servers(self, model: GpuModel):
        return (
            Server.objects.filter(gpu_model=model, status=HardwareStatus.AVAILABLE, allocations__isnull=True)
            .exclude(pk__in=self.servers_taken)
            .order_by("serial")
        )

    def servers(self, model: GpuModel, count: int) -> list[Server]:
        picked = list(self._free_servers(model)[:count])
        if len(picked) < count:
            raise RuntimeError(f"demo: not enough free {model} servers")
        self.servers_taken.update(s.pk for s in picked)
        return picked

    def cards(self, model: GpuModel, count: int) -> list[Card]:
        picked = list(
            Card.objects.filter(server__in=self._free_servers(model), status=HardwareStatus.AVAILABLE)
            .exclude(pk__in=self.cards_taken)
            .select_related("server")
            .order_by("server__serial", "slot")[:count]
        )
        if len(picked) < count:
            raise RuntimeError(f"demo: not enough free {model} cards")
        self.cards_taken.update(c.pk for c in picked)
        self.servers_taken.update(c.server_id for c in picked)  # a server's cards go to one line
        return picked


def _line(spec: LineSpec, model: GpuModel, hardware: _Hardware) -> LineData:
    if spec.cards:
        allocations = [AllocationData(card=card) for card in hardware.cards(model, spec.cards)]
        covered = Decimal(spec.cards)
    else:
        allocations = [AllocationData(server=server) for server in hardware.servers(model, spec.servers)]
        covered = (
            Decimal(spec.servers)
            if spec.resource == "server"
            else model.p_per_card * CARDS_PER_SERVER * spec.servers
        )
    return LineData(
        resource=spec.resource,
        gpu_model=model,
        quantity=spec.quantity if spec.quantity is not None else covered,
        term=spec.term,
        list_unit_price=spec.list_unit_price,
        term_discount_percent=spec.term_discount_percent,
        discount_percent=spec.discount_percent,
        yearly_billing=spec.yearly_billing,
        allocations=allocations,
    )


def _move(contract: Contract, spec: ContractSpec, *, manager, sales, finance) -> None:
    """Take a fresh draft to the spec's outcome through the lifecycle services."""
    if spec.outcome == DRAFT:
        return
    if spec.outcome == PENDING_APPROVAL or services.contract_needs_approval(contract=contract):
        contract = services.contract_submit(contract=contract, actor=manager, now=DRAFTED_AT)
        if spec.outcome == PENDING_APPROVAL:
            return
        contract = services.contract_approve(contract=contract, actor=sales, now=DRAFTED_AT)
    contract = services.contract_activate(contract=contract, actor=manager, now=DRAFTED_AT)
    if spec.outcome == SUSPENDED:
        services.contract_suspend(contract=contract, actor=manager, reason=spec.reason)
    elif spec.outcome == TERMINATED:
        services.contract_terminate(
            contract=contract, actor=finance, now=TERMINATION_NOTICE_AT, at=TERMINATED_AT, reason=spec.reason
        )


def load_contracts(ctx: DemoContext) -> None:
    tally = ctx.tally("contracts")
    existing = set(Contract.objects.filter(notes__startswith="demo:").values_list("notes", flat=True))
    missing = [spec for spec in CONTRACTS if not any(n.startswith(spec.marker) for n in existing)]
    tally.add(UNCHANGED, len(CONTRACTS) - len(missing))
    if not missing:
        return

    users = get_user_model().objects.filter(username__in=[SALES_MANAGER, FINANCE])
    by_name = {u.username: u for u in users}
    customers = {
        c.code: c
        for c in Customer.objects.select_related("account_manager").filter(
            code__in={s.customer for s in missing}
        )
    }
    models = {m.name: m for m in GpuModel.objects.all()}
    price_lists = {p.code: p for p in PriceList.objects.all()}
    hardware = _Hardware()
    with ctx.progress(total=len(missing), desc="contracts", unit="contract") as bar:
        for spec in missing:
            customer = customers[spec.customer]
            manager = customer.account_manager
            contract = services.contract_create(
                actor=manager,
                customer=customer,
                start_at=spec.start,
                end_at=spec.end,
                lines=[_line(line, models[line.gpu_model], hardware) for line in spec.lines],
                price_list=price_lists[spec.price_list] if spec.price_list else None,
                minimum_monthly_amount=spec.minimum_monthly_amount,
                notes=spec.marker + spec.description,
            )
            _move(contract, spec, manager=manager, sales=by_name[SALES_MANAGER], finance=by_name[FINANCE])
            tally.add(CREATED)
            bar.update()
