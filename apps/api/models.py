"""What the API itself keeps: the answers to POSTs sent with an ``Idempotency-Key``
(docs/api.md#idempotency-keys)."""

from __future__ import annotations

from django.db import models


class IdempotencyKey(models.Model):
    """One ``Idempotency-Key`` of one principal (a user, or a partner API key), kept 24 hours.

    The row is inserted (committed on its own) before the request runs, so of two identical
    requests racing only one runs; ``response_status`` stays empty until the answer is stored.
    """

    principal = models.CharField(max_length=64, help_text="user:<id> or api-key:<prefix>")
    key = models.CharField(max_length=255)
    request_hash = models.CharField(max_length=64, help_text="SHA-256 of method, path, query and body")
    method = models.CharField(max_length=10)
    path = models.CharField(max_length=2048)
    created_at = models.DateTimeField(db_index=True)
    locked_at = models.DateTimeField(help_text="when the request that holds the key started")
    response_status = models.PositiveSmallIntegerField(null=True, blank=True)
    response_headers = models.JSONField(default=dict, blank=True)
    response_body = models.BinaryField(default=b"", blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "idempotency key 幂等键"
        verbose_name_plural = "idempotency keys 幂等键"
        constraints = [
            models.UniqueConstraint(
                fields=["principal", "key"], name="api_idempotency_key_unique_per_principal"
            )
        ]

    def __str__(self) -> str:
        return f"{self.principal} {self.key}"
