"""The database refuses any change to the lines of an issued invoice, whatever the write path."""

from __future__ import annotations

import datetime
from decimal import Decimal

import pytest
from django.db import IntegrityError, connection, transaction

from apps.accounts import roles
from apps.billing.invoicing.services.issuing import invoice_issue
from apps.billing.invoicing.services.runs import billing_run_create, billing_run_execute
from apps.billing.models import Invoice, InvoiceLine
from apps.contracts import services
from tests.factories.catalogue import CustomerFactory, ServerFactory
from tests.factories.contracts import NOW, draft, server_line

pytestmark = pytest.mark.django_db
AS_OF = datetime.datetime(2026, 12, 1, 3, tzinfo=datetime.UTC)


@pytest.fixture
def issued(make_staff):
    am = make_staff(roles.ACCOUNT_MANAGER)
    contract = draft(CustomerFactory(), am, [server_line(ServerFactory())])
    services.contract_activate(contract=contract, actor=am, now=NOW)
    billing_run_execute(run=billing_run_create(period="2026-11", as_of=AS_OF, now=AS_OF))
    return invoice_issue(invoice=Invoice.objects.get(), now=AS_OF)


def test_lines_of_an_issued_invoice_cannot_be_inserted_updated_or_deleted(issued):
    line = issued.lines.get()
    with pytest.raises(IntegrityError, match="frozen"), transaction.atomic():
        InvoiceLine.objects.filter(pk=line.pk).update(amount=Decimal("1.00"))
    with pytest.raises(IntegrityError, match="frozen"), transaction.atomic():
        line.description = "edited"
        line.save()
    with pytest.raises(IntegrityError, match="frozen"), transaction.atomic():
        InvoiceLine.objects.filter(pk=line.pk).delete()
    with pytest.raises(IntegrityError, match="frozen"), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("UPDATE billing_invoiceline SET amount = 0 WHERE id = %s", [line.pk])
    copy = InvoiceLine.objects.get(pk=line.pk)
    copy.pk = None
    with pytest.raises(IntegrityError, match="frozen"), transaction.atomic():
        copy.save()
    line.refresh_from_db()
    assert (line.amount, line.description) != (Decimal("1.00"), "edited")
    assert issued.lines.count() == 1


def test_money_of_an_issued_invoice_is_frozen_but_settlement_fields_are_not(issued):
    with pytest.raises(IntegrityError, match="frozen"), transaction.atomic():
        Invoice.objects.filter(pk=issued.pk).update(total_amount=Decimal("1.00"))
    with pytest.raises(IntegrityError, match="frozen"), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("UPDATE billing_invoice SET net_amount = 0 WHERE id = %s", [issued.pk])
    with pytest.raises(IntegrityError, match="frozen"), transaction.atomic():
        Invoice.objects.filter(pk=issued.pk).delete()
    Invoice.objects.filter(pk=issued.pk).update(paid_amount=issued.total_amount, status="paid")
    issued.refresh_from_db()
    assert (issued.status, issued.paid_amount) == ("paid", issued.total_amount)
