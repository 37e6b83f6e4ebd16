"""The sweeper that sends due webhook deliveries whose queued retry was lost, every minute
(docs/webhooks.md, docs/operations.md#beat-schedule)."""

from django.conf import settings
from django.db import migrations

SCHEDULE = [("Webhook deliveries due 到期的回调投递", "webhooks.deliver_due", "*", "*", "*")]


def schedule(apps, schema_editor):
    CrontabSchedule = apps.get_model("django_celery_beat", "CrontabSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    for name, task, minute, hour, day in SCHEDULE:
        crontab, _ = CrontabSchedule.objects.get_or_create(
            minute=minute,
            hour=hour,
            day_of_month=day,
            month_of_year="*",
            day_of_week="*",
            timezone=settings.BILLING_TIME_ZONE,
        )
        PeriodicTask.objects.update_or_create(
            name=name, defaults={"task": task, "crontab": crontab, "enabled": True}
        )


def unschedule(apps, schema_editor):
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    PeriodicTask.objects.filter(name__in=[name for name, *_ in SCHEDULE]).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("django_celery_beat", "0019_alter_periodictasks_options"),
        ("webhooks", "0002_roles"),
    ]

    operations = [migrations.RunPython(schedule, unschedule)]
