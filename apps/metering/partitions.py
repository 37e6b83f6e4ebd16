"""Monthly partitions of ``metering_usagerecord`` (docs/partitions.md): made ahead, listed, and
detached for archive. Services: ``partitions_ensure``, ``partitions_list``, ``partition_detach``.

The usage table is partitioned by RANGE of ``start_at``, one partition per month of the billing
time zone (``[YYYY-MM-01 00:00+08, next month)``), plus a DEFAULT partition that takes any record
whose month has no partition yet, so none is ever refused for it. ``partitions_ensure`` (daily, the
``metering.ensure_partitions`` task; and migration 0007) makes the partitions of the current month
and the next three, and of every month that has records in the DEFAULT partition, moving those
records into their month: in normal operation the DEFAULT partition stays empty.

Each month is itself partitioned by RANGE of ``start_at`` into four parts, days 1–8, 9–16, 17–24
and 25 to the month's end (``…_pYYYY_MM_d01``, ``_d09``, ``_d17``, ``_d25``): the part being
written stays a quarter of the month, so its indexes — the ``(card_id, start_at)`` one above all,
where every reporting card writes to its own leaf — stay small however full the month grows
(docs/partitions.md#month-parts). The month table is still the unit that is made, listed and
detached.

The DDL functions take a DB-API cursor, so migrations 0007 and 0012 run the same code as the task.
"""

from __future__ import annotations

import datetime
import logging
import re
from dataclasses import dataclass

from django.conf import settings
from django.db import connection, transaction
from django.utils.translation import gettext

from apps.billing.models import Invoice, InvoiceStatus
from apps.core.errors import DomainError
from apps.core.periods import Period

from .selectors import LATE_LOOKBACK_MONTHS

logger = logging.getLogger(__name__)

PARENT = "metering_usagerecord"
DEFAULT_PARTITION = f"{PARENT}_default"
MONTHS_AHEAD = 3
# Billing looks back LATE_LOOKBACK_MONTHS for late usage: a month is archived only after that.
KEEP_MONTHS = LATE_LOOKBACK_MONTHS + 1
_NAME = re.compile(rf"^{PARENT}_p(\d{{4}})_(\d{{2}})$")
# The first day of each part of a month (docs/partitions.md#month-parts).
PART_DAYS = (1, 9, 17, 25)
_LOCK = "SELECT pg_advisory_xact_lock(hashtext('metering_usagerecord partitions'))"


def partition_name(period: Period) -> str:
    return f"{PARENT}_p{period.year:04d}_{period.month:02d}"


def partition_period(name: str) -> Period | None:
    """The month of a partition named by ``partition_name``; ``None`` for any other name."""
    match = _NAME.match(name)
    return Period(int(match.group(1)), int(match.group(2))) if match else None


def month_add(period: Period, months: int) -> Period:
    index = period.year * 12 + period.month - 1 + months
    return Period(index // 12, index % 12 + 1)


def _bounds(period: Period, tz: str) -> tuple[str, str]:
    start, end = period.bounds(tz)
    return start.isoformat(), end.isoformat()


def part_name(period: Period, day: int) -> str:
    return f"{partition_name(period)}_d{day:02d}"


def part_bounds(period: Period, tz: str) -> list[tuple[str, str, str]]:
    """``(name, from, to)`` of the month's parts: from each of ``PART_DAYS`` at 00:00 in ``tz`` to
    the next one, the last to the month's end; together exactly the month's bounds."""
    start, end = period.bounds(tz)
    starts = [start.replace(day=day) for day in PART_DAYS]
    ends = [*starts[1:], end]
    return [
        (part_name(period, day), lower.isoformat(), upper.isoformat())
        for day, lower, upper in zip(PART_DAYS, starts, ends, strict=True)
    ]


def _make_parts(cursor, period: Period, tz: str) -> None:
    """The four parts of the month table ``partition_name(period)`` (made ``PARTITION BY RANGE``)."""
    name = partition_name(period)
    for part, lower, upper in part_bounds(period, tz):
        cursor.execute(
            f"CREATE TABLE {part} PARTITION OF {name} FOR VALUES FROM (%s) TO (%s)", [lower, upper]
        )


def split_month(cursor, name: str, period: Period, tz: str) -> None:
    """Turn the plain month partition ``name`` (as migration 0007 made them before month parts)
    into a month table of four parts, its rows copied over; inside the caller's transaction.

    Statements on a partition do not fire the parent's statement triggers, so the event rows stay
    as they are; the parent's indexes are built on the parts when the month is attached again.
    """
    lower, upper = _bounds(period, tz)
    whole = f"{name}_whole"
    cursor.execute(f"ALTER TABLE {PARENT} DETACH PARTITION {name}")
    cursor.execute(f"ALTER TABLE {name} RENAME TO {whole}")
    cursor.execute(
        f"CREATE TABLE {name} (LIKE {PARENT} INCLUDING DEFAULTS INCLUDING CONSTRAINTS)"
        " PARTITION BY RANGE (start_at)"
    )
    _make_parts(cursor, period, tz)
    cursor.execute(
        "SELECT string_agg(quote_ident(attname), ', ' ORDER BY attnum) FROM pg_attribute"
        " WHERE attrelid = %s::regclass AND attnum > 0 AND NOT attisdropped",
        [PARENT],
    )
    (columns,) = cursor.fetchone()
    cursor.execute(f"INSERT INTO {name} ({columns}) SELECT {columns} FROM {whole}")
    cursor.execute(
        f"ALTER TABLE {PARENT} ATTACH PARTITION {name} FOR VALUES FROM (%s) TO (%s)", [lower, upper]
    )
    cursor.execute(f"DROP TABLE {whole}")


def split_whole_months(cursor, *, tz: str | None = None) -> list[str]:
    """``split_month`` every attached month partition that is still one plain table; their names."""
    tz = tz or settings.BILLING_TIME_ZONE
    cursor.execute(_LOCK)
    cursor.execute(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
        " WHERE i.inhparent = %s::regclass AND c.relkind = 'r' ORDER BY c.relname",
        [PARENT],
    )
    split = []
    for (name,) in cursor.fetchall():
        period = partition_period(name)
        if period is not None:  # not the DEFAULT partition
            split_month(cursor, name, period, tz)
            split.append(name)
    return split


def attached_partitions(cursor) -> list[str]:
    """Names of the partitions attached to the usage table (the DEFAULT one included)."""
    cursor.execute(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
        " WHERE i.inhparent = %s::regclass ORDER BY c.relname",
        [PARENT],
    )
    return [name for (name,) in cursor.fetchall()]


def ensure_partitions(
    cursor, *, now: datetime.datetime, since: Period | None = None, tz: str | None = None
) -> list[str]:
    """Make the missing monthly partitions; the names made, oldest first. Idempotent.

    The months: ``since`` (default: the current month) through three months after the current
    one, and every month with records in the DEFAULT partition — those records move into their
    new partition in the same transaction. Run inside a transaction (an advisory lock keeps two
    runs apart).
    """
    tz = tz or settings.BILLING_TIME_ZONE
    cursor.execute(_LOCK)
    current = Period.containing(now, tz)
    last = month_add(current, MONTHS_AHEAD)
    wanted = set()
    month = since or current
    while (month.year, month.month) <= (last.year, last.month):
        wanted.add(month)
        month = month.next()
    cursor.execute(
        f"SELECT DISTINCT to_char(start_at AT TIME ZONE %s, 'YYYY-MM') FROM {DEFAULT_PARTITION}", [tz]
    )
    wanted.update(Period.parse(text) for (text,) in cursor.fetchall())
    existing = set(attached_partitions(cursor))
    made = []
    for period in sorted(wanted, key=lambda p: (p.year, p.month)):
        name = partition_name(period)
        if name in existing:
            continue
        cursor.execute("SELECT to_regclass(%s) IS NOT NULL", [name])
        if cursor.fetchone()[0]:  # detached for archive and not dropped yet: its rows stay in DEFAULT
            logger.warning(
                "usage partition %s is detached; records of %s stay in the DEFAULT partition", name, period
            )
            continue
        lower, upper = _bounds(period, tz)
        cursor.execute(
            f"SELECT EXISTS (SELECT 1 FROM {DEFAULT_PARTITION} WHERE start_at >= %s AND start_at < %s)",
            [lower, upper],
        )
        if cursor.fetchone()[0]:
            # The month's records wait in the DEFAULT partition: move them into a new table and
            # attach it (a row may live in one partition only). Statement triggers of the parent
            # do not fire for statements on a partition, so their event ids stay as they are.
            cursor.execute(
                f"CREATE TABLE {name} (LIKE {PARENT} INCLUDING DEFAULTS INCLUDING CONSTRAINTS)"
                " PARTITION BY RANGE (start_at)"
            )
            _make_parts(cursor, period, tz)
            cursor.execute(
                f"WITH moved AS (DELETE FROM {DEFAULT_PARTITION} WHERE start_at >= %s AND start_at < %s"
                f" RETURNING *) INSERT INTO {name} SELECT * FROM moved",
                [lower, upper],
            )
            cursor.execute(
                f"ALTER TABLE {PARENT} ATTACH PARTITION {name} FOR VALUES FROM (%s) TO (%s)", [lower, upper]
            )
        else:
            cursor.execute(
                f"CREATE TABLE {name} PARTITION OF {PARENT} FOR VALUES FROM (%s) TO (%s)"
                " PARTITION BY RANGE (start_at)",
                [lower, upper],
            )
            _make_parts(cursor, period, tz)
        made.append(name)
    return made


def partitions_ensure(*, now: datetime.datetime) -> list[str]:
    """``ensure_partitions`` in its own transaction (the daily task and ``usage_partitions --ensure``)."""
    with transaction.atomic(), connection.cursor() as cursor:
        return ensure_partitions(cursor, now=now)


@dataclass(frozen=True, slots=True)
class PartitionInfo:
    name: str
    period: Period | None  # None: the DEFAULT partition
    bounds: str  # as PostgreSQL prints them
    rows: int
    size_bytes: int


def partitions_list() -> list[PartitionInfo]:
    """Every attached partition, oldest month first and DEFAULT last, with its exact row count
    and its size on disk (table, indexes and TOAST)."""
    with connection.cursor() as cursor:
        cursor.execute(
            # a month's size is its parts' (a partitioned table itself holds no data)
            "SELECT c.relname, pg_get_expr(c.relpartbound, c.oid),"
            "       (SELECT sum(pg_total_relation_size(t.relid))::bigint FROM pg_partition_tree(c.oid) t)"
            "  FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
            " WHERE i.inhparent = %s::regclass",
            [PARENT],
        )
        found = cursor.fetchall()
        infos = []
        for name, bounds, size in found:
            cursor.execute(f"SELECT count(*) FROM {name}")  # a name from the catalogue
            infos.append(PartitionInfo(name, partition_period(name), bounds, cursor.fetchone()[0], size))
    return sorted(
        infos, key=lambda p: (p.period is None, (p.period.year, p.period.month) if p.period else (0, 0))
    )


def partition_detach(*, period: Period, now: datetime.datetime, keep_months: int = KEEP_MONTHS) -> str:
    """Detach the partition of ``period`` from the usage table for archive; its table name.

    The table stays in the database (``pg_dump -t`` it, then drop it: docs/partitions.md#archive).
    Refused (``DomainError`` ``partition_in_use``) while the month is newer than ``keep_months``
    (billing still reads it for late usage), while any invoice of the month is a draft, or while
    the month has records but no invoice. The event ids stay in ``metering_usageevent``: a record
    of the archived month sent again is still a duplicate.

    ``DETACH PARTITION … CONCURRENTLY`` cannot run while the table has a DEFAULT partition (it
    always has), so the detach is the plain one: a brief ACCESS EXCLUSIVE lock on the usage table.
    """
    if keep_months < KEEP_MONTHS:
        raise DomainError(
            gettext("Keep at least %(n)s months: billing reads them for late usage.") % {"n": KEEP_MONTHS},
            code="partition_in_use",
        )
    name = partition_name(period)
    current = Period.containing(now, settings.BILLING_TIME_ZONE)
    oldest_kept = month_add(current, -(keep_months - 1))
    if (period.year, period.month) >= (oldest_kept.year, oldest_kept.month):
        raise DomainError(
            gettext("%(period)s is newer than %(n)s months; only %(oldest)s and earlier can be detached.")
            % {"period": period, "n": keep_months, "oldest": month_add(oldest_kept, -1)},
            code="partition_in_use",
        )
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(_LOCK)
        if name not in attached_partitions(cursor):
            raise DomainError(
                gettext("The usage table has no partition for %(period)s.") % {"period": period},
                code="not_found",
                http_status=404,
            )
        invoices = Invoice.objects.filter(period=str(period))
        drafts = invoices.filter(status=InvoiceStatus.DRAFT).count()
        if drafts:
            raise DomainError(
                gettext("%(n)s invoice(s) of %(period)s are still drafts; issue them first.")
                % {"n": drafts, "period": period},
                code="partition_in_use",
            )
        cursor.execute(f"SELECT EXISTS (SELECT 1 FROM {name})")
        if cursor.fetchone()[0] and not invoices.exists():
            raise DomainError(
                gettext("%(period)s has usage but no invoice: bill the month first.") % {"period": period},
                code="partition_in_use",
            )
        cursor.execute(f"ALTER TABLE {PARENT} DETACH PARTITION {name}")
    return name
