from django.db import migrations


def forwards(apps, schema_editor):
    from apps.accounts.roles import sync_roles

    sync_roles(apps, schema_editor)


class Migration(migrations.Migration):
    """Operations manage partner API keys; operations, finance and account managers see usage."""

    dependencies = [("accounts", "0004_contract_roles"), ("metering", "0001_initial")]
    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]
