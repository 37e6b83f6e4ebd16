from django.db import migrations


def forwards(apps, schema_editor):
    from apps.accounts.roles import sync_roles

    sync_roles(apps, schema_editor)


class Migration(migrations.Migration):
    """Sales managers keep the SLA policies beside the price lists; account managers and finance
    read them (docs/hardware-truth.md#sla-policies)."""

    dependencies = [
        ("accounts", "0009_notice_roles"),
        ("contracts", "0006_sla_usage_source"),
        ("inventory", "0006_incident_roles"),
    ]
    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]
