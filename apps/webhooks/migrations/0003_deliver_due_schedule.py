"""The sweeper that sends due webhook deliveries whose queued retry was lost, every minute
(docs/webhooks.md, docs/operations.md#beat-schedule)."""

from django.db import migrations

from apps.core.beat import beat_schedule

SCHEDULE = [("Webhook deliveries due 到期的回调投递", "webhooks.deliver_due", "*", "*", "*")]


class Migration(migrations.Migration):
    dependencies = [
        ("django_celery_beat", "0019_alter_periodictasks_options"),
        ("webhooks", "0002_roles"),
    ]

    operations = [migrations.RunPython(*beat_schedule(SCHEDULE))]
