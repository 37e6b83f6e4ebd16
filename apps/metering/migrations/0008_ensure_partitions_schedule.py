"""The daily job that makes the usage table's partitions ahead (docs/partitions.md,
docs/operations.md#beat-schedule)."""

from django.db import migrations

from apps.core.beat import beat_schedule

SCHEDULE = [("Usage partitions ahead 用量分区", "metering.ensure_partitions", "30", "3", "*")]


class Migration(migrations.Migration):
    dependencies = [
        ("django_celery_beat", "0019_alter_periodictasks_options"),
        ("metering", "0007_partitioned_usage"),
    ]

    operations = [migrations.RunPython(*beat_schedule(SCHEDULE))]
