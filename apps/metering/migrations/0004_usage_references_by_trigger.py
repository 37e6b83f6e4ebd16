"""Usage's references to its provider, card and server: statement-level checks instead of
per-row foreign keys.

A foreign-key check runs one query and locks one referenced row per inserted row; on the usage
table that was over half the cost of ingestion (bench/ingest.py). Here each INSERT or UPDATE
statement is checked once, with one join over its new rows:

* every row's card (or server) exists and belongs to the row's provider — stronger than the
  foreign keys, which never compared owners;
* the statement first takes ``FOR KEY SHARE`` on the providers' rows, so it waits for, and then
  sees, any concurrent change of their hardware;
* deleting a provider, server or card, moving a card to another server or a server to another
  provider first locks the provider's row ``FOR UPDATE`` (waiting for the batches in flight) and
  is refused while usage names it.

Errors are SQLSTATE 23503 (foreign_key_violation), as the foreign keys raised. Writers of usage
run at READ COMMITTED (the project's level): each check sees what committed before it.
"""

import django.db.models.deletion
from django.db import migrations, models


SQL = r"""
CREATE FUNCTION metering_usage_check_references() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    bad record;
BEGIN
    PERFORM 1 FROM providers_provider
     WHERE id IN (SELECT DISTINCT provider_id FROM new_rows)
     ORDER BY id
       FOR KEY SHARE;
    SELECT n.provider_id, n.event_id, n.card_id, n.server_id INTO bad
      FROM new_rows n
      LEFT JOIN inventory_card c ON c.id = n.card_id
      LEFT JOIN inventory_server s ON s.id = coalesce(c.server_id, n.server_id)
     WHERE s.provider_id IS DISTINCT FROM n.provider_id;  -- no LIMIT: planned for the whole
    -- batch (hash joins, ~3x faster than the nested loops a LIMIT picks); INTO keeps the first row.
    IF FOUND THEN
        RAISE EXCEPTION 'usage % of provider %: % % is not hardware of that provider',
              bad.event_id, bad.provider_id,
              CASE WHEN bad.card_id IS NOT NULL THEN 'card' ELSE 'server' END,
              coalesce(bad.card_id, bad.server_id)
              USING ERRCODE = 'foreign_key_violation', CONSTRAINT = 'usage_hardware_of_provider',
                    TABLE = 'metering_usagerecord';
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER usage_references_insert AFTER INSERT ON metering_usagerecord
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION metering_usage_check_references();
CREATE TRIGGER usage_references_update AFTER UPDATE ON metering_usagerecord
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION metering_usage_check_references();

CREATE FUNCTION metering_guard_used_hardware() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    owner bigint;
    used boolean;
    what text;
BEGIN
    IF TG_TABLE_NAME = 'providers_provider' THEN
        owner := OLD.id;
        what := 'provider';
    ELSIF TG_TABLE_NAME = 'inventory_server' THEN
        owner := OLD.provider_id;
        what := 'server';
    ELSE
        SELECT provider_id INTO owner FROM inventory_server WHERE id = OLD.server_id;
        what := 'card';
    END IF;
    -- Wait for the usage batches of this provider in flight; then what they wrote is visible.
    PERFORM 1 FROM providers_provider WHERE id = owner FOR UPDATE;
    IF what = 'provider' THEN
        used := EXISTS (SELECT 1 FROM metering_usagerecord WHERE provider_id = OLD.id);
    ELSIF what = 'server' THEN
        used := EXISTS (SELECT 1 FROM metering_usagerecord WHERE server_id = OLD.id)
             OR EXISTS (SELECT 1 FROM metering_usagerecord u JOIN inventory_card c ON c.id = u.card_id
                         WHERE c.server_id = OLD.id AND u.card_id IS NOT NULL);
    ELSE
        used := EXISTS (SELECT 1 FROM metering_usagerecord WHERE card_id = OLD.id);
    END IF;
    IF used THEN
        RAISE EXCEPTION '% % has usage records: it cannot be %', what, OLD.id,
              CASE TG_OP WHEN 'DELETE' THEN 'deleted' ELSE 'moved to another owner' END
              USING ERRCODE = 'foreign_key_violation', CONSTRAINT = 'usage_hardware_of_provider',
                    TABLE = TG_TABLE_NAME;
    END IF;
    IF TG_OP = 'DELETE' THEN
        RETURN OLD;
    END IF;
    RETURN NEW;
END
$$;

CREATE TRIGGER usage_guard_delete BEFORE DELETE ON providers_provider
    FOR EACH ROW EXECUTE FUNCTION metering_guard_used_hardware();
CREATE TRIGGER usage_guard_delete BEFORE DELETE ON inventory_server
    FOR EACH ROW EXECUTE FUNCTION metering_guard_used_hardware();
CREATE TRIGGER usage_guard_move BEFORE UPDATE OF provider_id ON inventory_server
    FOR EACH ROW WHEN (OLD.provider_id IS DISTINCT FROM NEW.provider_id)
    EXECUTE FUNCTION metering_guard_used_hardware();
CREATE TRIGGER usage_guard_delete BEFORE DELETE ON inventory_card
    FOR EACH ROW EXECUTE FUNCTION metering_guard_used_hardware();
CREATE TRIGGER usage_guard_move BEFORE UPDATE OF server_id ON inventory_card
    FOR EACH ROW WHEN (OLD.server_id IS DISTINCT FROM NEW.server_id)
    EXECUTE FUNCTION metering_guard_used_hardware();
"""

REVERSE_SQL = """
DROP TRIGGER usage_guard_move ON inventory_card;
DROP TRIGGER usage_guard_delete ON inventory_card;
DROP TRIGGER usage_guard_move ON inventory_server;
DROP TRIGGER usage_guard_delete ON inventory_server;
DROP TRIGGER usage_guard_delete ON providers_provider;
DROP FUNCTION metering_guard_used_hardware();
DROP TRIGGER usage_references_update ON metering_usagerecord;
DROP TRIGGER usage_references_insert ON metering_usagerecord;
DROP FUNCTION metering_usage_check_references();
"""


class Migration(migrations.Migration):

    dependencies = [
        ('inventory', '0004_plural_names'),
        ('metering', '0003_lean_usage_indexes'),
        ('providers', '0001_initial'),
    ]

    operations = [
        migrations.AlterField(
            model_name='usagerecord',
            name='card',
            field=models.ForeignKey(blank=True, db_constraint=False, db_index=False, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='usage_records', to='inventory.card'),
        ),
        migrations.AlterField(
            model_name='usagerecord',
            name='provider',
            field=models.ForeignKey(db_constraint=False, db_index=False, on_delete=django.db.models.deletion.PROTECT, related_name='usage_records', to='providers.provider'),
        ),
        migrations.AlterField(
            model_name='usagerecord',
            name='server',
            field=models.ForeignKey(blank=True, db_constraint=False, db_index=False, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='usage_records', to='inventory.server'),
        ),
            migrations.RunSQL(SQL, REVERSE_SQL),
    ]
