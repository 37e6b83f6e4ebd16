"""The billing cycle's beat schedule (docs/operations.md#beat-schedule) lives in the database
and names real tasks."""

import pytest
from django_celery_beat.models import PeriodicTask

from config.celery import app

pytestmark = pytest.mark.django_db


def test_every_scheduled_job_is_a_registered_task_in_the_billing_time_zone():
    app.loader.import_default_modules()
    jobs = {task.task: task for task in PeriodicTask.objects.select_related("crontab")}
    assert {
        "billing.run_monthly",
        "billing.daily_overdue",
        "contracts.expire_due",
        "billing.monthly_settlements",
        "api.purge_idempotency_keys",
        "webhooks.deliver_due",
    } <= set(jobs)
    for name, job in jobs.items():
        assert name in app.tasks, name
        assert job.enabled and str(job.crontab.timezone) == "Asia/Shanghai"
    sweeper = jobs["webhooks.deliver_due"].crontab
    assert (sweeper.minute, sweeper.hour) == ("*", "*")  # every minute
    monthly = jobs["billing.run_monthly"].crontab
    assert (monthly.minute, monthly.hour, monthly.day_of_month) == ("0", "2", "1")
