"""Idempotency keys of API POSTs (docs/api.md#idempotency-keys), and the hourly job that deletes
those older than 24 hours (docs/operations.md#beat-schedule)."""

from django.db import migrations, models

from apps.core.beat import beat_schedule

SCHEDULE = [("Hourly idempotency-key cleanup 幂等键清理", "api.purge_idempotency_keys", "17", "*", "*")]


class Migration(migrations.Migration):
    initial = True

    dependencies = [("django_celery_beat", "0019_alter_periodictasks_options")]

    operations = [
        migrations.CreateModel(
            name="IdempotencyKey",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("principal", models.CharField(help_text="user:<id> or api-key:<prefix>", max_length=64)),
                ("key", models.CharField(max_length=255)),
                (
                    "request_hash",
                    models.CharField(help_text="SHA-256 of method, path, query and body", max_length=64),
                ),
                ("method", models.CharField(max_length=10)),
                ("path", models.CharField(max_length=2048)),
                ("created_at", models.DateTimeField(db_index=True)),
                ("locked_at", models.DateTimeField(help_text="when the request that holds the key started")),
                ("response_status", models.PositiveSmallIntegerField(blank=True, null=True)),
                ("response_headers", models.JSONField(blank=True, default=dict)),
                ("response_body", models.BinaryField(blank=True, default=b"")),
                ("completed_at", models.DateTimeField(blank=True, null=True)),
            ],
            options={
                "verbose_name": "idempotency key 幂等键",
                "verbose_name_plural": "idempotency keys 幂等键",
                "constraints": [
                    models.UniqueConstraint(
                        fields=("principal", "key"), name="api_idempotency_key_unique_per_principal"
                    )
                ],
            },
        ),
        migrations.RunPython(*beat_schedule(SCHEDULE)),
    ]
