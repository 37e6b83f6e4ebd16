"""Check invoice lines once per statement instead of once per row, so bulk COPY stays fast.

AFTER … FOR EACH STATEMENT triggers see the changed rows in transition tables; one join per
statement rejects any insert, update or delete that touches a line of a non-draft invoice.
"""

from django.db import migrations

SQL = r"""
DROP TRIGGER IF EXISTS billing_invoiceline_freeze ON billing_invoiceline;
DROP FUNCTION IF EXISTS billing_invoiceline_freeze();

CREATE OR REPLACE FUNCTION billing_invoiceline_freeze_stmt() RETURNS trigger AS $$
DECLARE
    frozen text;
BEGIN
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        SELECT i.number || ' (' || i.status || ')' INTO frozen
          FROM new_rows n JOIN billing_invoice i ON i.id = n.invoice_id
         WHERE i.status <> 'draft' LIMIT 1;
    END IF;
    IF frozen IS NULL AND TG_OP IN ('UPDATE', 'DELETE') THEN
        SELECT i.number || ' (' || i.status || ')' INTO frozen
          FROM old_rows o JOIN billing_invoice i ON i.id = o.invoice_id
         WHERE i.status <> 'draft' LIMIT 1;
    END IF;
    IF frozen IS NOT NULL THEN
        RAISE EXCEPTION 'invoice % is frozen: its lines cannot change', frozen
            USING ERRCODE = 'integrity_constraint_violation', CONSTRAINT = 'invoice_frozen';
    END IF;
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER billing_invoiceline_freeze_ins AFTER INSERT ON billing_invoiceline
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION billing_invoiceline_freeze_stmt();
CREATE TRIGGER billing_invoiceline_freeze_upd AFTER UPDATE ON billing_invoiceline
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT
    EXECUTE FUNCTION billing_invoiceline_freeze_stmt();
CREATE TRIGGER billing_invoiceline_freeze_del AFTER DELETE ON billing_invoiceline
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION billing_invoiceline_freeze_stmt();
"""

REVERSE = r"""
DROP TRIGGER IF EXISTS billing_invoiceline_freeze_ins ON billing_invoiceline;
DROP TRIGGER IF EXISTS billing_invoiceline_freeze_upd ON billing_invoiceline;
DROP TRIGGER IF EXISTS billing_invoiceline_freeze_del ON billing_invoiceline;
DROP FUNCTION IF EXISTS billing_invoiceline_freeze_stmt();
"""


class Migration(migrations.Migration):
    dependencies = [("billing", "0003_beat_schedule")]
    operations = [migrations.RunSQL(SQL, REVERSE)]
