from django.db import migrations


def forwards(apps, schema_editor):
    from apps.accounts.roles import sync_roles

    sync_roles(apps, schema_editor)


class Migration(migrations.Migration):
    """Finance manages voucher programmes and vouchers and confirms and pays provider settlements;
    account managers read vouchers; operations read settlements."""

    dependencies = [("accounts", "0005_billing_roles"), ("billing", "0006_voucher_settlement_guards")]
    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]
