"""The database's last word on vouchers and provider settlements.

- Voucher ledger entries are append-only (no UPDATE, no DELETE).
- At commit, every voucher touched has ``balance`` = Σ of its ledger entries (deferred constraint
  triggers on both tables), so no write path can move a balance without a ledger entry.
- Confirmed and paid settlement statements are frozen: their money, identity and lines never
  change; status only moves forward (draft → confirmed → paid).
- The daily voucher-expiry job joins the beat schedule.
"""

from django.db import migrations

from apps.core.beat import beat_schedule

SQL = r"""
CREATE OR REPLACE FUNCTION billing_voucherledger_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'voucher ledger entries are append-only'
        USING ERRCODE = 'integrity_constraint_violation', CONSTRAINT = 'voucher_ledger_append_only';
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER billing_voucherledger_append_only
    BEFORE UPDATE OR DELETE ON billing_voucherledgerentry
    FOR EACH ROW EXECUTE FUNCTION billing_voucherledger_append_only();

CREATE OR REPLACE FUNCTION billing_voucher_balance_matches_ledger() RETURNS trigger AS $$
DECLARE
    vid bigint;
    stored numeric;
    summed numeric;
BEGIN
    IF TG_TABLE_NAME = 'billing_voucher' THEN
        vid := NEW.id;
    ELSE
        vid := NEW.voucher_id;
    END IF;
    SELECT balance INTO stored FROM billing_voucher WHERE id = vid;
    IF stored IS NULL THEN
        RETURN NULL;
    END IF;
    SELECT COALESCE(SUM(amount), 0) INTO summed FROM billing_voucherledgerentry WHERE voucher_id = vid;
    IF stored <> summed THEN
        RAISE EXCEPTION 'voucher % balance % does not match its ledger %', vid, stored, summed
            USING ERRCODE = 'integrity_constraint_violation', CONSTRAINT = 'voucher_balance_is_ledger_sum';
    END IF;
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;

CREATE CONSTRAINT TRIGGER billing_voucher_balance_matches_ledger
    AFTER INSERT OR UPDATE ON billing_voucher DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION billing_voucher_balance_matches_ledger();
CREATE CONSTRAINT TRIGGER billing_voucherledger_balance_matches_ledger
    AFTER INSERT ON billing_voucherledgerentry DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION billing_voucher_balance_matches_ledger();

CREATE OR REPLACE FUNCTION billing_settlement_freeze() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        IF OLD.status <> 'draft' THEN
            RAISE EXCEPTION 'settlement statement % is % and cannot be deleted', OLD.id, OLD.status
                USING ERRCODE = 'integrity_constraint_violation', CONSTRAINT = 'settlement_frozen';
        END IF;
        RETURN OLD;
    END IF;
    IF OLD.status <> 'draft' AND (
        NEW.provider_id IS DISTINCT FROM OLD.provider_id OR
        NEW.period IS DISTINCT FROM OLD.period OR
        NEW.currency IS DISTINCT FROM OLD.currency OR
        NEW.cost_amount IS DISTINCT FROM OLD.cost_amount OR
        NEW.revenue_net_amount IS DISTINCT FROM OLD.revenue_net_amount OR
        NEW.margin_amount IS DISTINCT FROM OLD.margin_amount OR
        NEW.line_count IS DISTINCT FROM OLD.line_count OR
        NEW.warning_count IS DISTINCT FROM OLD.warning_count OR
        NEW.built_at IS DISTINCT FROM OLD.built_at OR
        NEW.confirmed_at IS DISTINCT FROM OLD.confirmed_at OR
        NEW.status = 'draft' OR
        (OLD.status = 'paid' AND NEW.status IS DISTINCT FROM OLD.status)
    ) THEN
        RAISE EXCEPTION 'settlement statement % is % and frozen', OLD.id, OLD.status
            USING ERRCODE = 'integrity_constraint_violation', CONSTRAINT = 'settlement_frozen';
    END IF;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER billing_settlement_freeze
    BEFORE UPDATE OR DELETE ON billing_settlementstatement
    FOR EACH ROW EXECUTE FUNCTION billing_settlement_freeze();

CREATE OR REPLACE FUNCTION billing_settlementline_freeze() RETURNS trigger AS $$
DECLARE
    frozen text;
BEGIN
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        SELECT s.id || ' (' || s.status || ')' INTO frozen
          FROM new_rows n JOIN billing_settlementstatement s ON s.id = n.statement_id
         WHERE s.status <> 'draft' LIMIT 1;
    END IF;
    IF frozen IS NULL AND TG_OP IN ('UPDATE', 'DELETE') THEN
        SELECT s.id || ' (' || s.status || ')' INTO frozen
          FROM old_rows o JOIN billing_settlementstatement s ON s.id = o.statement_id
         WHERE s.status <> 'draft' LIMIT 1;
    END IF;
    IF frozen IS NOT NULL THEN
        RAISE EXCEPTION 'settlement statement % is frozen: its lines cannot change', frozen
            USING ERRCODE = 'integrity_constraint_violation', CONSTRAINT = 'settlement_frozen';
    END IF;
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER billing_settlementline_freeze_ins AFTER INSERT ON billing_settlementline
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION billing_settlementline_freeze();
CREATE TRIGGER billing_settlementline_freeze_upd AFTER UPDATE ON billing_settlementline
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT
    EXECUTE FUNCTION billing_settlementline_freeze();
CREATE TRIGGER billing_settlementline_freeze_del AFTER DELETE ON billing_settlementline
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION billing_settlementline_freeze();
"""

REVERSE_SQL = r"""
DROP TRIGGER IF EXISTS billing_settlementline_freeze_ins ON billing_settlementline;
DROP TRIGGER IF EXISTS billing_settlementline_freeze_upd ON billing_settlementline;
DROP TRIGGER IF EXISTS billing_settlementline_freeze_del ON billing_settlementline;
DROP FUNCTION IF EXISTS billing_settlementline_freeze();
DROP TRIGGER IF EXISTS billing_settlement_freeze ON billing_settlementstatement;
DROP FUNCTION IF EXISTS billing_settlement_freeze();
DROP TRIGGER IF EXISTS billing_voucherledger_balance_matches_ledger ON billing_voucherledgerentry;
DROP TRIGGER IF EXISTS billing_voucher_balance_matches_ledger ON billing_voucher;
DROP FUNCTION IF EXISTS billing_voucher_balance_matches_ledger();
DROP TRIGGER IF EXISTS billing_voucherledger_append_only ON billing_voucherledgerentry;
DROP FUNCTION IF EXISTS billing_voucherledger_append_only();
"""

SCHEDULE = [("Daily voucher expiry 算力券到期", "billing.expire_vouchers", "10", "0", "*")]


class Migration(migrations.Migration):
    dependencies = [("billing", "0005_vouchers_settlements"), ("django_celery_beat", "0019_alter_periodictasks_options")]
    operations = [migrations.RunSQL(SQL, REVERSE_SQL), migrations.RunPython(*beat_schedule(SCHEDULE))]
