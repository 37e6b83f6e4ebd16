from django.db import migrations


def forwards(apps, schema_editor):
    from apps.accounts.roles import sync_roles

    sync_roles(apps, schema_editor)


class Migration(migrations.Migration):
    """Finance and sales managers read the finance reports (docs/reports.md#who-reads-them)."""

    dependencies = [
        ("reports", "0001_finance_report_permission"),
        ("accounts", "0009_notice_roles"),
        ("audit", "0003_readers"),
        ("billing", "0010_early_issue_and_draft_changes"),
        ("contracts", "0005_contract_quote_versions"),
        ("customers", "0002_customer_language"),
        ("inventory", "0004_plural_names"),
        ("metering", "0006_usage_utilisation_label"),
        ("providers", "0001_initial"),
        ("webhooks", "0003_deliver_due_schedule"),
        ("rest_framework_api_key", "0005_auto_20220110_1102"),
    ]
    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]
