"""The running month's invoice computed on demand, saving nothing (docs/invoices.md#preview).

It is the invoice a billing run would draft now: the same loaders (``inputs``) and the same
planner (``invoicing.invoice_plan``), with usage received up to ``as_of``. Recurring lines show
the whole month, as they will be billed in arrears; metered lines show the usage so far.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from decimal import Decimal

from django.conf import settings

from apps.billing.invoicing.models import LineKind
from apps.billing.invoicing.services.invoicing import PlannedLine, billing_inputs_load
from apps.core.money import ZERO
from apps.core.periods import Period
from apps.customers.models import Customer

_KIND_LABELS = dict(LineKind.choices)


@dataclass(frozen=True)
class PreviewLine:
    """An invoice line as it would be stored: ``InvoiceLine``'s fields (filled from
    ``PlannedLine.fields()``, so a new model field must appear here), the contract by number."""

    position: int
    kind: str
    contract_number: str
    contract_line_id: int | None
    description: str
    tax_classification: str
    quantity: Decimal
    unit: str
    list_unit_price: Decimal
    unit_price: Decimal
    discount_amount: Decimal
    amount: Decimal
    tax_rate: Decimal
    tax_amount: Decimal
    net_amount: Decimal
    gross_amount: Decimal
    service_start_at: datetime.datetime
    service_end_at: datetime.datetime

    @property
    def kind_label(self) -> str:
        return _KIND_LABELS.get(self.kind, self.kind)


@dataclass(frozen=True)
class PreviewInvoice:
    """What the invoice of ``customer`` in ``currency`` for ``period`` would be as of ``as_of``."""

    customer: Customer
    currency: str
    period: str
    as_of: datetime.datetime
    prices_include_tax: bool
    lines: tuple[PreviewLine, ...]

    @property
    def net_amount(self) -> Decimal:
        return sum((line.net_amount for line in self.lines), ZERO)

    @property
    def tax_amount(self) -> Decimal:
        return sum((line.tax_amount for line in self.lines), ZERO)

    @property
    def total_amount(self) -> Decimal:
        return sum((line.gross_amount for line in self.lines), ZERO)


def _preview_line(position: int, planned: PlannedLine, numbers: dict[int, str]) -> PreviewLine:
    fields = planned.fields()
    contract_id = fields.pop("contract_id")
    return PreviewLine(position=position, contract_number=numbers[contract_id], **fields)


def preview_period(*, as_of: datetime.datetime) -> str:
    """The running month at ``as_of``: the period a preview computes."""
    return str(Period.containing(as_of, settings.BILLING_TIME_ZONE))


def invoice_preview(*, customer: Customer, as_of: datetime.datetime) -> list[PreviewInvoice]:
    """The invoices (one per currency) of the period containing ``as_of``, as of ``as_of``.

    Reads only: nothing is written, locked or numbered. A customer with no contract in force this
    month gets an empty list.
    """
    period = Period.containing(as_of, settings.BILLING_TIME_ZONE)
    inputs = billing_inputs_load(customer_ids=[customer.pk], period=period, as_of=as_of)
    loaded = inputs.contracts.get(customer.pk, [])
    if not loaded:
        return []
    plan = inputs.plan(customer.pk, period)
    numbers = {contract.contract.pk: str(contract.contract) for contract in loaded}
    include_tax = {contract.contract.pk: contract.contract.prices_include_tax for contract in loaded}
    previews = []
    for currency in sorted(plan):
        planned = plan[currency]
        if not planned:
            continue
        previews.append(
            PreviewInvoice(
                customer=customer,
                currency=currency,
                period=str(period),
                as_of=as_of,
                prices_include_tax=all(include_tax[p.contract_id] for p in planned),
                lines=tuple(_preview_line(i, p, numbers) for i, p in enumerate(planned, start=1)),
            )
        )
    return previews
