"""The agent's durable local files, all next to the spool path ``P``.

``P`` (spool, JSON lines)
    The outbox: every record is appended here (and fsync'd) *before* it is sent, and removed
    only after the API has accepted it or permanently rejected it. Appends are one ``write`` of
    whole lines on an ``O_APPEND`` descriptor; removal rewrites the file to ``P.tmp`` and
    renames it over ``P``. A crash therefore can damage at most the line being appended: earlier
    lines are never rewritten in place. On reading, a line that is not a JSON object (a torn
    last line) is logged and skipped; before appending after a torn line a newline is written so
    the torn bytes stay on their own line.
``P.rejected`` (JSON lines)
    Records the API refused for good (HTTP 400/409/422), one per line with the reason:
    ``{"rejected_at", "status", "response", "record"}``; ``jq -c .record P.rejected`` gives
    records to fix and resend. Never read back by the agent.
``P.state`` (JSON)
    The last window start reported per card. A window is reported at most once per card, so a
    restart or a second ``--once`` in the same window cannot send a different record under an
    event id already used (the server would count it as a conflict, not a duplicate).
``P.incidents`` (JSON)
    Hardware incidents (docs/hardware-truth.md#sources-and-incidents): the ones open now and the
    last ECC counter per card (``tracker``), and the incident records not yet accepted by the API
    (``pending``), so a restart neither forgets an open incident nor loses its end.
``P.lock``
    ``flock``ed during a cycle, so a daemon and a ``--once`` run on one spool take turns.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:  # not every platform opens directories
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _encode_lines(items: Iterable[dict[str, Any]]) -> bytes:
    return b"".join(
        json.dumps(item, ensure_ascii=False, separators=(",", ":")).encode() + b"\n" for item in items
    )


def _append_durably(path: Path, data: bytes) -> None:
    """Append whole lines and fsync; a torn last line left by a crash is closed off first."""
    if not data:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    created = not path.exists()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        size = os.fstat(fd).st_size
        if size:
            with open(path, "rb") as existing:
                existing.seek(size - 1)
                if existing.read(1) != b"\n":
                    data = b"\n" + data
        view = memoryview(data)
        while view:  # one write in practice; loop for the partial-write case
            written = os.write(fd, view)
            view = view[written:]
        os.fsync(fd)
    finally:
        os.close(fd)
    if created:
        _fsync_dir(path.parent)


def _replace_durably(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        view = memoryview(data)
        while view:
            written = os.write(fd, view)
            view = view[written:]
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    _fsync_dir(path.parent)


class Spool:
    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.rejected_path = self.path.with_name(self.path.name + ".rejected")
        self.state_path = self.path.with_name(self.path.name + ".state")
        self.lock_path = self.path.with_name(self.path.name + ".lock")
        self.incidents_path = self.path.with_name(self.path.name + ".incidents")

    # -- the outbox -------------------------------------------------------------------------
    def read(self) -> tuple[list[dict[str, Any]], int]:
        """``(records, unreadable line count)``; records in file order, first of each event id."""
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return [], 0
        records: list[dict[str, Any]] = []
        seen: set[str] = set()
        unreadable = 0
        for number, line in enumerate(raw.split(b"\n"), start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except ValueError:
                record = None
            if not isinstance(record, dict) or not isinstance(record.get("event_id"), str):
                unreadable += 1
                logger.warning(
                    "spool %s line %d is not a usage record (torn write?), skipped: %.120r",
                    self.path,
                    number,
                    line,
                )
                continue
            if record["event_id"] in seen:
                continue
            seen.add(record["event_id"])
            records.append(record)
        return records, unreadable

    def append(self, records: Iterable[dict[str, Any]]) -> None:
        _append_durably(self.path, _encode_lines(records))

    def replace(self, records: Iterable[dict[str, Any]]) -> None:
        """Make the spool hold exactly ``records`` (atomic rename; earlier content stays whole)."""
        _replace_durably(self.path, _encode_lines(records))

    # -- permanent rejections ------------------------------------------------------------------
    def reject(
        self, records: Iterable[dict[str, Any]], *, status: int | None, response: Any, at: datetime
    ) -> None:
        _append_durably(
            self.rejected_path,
            _encode_lines(
                {
                    "rejected_at": at.astimezone(UTC).isoformat(),
                    "status": status,
                    "response": response,
                    "record": record,
                }
                for record in records
            ),
        )

    # -- last reported window per card ---------------------------------------------------------
    def load_state(self) -> dict[str, str]:
        """``{card uuid: last reported window start (ISO 8601, UTC)}``."""
        try:
            data = json.loads(self.state_path.read_bytes())
        except FileNotFoundError:
            return {}
        except ValueError:
            logger.warning("state file %s is unreadable, starting afresh", self.state_path)
            return {}
        windows = data.get("last_window_start") if isinstance(data, dict) else None
        if not isinstance(windows, dict):
            logger.warning("state file %s has an unknown shape, starting afresh", self.state_path)
            return {}
        return {str(card): str(start) for card, start in windows.items()}

    def save_state(self, last_window_start: dict[str, str]) -> None:
        data = {"version": 1, "last_window_start": dict(sorted(last_window_start.items()))}
        _replace_durably(self.state_path, json.dumps(data, indent=1).encode() + b"\n")

    # -- hardware incidents ----------------------------------------------------------------------
    def load_incidents(self) -> dict[str, Any]:
        """``{"tracker": {...}, "pending": [incident records]}``; empty when there is none yet."""
        try:
            data = json.loads(self.incidents_path.read_bytes())
        except FileNotFoundError:
            return {}
        except ValueError:
            logger.warning("incident file %s is unreadable, starting afresh", self.incidents_path)
            return {}
        return data if isinstance(data, dict) else {}

    def save_incidents(self, data: dict[str, Any]) -> None:
        _replace_durably(self.incidents_path, json.dumps({"version": 1, **data}, indent=1).encode() + b"\n")

    # -- one agent at a time -------------------------------------------------------------------
    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        try:
            import fcntl
        except ImportError:  # not POSIX: the agent targets Linux GPU hosts; run it alone elsewhere
            yield
            return
        self.lock_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.lock_path, "a") as handle:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
