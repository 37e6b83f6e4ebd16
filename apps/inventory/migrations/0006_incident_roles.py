from django.db import migrations


def forwards(apps, schema_editor):
    from apps.accounts.roles import sync_roles

    sync_roles(apps, schema_editor)


class Migration(migrations.Migration):
    """Operations keep card incidents and agent keys; account managers, sales and finance read the
    incidents (docs/hardware-truth.md#sources-and-incidents)."""

    dependencies = [
        ("accounts", "0009_notice_roles"),
        ("inventory", "0005_card_incidents"),
        ("metering", "0009_usage_source_agent_keys"),
    ]
    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]
