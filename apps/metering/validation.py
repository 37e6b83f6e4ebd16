"""Usage records as partner systems post them (docs/usage-api.md#request) → rows ready for
COPY, or per-record errors.

Pure Python, no ORM: a tight loop over the parsed JSON with per-batch caches (a batch from the
agent repeats the same window start and end for every card). ``usage_ingest`` in ``services``
resolves the hardware in one query and writes the rows.

A record::

    {"event_id": "…", "card": "GPU-…"} or {"event_id": "…", "server": "<serial>"},
    "start", "end" (ISO 8601 with a UTC offset), optional "telemetry": {
        "utilization_percent": 0–100, "memory_used_bytes": int ≥ 0, "energy_mj": int ≥ 0,
        other keys: scalars kept as evidence}

Rules: exactly one of card/server; end > start; end ≤ now + 5 minutes; end − start ≤ 31 days;
end after the usage horizon (``usage_oldest_accepted``: the start of the billing period
``USAGE_MAX_AGE_MONTHS`` months before now's, billing's late-usage look-back), else the record's
code is ``usage_too_old`` (billing would never look at it).

Storage: the three known telemetry values go to their typed columns; the ``telemetry`` JSON
column keeps only the other keys (NULL when there are none), so nothing is stored twice.

Content hash: BLAKE2b-128 of the canonical content — record kind, normalised card UUID or server
serial, start and end in UTC (ISO 8601), telemetry as sorted-key JSON with whole floats written as
integers — so the same record sent with other JSON spacing, key order, offset (``+08:00`` vs
``Z``) or UUID case is a duplicate, not a conflict.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from hashlib import blake2b
from typing import Any

import msgspec
import orjson
from django.conf import settings
from django.utils.translation import gettext, gettext_noop

from apps.core.periods import Period

MAX_BATCH_RECORDS = 10_000
MAX_FUTURE = timedelta(minutes=5)
MAX_DURATION = timedelta(days=31)
EVENT_ID_MAX_LENGTH = 128
CARD_UUID_MAX_LENGTH = 64
SERIAL_MAX_LENGTH = 100
TIMESTAMP_MAX_LENGTH = 64
TELEMETRY_MAX_KEYS = 32
TELEMETRY_KEY_MAX_LENGTH = 64
TELEMETRY_TEXT_MAX_LENGTH = 256
BIGINT_MAX = 2**63 - 1

RECORD_FIELDS = frozenset({"event_id", "card", "server", "start", "end", "telemetry"})
UTILIZATION = "utilization_percent"
MEMORY = "memory_used_bytes"
ENERGY = "energy_mj"

CODE_INVALID = "invalid"
CODE_CONFLICT = "conflict"
CODE_TOO_OLD = "usage_too_old"

REQUIRED = gettext_noop("This field is required.")
NOT_YOURS_CARD = gettext_noop("No card with this UUID among your provider's hardware.")
NOT_YOURS_SERVER = gettext_noop("No server with this serial among your provider's hardware.")
CONFLICT_STORED = gettext_noop(
    "This event id was already reported with different content; send corrections under a new event id."
)

_COPY_NULL = "\\N"
# The columns ``Batch.copy_data`` writes, in its order: the one list that ``services`` builds its
# COPY and INSERT statements from (tests/metering/test_copy_columns.py holds it to the model).
COPY_COLUMNS = (
    "event_id",
    "content_hash",
    "card_id",
    "server_id",
    "start_at",
    "end_at",
    UTILIZATION,
    MEMORY,
    ENERGY,
    "telemetry",
)


def normalize_card_uuid(value: str) -> str:
    """NVML UUIDs are stored in lower case after the ``GPU-`` prefix (as inventory stores them)."""
    value = value.strip()
    return "GPU-" + value[4:].lower() if value[:4].upper() == "GPU-" else value


@dataclass(slots=True)
class Row:
    """One valid record, its hardware not yet resolved to ids."""

    index: int
    event_id: str
    content_hash: str
    is_card: bool
    ident: str  # normalised card UUID or server serial
    start: str  # UTC, ISO 8601
    end: str
    utilization: str | None  # as text for COPY
    memory: str | None
    energy: str | None
    telemetry: str | None  # JSON of the telemetry keys beyond the three columns, or None
    card_id: int | None = None
    server_id: int | None = None


@dataclass(slots=True)
class Batch:
    rows: list[Row] = field(default_factory=list)
    errors: dict[int, dict[str, Any]] = field(default_factory=dict)
    in_batch_duplicates: int = 0

    def card_uuids(self) -> list[str]:
        return list({row.ident for row in self.rows if row.is_card})

    def serials(self) -> list[str]:
        return list({row.ident for row in self.rows if not row.is_card})

    def resolve(
        self, cards: dict[str, tuple[int, int]], servers: dict[str, int], *, provider_id: int
    ) -> None:
        """Set the hardware ids; a card or server not of this provider becomes a per-record error
        (worded the same whether it is unknown or another provider's: nothing leaks).

        ``cards``: UUID → (card id, provider id); ``servers``: serial → (server id, provider id).
        """
        kept = []
        for row in self.rows:
            if row.is_card:
                found = cards.get(row.ident)
                if found is None or found[1] != provider_id:
                    self.errors[row.index] = error_entry(
                        row.index, row.event_id, {"card": [gettext(NOT_YOURS_CARD)]}
                    )
                    continue
                row.card_id = found[0]
            else:
                found = servers.get(row.ident)
                if found is None or found[1] != provider_id:
                    self.errors[row.index] = error_entry(
                        row.index, row.event_id, {"server": [gettext(NOT_YOURS_SERVER)]}
                    )
                    continue
                row.server_id = found[0]
            kept.append(row)
        self.rows = kept

    def add_conflicts(self, stored: dict[str, str]) -> None:
        """Mark rows whose event id is stored with another content hash (``stored``: id → hash)."""
        for row in self.rows:
            other = stored.get(row.event_id)
            if other is not None and other != row.content_hash:
                self.errors[row.index] = conflict_entry(row.index, row.event_id, gettext(CONFLICT_STORED))

    def error_list(self) -> list[dict[str, Any]]:
        return [self.errors[index] for index in sorted(self.errors)]

    def copy_data(self, rows: list[Row] | None = None, *, head: str = "", tail: str = "") -> bytes:
        """``rows`` (default: all) in PostgreSQL COPY text format (tab-separated, ``\\N`` for NULL),
        the ``COPY_COLUMNS`` in order; ``head`` and ``tail`` (already in COPY format) go before
        and after each line."""
        null = _COPY_NULL
        lines = []
        append = lines.append
        for row in self.rows if rows is None else rows:
            event_id = row.event_id
            if "\\" in event_id:
                event_id = event_id.replace("\\", "\\\\")
            telemetry = row.telemetry
            if telemetry is None:
                telemetry = null
            elif "\\" in telemetry:
                telemetry = telemetry.replace("\\", "\\\\")
            append(
                f"{head}{event_id}\t{row.content_hash}\t"
                f"{null if row.card_id is None else row.card_id}\t"
                f"{null if row.server_id is None else row.server_id}\t"
                f"{row.start}\t{row.end}\t"
                f"{null if row.utilization is None else row.utilization}\t"
                f"{null if row.memory is None else row.memory}\t"
                f"{null if row.energy is None else row.energy}\t"
                f"{telemetry}{tail}\n"
            )
        return "".join(lines).encode()


def error_entry(index: int, event_id: Any, errors: dict[str, list[str]]) -> dict[str, Any]:
    return {
        "index": index,
        "event_id": event_id if isinstance(event_id, str) else None,
        "code": CODE_INVALID,
        "errors": errors,
    }


def conflict_entry(index: int, event_id: str, message: str) -> dict[str, Any]:
    return {"index": index, "event_id": event_id, "code": CODE_CONFLICT, "errors": {"event_id": [message]}}


def usage_oldest_accepted(now: datetime) -> datetime:
    """Records ending at or before this instant are refused (``usage_too_old``): the start of the
    billing period ``USAGE_MAX_AGE_MONTHS`` months before ``now``'s period, the oldest period a
    billing run still bills late usage for."""
    period = Period.containing(now, settings.BILLING_TIME_ZONE)
    for _ in range(settings.USAGE_MAX_AGE_MONTHS):
        period = period.previous()
    return period.bounds(settings.BILLING_TIME_ZONE)[0].astimezone(UTC)


def too_old_problem(oldest: datetime) -> dict[str, list[str]]:
    return {
        "end": [
            gettext("Too old: billing does not look back before %(oldest)s; records must end after it.")
            % {"oldest": oldest.isoformat()}
        ]
    }


# -- timestamps ----------------------------------------------------------------------------------
_TIMESTAMP_HINT = gettext_noop("an ISO 8601 timestamp with a UTC offset, e.g. 2026-11-01T08:15:00+08:00")


def parse_timestamp(value: Any) -> tuple[datetime | None, str | None, str | None]:
    """``(instant in UTC, its ISO 8601 text, None)`` or ``(None, None, error message)``."""
    if type(value) is not str:
        return None, None, gettext("Expected %(hint)s.") % {"hint": gettext(_TIMESTAMP_HINT)}
    if len(value) > TIMESTAMP_MAX_LENGTH:
        return (
            None,
            None,
            gettext("Too long for a timestamp; expected %(hint)s.") % {"hint": gettext(_TIMESTAMP_HINT)},
        )
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return (
            None,
            None,
            gettext("Not a valid timestamp; expected %(hint)s.") % {"hint": gettext(_TIMESTAMP_HINT)},
        )
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        return (
            None,
            None,
            gettext("The timestamp has no UTC offset; expected %(hint)s.")
            % {"hint": gettext(_TIMESTAMP_HINT)},
        )
    try:
        instant = parsed.astimezone(UTC)
    except OverflowError:
        return None, None, gettext("The timestamp is out of range.")
    return instant, instant.isoformat(), None


def check_interval(
    start_value: Any, end_value: Any, horizon: datetime
) -> tuple[str | None, str | None, dict[str, list[str]] | None]:
    """``(start text, end text, None)`` in UTC ISO 8601, or ``(…, {field: [message]})``: both
    given and valid, end after start, at most 31 days, ending by ``horizon``."""
    problems: dict[str, list[str]] = {}
    parsed: dict[str, tuple[datetime | None, str | None]] = {}
    for name, value in (("start", start_value), ("end", end_value)):
        if value is None:
            problems[name] = [gettext(REQUIRED)]
            parsed[name] = (None, None)
            continue
        instant, text, problem = parse_timestamp(value)
        parsed[name] = (instant, text)
        if problem:
            problems[name] = [problem]
    (start, start_text), (end, end_text) = parsed["start"], parsed["end"]
    if start is not None and end is not None:
        if end <= start:
            problems["end"] = [gettext("Must be after start.")]
        elif end > horizon:
            problems["end"] = [
                gettext("Ends more than 5 minutes in the future (after %(horizon)s).")
                % {"horizon": horizon.isoformat()}
            ]
        elif end - start > MAX_DURATION:
            problems["end"] = [gettext("A record may span at most 31 days.")]
    return start_text, end_text, problems or None


# -- telemetry -----------------------------------------------------------------------------------
def _whole(value: Any) -> int | None:
    """An int (floats with no fraction count as ints), or None for anything else (bools included)."""
    kind = type(value)
    if kind is int:
        return value
    if kind is float and value.is_integer():
        return int(value)
    return None


def check_telemetry(
    telemetry: dict[str, Any],
) -> tuple[str | None, str | None, str | None, str | None, str | None, list[str] | None]:
    """``(utilization, memory, energy, canonical JSON, JSON of the extra keys, None)``, or
    ``(…, [error messages])``. Numbers of the three columns come back as text for COPY."""
    problems: list[str] = []
    if len(telemetry) > TELEMETRY_MAX_KEYS:
        return (
            None,
            None,
            None,
            None,
            None,
            [gettext("At most %(count)s telemetry keys.") % {"count": TELEMETRY_MAX_KEYS}],
        )
    canonical: dict[str, Any] = {}
    extras: dict[str, Any] = {}
    utilization = memory = energy = None
    for key, value in telemetry.items():
        if key == UTILIZATION:
            if value is None:
                continue
            kind = type(value)
            if kind is not int and kind is not float:
                problems.append(gettext("%(key)s: expected a number from 0 to 100.") % {"key": UTILIZATION})
            elif not 0 <= value <= 100:
                problems.append(
                    gettext("%(key)s: must be from 0 to 100, got %(value)s.")
                    % {"key": UTILIZATION, "value": value}
                )
            else:
                if kind is float and value.is_integer():
                    value = int(value)
                canonical[key] = value
                utilization = repr(value)
        elif key == MEMORY or key == ENERGY:
            if value is None:
                continue
            number = _whole(value)
            if number is None:
                problems.append(gettext("%(key)s: expected a whole number.") % {"key": key})
            elif not 0 <= number <= BIGINT_MAX:
                problems.append(
                    gettext("%(key)s: must be from 0 to %(max)s.") % {"key": key, "max": BIGINT_MAX}
                )
            else:
                canonical[key] = number
                if key == MEMORY:
                    memory = str(number)
                else:
                    energy = str(number)
        else:  # extra evidence: short scalar values only
            if len(key) > TELEMETRY_KEY_MAX_LENGTH or not key.isprintable():
                problems.append(
                    gettext("%(key)r: not a valid telemetry key.") % {"key": key[:TELEMETRY_KEY_MAX_LENGTH]}
                )
                continue
            kind = type(value)
            if value is None or kind is bool:
                extras[key] = value
            elif kind is int:
                if not -BIGINT_MAX - 1 <= value <= BIGINT_MAX:
                    problems.append(gettext("%(key)s: the number is out of range.") % {"key": key})
                else:
                    extras[key] = value
            elif kind is float:
                extras[key] = int(value) if value.is_integer() and abs(value) <= BIGINT_MAX else value
            elif kind is str:
                if len(value) > TELEMETRY_TEXT_MAX_LENGTH or "\x00" in value:
                    problems.append(
                        gettext("%(key)s: text values are limited to %(count)s characters.")
                        % {"key": key, "count": TELEMETRY_TEXT_MAX_LENGTH}
                    )
                else:
                    extras[key] = value
            else:
                problems.append(
                    gettext("%(key)s: telemetry values must be numbers, text, true/false or null.")
                    % {"key": key}
                )
    if problems:
        return None, None, None, None, None, problems
    if not extras:
        if not canonical:
            return None, None, None, None, None, None
        return utilization, memory, energy, _dumps(canonical), None, None
    extras_json = _dumps(extras)
    return utilization, memory, energy, _dumps({**canonical, **extras}), extras_json, None


def _dumps(value: dict[str, Any]) -> str:
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()


# -- records -------------------------------------------------------------------------------------
def validate_records(records: list[Any], *, now: datetime) -> Batch:
    """Check every record; valid ones become rows, each event id once (in-batch duplicates counted).

    The same event id twice in the batch with the same content counts once (as a duplicate); with
    other content the later one is a ``conflict`` error.
    """
    batch = Batch()
    rows = batch.rows
    errors = batch.errors
    horizon = now + MAX_FUTURE
    oldest = usage_oldest_accepted(now)
    oldest_text = oldest.isoformat()  # UTC ISO 8601 texts compare as the instants do
    fields = RECORD_FIELDS
    uuids: dict[str, str] = {}  # as sent → normalised
    intervals: dict[tuple[str, str], tuple[str | None, str | None, dict[str, list[str]] | None]] = {}
    seen: dict[str, tuple[int, str]] = {}
    digest = blake2b

    for index, record in enumerate(records):
        if type(record) is not dict:
            errors[index] = error_entry(
                index, None, {"non_field_errors": [gettext("Expected a JSON object.")]}
            )
            continue
        problems: dict[str, list[str]] = {}
        if not fields.issuperset(record):
            for key in record:
                if key not in fields:
                    problems[str(key)[:64]] = [gettext("Unknown field.")]

        event_id = record.get("event_id")
        if type(event_id) is not str:
            problems["event_id"] = [gettext(REQUIRED) if event_id is None else gettext("Expected a string.")]
        elif not event_id or len(event_id) > EVENT_ID_MAX_LENGTH:
            problems["event_id"] = [
                gettext("Must be 1 to %(max)s characters.") % {"max": EVENT_ID_MAX_LENGTH}
            ]
        elif not event_id.isprintable():
            problems["event_id"] = [gettext("Must be printable text: no control characters or line breaks.")]

        card = record.get("card")
        server = record.get("server")
        is_card = True
        ident = ""
        if card is not None and server is not None:
            problems["non_field_errors"] = [gettext("Give either card or server, not both.")]
        elif card is not None:
            if type(card) is not str:
                problems["card"] = [gettext("Expected a card UUID string.")]
            elif len(card) > CARD_UUID_MAX_LENGTH or not card.isprintable():
                problems["card"] = [gettext(NOT_YOURS_CARD)]
            else:
                ident = uuids.get(card)
                if ident is None:
                    ident = uuids[card] = normalize_card_uuid(card)
        elif server is not None:
            is_card = False
            if type(server) is not str:
                problems["server"] = [gettext("Expected a server serial string.")]
            elif len(server) > SERIAL_MAX_LENGTH or not server.isprintable():
                problems["server"] = [gettext(NOT_YOURS_SERVER)]
            else:
                ident = server
        else:
            problems["non_field_errors"] = [
                gettext("Give the card (NVML UUID) or the server (serial) the usage is for.")
            ]

        start_value = record.get("start")
        end_value = record.get("end")
        if type(start_value) is str and type(end_value) is str:
            # An agent's batch repeats the same window for every card: check each pair once.
            pair = (start_value, end_value)
            checked = intervals.get(pair)
            if checked is None:
                checked = intervals[pair] = check_interval(start_value, end_value, horizon)
        else:
            checked = check_interval(start_value, end_value, horizon)
        start_text, end_text, interval_problems = checked
        too_old = False
        if interval_problems:
            problems.update(interval_problems)
        elif end_text <= oldest_text:
            too_old = True
            problems.update(too_old_problem(oldest))

        utilization = memory = energy = telemetry_json = extras_json = None
        telemetry = record.get("telemetry")
        if telemetry is not None:
            if type(telemetry) is not dict:
                problems["telemetry"] = [gettext("Expected an object.")]
            elif telemetry:
                u = telemetry.get(UTILIZATION)
                m = telemetry.get(MEMORY)
                e = telemetry.get(ENERGY)
                if (  # the agent's shape, three whole numbers in range: canonical JSON by hand
                    len(telemetry) == 3
                    and type(u) is int
                    and type(m) is int
                    and type(e) is int
                    and 0 <= u <= 100
                    and 0 <= m <= BIGINT_MAX
                    and 0 <= e <= BIGINT_MAX
                ):
                    utilization, memory, energy = str(u), str(m), str(e)
                    telemetry_json = f'{{"energy_mj":{e},"memory_used_bytes":{m},"utilization_percent":{u}}}'
                else:
                    utilization, memory, energy, telemetry_json, extras_json, telemetry_problems = (
                        check_telemetry(telemetry)
                    )
                    if telemetry_problems:
                        problems["telemetry"] = telemetry_problems

        if problems:
            errors[index] = error_entry(index, event_id, problems)
            if too_old and set(problems) == {"end"}:
                errors[index]["code"] = CODE_TOO_OLD
            continue

        content = f"{'card' if is_card else 'server'}\x1f{ident}\x1f{start_text}\x1f{end_text}\x1f{telemetry_json or ''}"
        content_hash = digest(content.encode(), digest_size=16).hexdigest()
        earlier = seen.get(event_id)
        if earlier is not None:
            if earlier[1] == content_hash:
                batch.in_batch_duplicates += 1
            else:
                errors[index] = conflict_entry(
                    index,
                    event_id,
                    gettext(
                        "The same event id is used earlier in this batch (index %(index)s) with different content."
                    )
                    % {"index": earlier[0]},
                )
            continue
        seen[event_id] = (index, content_hash)
        rows.append(
            Row(
                index,
                event_id,
                content_hash,
                is_card,
                ident,
                start_text,
                end_text,
                utilization,
                memory,
                energy,
                extras_json,
            )
        )
    return batch


# -- the agent's shape, decoded and checked fast ----------------------------------------------------
class AgentTelemetry(msgspec.Struct, forbid_unknown_fields=True):
    utilization_percent: int
    memory_used_bytes: int
    energy_mj: int


class AgentRecord(msgspec.Struct, forbid_unknown_fields=True):
    """A card record exactly as the metering agent sends it (``agent.collector.usage_record``)."""

    event_id: str
    card: str
    start: str
    end: str
    telemetry: AgentTelemetry | None = None


class AgentBatch(list):
    """The ``AgentRecord`` structs of a request body, and the body itself (for the general way)."""

    def __init__(self, records: list[AgentRecord], body: bytes) -> None:
        super().__init__(records)
        self.body = body


_agent_batch = msgspec.json.Decoder(list[AgentRecord])


def decode_agent_batch(body: bytes) -> AgentBatch | None:
    """The records of a JSON list of agent-shaped card records, decoded straight into structs
    (about twice as fast as a parse into dicts, and typed); ``None`` for any other body — another
    shape, a wrong type, bad JSON — which then takes the general way (``validate_records`` on the
    parsed JSON, with its per-record errors)."""
    try:
        return AgentBatch(_agent_batch.decode(body), body)
    except (msgspec.MsgspecError, ValueError, RecursionError):  # ValueError: not UTF-8, among others
        return None


def validate_agent_records(records: AgentBatch, *, now: datetime) -> Batch:
    """``validate_records`` for agent-shaped records: the same rows, hashes and duplicate counts.

    Only all-valid batches are built here; at the first doubt (a bound, a bad timestamp, an
    in-batch conflict) the body is parsed as JSON for ``validate_records``, which words the errors.
    """
    batch = Batch()
    rows = batch.rows
    horizon = now + MAX_FUTURE
    oldest_text = usage_oldest_accepted(now).isoformat()
    uuids: dict[str, str] = {}
    intervals: dict[tuple[str, str], tuple[str | None, str | None, dict[str, list[str]] | None]] = {}
    seen: dict[str, str] = {}
    digest = blake2b
    for index, record in enumerate(records):
        event_id = record.event_id
        if not event_id or len(event_id) > EVENT_ID_MAX_LENGTH or not event_id.isprintable():
            return _general(records, now)
        card = record.card
        ident = uuids.get(card)
        if ident is None:
            if len(card) > CARD_UUID_MAX_LENGTH or not card.isprintable():
                return _general(records, now)
            ident = uuids[card] = normalize_card_uuid(card)
        pair = (record.start, record.end)
        checked = intervals.get(pair)
        if checked is None:
            checked = intervals[pair] = check_interval(record.start, record.end, horizon)
        start_text, end_text, problems = checked
        if problems or end_text <= oldest_text:
            return _general(records, now)
        telemetry = record.telemetry
        if telemetry is None:
            utilization = memory = energy = None
            telemetry_json = ""
        else:
            u, m, e = telemetry.utilization_percent, telemetry.memory_used_bytes, telemetry.energy_mj
            if not (0 <= u <= 100 and 0 <= m <= BIGINT_MAX and 0 <= e <= BIGINT_MAX):
                return _general(records, now)
            utilization, memory, energy = str(u), str(m), str(e)
            telemetry_json = f'{{"energy_mj":{e},"memory_used_bytes":{m},"utilization_percent":{u}}}'
        content = f"card\x1f{ident}\x1f{start_text}\x1f{end_text}\x1f{telemetry_json}"
        content_hash = digest(content.encode(), digest_size=16).hexdigest()
        earlier = seen.get(event_id)
        if earlier is not None:
            if earlier != content_hash:
                return _general(records, now)
            batch.in_batch_duplicates += 1
            continue
        seen[event_id] = content_hash
        rows.append(
            Row(
                index,
                event_id,
                content_hash,
                True,
                ident,
                start_text,
                end_text,
                utilization,
                memory,
                energy,
                None,
            )
        )
    return batch


def _general(records: AgentBatch, now: datetime) -> Batch:
    try:
        parsed = orjson.loads(records.body)
    except orjson.JSONDecodeError:  # integers beyond 64 bits, which msgspec takes and orjson not
        parsed = json.loads(records.body)
    return validate_records(parsed, now=now)
