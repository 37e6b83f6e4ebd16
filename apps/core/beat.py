"""Beat-schedule entries created by data migrations (docs/operations.md#beat-schedule).

A migration lists its jobs as ``(name, task, minute, hour, day_of_month)`` and runs
``migrations.RunPython(*beat_schedule(SCHEDULE))``: the crontabs are in the billing time zone, the
entries are created or updated by name (a re-run changes nothing), and unapplying deletes them.
"""

from __future__ import annotations

from django.conf import settings


def beat_schedule(entries: list[tuple[str, str, str, str, str]]):
    """The (forwards, backwards) pair of a data migration that schedules ``entries``."""

    def schedule(apps, schema_editor):
        CrontabSchedule = apps.get_model("django_celery_beat", "CrontabSchedule")
        PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
        for name, task, minute, hour, day in entries:
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
        PeriodicTask.objects.filter(name__in=[name for name, *_ in entries]).delete()

    return schedule, unschedule
