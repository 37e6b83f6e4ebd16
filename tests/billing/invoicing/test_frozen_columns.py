"""One list per fact: the freeze triggers and every hand-written list of invoice-line fields
cover the models' columns, so a new money field cannot be left unfrozen or unshown.

The triggers' column lists are read back from PostgreSQL (``pg_proc.prosrc``), not from the
migration files: what is checked is what the database runs.
"""

from __future__ import annotations

import re

import pytest
from django.db import IntegrityError, connection, transaction

from apps.accounts import roles
from apps.api.v1.serializers.billing import InvoiceLineSerializer, PreviewLineSerializer
from apps.billing.invoicing.admin import INVOICE_LINE_HIDDEN_FIELDS, InvoiceLineInline
from apps.billing.invoicing.services import invoicing
from apps.billing.invoicing.services.issuing import invoice_issue
from apps.billing.invoicing.services.preview import PreviewLine
from apps.billing.models import Invoice, InvoiceLine, SettlementStatement
from tests.factories.invoices import ISSUED_AT, metered_invoice

pytestmark = pytest.mark.django_db

# Columns of an issued invoice that may still change (the trigger lets them through): settlement
# (status, vouchers, credit notes, payments, voiding, reminders), the link to the run that drafted
# it (SET NULL when a run is deleted) and row bookkeeping. ``status`` has its own rule in the
# trigger: never back to draft, and a void invoice stays void. Everything else is frozen.
INVOICE_MUTABLE_AFTER_ISSUE = {
    "id": "primary key, pinned by the lines', payments' and credit notes' foreign keys",
    "status": "issued → paid | void (checked separately by the trigger)",
    "voucher_amount": "supplier-side vouchers redeem at issue and reverse on void",
    "credited_amount": "credit notes",
    "paid_amount": "payments",
    "paid_at": "payments",
    "voided_at": "voiding",
    "void_reason": "voiding",
    "reminder_sent_on": "overdue reminders",
    "billing_run_id": "provenance; SET NULL when the run is deleted",
    "created_at": "row bookkeeping, not on the document",
    "updated_at": "row bookkeeping (auto_now on every save)",
}

# Same for a confirmed or paid provider settlement statement.
SETTLEMENT_MUTABLE_AFTER_CONFIRM = {
    "id": "primary key, pinned by the lines' foreign key",
    "status": "confirmed → paid (checked separately by the trigger)",
    "paid_at": "marking paid",
    "paid_by_id": "marking paid",
    "payment_reference": "marking paid",
    "confirmed_by_id": "set once with confirmed_at by the service; not frozen by the trigger",
    "created_at": "row bookkeeping",
    "updated_at": "row bookkeeping (auto_now on every save)",
}


def _frozen_columns(function: str) -> set[str]:
    """The columns a row trigger compares with ``NEW.x IS DISTINCT FROM OLD.x``."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT prosrc FROM pg_proc WHERE proname = %s", [function])
        (source,) = cursor.fetchone()
    return set(re.findall(r"NEW\.(\w+)\s+IS DISTINCT FROM\s+OLD\.\1\b", source))


def _columns(model) -> set[str]:
    return {f.column for f in model._meta.concrete_fields}


@pytest.mark.parametrize(
    ("model", "function", "allowed"),
    [
        (Invoice, "billing_invoice_freeze", INVOICE_MUTABLE_AFTER_ISSUE),
        (SettlementStatement, "billing_settlement_freeze", SETTLEMENT_MUTABLE_AFTER_CONFIRM),
    ],
)
def test_the_freeze_trigger_covers_every_column_not_allowed_to_change(model, function, allowed):
    frozen = _frozen_columns(function)
    columns = _columns(model)
    unfrozen = sorted(columns - frozen - set(allowed))
    assert not unfrozen, (
        f"{model.__name__} column(s) {', '.join(unfrozen)} not frozen by the {function}() trigger: add "
        f"them to the trigger (a new migration) or, if they may change after issue, to the allow-list"
    )
    both = sorted(frozen & set(allowed) - {"status"})
    assert not both, f"column(s) {', '.join(both)} both frozen and allowed to change"
    assert frozen <= columns, f"the trigger names columns the model lacks: {sorted(frozen - columns)}"


def test_every_money_field_of_an_invoice_is_frozen():
    money = {f.column for f in Invoice._meta.concrete_fields if f.get_internal_type() == "DecimalField"}
    settlement = {"voucher_amount", "credited_amount", "paid_amount"}
    unfrozen = sorted(money - _frozen_columns("billing_invoice_freeze") - settlement)
    assert not unfrozen, f"money column(s) {', '.join(unfrozen)} of an issued invoice can still change"


def test_every_column_of_an_issued_invoices_lines_is_frozen(make_staff):
    """The line trigger refuses any update of a non-draft invoice's lines, whatever the column:
    each column is written (to its own value) and must be refused."""
    issued = invoice_issue(invoice=metered_invoice(make_staff(roles.ACCOUNT_MANAGER)), now=ISSUED_AT)
    line = issued.lines.get()
    unfrozen = []
    for column in sorted(_columns(InvoiceLine) - {"id"}):
        quoted = connection.ops.quote_name(column)
        try:
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute(
                    f"UPDATE {InvoiceLine._meta.db_table} SET {quoted} = {quoted} WHERE id = %s", [line.pk]
                )
        except IntegrityError as exc:
            assert "frozen" in str(exc)
        else:
            unfrozen.append(column)
    assert not unfrozen, f"invoice line column(s) {', '.join(unfrozen)} can change on an issued invoice"
    line.refresh_from_db()
    assert line.amount == issued.total_amount


def _line_fields(exclude=()) -> set[str]:
    return {f.name for f in InvoiceLine._meta.concrete_fields} - {"id", "invoice", *exclude}


def test_the_bulk_copy_writes_every_column_of_invoices_and_lines():
    null_on_draft = invoicing._INVOICE_NULL_ON_DRAFT
    missing = sorted(_columns(Invoice) - set(invoicing.INVOICE_COLUMNS) - {"id"} - null_on_draft)
    assert not missing, f"COPY billing_invoice leaves out {', '.join(missing)}"
    missing = sorted(_columns(InvoiceLine) - set(invoicing.LINE_COLUMNS) - {"id"})
    assert not missing, f"COPY billing_invoiceline leaves out {', '.join(missing)}"
    assert null_on_draft <= {f.attname for f in Invoice._meta.concrete_fields if f.null}


def test_a_planned_line_fills_every_stored_field():
    assert set(invoicing.LINE_VALUE_FIELDS) == {
        f.attname for f in InvoiceLine._meta.concrete_fields if not f.primary_key
    } - {"invoice_id", "position"}


def test_api_preview_and_admin_show_every_invoice_line_field():
    api = set(InvoiceLineSerializer.Meta.fields)
    missing = sorted(_line_fields() - api)
    assert not missing, f"the API's invoice line leaves out {', '.join(missing)}"
    preview = set(PreviewLineSerializer().fields)
    assert preview == api, f"API preview lines differ from invoice lines: {sorted(preview ^ api)}"
    stored = {f.attname for f in InvoiceLine._meta.concrete_fields} - {"id", "invoice_id", "contract_id"}
    missing = sorted(stored - set(PreviewLine.__dataclass_fields__))
    assert not missing, f"the preview's lines leave out {', '.join(missing)}"
    missing = sorted(_line_fields(INVOICE_LINE_HIDDEN_FIELDS) - set(InvoiceLineInline.fields))
    assert not missing, f"the admin's invoice lines leave out {', '.join(missing)}"
    money = {f.name for f in InvoiceLine._meta.concrete_fields if f.name.endswith("_amount")}
    assert money <= set(InvoiceLineInline.fields), "every amount of a line shows in the admin"
