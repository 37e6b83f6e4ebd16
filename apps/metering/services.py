"""Writes of the metering app: usage ingestion and voiding (docs/usage-api.md), partner API keys.

Ingestion is set-based: the records are checked in plain Python (``validation``), the provider's
hardware named in the batch is looked up in one query, the stored hashes of the batch's event ids
in another (duplicates drop out, conflicts reject the batch), and the new rows are COPYed straight
into ``metering_usagerecord`` in event-id order, all in one transaction.

The unique key has the last word: ``(provider, event_id)`` of ``metering_usageevent``, which the
usage table's insert trigger fills in the same statement, whatever month (partition) the record
falls in (docs/partitions.md#idempotency). A concurrent batch may store some of the same records
between the look-up and the COPY: the COPY then fails on the unique key (after waiting for that
batch to commit), its savepoint is rolled back, and the rows go the careful way — COPY into a
temporary table and ``INSERT … SELECT`` of those whose event id is not stored yet, again under a
savepoint, repeated while a concurrent batch beats it to some — so of concurrent posts of the
same record exactly one stores it and the others count it as a duplicate (or, with other content,
a conflict that rolls their whole batch back). Both ways write in event-id order, so concurrent
batches wait for each other instead of deadlocking.
"""

from __future__ import annotations

import datetime
import logging
from dataclasses import dataclass
from typing import Any

from django.db import IntegrityError, OperationalError, connection, transaction
from django.db.models import QuerySet, Subquery
from django.utils.translation import gettext, ngettext

from apps.core.errors import Conflict, DomainError
from apps.core.events import event_publish

from . import selectors, validation
from .models import AgentAPIKey, PartnerAPIKey, UsageEvent, UsageRecord, UsageSource

logger = logging.getLogger(__name__)

MAX_BATCH_RECORDS = validation.MAX_BATCH_RECORDS
_RETRYABLE_SQLSTATES = {"40P01", "40001"}  # deadlock detected, serialization failure
_FOREIGN_KEY_VIOLATION = "23503"  # raised by the usage reference triggers (migration 0004)
_UNIQUE_VIOLATION = "23505"
# The event ids' key (metering_usageevent); a concurrent batch storing the same record in the same
# month meets the records' own key first, ``uniq_usage_record_event``, which is reported under the
# name of its index on the partition: any unique violation of a partition of the usage table (its
# other unique key is the primary key of generated ids).
_UNIQUE_KEY = "uniq_usage_provider_event"
_USAGE_TABLE = UsageRecord._meta.db_table
_ATTEMPTS = 3
_RACING_ROUNDS = 5

# Column lists, all from one: the record's columns ``validation.copy_data`` writes, between the
# provider (written before each row) and the receipt time and void reason (after it). Left out, and
# so NULL or generated: ``USAGE_UNWRITTEN_COLUMNS``. tests/metering/test_copy_columns.py checks
# that these cover every column of the model.
USAGE_COLUMNS = ("provider_id", *validation.COPY_COLUMNS, "received_at", "void_reason", "source")
USAGE_UNWRITTEN_COLUMNS = frozenset({"id", "voided_at"})
_RECORD_FIELDS = {f.column: f for f in UsageRecord._meta.concrete_fields}

STAGING_TABLE = "metering_usage_ingest"
_STAGING_SQL = f"""
CREATE TEMPORARY TABLE IF NOT EXISTS {STAGING_TABLE} (
    {", ".join(f"{c} {_RECORD_FIELDS[c].db_type(connection)}" for c in validation.COPY_COLUMNS)}
) ON COMMIT DELETE ROWS;
DELETE FROM {STAGING_TABLE};
"""
_COPY_USAGE_SQL = f"COPY {UsageRecord._meta.db_table} ({', '.join(USAGE_COLUMNS)}) FROM STDIN"
_COPY_SQL = f"COPY {STAGING_TABLE} ({', '.join(validation.COPY_COLUMNS)}) FROM STDIN"
# Rows are inserted in event-id order, so concurrent batches take the unique indexes' locks in the
# same order and wait for each other instead of deadlocking. A partitioned table takes no
# ``ON CONFLICT (provider_id, event_id)``: the rows whose event id is stored are left out, and a
# unique violation (one stored since this statement began) makes the caller try again.
_INSERT_SQL = f"""
INSERT INTO {UsageRecord._meta.db_table} ({", ".join(USAGE_COLUMNS)})
SELECT %s, {", ".join(validation.COPY_COLUMNS)}, %s, '', %s
  FROM {STAGING_TABLE} s
 WHERE NOT EXISTS (SELECT 1 FROM metering_usageevent e WHERE e.provider_id = %s AND e.event_id = s.event_id)
 ORDER BY event_id COLLATE "C"
RETURNING event_id
"""


@dataclass(frozen=True, slots=True)
class IngestResult:
    accepted: int  # new records stored
    duplicates: int  # records already stored (or repeated in the batch) with the same content


class UsageRejected(DomainError):
    """Some records are invalid or conflict with stored ones; nothing of the batch was stored.

    ``errors``: ``[{"index", "event_id", "code": "invalid" | "conflict", "errors": {field: [msg]}}]``
    """

    code = "invalid_batch"
    http_status = 400

    def __init__(self, errors: list[dict[str, Any]]) -> None:
        self.errors = errors
        count = len(errors)
        super().__init__(
            ngettext(
                "%(count)s record of the batch is invalid or conflicting; nothing was stored.",
                "%(count)s records of the batch are invalid or conflicting; nothing was stored.",
                count,
            )
            % {"count": count},
        )

    @property
    def only_conflicts(self) -> bool:
        return all(entry["code"] == validation.CODE_CONFLICT for entry in self.errors)


def usage_ingest(
    *,
    provider,
    payload_records: list[Any],
    received_at: datetime.datetime,
    source: str = UsageSource.PARTNER,
    server=None,
) -> IngestResult:
    """Store a batch of usage records of ``provider`` atomically (docs/usage-api.md#batch-rules).

    ``source``: who reported them (``UsageSource``). ``server``: the agent's server — records may
    then name only its cards (docs/hardware-truth.md#sources-and-incidents); the provider is the
    server's.

    ``payload_records``: the parsed JSON records (any types: each is checked), or the
    ``validation.AgentBatch`` of ``validation.decode_agent_batch``. Raises
    ``UsageRejected`` (nothing stored) when any record is invalid, not the provider's hardware, or
    conflicts with a stored record or another record of the batch; ``DomainError``
    ``batch_too_large`` over 10,000 records.
    """
    if len(payload_records) > MAX_BATCH_RECORDS:
        raise DomainError(
            gettext("A batch holds at most %(limit)s records; this one has %(count)s.")
            % {"limit": f"{MAX_BATCH_RECORDS:,}", "count": f"{len(payload_records):,}"},
            code="batch_too_large",
            http_status=413,
        )
    if isinstance(payload_records, validation.AgentBatch):
        batch = validation.validate_agent_records(payload_records, now=received_at)
    else:
        batch = validation.validate_records(payload_records, now=received_at)
    cards, servers = selectors.usage_hardware_index(
        provider_id=provider.pk, card_uuids=batch.card_uuids(), serials=batch.serials()
    )
    if server is not None:  # an agent reports its own server's cards, nothing else
        own = selectors.server_card_ids(server)
        cards = {uuid: found for uuid, found in cards.items() if found[0] in own}
        servers = {}
    batch.resolve(cards, servers, provider_id=provider.pk)
    if batch.errors:
        # Report conflicts with stored records too, so the sender can set every bad record aside at once.
        batch.add_conflicts(
            selectors.usage_stored_hashes(
                provider_id=provider.pk, event_ids=[row.event_id for row in batch.rows]
            )
        )
        _publish_rejected(provider, payload_records, batch.error_list(), received_at)
        raise UsageRejected(batch.error_list())
    if not batch.rows:
        return IngestResult(accepted=0, duplicates=len(payload_records))

    for attempt in range(1, _ATTEMPTS + 1):
        try:
            with transaction.atomic():
                accepted = _store(batch, provider_id=provider.pk, received_at=received_at, source=source)
            break
        except UsageRejected as rejected:  # conflicts found while storing: the batch is rolled back
            _publish_rejected(provider, payload_records, rejected.errors, received_at)
            raise
        except OperationalError as exc:
            sqlstate = getattr(exc.__cause__, "sqlstate", None)
            if sqlstate not in _RETRYABLE_SQLSTATES or attempt == _ATTEMPTS or connection.in_atomic_block:
                raise
            logger.warning("usage batch of provider %s: %s; retrying (attempt %d)", provider.pk, exc, attempt)
    return IngestResult(accepted=accepted, duplicates=len(payload_records) - accepted)


def _publish_rejected(provider, records, errors: list[dict], received_at: datetime.datetime) -> None:
    """``usage.rejected`` for the provider's webhooks (docs/webhooks.md#usage-rejected): published
    outside the batch's (rolled back) transaction, so the event stays though nothing was stored."""
    rejection = {"records": len(records), "errors": errors, "received_at": received_at}
    event_publish("usage.rejected", owner=provider, subject=rejection, now=received_at)


def _store(batch: validation.Batch, *, provider_id: int, received_at: datetime.datetime, source: str) -> int:
    """Store the batch's new rows; the number stored. Raises ``UsageRejected`` for conflicts with
    stored records (nothing stored)."""
    rows = batch.rows
    stored = selectors.usage_stored_hashes(provider_id=provider_id, event_ids=[row.event_id for row in rows])
    if stored:
        _reject_conflicts(rows, stored)
        rows = [row for row in rows if row.event_id not in stored]
    if not rows:
        return 0
    rows = sorted(rows, key=_event_id)
    try:
        # A savepoint; COPY errors raised as Django's (``IntegrityError`` with the psycopg cause).
        with transaction.atomic(), connection.cursor() as cursor, connection.wrap_database_errors:
            with cursor.copy(_COPY_USAGE_SQL) as copy:
                copy.write(
                    batch.copy_data(
                        rows, head=f"{provider_id}\t", tail=f"\t{received_at.isoformat()}\t\t{source}"
                    )
                )
        return len(rows)
    except IntegrityError as exc:
        cause = exc.__cause__
        if getattr(cause, "sqlstate", None) == _FOREIGN_KEY_VIOLATION:
            raise _hardware_changed() from exc
        if not _is_unique_key_violation(exc):
            raise
    # A concurrent batch stored some of these records since the look-up.
    return _store_racing(batch, rows, provider_id=provider_id, received_at=received_at, source=source)


def _is_unique_key_violation(exc: IntegrityError) -> bool:
    cause = exc.__cause__
    if getattr(cause, "sqlstate", None) != _UNIQUE_VIOLATION:
        return False
    return cause.diag.constraint_name == _UNIQUE_KEY or (cause.diag.table_name or "").startswith(_USAGE_TABLE)


def _event_id(row: validation.Row) -> str:
    return row.event_id


def _hardware_changed() -> DomainError:
    # The batch was checked against the provider's hardware moments ago; a card or server was
    # deleted or changed hands since. Sent again, it is checked afresh.
    return DomainError(
        gettext(
            "The provider's hardware changed while the batch was stored; nothing was stored. Send it again."
        ),
        code="retry_later",
        http_status=503,
    )


def _reject_conflicts(rows: list[validation.Row], stored: dict[str, str]) -> None:
    conflicts = [
        validation.conflict_entry(row.index, row.event_id, gettext(validation.CONFLICT_STORED))
        for row in rows
        if row.event_id in stored and stored[row.event_id] != row.content_hash
    ]
    if conflicts:
        raise UsageRejected(conflicts)


def _store_racing(
    batch: validation.Batch,
    rows: list[validation.Row],
    *,
    provider_id: int,
    received_at: datetime.datetime,
    source: str,
) -> int:
    """COPY ``rows`` to the staging table and insert those not stored yet; the number inserted.

    The insert leaves out the rows whose event id is stored; when a concurrent batch stores one
    after the insert began, the insert waits for it, fails on the unique key, is rolled back to its
    savepoint and runs again (a new statement: at READ COMMITTED it sees that batch's rows). The
    rows left out are already stored: their stored hashes are read in a new statement too. An
    equal hash is a duplicate; another hash is a conflict, and the batch is rolled back.
    """
    with connection.cursor() as cursor:
        cursor.execute(_STAGING_SQL)
        with connection.wrap_database_errors, cursor.copy(_COPY_SQL) as copy:
            copy.write(batch.copy_data(rows))
        for round_ in range(1, _RACING_ROUNDS + 1):
            try:
                with transaction.atomic():
                    cursor.execute(_INSERT_SQL, [provider_id, received_at, source, provider_id])
                    inserted = cursor.fetchall()
                break
            except IntegrityError as exc:
                if getattr(exc.__cause__, "sqlstate", None) == _FOREIGN_KEY_VIOLATION:
                    raise _hardware_changed() from exc
                if not _is_unique_key_violation(exc):
                    raise
                if round_ == _RACING_ROUNDS:  # beaten every round: let the sender try later
                    raise _concurrent_change() from exc
    if len(inserted) == len(rows):
        return len(inserted)
    new = {event_id for (event_id,) in inserted}
    skipped = [row for row in rows if row.event_id not in new]
    stored = selectors.usage_stored_hashes(
        provider_id=provider_id, event_ids=[row.event_id for row in skipped]
    )
    if any(row.event_id not in stored for row in skipped):  # skipped, yet not there: never expected
        raise _concurrent_change()
    _reject_conflicts(skipped, stored)
    return len(inserted)


def _concurrent_change() -> DomainError:
    return DomainError(
        gettext("The batch met a concurrent change and was not stored; send it again."),
        code="retry_later",
        http_status=503,
    )


@transaction.atomic
def usage_void(
    *,
    provider,
    event_id: str,
    reason: str,
    now: datetime.datetime,
    actor: object = None,
    source: str = UsageSource.PARTNER,
) -> UsageRecord:
    """Void the provider's record ``event_id`` (billing leaves it out) while no issued invoice
    covers it (``selectors.usage_invoice_covering``); voiding a voided record changes nothing.
    Only records of ``source``: a partner system cannot void what the agent observed
    (docs/hardware-truth.md#sources-and-incidents).

    Raises ``DomainError`` ``not_found`` (404) for an event id the provider never sent and
    ``Conflict`` ``already_invoiced`` (409) once an issued or paid invoice billed it: a credit
    note is then the way to correct it.
    """
    # The event table names the record's month, so only its partition is read.
    month = UsageEvent.objects.filter(provider=provider, event_id=event_id).values("start_at")
    record = (
        UsageRecord.objects.select_for_update(of=("self",))
        .select_related("card")
        .filter(provider=provider, event_id=event_id, start_at=Subquery(month), source=source)
        .order_by()
        .first()
    )
    if record is None:
        raise DomainError(gettext("No usage record with this event id."), code="not_found", http_status=404)
    if record.voided_at is not None:
        return record
    invoice = selectors.usage_invoice_covering(record=record)
    if invoice is not None:
        raise Conflict(
            gettext(
                "The record is billed on invoice %(number)s (%(period)s) and cannot be voided; "
                "ask the platform for a credit note."
            )
            % {"number": invoice.number, "period": invoice.period},
            code="already_invoiced",
        )
    record.voided_at = now
    record.void_reason = (reason or "Voided by the provider's partner system.")[:300]
    record.save(update_fields=["voided_at", "void_reason"])
    logger.info("usage %s of provider %s voided by %s: %s", event_id, provider.pk, actor, record.void_reason)
    return record


# -- partner API keys ----------------------------------------------------------------------------
def partner_key_create(
    *, provider, name: str, expiry_date: datetime.datetime | None = None
) -> tuple[PartnerAPIKey, str]:
    """A new key of ``provider``: ``(stored key, the key itself)``. Only a hash is stored, so the
    key can be shown this once and never again."""
    return PartnerAPIKey.objects.create_key(provider=provider, name=name, expiry_date=expiry_date)


@transaction.atomic
def partner_key_revoke(*, api_keys: QuerySet, actor=None) -> list[PartnerAPIKey]:
    """Revoke the keys (for good: the library refuses to un-revoke); the keys newly revoked."""
    keys = list(api_keys.select_for_update().filter(revoked=False))
    PartnerAPIKey.objects.filter(pk__in=[key.pk for key in keys]).update(revoked=True)
    for key in keys:
        logger.info("partner API key %s of provider %s revoked by %s", key.prefix, key.provider_id, actor)
    return keys


# -- agent API keys ------------------------------------------------------------------------------
def agent_key_create(
    *, server, name: str, expiry_date: datetime.datetime | None = None
) -> tuple[AgentAPIKey, str]:
    """A new key of the metering agent on ``server``: ``(stored key, the key itself)``, shown
    this once (only a hash is stored). It posts agent usage and incidents of that server only."""
    return AgentAPIKey.objects.create_key(server=server, name=name, expiry_date=expiry_date)


@transaction.atomic
def agent_key_revoke(*, api_keys: QuerySet, actor=None) -> list[AgentAPIKey]:
    """Revoke the agent keys (for good); the keys newly revoked."""
    keys = list(api_keys.select_for_update().filter(revoked=False))
    AgentAPIKey.objects.filter(pk__in=[key.pk for key in keys]).update(revoked=True)
    for key in keys:
        logger.info("agent API key %s of server %s revoked by %s", key.prefix, key.server_id, actor)
    return keys
