from django.db import migrations


def forwards(apps, schema_editor):
    from apps.accounts.roles import sync_roles

    sync_roles(apps, schema_editor)


class Migration(migrations.Migration):
    """Finance reads the log of customer e-mails (docs/invoices.md#e-mail)."""

    dependencies = [("accounts", "0008_payment_roles"), ("billing", "0009_notices")]
    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]
