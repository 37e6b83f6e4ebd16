"""Invoice test helpers: the metered example of docs/rating.md, runs and issuing through the real
services; PDF text."""

from __future__ import annotations

import datetime
import io
import re

from pypdf import PdfReader

from apps.billing.invoicing.services.runs import billing_run_create, billing_run_execute
from apps.billing.models import BillingRun, Invoice
from apps.contracts import services
from tests.factories.catalogue import CustomerFactory, ServerFactory
from tests.factories.contracts import NOW, card_line, draft
from tests.factories.usage import usage

SH = datetime.timezone(datetime.timedelta(hours=8))
AS_OF = datetime.datetime(2026, 12, 1, 3, 0, tzinfo=SH)  # the run after November closed
ISSUED_AT = datetime.datetime(2026, 12, 2, 10, 0, tzinfo=SH)


def h(day: int, hour: int = 0, month: int = 11, year: int = 2026) -> datetime.datetime:
    return datetime.datetime(year, month, day, hour, tzinfo=SH)


def active(customer, am, lines, **kwargs):
    contract = draft(customer, am, lines, **kwargs)
    return services.contract_activate(contract=contract, actor=am, now=NOW)


def bill(period: str = "2026-11", as_of: datetime.datetime = AS_OF, **kwargs) -> BillingRun:
    return billing_run_execute(
        run=billing_run_create(period=period, as_of=as_of, now=as_of, **kwargs), now=as_of
    )


def metered_customer(am, *, code: str | None = None, name: str | None = None, **customer_fields):
    """A customer with the metered example of docs/rating.md: 2 cards at 22.70 −10 %, 8 h + 4 h of usage."""
    fields = {k: v for k, v in {"code": code, "name": name}.items() if v is not None}
    customer = CustomerFactory(**fields, **customer_fields)
    server = ServerFactory()
    contract = active(customer, am, [card_line(server, 2, price="22.70", discount="10")])
    card0, card1 = server.cards.order_by("slot")[:2]
    usage(card=card0, start=h(3, 8), end=h(3, 16))
    usage(card=card1, start=h(4, 8), end=h(4, 12))
    return customer, contract


def metered_invoice(am, **kwargs) -> Invoice:
    """The draft of ``metered_customer`` after November's run: 245.16 incl. 13.88 VAT."""
    customer, _ = metered_customer(am, **kwargs)
    bill(customer=customer)
    return Invoice.objects.get(customer=customer, period="2026-11")


def pdf_text(content: bytes) -> str:
    """The PDF's text with all whitespace removed (table cells wrap at arbitrary points)."""
    assert content.startswith(b"%PDF"), content[:20]
    reader = PdfReader(io.BytesIO(content))
    return re.sub(r"\s+", "", "".join(page.extract_text() for page in reader.pages))
