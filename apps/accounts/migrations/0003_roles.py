from django.db import migrations


def forwards(apps, schema_editor):
    from apps.accounts.roles import sync_roles

    sync_roles(apps, schema_editor)


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0002_initial"),
        ("contracts", "0003_reference_price_list"),
        ("customers", "0001_initial"),
        ("providers", "0001_initial"),
        ("inventory", "0003_gpu_catalogue"),
        ("rest_framework_api_key", "0005_auto_20220110_1102"),
    ]
    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]
