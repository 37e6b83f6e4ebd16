"""The billing cycle's beat schedule (docs/operations.md#beat-schedule), in the database so
finance can edit it in admin."""

from django.conf import settings
from django.db import migrations

SCHEDULE = [
    # name, task, minute, hour, day_of_month
    ("Monthly billing run 月度计费", "billing.run_monthly", "0", "2", "1"),
    ("Monthly provider settlements 供应商月结", "billing.monthly_settlements", "0", "4", "1"),
    ("Daily overdue reminders 逾期提醒", "billing.daily_overdue", "0", "9", "*"),
    ("Daily contract expiry 合同到期", "contracts.expire_due", "5", "0", "*"),
]


def forwards(apps, schema_editor):
    CrontabSchedule = apps.get_model("django_celery_beat", "CrontabSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    for name, task, minute, hour, day in SCHEDULE:
        crontab, _ = CrontabSchedule.objects.get_or_create(
            minute=minute, hour=hour, day_of_month=day, month_of_year="*", day_of_week="*",
            timezone=settings.BILLING_TIME_ZONE,
        )
        PeriodicTask.objects.update_or_create(name=name, defaults={"task": task, "crontab": crontab, "enabled": True})


def backwards(apps, schema_editor):
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    PeriodicTask.objects.filter(name__in=[name for name, *_ in SCHEDULE]).delete()


class Migration(migrations.Migration):
    dependencies = [("billing", "0002_invoice_freeze_trigger"), ("django_celery_beat", "0019_alter_periodictasks_options")]
    operations = [migrations.RunPython(forwards, backwards)]
