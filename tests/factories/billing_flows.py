"""Invoices for the voucher and settlement tests, made through the real services (contract →
usage → billing run of one customer → issue)."""

from __future__ import annotations

import datetime
from decimal import Decimal

from apps.billing.invoicing.services.issuing import invoice_issue
from apps.billing.invoicing.services.runs import billing_run_create, billing_run_execute
from apps.billing.models import Invoice
from apps.contracts import services
from tests.factories.contracts import NOW, card_line, draft
from tests.factories.usage import usage

SH = datetime.timezone(datetime.timedelta(hours=8))
NOV_1 = datetime.datetime(2026, 11, 1, tzinfo=SH)
ONE_YEAR_LATER = datetime.datetime(2027, 11, 1, tzinfo=SH)  # a 365-day term


def at(day: int, hour: int = 0, month: int = 11, year: int = 2026) -> datetime.datetime:
    return datetime.datetime(year, month, day, hour, tzinfo=SH)


def next_month_start(period: str, hour: int) -> datetime.datetime:
    year, month = map(int, period.split("-"))
    return datetime.datetime(year + month // 12, month % 12 + 1, 1, hour, tzinfo=SH)


def active_contract(customer, actor, lines, *, start=NOV_1, end=ONE_YEAR_LATER, now=NOW, **kwargs):
    contract = draft(customer, actor, lines, start=start, end_at=end, **kwargs)
    return services.contract_activate(contract=contract, actor=actor, now=now)


def card_contract(customer, actor, server, *, price="10.00", cards=1, **kwargs):
    """An hourly card contract at ``price`` per card-hour, no discount, prices including 6 % VAT."""
    return active_contract(customer, actor, [card_line(server, cards, price=price, discount="0")], **kwargs)


def use(server, hours: int, *, slot: int = 0, day: int = 2, month: int = 11, year: int = 2026):
    """``hours`` of usage on one card from 00:00 of ``day``, received an hour after it ends."""
    start = at(day, month=month, year=year)
    end = start + datetime.timedelta(hours=hours)
    return usage(
        card=server.cards.get(slot=slot), start=start, end=end, received_at=end + datetime.timedelta(hours=1)
    )


def bill(customer, period: str = "2026-11") -> Invoice:
    """Run billing for one customer and period (as of the 1st, 03:00, after it); its draft."""
    as_of = next_month_start(period, 3)
    billing_run_execute(
        run=billing_run_create(period=period, customer=customer, as_of=as_of, now=as_of), now=as_of
    )
    return Invoice.objects.get(customer=customer, period=period)


def issue(invoice: Invoice, *, on: datetime.datetime | None = None, early_reason: str = "") -> Invoice:
    """Issue (by default on the 1st, 10:00, after the period; before it with ``early_reason``)."""
    return invoice_issue(
        invoice=invoice, now=on or next_month_start(invoice.period, 10), early_reason=early_reason
    )


def issued_invoice(customer, actor, server, *, hours: int = 100, price="10.00", period="2026-11", **kwargs):
    """An issued invoice of ``hours`` × ``price`` (100 h × 10.00 = 1,000.00 incl. VAT by default)."""
    year, month = map(int, period.split("-"))
    if not customer.contracts.exists():
        card_contract(customer, actor, server, price=price, **kwargs)
    use(server, hours, month=month, year=year)
    invoice = bill(customer, period)
    assert invoice.total_amount == Decimal(price) * hours, invoice.total_amount
    return issue(invoice)
