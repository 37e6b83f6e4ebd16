"""Issued invoices are frozen in the database itself: ORM saves, queryset updates and raw SQL alike.

After issue only the settlement fields may change (status to paid/void, paid, voucher, credited
amounts and dates, reminders); money, customer, period, number and lines never do.
"""

from django.db import migrations

FREEZE_SQL = r"""
CREATE OR REPLACE FUNCTION billing_invoice_freeze() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        IF OLD.status <> 'draft' THEN
            RAISE EXCEPTION 'invoice % is % and cannot be deleted', OLD.number, OLD.status
                USING ERRCODE = 'integrity_constraint_violation', CONSTRAINT = 'invoice_frozen';
        END IF;
        RETURN OLD;
    END IF;
    IF OLD.status <> 'draft' AND (
        NEW.customer_id IS DISTINCT FROM OLD.customer_id OR
        NEW.currency IS DISTINCT FROM OLD.currency OR
        NEW.period IS DISTINCT FROM OLD.period OR
        NEW.number IS DISTINCT FROM OLD.number OR
        NEW.prices_include_tax IS DISTINCT FROM OLD.prices_include_tax OR
        NEW.net_amount IS DISTINCT FROM OLD.net_amount OR
        NEW.tax_amount IS DISTINCT FROM OLD.tax_amount OR
        NEW.total_amount IS DISTINCT FROM OLD.total_amount OR
        NEW.usage_cutoff_at IS DISTINCT FROM OLD.usage_cutoff_at OR
        NEW.issued_on IS DISTINCT FROM OLD.issued_on OR
        NEW.issued_at IS DISTINCT FROM OLD.issued_at OR
        NEW.due_on IS DISTINCT FROM OLD.due_on OR
        NEW.fapiao IS DISTINCT FROM OLD.fapiao OR
        NEW.status = 'draft' OR
        (OLD.status = 'void' AND NEW.status IS DISTINCT FROM OLD.status)
    ) THEN
        RAISE EXCEPTION 'invoice % is % and frozen: its money, lines and identity cannot change', OLD.number, OLD.status
            USING ERRCODE = 'integrity_constraint_violation', CONSTRAINT = 'invoice_frozen';
    END IF;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER billing_invoice_freeze
    BEFORE UPDATE OR DELETE ON billing_invoice
    FOR EACH ROW EXECUTE FUNCTION billing_invoice_freeze();

CREATE OR REPLACE FUNCTION billing_invoiceline_freeze() RETURNS trigger AS $$
DECLARE
    parent_status text;
    parent_number text;
BEGIN
    SELECT status, number INTO parent_status, parent_number FROM billing_invoice
        WHERE id = COALESCE(NEW.invoice_id, OLD.invoice_id);
    IF parent_status IS NOT NULL AND parent_status <> 'draft' THEN
        RAISE EXCEPTION 'invoice % is % and frozen: its lines cannot change', parent_number, parent_status
            USING ERRCODE = 'integrity_constraint_violation', CONSTRAINT = 'invoice_frozen';
    END IF;
    IF TG_OP = 'UPDATE' AND NEW.invoice_id IS DISTINCT FROM OLD.invoice_id THEN
        SELECT status INTO parent_status FROM billing_invoice WHERE id = OLD.invoice_id;
        IF parent_status <> 'draft' THEN
            RAISE EXCEPTION 'lines of an issued invoice cannot move'
                USING ERRCODE = 'integrity_constraint_violation', CONSTRAINT = 'invoice_frozen';
        END IF;
    END IF;
    RETURN COALESCE(NEW, OLD);
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER billing_invoiceline_freeze
    BEFORE INSERT OR UPDATE OR DELETE ON billing_invoiceline
    FOR EACH ROW EXECUTE FUNCTION billing_invoiceline_freeze();
"""

UNFREEZE_SQL = """
DROP TRIGGER IF EXISTS billing_invoiceline_freeze ON billing_invoiceline;
DROP FUNCTION IF EXISTS billing_invoiceline_freeze();
DROP TRIGGER IF EXISTS billing_invoice_freeze ON billing_invoice;
DROP FUNCTION IF EXISTS billing_invoice_freeze();
"""


class Migration(migrations.Migration):
    dependencies = [("billing", "0001_initial")]
    operations = [migrations.RunSQL(FREEZE_SQL, UNFREEZE_SQL)]
