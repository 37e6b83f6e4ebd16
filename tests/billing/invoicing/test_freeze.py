"""Issued invoices are frozen by the database: no write path changes their money or lines
(docs/invoices.md#the-freeze-trigger)."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.db import IntegrityError, connection, transaction
from django.urls import reverse

from apps.accounts import roles
from apps.billing.invoicing.services.issuing import invoice_issue, invoice_void
from apps.billing.invoicing.services.payments import payment_record
from apps.billing.models import Invoice, InvoiceLine, InvoiceStatus
from tests.factories.invoices import ISSUED_AT, metered_invoice

pytestmark = pytest.mark.django_db

FROZEN = "frozen"


@pytest.fixture
def am(make_staff):
    return make_staff(roles.ACCOUNT_MANAGER, username="am1")


@pytest.fixture
def draft(am) -> Invoice:
    return metered_invoice(am)


@pytest.fixture
def issued(draft) -> Invoice:
    return invoice_issue(invoice=draft, now=ISSUED_AT)


def _unchanged(invoice: Invoice) -> None:
    stored = Invoice.objects.get(pk=invoice.pk)
    assert (stored.net_amount, stored.tax_amount, stored.total_amount) == (
        Decimal("231.28"),
        Decimal("13.88"),
        Decimal("245.16"),
    )
    assert (stored.number, stored.status, stored.period) == ("INV-2026-000001", "issued", "2026-11")
    line = stored.lines.get()
    assert (line.amount, line.quantity, line.description.startswith("算力服务费")) == (
        Decimal("245.16"),
        Decimal("12.000000"),
        True,
    )


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("total_amount", Decimal("1.00")),
        ("net_amount", Decimal("0.00")),
        ("tax_amount", Decimal("0.00")),
        ("number", "INV-2026-999999"),
        ("period", "2026-10"),
        ("issued_on", None),
        ("fapiao", {}),
        ("status", InvoiceStatus.DRAFT),
    ],
)
def test_orm_save_of_an_issued_invoice_is_refused(issued, field, value):
    setattr(issued, field, value)
    with pytest.raises(IntegrityError, match=FROZEN), transaction.atomic():
        issued.save()
    _unchanged(issued)


def test_queryset_update_and_raw_sql_are_refused_too(issued):
    with pytest.raises(IntegrityError, match=FROZEN), transaction.atomic():
        Invoice.objects.filter(pk=issued.pk).update(total_amount=Decimal("0.01"))
    with pytest.raises(IntegrityError, match=FROZEN), transaction.atomic():
        Invoice.objects.filter(status=InvoiceStatus.ISSUED).update(net_amount=Decimal("0.00"))
    with pytest.raises(IntegrityError, match=FROZEN), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("UPDATE billing_invoice SET tax_amount = 0 WHERE id = %s", [issued.pk])
    _unchanged(issued)


def test_the_lines_of_an_issued_invoice_cannot_change_by_any_path(issued):
    line = issued.lines.get()
    line.amount = Decimal("1.00")
    with pytest.raises(IntegrityError, match=FROZEN), transaction.atomic():
        line.save()
    with pytest.raises(IntegrityError, match=FROZEN), transaction.atomic():
        InvoiceLine.objects.filter(invoice=issued).update(quantity=Decimal("1"))
    with pytest.raises(IntegrityError, match=FROZEN), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("DELETE FROM billing_invoiceline WHERE invoice_id = %s", [issued.pk])
    extra = InvoiceLine.objects.get(pk=line.pk)
    extra.pk = None
    with pytest.raises(IntegrityError, match=FROZEN), transaction.atomic():
        extra.save()
    _unchanged(issued)


def test_settlement_fields_still_move_payment_then_paid(issued):
    payment_record(invoice=issued, amount=Decimal("100.00"), method="bank_transfer", now=ISSUED_AT)
    Invoice.objects.filter(pk=issued.pk).update(reminder_sent_on=ISSUED_AT.date())
    payment_record(invoice=issued, amount=Decimal("145.16"), method="bank_transfer", now=ISSUED_AT)
    stored = Invoice.objects.get(pk=issued.pk)
    assert (stored.status, stored.paid_amount, stored.amount_due) == ("paid", Decimal("245.16"), Decimal("0"))
    assert stored.paid_at == ISSUED_AT and stored.reminder_sent_on == ISSUED_AT.date()
    assert stored.total_amount == Decimal("245.16")


def test_a_void_invoice_stays_void(issued):
    invoice_void(invoice=issued, reason="wrong buyer", now=ISSUED_AT)
    with pytest.raises(IntegrityError, match=FROZEN), transaction.atomic():
        Invoice.objects.filter(pk=issued.pk).update(status=InvoiceStatus.ISSUED)
    assert Invoice.objects.get(pk=issued.pk).status == "void"


def test_an_issued_invoice_cannot_be_deleted_a_draft_can(issued, am):
    with pytest.raises(IntegrityError, match=r"frozen|cannot be deleted"), transaction.atomic():
        issued.delete()
    with pytest.raises(IntegrityError, match="cannot be deleted"), transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("DELETE FROM billing_invoice WHERE id = %s", [issued.pk])
    assert Invoice.objects.filter(pk=issued.pk).exists()
    draft = metered_invoice(am)
    Invoice.objects.filter(pk=draft.pk).update(total_amount=Decimal("1.00"))  # runs refresh drafts
    draft.delete()
    assert not Invoice.objects.filter(pk=draft.pk).exists()


def test_the_admin_shows_an_issued_invoice_read_only(client, make_staff, issued):
    client.force_login(make_staff(roles.FINANCE))
    url = reverse("admin:billing_invoice_change", args=[issued.pk])
    page = client.get(url)
    assert page.status_code == 200
    html = page.content.decode()
    assert "INV-2026-000001" in html and "245.16" in html
    assert 'name="total_amount"' not in html and 'name="_save"' not in html
    assert 'name="lines-0-amount"' not in html  # the lines inline is read-only too
    assert page.context["has_change_permission"] is False
    response = client.post(url, {"total_amount": "1.00", "_save": "Save"})
    assert response.status_code == 403
    _unchanged(issued)


def test_the_admin_shows_drafts_read_only_as_well(client, make_staff, draft):
    client.force_login(make_staff(roles.FINANCE))
    html = client.get(reverse("admin:billing_invoice_change", args=[draft.pk])).content.decode()
    assert 'name="total_amount"' not in html and 'name="_save"' not in html
    assert "Issue 开具" in html  # the only way forward is the issue button
