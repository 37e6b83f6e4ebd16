"""What each provider's share of each settled invoice line costs: loading and rating (no writes)."""

from __future__ import annotations

import datetime
from collections import defaultdict
from dataclasses import dataclass, replace
from decimal import Decimal
from zoneinfo import ZoneInfo

from django.conf import settings

from apps.billing.invoicing.descriptions import RESOURCE_LABELS, TERM_LABELS
from apps.billing.invoicing.inputs import LoadedContract, contracts_for, merged_usage
from apps.billing.invoicing.models import Invoice, InvoiceLine, InvoiceStatus, LineKind
from apps.contracts import pricing
from apps.contracts.models import Allocation
from apps.core.money import ZERO, decimal_text, round_money, round_unit_price
from apps.core.periods import Period
from apps.providers.models import Provider, SupplyAgreement

SETTLED_KINDS = [LineKind.USAGE, LineKind.RECURRING, LineKind.LATE_USAGE]
SETTLED_INVOICE_STATUSES = [InvoiceStatus.ISSUED, InvoiceStatus.PAID]


def billing_zone() -> ZoneInfo:
    return ZoneInfo(settings.BILLING_TIME_ZONE)


# --- computing the lines ----------------------------------------------------------------------


@dataclass
class PlannedLine:
    provider_id: int
    currency: str
    invoice_line: InvoiceLine
    allocation_id: int | None
    agreement: SupplyAgreement | None
    gpu_model_id: int
    resource: str
    term: str
    description: str
    quantity: Decimal  # exact
    unit: str
    cost_unit_price: Decimal
    cost_amount: Decimal
    revenue_net_amount: Decimal = ZERO
    warning: str = ""

    def values(self) -> tuple:
        line = self.invoice_line
        return (
            line.pk,
            line.kind,
            line.contract_id,
            line.contract_line_id,
            self.allocation_id,
            self.agreement.pk if self.agreement else None,
            self.gpu_model_id,
            self.resource,
            self.term,
            self.description[:500],
            round_unit_price(self.quantity),
            self.unit,
            round_unit_price(self.cost_unit_price),
            self.cost_amount,
            self.revenue_net_amount,
            self.revenue_net_amount - self.cost_amount,
            line.service_start_at,
            line.service_end_at,
            self.warning[:300],
        )


@dataclass(frozen=True)
class _Hardware:
    """A firm allocation as settlement needs it: whose hardware, which model, which row."""

    allocation_id: int
    provider_id: int
    gpu_model_id: int


class _Agreements:
    """Supply agreements of some providers, looked up per (provider, model, resource, term, day)."""

    def __init__(self, provider_ids: set[int], until: datetime.date, names: dict) -> None:
        self.names = names  # (provider id, model id) → (provider code, model name)
        self.by_key: dict[tuple, list[SupplyAgreement]] = defaultdict(list)
        for agreement in SupplyAgreement.objects.filter(
            provider_id__in=provider_ids, valid_from__lte=until
        ).order_by("-valid_from", "-pk"):
            key = (agreement.provider_id, agreement.gpu_model_id, agreement.resource, agreement.term)
            self.by_key[key].append(agreement)

    def find(self, key: tuple, currency: str, on: datetime.date) -> tuple[SupplyAgreement | None, str]:
        valid = [
            a
            for a in self.by_key.get(key, ())
            if a.valid_from <= on and (a.valid_to is None or a.valid_to >= on)
        ]
        for agreement in valid:
            if agreement.currency == currency:
                return agreement, ""
        if valid:
            return None, f"supply agreement is in {valid[0].currency}, revenue in {currency}: no cost taken"
        provider, model, resource, term = key
        names = self.names.get((provider, model), (str(provider), str(model)))
        return None, (
            f"no supply agreement for {names[0]} {names[1]} {resource}/{term} valid on {on} 缺少有效的供应协议"
        )


def _restricted(line: pricing.LineInput, cost: Decimal, **changes) -> pricing.LineInput:
    """The customer's line at the cost price: no discounts, no tiers, no tax."""
    return replace(
        line,
        list_unit_price=cost,
        tiers=(),
        term_discount_percent=ZERO,
        discount_percent=ZERO,
        tax_rate=ZERO,
        **changes,
    )


def _contract_input(loaded: LoadedContract, line: pricing.LineInput) -> pricing.ContractInput:
    return replace(
        loaded.rating,
        lines=(line,),
        prices_include_tax=False,
        minimum_monthly_amount=None,
        minimum_tax_rate=None,
    )


def _alloc_key(line_id: int, alloc: pricing.Allocation) -> tuple:
    card_id = None if alloc.server_id is not None else alloc.cards[0].card_id
    server_id = alloc.server_id if alloc.server_id is not None else alloc.cards[0].server_id
    return (line_id, server_id, card_id, alloc.start)


def _split(total: Decimal, weights: list[Decimal]) -> list[Decimal]:
    """``total`` rounded in proportion to ``weights``; the last part takes the rounding rest."""
    whole = sum(weights, ZERO)
    if whole == 0:
        return [ZERO for _ in weights]
    parts, left = [], total
    for index, weight in enumerate(weights):
        part = left if index == len(weights) - 1 else round_money(total * weight / whole)
        parts.append(part)
        left -= part
    return parts


class Planner:
    """Everything one build reads, loaded set-based (a fixed number of queries per period)."""

    def __init__(self, period: Period, provider: Provider | None) -> None:
        self.period = period
        self.start, self.end = period.bounds(billing_zone())
        self.lines = list(
            InvoiceLine.objects.filter(
                invoice__period=str(period),
                invoice__status__in=SETTLED_INVOICE_STATUSES,
                kind__in=SETTLED_KINDS,
                contract_line__isnull=False,
            )
            .select_related("invoice", "contract", "contract_line__gpu_model")
            .order_by("invoice__number", "position")
        )
        self.provider_filter = provider.pk if provider else None
        earliest = min((line.service_start_at for line in self.lines), default=self.start)
        customer_ids = sorted({line.invoice.customer_id for line in self.lines})
        self.loaded: dict[int, LoadedContract] = {
            loaded.rating.contract_id: loaded
            for group in contracts_for(customer_ids, min(earliest, self.start), self.end).values()
            for loaded in group
        }
        self.line_inputs = {li.line_id: li for loaded in self.loaded.values() for li in loaded.rating.lines}
        cline_ids = {line.contract_line_id for line in self.lines}
        self.hardware: dict[tuple, _Hardware] = {}
        names = {}
        rows = Allocation.objects.filter(line_id__in=cline_ids, firm=True).values_list(
            "pk",
            "line_id",
            "server_id",
            "card_id",
            "start_at",
            "server__provider_id",
            "server__gpu_model_id",
            "server__provider__code",
            "server__gpu_model__name",
        )
        for pk, line_id, server_id, card_id, alloc_start, provider_id, model_id, code, model in rows:
            self.hardware[(line_id, server_id, card_id, alloc_start)] = _Hardware(pk, provider_id, model_id)
            names[(provider_id, model_id)] = (code, model)
        provider_ids = {h.provider_id for h in self.hardware.values()}
        self.agreements = _Agreements(provider_ids, period.next().first_day, names)
        self.usage_cache: dict[tuple, dict] = {}
        self.billed_cutoff: dict[int, datetime.datetime | None] = {}  # late invoice line → cutoff

    # usage, grouped so that each (window, cutoff) is one query for all the cards that need it

    def _cards(self, lines: list[InvoiceLine]) -> tuple[set[int], set[int]]:
        """The allocated cards of these lines, and their servers (whose records count for them)."""
        cards = {
            card
            for line in lines
            for alloc in self.line_inputs[line.contract_line_id].allocations
            for card in alloc.cards
        }
        return {c.card_id for c in cards}, {c.server_id for c in cards if c.server_id is not None}

    def prepare_usage(self) -> None:
        hourly = [
            line
            for line in self.lines
            if line.contract_line_id in self.line_inputs and line.kind != LineKind.RECURRING
        ]
        by_key: dict[tuple, list[InvoiceLine]] = defaultdict(list)
        late_cutoffs = self._billed_cutoffs([line for line in hourly if line.kind == LineKind.LATE_USAGE])
        for line in hourly:
            cutoff = line.invoice.usage_cutoff_at or line.invoice.issued_at
            if line.kind == LineKind.USAGE:
                by_key[(self.period, cutoff)].append(line)
            else:
                late = Period.containing(line.service_start_at, billing_zone())
                by_key[(late, cutoff)].append(line)
                billed = late_cutoffs.get((line.invoice.customer_id, str(late), str(self.period)))
                if billed is not None:
                    by_key[(late, billed)].append(line)
                self.billed_cutoff[line.pk] = billed
        for (window_period, cutoff), lines in by_key.items():
            start, end = window_period.bounds(billing_zone())
            card_ids, server_ids = self._cards(lines)
            self.usage_cache[(window_period, cutoff)] = merged_usage(
                card_ids, server_ids, start, end, received_to=cutoff
            )

    def _billed_cutoffs(self, late_lines: list[InvoiceLine]) -> dict[tuple, datetime.datetime]:
        """(customer, late period, this period) → the latest usage cutoff of the customer's issued
        invoices from the late period up to (excluding) this one: what was billed before."""
        if not late_lines:
            return {}
        wanted = {
            (line.invoice.customer_id, str(Period.containing(line.service_start_at, billing_zone())))
            for line in late_lines
        }
        earliest = min(p for _, p in wanted)
        rows = Invoice.objects.filter(
            customer_id__in={c for c, _ in wanted},
            status__in=SETTLED_INVOICE_STATUSES,
            period__gte=earliest,
            period__lt=str(self.period),
            usage_cutoff_at__isnull=False,
        ).values_list("customer_id", "period", "usage_cutoff_at")
        out = {}
        for customer_id, late in wanted:
            cutoffs = [c for cid, p, c in rows if cid == customer_id and p >= late]
            if cutoffs:
                out[(customer_id, late, str(self.period))] = max(cutoffs)
        return out

    def _records(self, window_period: Period, cutoff) -> list[pricing.UsageRecord]:
        usage = self.usage_cache.get((window_period, cutoff), {})
        return [r for records in usage.values() for r in records]

    # one invoice line → its providers' shares

    def plan(self) -> tuple[list[PlannedLine], list[str]]:
        self.prepare_usage()
        planned, unattributed = [], []
        for line in self.lines:
            line_input = self.line_inputs.get(line.contract_line_id)
            loaded = self.loaded.get(line.contract_id)
            if line_input is None or loaded is None:
                unattributed.append(f"{line.invoice.number} line {line.position}: contract not loaded")
                continue
            groups: dict[tuple[int, int], list[tuple[pricing.Allocation, _Hardware]]] = defaultdict(list)
            for alloc in line_input.allocations:
                hardware = self.hardware.get(_alloc_key(line_input.line_id, alloc))
                if hardware is not None:
                    groups[(hardware.provider_id, hardware.gpu_model_id)].append((alloc, hardware))
            if line.kind == LineKind.RECURRING:
                shares = self._recurring(line, loaded, line_input, groups)
            else:
                shares = self._hourly(line, loaded, line_input, groups)
            if not shares:
                if line.quantity:
                    unattributed.append(f"{line.invoice.number} line {line.position}: no allocated hardware")
                continue
            revenues = _split(line.net_amount, [p.quantity for p in shares])
            for share, revenue in zip(shares, revenues, strict=True):
                share.revenue_net_amount = revenue
            if self.provider_filter is not None:
                shares = [p for p in shares if p.provider_id == self.provider_filter]
            planned.extend(shares)
        return planned, unattributed

    def _cost(self, line: InvoiceLine, provider_id: int, model_id: int) -> tuple[SupplyAgreement | None, str]:
        cline = line.contract_line
        key = (provider_id, model_id, cline.resource, cline.term)
        on = line.service_start_at.astimezone(billing_zone()).date()
        return self.agreements.find(key, line.invoice.currency, on)

    def _planned(
        self, line, groups_key, allocs, agreement, warning, charge: pricing.LineCharge
    ) -> PlannedLine:
        provider_id, model_id = groups_key
        cline = line.contract_line
        allocation_ids = {h.allocation_id for _, h in allocs}
        late = line.kind == LineKind.LATE_USAGE
        window = Period.containing(line.service_start_at, billing_zone()) if late else line.invoice.period
        description = (
            f"{'迟到用量 Late usage' if late else '成本 Cost'} · {line.contract} "
            f"#{cline.position} {RESOURCE_LABELS[cline.resource]} {TERM_LABELS[cline.term]} · {window} · "
            f"{decimal_text(charge.quantity)} {charge.unit} × "
            f"{decimal_text(round_unit_price(charge.unit_price))} · {line.invoice.number} #{line.position}"
        )
        return PlannedLine(
            provider_id=provider_id,
            currency=line.invoice.currency,
            invoice_line=line,
            allocation_id=next(iter(allocation_ids)) if len(allocation_ids) == 1 else None,
            agreement=agreement,
            gpu_model_id=model_id,
            resource=cline.resource,
            term=cline.term,
            description=description,
            quantity=charge.exact_quantity,
            unit=charge.unit,
            cost_unit_price=charge.unit_price,
            cost_amount=charge.amount,
            warning=warning,
        )

    def _hourly(self, line, loaded, line_input, groups) -> list[PlannedLine]:
        out = []
        late = line.kind == LineKind.LATE_USAGE
        window_period = Period.containing(line.service_start_at, billing_zone()) if late else self.period
        cutoff = line.invoice.usage_cutoff_at or line.invoice.issued_at
        records = self._records(window_period, cutoff)
        billed_cutoff = self.billed_cutoff.get(line.pk)
        billed = self._records(window_period, billed_cutoff) if late and billed_cutoff else []
        for key, allocs in sorted(groups.items()):
            agreement, warning = self._cost(line, *key)
            restricted = _restricted(
                line_input,
                agreement.cost_unit_price if agreement else ZERO,
                allocations=tuple(a for a, _ in allocs),
            )
            contract = _contract_input(loaded, restricted)
            if late:
                charges = pricing.rate_contract_late_usage(
                    contract, window_period, records, billed, tz=billing_zone()
                )
                charge = charges[0] if charges else None
            else:
                rated = pricing.rate_contract(contract, window_period, records, tz=billing_zone())
                charge = rated.lines[0] if rated.lines else None
            if charge is None or charge.exact_quantity == 0:
                continue
            out.append(self._planned(line, key, allocs, agreement, warning, charge))
        total = sum((p.quantity for p in out), ZERO)
        if out and round_unit_price(total) != line.quantity:
            for p in out:
                p.warning = (p.warning + "; " if p.warning else "") + (
                    f"providers' quantity {decimal_text(round_unit_price(total))} ≠ billed {decimal_text(line.quantity)}"
                )
        return out

    def _recurring(self, line, loaded, line_input, groups) -> list[PlannedLine]:
        service = (line.service_start_at, line.service_end_at)
        weights = {}
        for key, allocs in groups.items():
            weight = 0
            for alloc, _ in allocs:
                piece = pricing.clip(service, (alloc.start, alloc.end))
                if piece is not None:
                    weight += len(alloc.cards) * pricing.micros_between(*piece)
            if weight:
                weights[key] = Decimal(weight)
        whole = sum(weights.values(), ZERO)
        out = []
        for key in sorted(weights):
            agreement, warning = self._cost(line, *key)
            quantity = line_input.quantity * weights[key] / whole
            restricted = _restricted(
                line_input,
                agreement.cost_unit_price if agreement else ZERO,
                quantity=quantity,
                allocations=(),
            )
            rated = pricing.rate_contract(
                _contract_input(loaded, restricted), self.period, (), tz=billing_zone()
            )
            if not rated.lines:
                continue
            allocs = [(a, h) for a, h in groups[key] if pricing.clip(service, (a.start, a.end)) is not None]
            out.append(self._planned(line, key, allocs, agreement, warning, rated.lines[0]))
        return out
