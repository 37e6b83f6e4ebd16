"""Demo contracts of every kind, drafted and moved through their lifecycle by the services.

Cards, servers and P-units × hourly, daily, monthly and yearly; term discounts, an ``upfront``
yearly line, a minimum monthly commitment, one contract waiting for a sales manager's approval,
one approved above the threshold, one suspended, one terminated and one draft; and the year
before: customers joining month by month, contracts that expired at their end and one renewed on
a yearly lease. Starts and ends are months counted from the current one (dates.py), so the demo
always ends now; ``now`` of each lifecycle step is a fixed day before the start, never the wall
clock. Hardware is the first free ``available`` servers and cards of the model by serial (or
named servers: the platform's own two), so the same database state always gets the same hardware.

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

from . import dates
from .base import CREATED, UNCHANGED, DemoContext
from .data import A100_40, A100_80, A800, ASCEND, CARDS_PER_SERVER, H20, H800, L40S, RTX4090

# Starts and ends are month offsets from the current month (dates.py): 0 is the current month's
# first day (2026-11-01 on the test suite's clock), -2 two months before, 12 a year after it.
SEP_1, OCT_1, NOV_1 = -2, -1, 0  # the three months of the story the tests tell (names on their clock)

STANDARD = "suanli-standard-2026"  # the demo list, the default CNY list (every model the demo leases)
SALES_MANAGER = "sales1"
FINANCE = "finance1"

DRAFT = "draft"
PENDING_APPROVAL = "pending_approval"
ACTIVE = "active"
SUSPENDED = "suspended"
TERMINATED = "terminated"


def a_year_from(start: int) -> int:
    return start + 12


def drafted_at(start: int) -> datetime.datetime:
    """The account managers draft and activate a few days before the first of the start month; the
    story's contracts on the 28th of the month before September (2026-08-28)."""
    return dates.at(min(start, SEP_1) - 1, 28, 10)


def termination() -> tuple[datetime.datetime, datetime.datetime]:
    """The terminated contract: notice given on the 15th of the current month, billing stops at the
    start of the 16th; before the 16th has come, the month before (nothing is dated after now)."""
    offset = 0 if dates.due(dates.at(0, 16)) else -1
    return dates.at(offset, 15, 17, 30), dates.at(offset, 16)


@dataclass(frozen=True)
class LineSpec:
    resource: str
    gpu_model: str
    term: str
    servers: int = 0  # whole servers allocated (server and P-unit lines)
    serials: tuple[str, ...] = ()  # these servers rather than the first free ones
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
    start: int  # month offset from the current month (its first day)
    lines: tuple[LineSpec, ...]
    outcome: str = ACTIVE
    end: int | None = None  # month offset; an end already past expires the contract
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
        end=NOV_1 + 2,
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
    # The year before: customers joining month by month, a few contracts ending, one renewed
    # (appended, so the contracts above keep their numbers and hardware). The platform's two own
    # A100 servers run round the clock by the hour until the current month, when acme's cards and
    # baize take them over. Earlier months are lighter (fewer customers), which keeps the load fast.
    ContractSpec(
        "moyan-servers-hourly",
        "moyan",
        "The platform's own two 8 × A100-40GB servers by the hour, round the clock for pre-training; ended.",
        -11,
        (LineSpec("server", A100_40, "hourly", servers=2, serials=("SRV-BJ-0001", "SRV-BJ-0002")),),
        end=NOV_1,
    ),
    ContractSpec(
        "wenlan-server-monthly",
        "wenlan",
        "An L40S server by the month for legal-document inference; renewed on a yearly lease.",
        -9,
        (LineSpec("server", L40S, "monthly", servers=1),),
        end=-4,
        price_list=STANDARD,
    ),
    ContractSpec(
        "jinghong-servers-monthly",
        "jinghong",
        "Two RTX 4090 servers by the month for digital-human rendering.",
        -8,
        (LineSpec("server", RTX4090, "monthly", servers=2),),
        price_list=STANDARD,
    ),
    ContractSpec(
        "guanlan-server-monthly",
        "guanlan",
        "An RTX 4090 server by the month for visual-effects rendering.",
        -7,
        (LineSpec("server", RTX4090, "monthly", servers=1),),
        price_list=STANDARD,
    ),
    ContractSpec(
        "yanshu-server-yearly",
        "yanshu",
        "An Ascend 910B server on a yearly lease for materials simulation.",
        -6,
        (LineSpec("server", ASCEND, "yearly", servers=1),),
        end=a_year_from(-6),
        price_list=STANDARD,
    ),
    ContractSpec(
        "hongtu-server-monthly",
        "hongtu",
        "An A800 server by the month for route planning; ended with its last two invoices unpaid.",
        -6,
        (LineSpec("server", A800, "monthly", servers=1),),
        end=SEP_1,
        price_list=STANDARD,
    ),
    ContractSpec(
        "linglong-server-monthly",
        "linglong",
        "An H800 server by the month for a three-month chip-verification campaign; ended.",
        -5,
        (LineSpec("server", H800, "monthly", servers=1),),
        end=SEP_1,
        price_list=STANDARD,
    ),
    ContractSpec(
        "wenlan-server-yearly",
        "wenlan",
        "The L40S server renewed on a yearly lease (12 % term discount).",
        -4,
        (LineSpec("server", L40S, "yearly", servers=1),),
        end=a_year_from(-4),
        price_list=STANDARD,
    ),
    ContractSpec(
        "shenlan-cards-hourly",
        "shenlan",
        "RTX 4090 cards by the hour for ocean-model fine-tuning.",
        -4,
        (LineSpec("card", RTX4090, "hourly", cards=4),),
        price_list=STANDARD,
    ),
    ContractSpec(
        "beichen-server-monthly",
        "beichen",
        "An A100-80GB server by the month for risk models.",
        -3,
        (LineSpec("server", A100_80, "monthly", servers=1),),
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

    def servers(self, model: GpuModel, count: int, serials: tuple[str, ...] = ()) -> list[Server]:
        if serials:  # named servers: their allocations' times keep clear of other contracts'
            picked = list(Server.objects.filter(gpu_model=model, serial__in=serials).order_by("serial"))
        else:
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
        allocations = [
            AllocationData(server=server) for server in hardware.servers(model, spec.servers, spec.serials)
        ]
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
    drafted = drafted_at(spec.start)
    if spec.outcome == PENDING_APPROVAL or services.contract_needs_approval(contract=contract):
        contract = services.contract_submit(contract=contract, actor=manager, now=drafted)
        if spec.outcome == PENDING_APPROVAL:
            return
        contract = services.contract_approve(contract=contract, actor=sales, now=drafted)
    contract = services.contract_activate(contract=contract, actor=manager, now=drafted)
    if spec.outcome == SUSPENDED:
        services.contract_suspend(contract=contract, actor=manager, reason=spec.reason)
    elif spec.outcome == TERMINATED:
        notice, at = termination()
        services.contract_terminate(contract=contract, actor=finance, now=notice, at=at, reason=spec.reason)
    elif contract.end_at is not None and dates.due(contract.end_at):
        # The daily job marks a contract whose end has passed as expired, on the day it ends.
        services.contract_expire_due(now=contract.end_at)


def load_contracts(ctx: DemoContext) -> None:
    tally = ctx.tally("contracts")
    existing = set(Contract.objects.filter(notes__startswith="demo:").values_list("notes", flat=True))
    specs = CONTRACTS
    missing = [spec for spec in specs if not any(n.startswith(spec.marker) for n in existing)]
    tally.add(UNCHANGED, len(specs) - len(missing))
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
                start_at=dates.at(spec.start),
                end_at=dates.at(spec.end) if spec.end is not None else None,
                lines=[_line(line, models[line.gpu_model], hardware) for line in spec.lines],
                price_list=price_lists[spec.price_list] if spec.price_list else None,
                minimum_monthly_amount=spec.minimum_monthly_amount,
                notes=spec.marker + spec.description,
            )
            _move(contract, spec, manager=manager, sales=by_name[SALES_MANAGER], finance=by_name[FINANCE])
            tally.add(CREATED)
            bar.update()
