"""Portal benchmark (not a test): server time of the customer's pages with 100,000 usage records.

    .venv/bin/python bench/portal.py [--records 100000] [--requests 50] [--keep]

Builds a scratch database (``suanli_bench_portal`` on the server of ``BENCH_DATABASE_URL``,
default ``postgres://postgres@127.0.0.1:5432/postgres``), migrates it, loads the demo, and adds
``--records`` usage records over the last 90 days on the demo customer acme's allocated hourly
cards, through the real ingestion service. Then, in this process, it logs in as the demo's portal
user and times the dashboard, the invoice list, the usage list and an invoice detail (server time:
Django's test client, no network), median and p95 over ``--requests`` requests each, with the
number of SQL queries. The floor, measured in the same run, is the portal login page (template
rendering and middleware, no data). The last line is

    portal: invoice list p95 <a> ms, dashboard p95 <b> ms (target 200 ms; cold <c> ms), usage list …

The dashboard keeps its usage figures in Django's cache for PORTAL_DASHBOARD_CACHE_SECONDS
(docs/portal.md#dashboard): "dashboard" is the page as customers get it within that time, and
"dashboard, cold" empties the cache before every request.
"""

from __future__ import annotations

import argparse
import datetime
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
DB_NAME = "suanli_bench_portal"

from bench.billing import machine  # noqa: E402


def admin_url() -> str:
    return os.environ.get("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres")


def scratch_url() -> str:
    return f"{admin_url().rsplit('/', 1)[0]}/{DB_NAME}"


def psql_admin(sql: str) -> None:
    import psycopg

    with psycopg.connect(admin_url(), autocommit=True) as conn:
        conn.execute(sql)


def build(env: dict) -> None:
    psql_admin(f'DROP DATABASE IF EXISTS "{DB_NAME}" WITH (FORCE)')
    psql_admin(f'CREATE DATABASE "{DB_NAME}"')
    for command in (["migrate", "--noinput", "-v", "0"], ["loaddemo"]):
        subprocess.run(
            [sys.executable, "manage.py", *command], cwd=ROOT, env=env, check=True, capture_output=True
        )


def _ingest(allocation, batch: list[dict], now) -> None:
    from apps.metering.services import UsageRejected, usage_ingest

    try:
        usage_ingest(provider=allocation.card.server.provider, payload_records=batch, received_at=now)
    except UsageRejected as exc:
        raise SystemExit(f"usage refused: {exc.message} {exc.errors[:2]}") from exc


def add_usage(records: int) -> int:
    """``records`` sessions on acme's hourly cards over the last 90 days, 10,000 per batch."""
    from django.utils import timezone
    from tqdm import tqdm

    from apps.contracts.models import Allocation

    allocations = list(
        Allocation.objects.filter(
            line__contract__customer__code="acme", line__term="hourly", card__isnull=False, firm=True
        ).select_related("card__server__provider")
    )
    if not allocations:
        raise SystemExit("the demo customer acme has no hourly card allocation")
    now = timezone.now()
    per_card = -(-records // len(allocations))
    made = 0
    batch: list[dict] = []
    with tqdm(total=records, unit="record", desc="usage") as bar:
        for allocation in allocations:
            start0 = max(now - datetime.timedelta(days=90), allocation.start_at)
            step = (now - start0) / per_card  # sessions spread evenly, each 80 % of its slot
            for i in range(per_card):
                if made >= records:
                    break
                start = start0 + step * i
                end = start + step * 0.8
                batch.append(
                    {
                        "event_id": f"bench-{allocation.card.uuid}-{i}",
                        "card": allocation.card.uuid,
                        "start": start.isoformat(),
                        "end": end.isoformat(),
                        "telemetry": {"utilization_percent": 35 + (i * 7) % 60},
                    }
                )
                made += 1
                if len(batch) == 10_000:
                    _ingest(allocation, batch, now)
                    bar.update(len(batch))
                    batch = []
            if batch:
                _ingest(allocation, batch, now)
                bar.update(len(batch))
                batch = []
    return made


def timed(client, url: str, requests: int, *, cold: bool = False) -> tuple[float, float, int]:
    """Median and p95 ms and the query count; ``cold`` empties Django's cache before each request."""
    from django.core.cache import cache
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    client.get(url)  # templates and translations loaded
    times = []
    queries = 0
    for _ in range(requests):
        if cold:
            cache.clear()
        with CaptureQueriesContext(connection) as captured:
            start = time.perf_counter()
            response = client.get(url)
            times.append((time.perf_counter() - start) * 1000)
        assert response.status_code == 200, (url, response.status_code)
        queries = len(captured)
    times.sort()
    return statistics.median(times), times[max(0, int(len(times) * 0.95) - 1)], queries


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=50)
    parser.add_argument("--keep", action="store_true", help="keep the scratch database")
    args = parser.parse_args()

    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "DATABASE_URL": scratch_url(),
        "PORTAL_DASHBOARD_CACHE_SECONDS": "300",  # as in production
    }
    print(f"machine: {machine()}")
    started = time.perf_counter()
    build(env)
    os.environ.update(env)
    import django

    django.setup()
    from bench.harness import test_client_environment, web_worker_heap

    test_client_environment()  # docs/scaling.md#the-benchmarks
    from django.contrib.auth import get_user_model
    from django.test import Client
    from django.urls import reverse

    from apps.billing.models import Invoice
    from apps.metering.models import UsageRecord

    made = add_usage(args.records)
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")  # as autovacuum would after a day's load
    print(
        f"built in {time.perf_counter() - started:.0f} s: {UsageRecord.objects.count()} usage records, {made} for acme"
    )
    try:
        web_worker_heap()  # as a web worker's heap is once the application is loaded
        anonymous = Client()
        floor_median, floor_p95, _ = timed(anonymous, reverse("portal:login"), args.requests)
        client = Client()
        client.force_login(get_user_model().objects.get(username="acme-user"))
        invoice = Invoice.objects.filter(customer__code="acme").exclude(status="draft").order_by("pk").first()
        pages = {
            "dashboard": reverse("portal:dashboard"),
            "invoice list": reverse("portal:invoice_list"),
            "invoice detail": reverse("portal:invoice_detail", args=[invoice.pk]),
            "usage list": reverse("portal:usage_list"),
        }
        print(f"{'page':<16}{'median ms':>10}{'p95 ms':>10}{'queries':>9}{'p95/floor':>11}")
        print(f"{'floor (login)':<16}{floor_median:>10.1f}{floor_p95:>10.1f}{0:>9}{1:>11.1f}")
        p95s = {}
        for name, url in pages.items():
            median, p95, queries = timed(client, url, args.requests)
            p95s[name] = p95
            print(f"{name:<16}{median:>10.1f}{p95:>10.1f}{queries:>9}{p95 / floor_p95:>11.1f}")
        cold_median, cold_p95, cold_queries = timed(
            client, pages["dashboard"], max(5, args.requests // 5), cold=True
        )
        print(
            f"{'dashboard, cold':<16}{cold_median:>10.1f}{cold_p95:>10.1f}{cold_queries:>9}{cold_p95 / floor_p95:>11.1f}"
        )
        print(
            f"portal: invoice list p95 {p95s['invoice list']:.0f} ms, dashboard p95 {p95s['dashboard']:.0f} ms"
            f" (target 200 ms; cold {cold_p95:.0f} ms), usage list p95 {p95s['usage list']:.0f} ms,"
            f" floor {floor_p95:.1f} ms, records {made}"
        )
    finally:
        if not args.keep:
            from django.db import connections

            connections.close_all()
            psql_admin(f'DROP DATABASE IF EXISTS "{DB_NAME}" WITH (FORCE)')


if __name__ == "__main__":
    main()
