"""Audit events are append-only in the database itself: UPDATE and DELETE are refused, whoever
runs them (ORM, admin, raw SQL). TRUNCATE, which needs the table owner, stays possible for the
test database's flush; see docs/security.md#audit-trail."""

from django.db import migrations

APPEND_ONLY_SQL = r"""
CREATE OR REPLACE FUNCTION audit_auditevent_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'audit events are append-only: % refused on audit event %', TG_OP, OLD.id
        USING ERRCODE = 'integrity_constraint_violation', CONSTRAINT = 'audit_append_only';
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER audit_auditevent_append_only
    BEFORE UPDATE OR DELETE ON audit_auditevent
    FOR EACH ROW EXECUTE FUNCTION audit_auditevent_append_only();
"""

DROP_SQL = """
DROP TRIGGER IF EXISTS audit_auditevent_append_only ON audit_auditevent;
DROP FUNCTION IF EXISTS audit_auditevent_append_only();
"""


class Migration(migrations.Migration):
    dependencies = [("audit", "0001_audit_trail")]
    operations = [migrations.RunSQL(APPEND_ONLY_SQL, DROP_SQL)]
