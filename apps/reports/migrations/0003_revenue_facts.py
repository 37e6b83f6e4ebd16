"""Revenue facts (docs/reports.md#revenue-facts): the facts table, the table of changed keys, the
triggers that mark a (period, customer) changed in the changing transaction, a mark of every key
(the first refresh computes every fact) and the refresh every five minutes on Celery beat.

Triggers are per statement (transition tables), so a bulk insert of lines or settlement lines
writes one mark per key, not per row. Lines and settlement lines of drafts are not revenue and
are not marked; an invoice is marked when it is or was issued or paid.
"""

from django.db import migrations, models

from apps.core.beat import beat_schedule

SCHEDULE = [("Revenue facts refresh 收入事实表刷新", "reports.refresh_facts", "*/5", "*", "*")]
BILLED = "('issued', 'paid')"
MARK = "INSERT INTO reports_factchange (period, customer_id)"


def statement_triggers(table: str, function: str, events=("INSERT", "UPDATE", "DELETE")) -> str:
    refs = {
        "INSERT": "REFERENCING NEW TABLE AS new_rows",
        "UPDATE": "REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows",
        "DELETE": "REFERENCING OLD TABLE AS old_rows",
    }
    return "\n".join(
        f"CREATE TRIGGER {function}_{event[:3].lower()} AFTER {event} ON {table} {refs[event]}"
        f" FOR EACH STATEMENT EXECUTE FUNCTION {function}();"
        for event in events
    )


def function(name: str, body_new: str, body_old: str) -> str:
    """A statement trigger function: ``body_new`` reads ``new_rows`` (insert, update),
    ``body_old`` reads ``old_rows`` (update, delete)."""
    return f"""
CREATE OR REPLACE FUNCTION {name}() RETURNS trigger AS $$
BEGIN
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        {body_new};
    END IF;
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        {body_old};
    END IF;
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;
"""


TABLES = {
    # a billed invoice (issued, paid, or one that was: voided)
    ("billing_invoice", "reports_facts_invoice"): (
        f"{MARK} SELECT DISTINCT period, customer_id FROM new_rows WHERE status IN {BILLED}",
        f"{MARK} SELECT DISTINCT period, customer_id FROM old_rows WHERE status IN {BILLED}",
    ),
    # the lines of a billed invoice (frozen once issued: for completeness)
    ("billing_invoiceline", "reports_facts_invoiceline"): (
        f"{MARK} SELECT DISTINCT i.period, i.customer_id FROM new_rows n"
        f" JOIN billing_invoice i ON i.id = n.invoice_id WHERE i.status IN {BILLED}",
        f"{MARK} SELECT DISTINCT i.period, i.customer_id FROM old_rows o"
        f" JOIN billing_invoice i ON i.id = o.invoice_id WHERE i.status IN {BILLED}",
    ),
    # settlement lines: the shares of a billed invoice line
    ("billing_settlementline", "reports_facts_settlementline"): (
        f"{MARK} SELECT DISTINCT i.period, i.customer_id FROM new_rows n"
        " JOIN billing_invoiceline il ON il.id = n.invoice_line_id"
        f" JOIN billing_invoice i ON i.id = il.invoice_id WHERE i.status IN {BILLED}",
        f"{MARK} SELECT DISTINCT i.period, i.customer_id FROM old_rows o"
        " JOIN billing_invoiceline il ON il.id = o.invoice_line_id"
        f" JOIN billing_invoice i ON i.id = il.invoice_id WHERE i.status IN {BILLED}",
    ),
    # allocations (the hub of a share): every period of the contract's customer
    ("contracts_allocation", "reports_facts_allocation"): (
        f"{MARK} SELECT DISTINCT NULL::varchar, k.customer_id FROM new_rows n"
        " JOIN contracts_contractline l ON l.id = n.line_id JOIN contracts_contract k ON k.id = l.contract_id",
        f"{MARK} SELECT DISTINCT NULL::varchar, k.customer_id FROM old_rows o"
        " JOIN contracts_contractline l ON l.id = o.line_id JOIN contracts_contract k ON k.id = l.contract_id",
    ),
}
UPDATES = {
    # the GPU model of a line with no settlement line
    ("contracts_contractline", "reports_facts_contractline"): (
        f"{MARK} SELECT DISTINCT NULL::varchar, k.customer_id FROM new_rows n JOIN old_rows o ON o.id = n.id"
        " JOIN contracts_contract k ON k.id = n.contract_id"
        " WHERE n.gpu_model_id IS DISTINCT FROM o.gpu_model_id OR n.contract_id IS DISTINCT FROM o.contract_id",
        "NULL",
    ),
    # a statement's provider: its lines' keys
    ("billing_settlementstatement", "reports_facts_statement"): (
        f"{MARK} SELECT DISTINCT i.period, i.customer_id FROM new_rows n JOIN old_rows o ON o.id = n.id"
        " JOIN billing_settlementline sl ON sl.statement_id = n.id"
        " JOIN billing_invoiceline il ON il.id = sl.invoice_line_id JOIN billing_invoice i ON i.id = il.invoice_id"
        f" WHERE n.provider_id IS DISTINCT FROM o.provider_id AND i.status IN {BILLED}",
        "NULL",
    ),
    # a server moved to another site, provider or model: every key
    ("inventory_server", "reports_facts_server"): (
        f"{MARK} SELECT NULL, NULL WHERE EXISTS (SELECT 1 FROM new_rows n JOIN old_rows o ON o.id = n.id"
        " WHERE (n.site_id, n.provider_id, n.gpu_model_id) IS DISTINCT FROM (o.site_id, o.provider_id, o.gpu_model_id))",
        "NULL",
    ),
    # a site in another hub: every key
    ("providers_site", "reports_facts_site"): (
        f"{MARK} SELECT NULL, NULL WHERE EXISTS (SELECT 1 FROM new_rows n JOIN old_rows o ON o.id = n.id"
        " WHERE n.hub IS DISTINCT FROM o.hub)",
        "NULL",
    ),
}
SQL = (
    "".join(
        function(name, new, old) + statement_triggers(table, name)
        for (table, name), (new, old) in TABLES.items()
    )
    + "".join(
        function(name, new, "PERFORM 1") + statement_triggers(table, name, ("UPDATE",))
        for (table, name), (new, _) in UPDATES.items()
    )
    + "\nINSERT INTO reports_factchange (period, customer_id) VALUES (NULL, NULL);"
)
REVERSE = "".join(
    "".join(f"DROP TRIGGER IF EXISTS {name}_{event} ON {table};" for event in ("ins", "upd", "del"))
    + f"DROP FUNCTION IF EXISTS {name}();"
    for (table, name) in [*TABLES, *UPDATES]
)


class Migration(migrations.Migration):
    dependencies = [
        ("reports", "0002_report_readers"),
        ("billing", "0005_vouchers_settlements"),
        ("contracts", "0004_contract_contractline_allocation_and_more"),
        ("inventory", "0002_initial"),
        ("providers", "0001_initial"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [
        migrations.CreateModel(
            name="FactChange",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("period", models.CharField(max_length=7, null=True)),
                ("customer_id", models.BigIntegerField(null=True)),
            ],
            options={
                "default_permissions": (),
            },
        ),
        migrations.CreateModel(
            name="RevenueFact",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("period", models.CharField(max_length=7)),
                ("customer_id", models.BigIntegerField()),
                ("currency", models.CharField(max_length=3)),
                ("hardware", models.BooleanField(null=True)),
                ("settled", models.BooleanField(null=True)),
                ("gpu_model_id", models.BigIntegerField(null=True)),
                ("provider_id", models.BigIntegerField(null=True)),
                ("hub", models.CharField(max_length=20, null=True)),
                ("revenue", models.DecimalField(decimal_places=2, max_digits=18)),
                ("cost", models.DecimalField(decimal_places=2, max_digits=18)),
            ],
            options={
                "default_permissions": (),
                "indexes": [
                    models.Index(fields=["period", "customer_id"], name="reports_fact_period_customer")
                ],
            },
        ),
        migrations.RunSQL(SQL, REVERSE),
        migrations.RunPython(*beat_schedule(SCHEDULE)),
    ]
