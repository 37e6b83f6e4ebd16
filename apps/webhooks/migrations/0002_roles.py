from django.db import migrations


def forwards(apps, schema_editor):
    from apps.accounts.roles import sync_roles

    sync_roles(apps, schema_editor)


class Migration(migrations.Migration):
    """Finance and operations manage webhook endpoints and re-send deliveries; account managers read
    their customers' (docs/webhooks.md#who-manages-endpoints)."""

    dependencies = [("accounts", "0009_notice_roles"), ("webhooks", "0001_endpoints_outbox_deliveries")]
    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]
