"""Quote preview: what a draft contract costs for one full month, computed by the rating engine.

Hourly lines are rated on synthetic usage at the utilisation the account manager expects (default
100 %), for the quantity on the line. Provider cost is rated by the same engine at the supply
agreement's price for the same quantity basis, so the margin compares like with like.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from decimal import Decimal

from django.conf import settings
from django.db.models import Q

from apps.core.money import ZERO, percent_to_rate, round_money
from apps.core.periods import Period
from apps.core.units import TFLOPS_PER_P
from apps.providers.models import SupplyAgreement

from . import pricing
from .models import Contract, ContractLine

HUNDRED = Decimal(100)


@dataclass(frozen=True)
class QuoteLine:
    line: ContractLine
    charge: pricing.LineCharge | None
    list_amount: Decimal
    term_discount_amount: Decimal
    negotiated_discount_amount: Decimal
    amount: Decimal
    tax_amount: Decimal
    net_amount: Decimal
    gross_amount: Decimal
    cost_amount: Decimal | None
    margin_amount: Decimal | None


@dataclass(frozen=True)
class Quote:
    contract: Contract
    period: Period
    utilisation_percent: Decimal
    lines: list[QuoteLine]

    def _sum(self, name: str) -> Decimal:
        return sum((getattr(line, name) for line in self.lines), ZERO)

    @property
    def list_amount(self) -> Decimal:
        return self._sum("list_amount")

    @property
    def discount_amount(self) -> Decimal:
        return self._sum("term_discount_amount") + self._sum("negotiated_discount_amount")

    @property
    def amount(self) -> Decimal:
        return self._sum("amount")

    @property
    def tax_amount(self) -> Decimal:
        return self._sum("tax_amount")

    @property
    def net_amount(self) -> Decimal:
        return self._sum("net_amount")

    @property
    def gross_amount(self) -> Decimal:
        return self._sum("gross_amount")

    @property
    def cost_amount(self) -> Decimal | None:
        costs = [line.cost_amount for line in self.lines]
        return None if any(c is None for c in costs) else sum(costs, ZERO)

    @property
    def margin_amount(self) -> Decimal | None:
        cost = self.cost_amount
        return None if cost is None else self.net_amount - cost


def quote_period(contract: Contract) -> Period:
    """The first full calendar month of the contract in the billing zone."""
    tz = settings.BILLING_TIME_ZONE
    period = Period.containing(contract.start_at, tz)
    start, _ = period.bounds(tz)
    return period if contract.start_at <= start else period.next()


def _synthetic_line(
    line: ContractLine,
    window: pricing.Window,
    utilisation: Decimal,
    list_price: Decimal,
    term_discount: Decimal,
    discount: Decimal,
    quantity: Decimal,
    tax_rate: Decimal,
):
    """A line and usage that bill ``quantity`` over the whole window at ``utilisation``."""
    tflops = line.gpu_model.fp16_dense_tflops
    allocations: list[pricing.Allocation] = []
    usage: list[pricing.UsageRecord] = []
    if line.term == "hourly":
        busy_micros = pricing.micros_between(window.start, window.end) * utilisation
        busy = window.start + datetime.timedelta(microseconds=int(busy_micros))
        if line.resource == "server":
            for server_id in range(1, int(quantity) + 1):
                cards = [pricing.CardRef(server_id * 100 + slot, server_id, tflops) for slot in range(8)]
                allocations.append(pricing.Allocation.server(server_id, cards, window.start))
                usage.append(pricing.UsageRecord(window.start, busy, server_id=server_id))
        else:
            # P lines: whole cards of the model, the last one scaled by its fraction of a card.
            cards_needed = quantity if line.resource == "card" else quantity * TFLOPS_PER_P / tflops
            whole = int(cards_needed)
            fractions = [Decimal(1)] * whole + ([cards_needed - whole] if cards_needed > whole else [])
            for index, fraction in enumerate(fractions, start=1):
                allocations.append(
                    pricing.Allocation.card(pricing.CardRef(index, None, tflops), window.start)
                )
                end = window.start + datetime.timedelta(microseconds=int(busy_micros * fraction))
                if end > window.start:
                    usage.append(pricing.UsageRecord(window.start, end, card_id=index))
    rated = pricing.LineInput(
        line_id=line.pk,
        resource=line.resource,
        term=line.term,
        quantity=quantity,
        list_unit_price=list_price,
        tax_rate=tax_rate,
        term_discount_percent=term_discount,
        discount_percent=discount,
        start=window.start,
        yearly_billing="monthly_instalments",
        allocations=tuple(allocations),
    )
    return rated, usage


def _rate(line, window, utilisation, list_price, term_discount, discount, quantity, tax_rate, include_tax):
    rated, usage = _synthetic_line(
        line, window, utilisation, list_price, term_discount, discount, quantity, tax_rate
    )
    return pricing.rate_line(
        rated, window, usage, prices_include_tax=include_tax, tz=settings.BILLING_TIME_ZONE
    )


def _provider_cost(line: ContractLine, window, utilisation: Decimal, on: datetime.date) -> Decimal | None:
    """Cost of the line's allocated hardware at each provider's supply price, same quantity basis."""
    allocations = list(line.allocations.all())
    if not allocations:
        return None
    shares: dict[int, int] = {}
    for allocation in allocations:
        weight = 1 if allocation.card_id else allocation.server.card_count
        shares[allocation.server.provider_id] = shares.get(allocation.server.provider_id, 0) + weight
    total_weight = sum(shares.values())
    agreements = (
        SupplyAgreement.objects.filter(
            provider_id__in=shares,
            gpu_model_id=line.gpu_model_id,
            resource=line.resource,
            term=line.term,
            valid_from__lte=on,
        )
        .filter(Q(valid_to__isnull=True) | Q(valid_to__gte=on))
        .order_by("provider_id", "-valid_from")
    )
    prices: dict[int, Decimal] = {}
    for agreement in agreements:
        prices.setdefault(agreement.provider_id, agreement.cost_unit_price)
    if set(prices) != set(shares):
        return None
    cost = ZERO
    for provider_id, weight in shares.items():
        quantity = line.quantity * weight / total_weight
        charge = _rate(line, window, utilisation, prices[provider_id], ZERO, ZERO, quantity, ZERO, False)
        cost += charge.amount if charge else ZERO
    return round_money(cost)


def contract_quote(*, contract: Contract, utilisation_percent: Decimal = HUNDRED) -> Quote:
    """Price every line of ``contract`` for one full month (nothing is saved)."""
    utilisation = min(max(utilisation_percent, ZERO), HUNDRED) / HUNDRED
    period = quote_period(contract)
    window = pricing.Window.of(period, settings.BILLING_TIME_ZONE)
    lines = contract.lines.select_related("gpu_model", "tax_category").prefetch_related("allocations__server")
    quote_lines = []
    for line in lines:
        rate = line.tax_category.rate
        args = (line, window, utilisation)
        charge = _rate(
            *args,
            line.list_unit_price,
            line.term_discount_percent,
            line.discount_percent,
            line.quantity,
            rate,
            contract.prices_include_tax,
        )
        if charge is None:
            amount = list_amount = tax = net = gross = term_disc = ZERO
        else:
            list_amount, amount = charge.list_amount, charge.amount
            after_term = round_money(list_amount * (1 - percent_to_rate(line.term_discount_percent)))
            term_disc = list_amount - after_term
            tax, net, gross = charge.tax.tax, charge.tax.net, charge.tax.gross
        cost = _provider_cost(line, window, utilisation, period.first_day)
        quote_lines.append(
            QuoteLine(
                line=line,
                charge=charge,
                list_amount=list_amount,
                term_discount_amount=term_disc,
                negotiated_discount_amount=list_amount - term_disc - amount,
                amount=amount,
                tax_amount=tax,
                net_amount=net,
                gross_amount=gross,
                cost_amount=cost,
                margin_amount=None if cost is None else net - cost,
            )
        )
    return Quote(
        contract=contract, period=period, utilisation_percent=utilisation * HUNDRED, lines=quote_lines
    )
