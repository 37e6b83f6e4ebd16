"""Billing test helpers: a card contract, its usage, a billing run and issuing, through the services.

(Reconstructed after an accidental overwrite; the helpers of tests/billing/vouchers/test_vouchers.py.)
"""

from __future__ import annotations

import datetime

from apps.billing.invoicing.services.issuing import invoice_issue
from apps.billing.invoicing.services.runs import billing_run_create, billing_run_execute
from apps.billing.models import Invoice, InvoiceStatus
from apps.contracts import services
from apps.core.periods import Period
from tests.factories.contracts import NOW, card_line, draft
from tests.factories.usage import usage

SH = datetime.timezone(datetime.timedelta(hours=8))
ONE_YEAR_END = datetime.datetime(2027, 11, 1, tzinfo=SH)  # a 365-day term from 2026-11-01


def at(day: int, hour: int = 0, month: int = 11, year: int = 2026) -> datetime.datetime:
    """A moment of November 2026 (by default) in Shanghai."""
    return datetime.datetime(year, month, day, hour, tzinfo=SH)


def card_contract(customer, am, server, *, price: str = "10.00", end=ONE_YEAR_END, now=NOW, **kwargs):
    """An active one-card hourly contract on ``server``'s first card (no discount), signed ``now``."""
    contract = draft(customer, am, [card_line(server, 1, price=price, discount="0")], end_at=end, **kwargs)
    return services.contract_activate(contract=contract, actor=am, now=now)


def use(server, hours: int, *, month: int = 11, day: int = 1, year: int = 2026):
    """``hours`` of usage of ``server``'s first card from 00:00 on the given day."""
    start = at(day, month=month, year=year)
    return usage(card=server.cards.get(slot=0), start=start, end=start + datetime.timedelta(hours=hours))


def _next_month_start(period: str) -> datetime.datetime:
    following = Period.parse(period).next()
    return datetime.datetime(following.year, following.month, 1, tzinfo=SH)


def bill(customer, period: str = "2026-11") -> Invoice:
    """Run billing of ``period`` for ``customer`` (early on the 1st of the next month); its invoice."""
    as_of = _next_month_start(period) + datetime.timedelta(hours=2)
    billing_run_execute(
        run=billing_run_create(period=period, customer=customer, as_of=as_of, now=as_of), now=as_of
    )
    return Invoice.objects.exclude(status=InvoiceStatus.VOID).get(customer=customer, period=period)


def issue(invoice: Invoice, on: datetime.datetime | None = None) -> Invoice:
    """Issue ``invoice`` (by default at 10:00 on the 1st of the next month); it as stored afterwards."""
    invoice_issue(invoice=invoice, now=on or _next_month_start(invoice.period) + datetime.timedelta(hours=10))
    return Invoice.objects.get(pk=invoice.pk)


def issued_invoice(customer, am, server, *, hours: int = 100, **contract_kwargs) -> Invoice:
    """November's invoice of a 10.00/card-hour contract used ``hours``, issued on 2026-12-01."""
    card_contract(customer, am, server, **contract_kwargs)
    use(server, hours)
    return issue(bill(customer))
