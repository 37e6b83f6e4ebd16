"""Migration 0007 converts a usage table with records into the partitioned one with nothing lost
(docs/partitions.md#the-migration).

A scratch database is migrated up to metering 0006 (the unpartitioned table), given records in
several months — one in a month three years back, so its partition is made from the earliest
record — and migrated to the latest state; the same rows (ids included) are read back, each in its
month's partition, with one event id each, the triggers still check references, and a resent
event id is still refused.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import psycopg
import pytest
from django.conf import settings

ROOT = Path(__file__).resolve().parents[2]

SEED = """
INSERT INTO providers_provider (created_at, updated_at, code, name, type, contact_name, contact_email,
    contact_phone, settlement_terms_days, is_related_party, notes)
VALUES (now(), now(), 'bj-idc', 'BJ IDC', 'idc', '', '', '', 30, false, '');
INSERT INTO providers_site (created_at, updated_at, name, city, hub, provider_id)
SELECT now(), now(), 'Yizhuang', 'Beijing', 'beijing', id FROM providers_provider;
INSERT INTO inventory_server (created_at, updated_at, serial, card_count, status, currency, gpu_model_id,
    provider_id, site_id)
SELECT now(), now(), 'SRV-1', 8, 'active', 'CNY', (SELECT min(id) FROM inventory_gpumodel), p.id, s.id
  FROM providers_provider p JOIN providers_site s ON s.provider_id = p.id;
INSERT INTO inventory_card (created_at, updated_at, slot, uuid, status, server_id)
SELECT now(), now(), 0, 'GPU-00000000-0000-0000-0000-000000000001', 'active', id FROM inventory_server;
"""

# (event id, start in Shanghai, card or server record)
RECORDS = [
    ("e-2023-07", "2023-07-15 10:00+08", "card"),
    ("e-2026-09-last", "2026-09-30 23:30+08", "card"),  # 2026-09-30 15:30 UTC: September in Shanghai
    ("e-2026-10-first", "2026-10-01 00:00+08", "server"),  # 2026-09-30 16:00 UTC: October
    ("e-2026-11", "2026-11-20 09:00+08", "card"),
]

RECORD_COLUMNS = (
    "id, provider_id, event_id, content_hash, card_id, server_id, start_at, end_at, received_at, void_reason"
)


def _dsn(name: str) -> dict:
    db = settings.DATABASES["default"]
    return {
        "host": db["HOST"] or "127.0.0.1",
        "port": str(db["PORT"] or 5432),
        "user": db["USER"],
        "dbname": name,
    }


def _manage(name: str, *args: str) -> None:
    dsn = _dsn(name)
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "DATABASE_URL": f"postgres://{dsn['user']}@{dsn['host']}:{dsn['port']}/{name}",
    }
    done = subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr[-3000:]


@pytest.fixture
def scratch_database():
    name = f"suanli_partmig_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(**_dsn("postgres"), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield name
    finally:
        with psycopg.connect(**_dsn("postgres"), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _rows(conn) -> list[tuple]:
    return conn.execute(f"SELECT {RECORD_COLUMNS} FROM metering_usagerecord ORDER BY id").fetchall()


def test_a_usage_table_with_records_migrates_into_monthly_partitions_with_nothing_lost(scratch_database):
    _manage(scratch_database, "migrate", "metering", "0006", "--noinput")
    with psycopg.connect(**_dsn(scratch_database)) as conn:
        conn.execute(SEED)
        for n, (event_id, start, kind) in enumerate(RECORDS):
            conn.execute(
                "INSERT INTO metering_usagerecord (provider_id, event_id, content_hash, card_id, server_id,"
                " start_at, end_at, received_at, void_reason)"
                " SELECT s.provider_id, %s, %s, CASE WHEN %s = 'card' THEN c.id END,"
                "        CASE WHEN %s = 'server' THEN s.id END, %s::timestamptz, %s::timestamptz + interval '1 hour',"
                "        %s::timestamptz + interval '2 hours', ''"
                "   FROM inventory_server s JOIN inventory_card c ON c.server_id = s.id",
                [event_id, f"{n:032d}", kind, kind, start, start, start],
            )
        conn.execute("DELETE FROM metering_usagerecord WHERE event_id = 'e-2026-11'")  # a gap in the ids
        conn.execute(
            "INSERT INTO metering_usagerecord (provider_id, event_id, content_hash, card_id, start_at, end_at,"
            " received_at, void_reason) SELECT s.provider_id, 'e-2026-11', %s, c.id, '2026-11-20 09:00+08',"
            " '2026-11-20 10:00+08', '2026-11-20 11:00+08', '' FROM inventory_server s JOIN inventory_card c"
            " ON c.server_id = s.id",
            [f"{9:032d}"],
        )
        before = _rows(conn)
    assert len(before) == 4

    _manage(scratch_database, "migrate", "--noinput")

    with psycopg.connect(**_dsn(scratch_database)) as conn:
        assert _rows(conn) == before
        placed = dict(
            conn.execute("SELECT event_id, tableoid::regclass::text FROM metering_usagerecord").fetchall()
        )
        # each in its month's part by day (docs/partitions.md#month-parts)
        assert placed == {
            "e-2023-07": "metering_usagerecord_p2023_07_d09",
            "e-2026-09-last": "metering_usagerecord_p2026_09_d25",
            "e-2026-10-first": "metering_usagerecord_p2026_10_d01",
            "e-2026-11": "metering_usagerecord_p2026_11_d17",
        }
        events = conn.execute(
            "SELECT provider_id, event_id, start_at, content_hash FROM metering_usageevent ORDER BY event_id"
        ).fetchall()
        assert events == sorted(((r[1], r[2], r[6], r[3]) for r in before), key=lambda e: e[1])
        partitions = {
            name
            for (name,) in conn.execute(
                "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
                " WHERE i.inhparent = 'metering_usagerecord'::regclass"
            )
        }
        # every month from the earliest record's on, the DEFAULT partition, nothing left in it
        assert {
            "metering_usagerecord_p2023_07",
            "metering_usagerecord_p2024_12",
            "metering_usagerecord_default",
        } <= (partitions)
        assert len(partitions) >= 41 + 1  # 2023-07 … 2026-11 at least, and DEFAULT
        assert conn.execute("SELECT count(*) FROM metering_usagerecord_default").fetchone() == (0,)
        assert conn.execute("SELECT to_regclass('metering_usagerecord_old')").fetchone() == (None,)

        # new ids continue after the old ones
        new_id = conn.execute(
            "INSERT INTO metering_usagerecord (provider_id, event_id, content_hash, card_id, start_at, end_at,"
            " received_at, void_reason) SELECT s.provider_id, 'e-new', '', c.id, '2026-11-21 09:00+08',"
            " '2026-11-21 10:00+08', '2026-11-21 11:00+08', '' FROM inventory_server s JOIN inventory_card c"
            " ON c.server_id = s.id RETURNING id"
        ).fetchone()[0]
        assert new_id > max(r[0] for r in before)
        conn.rollback()

        # an event id already sent, in another month: refused by the event table's key
        with pytest.raises(psycopg.errors.UniqueViolation, match="uniq_usage_provider_event"):
            conn.execute(
                "INSERT INTO metering_usagerecord (provider_id, event_id, content_hash, server_id, start_at,"
                " end_at, received_at, void_reason) SELECT provider_id, 'e-2023-07', '', id,"
                " '2026-11-21 09:00+08', '2026-11-21 10:00+08', '2026-11-21 11:00+08', '' FROM inventory_server"
            )
        conn.rollback()

        # the reference triggers of 0004 work on the partitioned table: a card of nobody's is refused
        with pytest.raises(psycopg.errors.ForeignKeyViolation, match="is not hardware of that provider"):
            conn.execute(
                "INSERT INTO metering_usagerecord (provider_id, event_id, content_hash, card_id, start_at, end_at,"
                " received_at, void_reason) SELECT id, 'e-bad', '', 999999, '2026-11-21 09:00+08',"
                " '2026-11-21 10:00+08', '2026-11-21 11:00+08', '' FROM providers_provider"
            )
        conn.rollback()
        # and a card with usage cannot be deleted
        with pytest.raises(psycopg.errors.ForeignKeyViolation, match="has usage records"):
            conn.execute("DELETE FROM inventory_card")
