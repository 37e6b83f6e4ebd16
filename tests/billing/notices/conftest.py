"""A customer with an active contract and its November invoice, drafted (issue it in the test)."""

from __future__ import annotations

import datetime

import pytest

from apps.accounts import roles
from apps.billing.invoicing.services.issuing import invoice_issue
from apps.billing.invoicing.services.runs import billing_run_create, billing_run_execute
from apps.billing.models import Invoice
from apps.contracts import services
from tests.factories.catalogue import CustomerFactory, ServerFactory
from tests.factories.contracts import NOW, draft, server_line

SH = datetime.timezone(datetime.timedelta(hours=8))
ISSUED_AT = datetime.datetime(2026, 12, 1, 3, tzinfo=SH)  # due 30 days later: 2026-12-31


@pytest.fixture
def make_draft(make_staff):
    """``make_draft(language="en", billing_email=...)``: a customer billed for November 2026."""
    am = make_staff(roles.ACCOUNT_MANAGER)

    def make(**customer_fields) -> Invoice:
        fields = {"billing_email": "ap@example.com", "payment_terms_days": 30} | customer_fields
        customer = CustomerFactory(**fields)
        services.contract_activate(
            contract=draft(customer, am, [server_line(ServerFactory())]), actor=am, now=NOW
        )
        billing_run_execute(
            run=billing_run_create(period="2026-11", customer=customer, as_of=ISSUED_AT, now=ISSUED_AT)
        )
        return Invoice.objects.get(customer=customer)

    return make


@pytest.fixture
def issued(make_draft, django_capture_on_commit_callbacks, mailoutbox) -> Invoice:
    """Issued on 2026-12-01, due 2026-12-31; its issue e-mail sent and cleared from the outbox."""
    with django_capture_on_commit_callbacks(execute=True):
        invoice = invoice_issue(invoice=make_draft(), now=ISSUED_AT)
    assert len(mailoutbox) == 1
    mailoutbox.clear()
    return invoice
