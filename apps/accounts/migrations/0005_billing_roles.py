from django.db import migrations


def forwards(apps, schema_editor):
    from apps.accounts.roles import sync_roles

    sync_roles(apps, schema_editor)


class Migration(migrations.Migration):
    """Finance runs billing, issues and voids invoices, records payments, issues credit notes."""

    dependencies = [("accounts", "0004_contract_roles"), ("billing", "0006_voucher_settlement_guards")]
    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]
