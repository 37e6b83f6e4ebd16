from django.db import migrations


def forwards(apps, schema_editor):
    from apps.accounts.roles import sync_roles

    sync_roles(apps, schema_editor)


class Migration(migrations.Migration):
    dependencies = [("accounts", "0003_roles"), ("contracts", "0004_contract_contractline_allocation_and_more")]
    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]
