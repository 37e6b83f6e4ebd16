from django.db import migrations


def forwards(apps, schema_editor):
    from apps.accounts.roles import sync_roles

    sync_roles(apps, schema_editor)


class Migration(migrations.Migration):
    """Finance, operations and sales managers read the audit trail (docs/security.md#audit-trail)."""

    dependencies = [("audit", "0002_append_only_trigger"), ("accounts", "0009_notice_roles")]
    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]
