"""One sampling cycle, and the loop that runs a cycle near the end of every window.

A cycle, under the spool lock:

1. read NVML and build the records of the window the clock is in (``collector``);
2. drop records for windows already reported for that card (``P.state``) or already waiting in
   the spool, so an event id is never reused with different telemetry;
3. append the new records to the spool (fsync) and remember their windows;
4. send everything in the spool, oldest first, in batches; remove what the API accepted
   (or counted as duplicates), move what it refused for good to ``P.rejected``, keep the rest;
5. with an incident tracker (the agent key's default): read the cards' health, turn it into
   incident records (``incidents``), keep them in ``P.incidents`` and send them to
   ``/api/v1/agent/incidents/`` the same way (docs/hardware-truth.md#sources-and-incidents).

A record is sent only once its window ends at most 4 minutes from now (the API refuses records
ending more than 5 minutes ahead); with the default 60 s interval that is at once.
"""

from __future__ import annotations

import json
import logging
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from apps.metering.agent.collector import MODE_ALWAYS, build_records, window_containing
from apps.metering.agent.incidents import DEFAULT_THROTTLE_SECONDS, IncidentTracker
from apps.metering.agent.nvml import CardReader
from apps.metering.agent.sender import Sender, batches, rejected_indexes
from apps.metering.agent.spool import Spool

logger = logging.getLogger(__name__)

SEND_AHEAD = timedelta(minutes=4)
MAX_INCIDENTS_PER_POST = 1000  # the incidents endpoint's limit; the rest wait for the next cycle
SAMPLE_LEAD_SECONDS = 2.0  # the daemon samples a window this long before it ends

Clock = Callable[[], datetime]


@dataclass(slots=True)
class CycleReport:
    window_start: datetime | None = None
    window_end: datetime | None = None
    sampled: int = 0  # new records written this cycle
    already_reported: int = 0  # records dropped because their window was reported before
    accepted: int = 0
    duplicates: int = 0
    rejected: int = 0
    pending: int = 0  # records left in the spool after the cycle
    sampling_failed: bool = False
    delivery_failed: bool = False
    incidents_new: int = 0  # incident records this cycle's health read brought
    incidents_sent: int = 0
    incidents_pending: int = 0

    @property
    def ok(self) -> bool:
        """Nothing went wrong: NVML read, and no record refused or kept back by an API failure."""
        return not (self.sampling_failed or self.delivery_failed or self.rejected)


def _parse(value: Any) -> datetime | None:
    try:
        parsed = datetime.fromisoformat(value)
    except (TypeError, ValueError):
        return None
    return parsed if parsed.tzinfo is not None else None


class Agent:
    def __init__(
        self,
        *,
        reader: CardReader,
        now: Clock,
        interval: int = 60,
        mode: str = "busy",
        spool: Spool | None = None,
        sender: Sender | None = None,
        dry_run: Callable[[list[dict[str, Any]]], Any] | None = None,
        incidents: bool = False,
        throttle_seconds: int = DEFAULT_THROTTLE_SECONDS,
    ) -> None:
        """``dry_run``: instead of spooling and sending, hand each cycle's records to it.
        ``incidents``: also read the cards' health and report incidents (an agent key)."""
        self.incidents = incidents
        self.throttle_seconds = throttle_seconds
        self.reader = reader
        self.dry_run = dry_run
        self.now = now
        self.interval = interval
        self.mode = mode
        self.spool = spool
        self.sender = sender

    # -- sampling ------------------------------------------------------------------------------
    def sample(self, at: datetime | None = None) -> list[dict[str, Any]]:
        """The records of the window containing ``at`` (default ``now()``); reads NVML, writes nothing."""
        at = at or self.now()
        samples = self.reader.read_cards(query_processes=self.mode != MODE_ALWAYS)
        records = build_records(samples, at=at, interval=self.interval, mode=self.mode)
        logger.debug("read %d cards, %d busy (%s mode)", len(samples), len(records), self.mode)
        return records

    # -- one cycle -----------------------------------------------------------------------------
    def cycle(
        self, *, sample: bool = True, at: datetime | None = None, send_until: datetime | None = None
    ) -> CycleReport:
        """Sample (unless ``sample=False``), spool, and send everything spooled.

        The sample counts for the window containing ``at`` (default: ``now()``). After
        ``send_until`` no further batch is started (the daemon keeps its next sample on time
        while it works off a long backlog).
        """
        report = CycleReport()
        if self.dry_run is not None:
            if sample:
                self._dry_cycle(report, at)
            return report
        if self.spool is None or self.sender is None:
            raise RuntimeError("a cycle needs a spool and a sender, or a dry_run output")
        with self.spool.locked():
            pending, unreadable = self.spool.read()
            if sample:
                at = at or self.now()
                report.window_start, report.window_end = window_containing(at, self.interval)
                try:
                    records = self.sample(at)
                except Exception as exc:  # one failed read must not stop the daemon
                    logger.error(
                        "cannot read NVML this cycle: %s", exc, exc_info=logger.isEnabledFor(logging.DEBUG)
                    )
                    report.sampling_failed = True
                    records = []
                new = self._unreported(records, pending, report)
                if new:
                    self._spool_new(new)
                    pending.extend(new)
            self._send(pending, unreadable, report, send_until)
            if self.incidents:
                self._incidents(report, at if sample else None)
        self._log(report)
        return report

    def _dry_cycle(self, report: CycleReport, at: datetime | None) -> None:
        assert self.dry_run is not None
        at = at or self.now()
        report.window_start, report.window_end = window_containing(at, self.interval)
        try:
            records = self.sample(at)
        except Exception as exc:
            logger.error("cannot read NVML: %s", exc, exc_info=logger.isEnabledFor(logging.DEBUG))
            report.sampling_failed = True
            return
        report.sampled = len(records)
        self.dry_run(records)

    def _unreported(
        self, records: list[dict[str, Any]], pending: list[dict[str, Any]], report: CycleReport
    ) -> list[dict[str, Any]]:
        assert self.spool is not None
        waiting = {record["event_id"] for record in pending}
        last = {card: _parse(start) for card, start in self.spool.load_state().items()}
        new = []
        for record in records:
            reported_up_to = last.get(record["card"])
            start = _parse(record["start"])
            if record["event_id"] in waiting or (reported_up_to and start and start <= reported_up_to):
                report.already_reported += 1
                logger.info("%s: window already reported, not sent again", record["event_id"])
                continue
            new.append(record)
        report.sampled = len(new)
        return new

    def _spool_new(self, new: list[dict[str, Any]]) -> None:
        assert self.spool is not None
        try:
            self.spool.append(new)
        except OSError as exc:
            logger.error("cannot write the spool %s (%s); sending without it", self.spool.path, exc)
        try:
            state = self.spool.load_state()
            state.update({record["card"]: record["start"] for record in new})
            self.spool.save_state(state)
        except OSError as exc:
            logger.error("cannot write the state file %s: %s", self.spool.state_path, exc)

    def _send(
        self,
        pending: list[dict[str, Any]],
        unreadable: int,
        report: CycleReport,
        send_until: datetime | None,
    ) -> None:
        assert self.spool is not None and self.sender is not None
        horizon = self.now() + SEND_AHEAD
        due = []
        for record in pending:
            end = _parse(record.get("end"))
            if end is None or end <= horizon:  # an unparsable end is the server's to judge
                due.append(record)
        done: set[str] = set()  # event ids accepted, duplicates or rejected
        queue = deque(batches(due))
        while queue:
            if send_until is not None and self.now() >= send_until:
                logger.info("send time of this cycle used up; the rest waits for the next cycle")
                break
            batch = queue.popleft()
            result = self.sender.post(batch)
            if result.outcome == "delivered":
                report.accepted += result.accepted
                report.duplicates += result.duplicates
                done.update(record["event_id"] for record in batch)
            elif result.outcome == "rejected":
                # The batch is atomic at the server: nothing of it was stored. Set aside the
                # records the answer names and send the rest again at once.
                bad = rejected_indexes(result.response, batch)
                refused = batch if bad is None else [batch[i] for i in sorted(bad)]
                self._reject(refused, result.status, result.response, whole=bad is None, size=len(batch))
                report.rejected += len(refused)
                done.update(record["event_id"] for record in refused)
                rest = [] if bad is None else [record for i, record in enumerate(batch) if i not in bad]
                if rest:
                    queue.appendleft(rest)
            else:  # the API is down or unwell: keep the rest for the next cycle
                report.delivery_failed = True
                logger.warning(
                    "%s; %d records kept in the spool for the next cycle", result.reason, len(due) - len(done)
                )
                break
        remaining = [record for record in pending if record["event_id"] not in done]
        report.pending = len(remaining)
        if done or unreadable:
            try:
                self.spool.replace(remaining)
            except OSError as exc:  # they will be sent again: duplicates, not doubles
                logger.error("cannot rewrite the spool %s: %s", self.spool.path, exc)

    # -- incidents -----------------------------------------------------------------------------
    def _incidents(self, report: CycleReport, at: datetime | None) -> None:
        """Read health (when sampling), track incidents, send the pending incident records."""
        assert self.spool is not None and self.sender is not None
        saved = self.spool.load_incidents()
        tracker = IncidentTracker(throttle_seconds=self.throttle_seconds, state=saved.get("tracker"))
        pending: list[dict[str, Any]] = [r for r in saved.get("pending") or [] if isinstance(r, dict)]
        read_health = getattr(self.reader, "read_health", None)
        if at is not None and read_health is not None:
            try:
                new = tracker.observe(read_health(), at)
            except Exception as exc:  # health is evidence: a failed read must not stop usage
                logger.error("cannot read the cards' health this cycle: %s", exc)
                new = []
            report.incidents_new = len(new)
            for record in new:
                logger.warning(
                    "incident %s on %s %s",
                    record["kind"],
                    record["card"],
                    "ended" if record["end"] else "began",
                )
            # the latest record of an incident says all: an end replaces the unsent start
            latest = {record["event_id"]: record for record in [*pending, *new]}
            pending = list(latest.values())
        if pending:
            batch, rest = pending[:MAX_INCIDENTS_PER_POST], pending[MAX_INCIDENTS_PER_POST:]
            result = self.sender.post_incidents(batch)
            if result.outcome == "delivered":
                report.incidents_sent = len(batch)
                pending = rest
            elif result.outcome == "rejected":
                bad = rejected_indexes(result.response, batch)
                refused = batch if bad is None else [batch[i] for i in sorted(bad)]
                self._reject(refused, result.status, result.response, whole=bad is None, size=len(batch))
                report.rejected += len(refused)
                kept = [] if bad is None else [r for i, r in enumerate(batch) if i not in bad]
                pending = kept + rest
            else:
                report.delivery_failed = True
                logger.warning("%s; %d incident records kept for the next cycle", result.reason, len(pending))
        report.incidents_pending = len(pending)
        try:
            self.spool.save_incidents({"tracker": tracker.state(), "pending": pending})
        except OSError as exc:
            logger.error("cannot write the incident file %s: %s", self.spool.incidents_path, exc)

    def _reject(
        self, refused: list[dict[str, Any]], status: int | None, response: Any, *, whole: bool, size: int
    ) -> None:
        assert self.spool is not None
        which = f"the whole batch of {size}" if whole else f"{len(refused)} of a batch of {size}"
        answer = response if isinstance(response, str) else json.dumps(response, ensure_ascii=False)
        logger.error(
            "the API refused %s records for good (HTTP %s): %.1000s; moved to %s",
            which,
            status,
            answer,
            self.spool.rejected_path,
        )
        try:
            self.spool.reject(refused, status=status, response=response, at=self.now())
        except OSError as exc:
            logger.error("cannot write %s: %s", self.spool.rejected_path, exc)

    def _log(self, report: CycleReport) -> None:
        sent = report.accepted + report.duplicates
        level = logging.INFO if report.ok else logging.WARNING
        logger.log(
            level,
            "cycle: %d new records, %d sent (%d accepted, %d duplicates), %d rejected, %d in spool",
            report.sampled,
            sent,
            report.accepted,
            report.duplicates,
            report.rejected,
            report.pending,
        )
        if self.incidents and (report.incidents_new or report.incidents_sent or report.incidents_pending):
            logger.log(
                level,
                "incidents: %d new reports, %d sent, %d waiting in %s",
                report.incidents_new,
                report.incidents_sent,
                report.incidents_pending,
                self.spool.incidents_path if self.spool else "-",
            )

    # -- the daemon ----------------------------------------------------------------------------
    def run(self, stop: threading.Event, sleep: Callable[[float], Any] | None = None) -> None:
        """Until ``stop`` is set: resend the spool now, then sample each window once, near its end.

        The daemon aims at one window at a time and wakes ``SAMPLE_LEAD_SECONDS`` before its end.
        Woken a little late (up to ``min(10 s, interval / 2)`` past the end), the sample still
        counts for the window aimed at; woken later than that (a suspended host), that window
        gets no record and the daemon aims at the window it is in.
        """
        wait = sleep or stop.wait
        lead = timedelta(seconds=min(SAMPLE_LEAD_SECONDS, self.interval / 2))
        tolerance = timedelta(seconds=min(10.0, self.interval / 2))
        step = timedelta(seconds=self.interval)
        self._guarded(sample=False)
        target_end: datetime | None = None
        while not stop.is_set():
            now = self.now()
            if target_end is None or now >= target_end + tolerance:
                if target_end is not None:
                    logger.warning(
                        "woke up %s after the window ending %s: it has no sample",
                        now - target_end,
                        target_end,
                    )
                _, target_end = window_containing(now, self.interval)
            delay = (target_end - lead - now).total_seconds()
            if delay > 0:
                wait(delay)
                if stop.is_set():
                    break
                now = self.now()
                if now >= target_end + tolerance:
                    continue  # stalled while asleep; warned above on the next turn
            at = now if target_end - step <= now < target_end else target_end - lead
            self._guarded(at=at, send_until=target_end + step / 2)
            target_end += step

    def _guarded(self, **cycle_arguments: Any) -> None:
        """A cycle whose failure (an unreadable spool, say) is logged and does not end the daemon."""
        try:
            self.cycle(**cycle_arguments)
        except Exception:
            logger.exception("cycle failed; trying again next window")
