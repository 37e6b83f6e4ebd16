"""Command line: ``python -m apps.metering.agent [options]`` (see ``--help``)."""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import threading
import urllib.request
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from apps.metering.agent.agent import Agent, Clock
from apps.metering.agent.collector import MODE_ALWAYS, MODE_BUSY, MODES
from apps.metering.agent.incidents import DEFAULT_THROTTLE_SECONDS
from apps.metering.agent.nvml import CardReader, Nvml, NvmlUnavailable
from apps.metering.agent.sender import AGENT_USAGE_PATH, USAGE_PATH, Sender
from apps.metering.agent.spool import Spool

PROG = "python -m apps.metering.agent"
DEFAULT_URL = "http://127.0.0.1:8000"
DEFAULT_SPOOL = "./suanli-agent-spool.jsonl"
EXIT_OK, EXIT_INCOMPLETE, EXIT_UNUSABLE = 0, 1, 2

DESCRIPTION = """\
Suanli metering agent (docs/usage-api.md#metering-agent). Reads NVML every INTERVAL
seconds and reports each card's time (every card present, or only busy ones: --mode)
as usage records, one per card and window,
to POST {URL}/api/v1/agent/usage/ with the server's agent key (--key agent, the default;
manage.py create_agent_key SERIAL), or to POST {URL}/api/v1/usage/ with a provider's
partner key (--key partner). With the agent key it also reports hardware incidents (Xid
errors, double-bit ECC errors, a card fallen off the bus, thermal or power throttling
longer than --throttle-seconds) to POST {URL}/api/v1/agent/incidents/.
Windows are [k*INTERVAL, (k+1)*INTERVAL) seconds since the epoch (UTC); the event id is
"<card uuid>:<window start>", so a resend is counted as a duplicate, never billed twice.
Records are spooled before they are sent and kept until the API has answered for them."""

EPILOG = """\
files (next to --spool P):
  P           records not yet accepted (JSON lines; resent every cycle)
  P.rejected  records the API refused for good (HTTP 400/409/422), with its answer
  P.state     last window reported per card (a window is reported once)
  P.incidents open incidents and incident reports not yet accepted
  P.lock      held while a cycle runs

--once samples the window it runs in, [floor(now), floor(now)+INTERVAL), sends it with
anything spooled, and exits. The daemon samples each window 2 s before it ends.

exit status: 0 all done; 1 NVML read failed or records were refused or kept in the
spool because the API could not be reached; 2 unusable (no NVML, no API key, bad option).

environment: SUANLI_URL, SUANLI_API_KEY (prefer it to --api-key, which shows in ps)."""


def _interval(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number of seconds: {text!r}") from None
    if not 1 <= value <= 86400:
        raise argparse.ArgumentTypeError("must be between 1 and 86400 seconds")
    return value


def _timeout(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not 0 < value <= 600:
        raise argparse.ArgumentTypeError("must be more than 0 and at most 600 seconds")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--url",
        default=os.environ.get("SUANLI_URL") or DEFAULT_URL,
        help=f"Suanli base URL (default: $SUANLI_URL or {DEFAULT_URL})",
    )
    parser.add_argument("--api-key", help="API key (default: $SUANLI_API_KEY)")
    parser.add_argument(
        "--key",
        choices=("agent", "partner"),
        default="agent",
        help="agent: the server's agent key (agent usage and incidents); partner: a provider's partner "
        "key (partner usage, no incidents) (default: agent)",
    )
    parser.add_argument(
        "--throttle-seconds",
        type=_interval,
        default=DEFAULT_THROTTLE_SECONDS,
        metavar="SECONDS",
        help=f"report throttling that lasts at least this long (default: {DEFAULT_THROTTLE_SECONDS})",
    )
    parser.add_argument("--no-incidents", action="store_true", help="do not report hardware incidents")
    parser.add_argument(
        "--interval", type=_interval, default=60, metavar="SECONDS", help="window length (default: 60)"
    )
    parser.add_argument(
        "--mode",
        choices=MODES,
        default=None,
        help="busy: cards with compute processes; always: every card present, with its utilisation "
        "(default: always with --key agent, the evidence reconciliation reads; busy with --key partner)",
    )
    parser.add_argument(
        "--spool", default=DEFAULT_SPOOL, metavar="PATH", help=f"spool file (default: {DEFAULT_SPOOL})"
    )
    parser.add_argument("--once", action="store_true", help="run one cycle and exit")
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="print the records as JSON on stdout; send nothing, write no file",
    )
    parser.add_argument(
        "--timeout", type=_timeout, default=30.0, metavar="SECONDS", help="HTTP timeout (default: 30)"
    )
    parser.add_argument(
        "--log-level",
        choices=("DEBUG", "INFO", "WARNING", "ERROR"),
        default="INFO",
        type=str.upper,
        help="log level on stderr (default: INFO)",
    )
    return parser


def _configure_logging(level: str) -> None:
    logging.getLogger("apps.metering.agent").setLevel(level)
    root = logging.getLogger()
    if not root.handlers:  # standalone: log to stderr; embedded (tests): leave it to the host
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        root.addHandler(handler)


def _fail(message: str) -> int:
    print(f"suanli-agent: error: {' '.join(message.split())}", file=sys.stderr)
    return EXIT_UNUSABLE


def _print_records(records: list[dict[str, Any]]) -> None:
    sys.stdout.write(json.dumps(records, indent=2, ensure_ascii=False) + "\n")
    sys.stdout.flush()


def _stop_on_signals(stop: threading.Event) -> dict[int, Any]:
    """SIGINT/SIGTERM end the daemon after the cycle in progress; returns the old handlers."""
    if threading.current_thread() is not threading.main_thread():
        return {}
    return {
        signum: signal.signal(signum, lambda *_: stop.set()) for signum in (signal.SIGINT, signal.SIGTERM)
    }


def main(
    argv: Sequence[str] | None = None,
    *,
    reader: CardReader | None = None,
    now: Clock | None = None,
    sleep: Callable[[float], Any] | None = None,
    stop: threading.Event | None = None,
    opener: urllib.request.OpenerDirector | None = None,
) -> int:
    """The entry point; the keyword arguments let tests replace NVML, the clock and sleeping."""
    args = build_parser().parse_args(argv)
    if args.mode is None:
        args.mode = MODE_ALWAYS if args.key == "agent" else MODE_BUSY
    _configure_logging(args.log_level)
    log = logging.getLogger(__name__)

    api_key = args.api_key or os.environ.get("SUANLI_API_KEY", "")
    if not args.dry_run and not api_key:
        return _fail("no API key: pass --api-key or set SUANLI_API_KEY")
    if not args.url.startswith(("http://", "https://")):
        return _fail(f"--url must start with http:// or https://, not {args.url!r}")

    reader = reader or Nvml()
    try:
        reader.open()
    except NvmlUnavailable as exc:
        return _fail(str(exc))
    try:
        sender = None
        if not args.dry_run:
            path = AGENT_USAGE_PATH if args.key == "agent" else USAGE_PATH
            sender = Sender(url=args.url, api_key=api_key, timeout=args.timeout, opener=opener, path=path)
        agent = Agent(
            reader=reader,
            now=now or (lambda: datetime.now(UTC)),
            interval=args.interval,
            mode=args.mode,
            spool=None if args.dry_run else Spool(args.spool),
            sender=sender,
            dry_run=_print_records if args.dry_run else None,
            incidents=args.key == "agent" and not args.no_incidents,
            throttle_seconds=args.throttle_seconds,
        )
        if args.once:
            report = agent.cycle()
            return EXIT_OK if report.ok else EXIT_INCOMPLETE
        stop = stop or threading.Event()
        previous_handlers = _stop_on_signals(stop)
        log.info(
            "agent started: %s mode, %d s windows, %s",
            args.mode,
            args.interval,
            f"sending to {sender.endpoint}" if sender else "dry run",
        )
        try:
            agent.run(stop, sleep)
        finally:
            for signum, handler in previous_handlers.items():
                signal.signal(signum, handler)
        log.info("agent stopped")
        return EXIT_OK
    finally:
        reader.close()
