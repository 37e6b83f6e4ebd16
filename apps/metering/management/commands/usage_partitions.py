"""``manage.py usage_partitions [--ensure] [--detach YYYY-MM [--keep-months N]]``: the monthly
partitions of the usage table (docs/partitions.md).

Without options it lists them (month, bounds, rows, size). ``--ensure`` makes the missing ones
as the daily task does; ``--detach YYYY-MM`` detaches a month for archive, refused while it is
newer than ``--keep-months`` (default and least: 13) or its invoices are not all issued.
"""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from apps.core.errors import DomainError
from apps.core.periods import Period
from apps.metering import partitions


def _size(size: int) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return str(size)


class Command(BaseCommand):
    help = "List the usage table's monthly partitions, make the missing ones, or detach a month for archive."

    def add_arguments(self, parser):
        parser.add_argument(
            "--ensure", action="store_true", help="Make the missing partitions (as the daily task)."
        )
        parser.add_argument("--detach", metavar="YYYY-MM", help="Detach this month's partition for archive.")
        parser.add_argument(
            "--keep-months",
            type=int,
            default=partitions.KEEP_MONTHS,
            help=f"Months kept attached, the current one included (at least {partitions.KEEP_MONTHS}).",
        )

    def handle(self, *args, ensure: bool, detach: str | None, keep_months: int, **options):
        now = timezone.now()
        if ensure:
            made = partitions.partitions_ensure(now=now)
            self.stdout.write(f"Made {len(made)} partition(s){': ' + ', '.join(made) if made else ''}.")
        if detach:
            try:
                period = Period.parse(detach)
            except ValueError as exc:
                raise CommandError(str(exc)) from exc
            try:
                name = partitions.partition_detach(period=period, now=now, keep_months=keep_months)
            except DomainError as exc:
                raise CommandError(str(exc)) from exc
            self.stdout.write(
                f"Detached {period}: table {name} is no longer part of the usage table. "
                f"Archive it with its four parts (pg_dump -t '{name}*'), then drop it."
            )
        if ensure or detach:
            return
        rows = partitions.partitions_list()
        self.stdout.write(f"{'month':<8} {'partition':<32} {'rows':>12} {'size':>10}  bounds")
        for info in rows:
            month = str(info.period) if info.period else "default"
            self.stdout.write(
                f"{month:<8} {info.name:<32} {info.rows:>12,} {_size(info.size_bytes):>10}  {info.bounds}"
            )
