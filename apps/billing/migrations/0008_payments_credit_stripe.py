"""Payments: the customer credit ledger and Stripe webhook events (docs/invoices.md#customer-credit).

The database's last word on credit: entries are append-only (no UPDATE, no DELETE); each entry's
``balance_after`` must be the previous balance of its (customer, currency) plus its amount, and
is never negative (CHECK), so no write path can make credit out of nothing or spend it twice.
"""

import django.db.models.deletion
import simple_history.models
from django.conf import settings
from django.db import migrations, models

SQL = r"""
CREATE OR REPLACE FUNCTION billing_creditentry_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'credit entries are append-only'
        USING ERRCODE = 'integrity_constraint_violation', CONSTRAINT = 'credit_ledger_append_only';
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER billing_creditentry_append_only
    BEFORE UPDATE OR DELETE ON billing_creditentry
    FOR EACH ROW EXECUTE FUNCTION billing_creditentry_append_only();

CREATE OR REPLACE FUNCTION billing_creditentry_continues_balance() RETURNS trigger AS $$
DECLARE
    previous numeric;
BEGIN
    SELECT balance_after INTO previous FROM billing_creditentry
        WHERE customer_id = NEW.customer_id AND currency = NEW.currency
        ORDER BY id DESC LIMIT 1;
    IF NEW.balance_after IS DISTINCT FROM COALESCE(previous, 0) + NEW.amount THEN
        RAISE EXCEPTION 'credit entry balance % is not the previous balance % plus %',
            NEW.balance_after, COALESCE(previous, 0), NEW.amount
            USING ERRCODE = 'integrity_constraint_violation', CONSTRAINT = 'credit_balance_continues';
    END IF;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER billing_creditentry_continues_balance
    BEFORE INSERT ON billing_creditentry
    FOR EACH ROW EXECUTE FUNCTION billing_creditentry_continues_balance();
"""

REVERSE_SQL = r"""
DROP TRIGGER IF EXISTS billing_creditentry_continues_balance ON billing_creditentry;
DROP FUNCTION IF EXISTS billing_creditentry_continues_balance();
DROP TRIGGER IF EXISTS billing_creditentry_append_only ON billing_creditentry;
DROP FUNCTION IF EXISTS billing_creditentry_append_only();
"""


class Migration(migrations.Migration):
    dependencies = [
        ("billing", "0007_plural_names"),
        ("customers", "0001_initial"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name="HistoricalStripeEvent",
            fields=[
                (
                    "id",
                    models.BigIntegerField(auto_created=True, blank=True, db_index=True, verbose_name="ID"),
                ),
                ("event_id", models.CharField(db_index=True, max_length=255)),
                ("type", models.CharField(max_length=100)),
                (
                    "object_id",
                    models.CharField(blank=True, help_text="The event's object, e.g. cs_…", max_length=255),
                ),
                (
                    "session_id",
                    models.CharField(
                        blank=True,
                        db_index=True,
                        help_text="Set on the one event that paid this Checkout Session; unique, so a session pays once.",
                        max_length=255,
                        null=True,
                    ),
                ),
                ("processed", models.BooleanField(default=False)),
                ("outcome", models.CharField(blank=True, max_length=300)),
                ("payload", models.JSONField(default=dict)),
                ("received_at", models.DateTimeField()),
                ("history_id", models.AutoField(primary_key=True, serialize=False)),
                ("history_date", models.DateTimeField(db_index=True)),
                ("history_change_reason", models.CharField(max_length=100, null=True)),
                (
                    "history_type",
                    models.CharField(
                        choices=[("+", "Created"), ("~", "Changed"), ("-", "Deleted")], max_length=1
                    ),
                ),
                (
                    "history_user",
                    models.ForeignKey(
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="+",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
                (
                    "invoice",
                    models.ForeignKey(
                        blank=True,
                        db_constraint=False,
                        null=True,
                        on_delete=django.db.models.deletion.DO_NOTHING,
                        related_name="+",
                        to="billing.invoice",
                    ),
                ),
                (
                    "payment",
                    models.ForeignKey(
                        blank=True,
                        db_constraint=False,
                        null=True,
                        on_delete=django.db.models.deletion.DO_NOTHING,
                        related_name="+",
                        to="billing.payment",
                    ),
                ),
            ],
            options={
                "verbose_name": "historical Stripe event",
                "verbose_name_plural": "historical Stripe events",
                "ordering": ("-history_date", "-history_id"),
                "get_latest_by": ("history_date", "history_id"),
            },
            bases=(simple_history.models.HistoricalChanges, models.Model),
        ),
        migrations.CreateModel(
            name="StripeEvent",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("event_id", models.CharField(max_length=255, unique=True)),
                ("type", models.CharField(max_length=100)),
                (
                    "object_id",
                    models.CharField(blank=True, help_text="The event's object, e.g. cs_…", max_length=255),
                ),
                (
                    "session_id",
                    models.CharField(
                        blank=True,
                        help_text="Set on the one event that paid this Checkout Session; unique, so a session pays once.",
                        max_length=255,
                        null=True,
                        unique=True,
                    ),
                ),
                ("processed", models.BooleanField(default=False)),
                ("outcome", models.CharField(blank=True, max_length=300)),
                ("payload", models.JSONField(default=dict)),
                ("received_at", models.DateTimeField()),
                (
                    "invoice",
                    models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="stripe_events",
                        to="billing.invoice",
                    ),
                ),
                (
                    "payment",
                    models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="stripe_events",
                        to="billing.payment",
                    ),
                ),
            ],
            options={
                "verbose_name": "Stripe event",
                "verbose_name_plural": "Stripe events",
                "ordering": ["-received_at", "-id"],
            },
        ),
        migrations.CreateModel(
            name="CreditEntry",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                (
                    "currency",
                    models.CharField(
                        choices=[("CNY", "CNY 人民币"), ("USD", "USD 美元"), ("HKD", "HKD 港币")],
                        default="CNY",
                        max_length=3,
                    ),
                ),
                (
                    "kind",
                    models.CharField(
                        choices=[
                            ("overpayment", "Overpayment 多付转余额"),
                            ("applied", "Applied to an invoice 抵扣发票"),
                            ("refund", "Refund 退款"),
                            ("credit_note", "Credit note 红字退回"),
                            ("adjustment", "Adjustment 调整"),
                        ],
                        max_length=20,
                    ),
                ),
                (
                    "amount",
                    models.DecimalField(
                        decimal_places=2,
                        help_text="Signed: + adds to the balance, − takes from it.",
                        max_digits=16,
                    ),
                ),
                ("balance_after", models.DecimalField(decimal_places=2, max_digits=16)),
                (
                    "reference",
                    models.CharField(blank=True, help_text="Bank reference or Stripe id.", max_length=200),
                ),
                ("note", models.CharField(blank=True, max_length=300)),
                ("created_at", models.DateTimeField()),
                (
                    "created_by",
                    models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="+",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
                (
                    "credit_note",
                    models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="credit_entries",
                        to="billing.creditnote",
                    ),
                ),
                (
                    "customer",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="credit_entries",
                        to="customers.customer",
                    ),
                ),
                (
                    "invoice",
                    models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="credit_entries",
                        to="billing.invoice",
                    ),
                ),
                (
                    "payment",
                    models.ForeignKey(
                        blank=True,
                        help_text="The payment that overpaid, or the credit payment this entry made.",
                        null=True,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="credit_entries",
                        to="billing.payment",
                    ),
                ),
            ],
            options={
                "verbose_name": "credit entry 余额流水",
                "verbose_name_plural": "credit entries 余额流水",
                "ordering": ["customer", "currency", "id"],
                "permissions": [("refund_credit", "Can refund customer credit")],
                "indexes": [
                    models.Index(fields=["customer", "currency", "id"], name="creditentry_customer_cur")
                ],
                "constraints": [
                    models.CheckConstraint(
                        condition=models.Q(("balance_after__gte", 0)), name="creditentry_balance_non_negative"
                    ),
                    models.CheckConstraint(
                        condition=models.Q(
                            models.Q(("kind__in", ["overpayment", "credit_note"]), ("amount__gt", 0)),
                            models.Q(("kind__in", ["applied", "refund"]), ("amount__lt", 0)),
                            models.Q(("kind", "adjustment"), models.Q(("amount", 0), _negated=True)),
                            _connector="OR",
                        ),
                        name="creditentry_sign_matches_kind",
                    ),
                ],
            },
        ),
        migrations.RunSQL(SQL, REVERSE_SQL),
    ]
