"""Abstract bases shared by the domain models."""

from django.db import models


class TimeStampedModel(models.Model):
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        abstract = True


class NumberSeries(models.Model):
    """A gapless counter per (prefix, year): ``C-2026-000001``, ``INV-2026-000001``.

    Numbers are taken with ``apps.core.numbering.next_number`` under a row lock, never ``Max()+1``.
    """

    prefix = models.CharField(max_length=10)
    year = models.PositiveSmallIntegerField()
    last_value = models.PositiveIntegerField(default=0)

    class Meta:
        verbose_name_plural = "number series"
        constraints = [models.UniqueConstraint(fields=["prefix", "year"], name="uniq_number_series")]

    def __str__(self) -> str:
        return f"{self.prefix}-{self.year}: {self.last_value}"
