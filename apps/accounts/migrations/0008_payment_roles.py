from django.db import migrations


def forwards(apps, schema_editor):
    from apps.accounts.roles import sync_roles

    sync_roles(apps, schema_editor)


class Migration(migrations.Migration):
    """Finance reads customer credit and refunds it, and reads Stripe's webhook events."""

    dependencies = [("accounts", "0007_plural_names"), ("billing", "0008_payments_credit_stripe")]
    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]
