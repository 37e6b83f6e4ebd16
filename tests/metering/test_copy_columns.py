"""One list per fact: usage ingestion's COPY and INSERT statements write every column of the model."""

from __future__ import annotations

import datetime
import re

from apps.metering import services, validation
from apps.metering.models import UsageRecord


def _listed(sql: str) -> list[str]:
    """The column list of a ``COPY table (…)`` or ``INSERT INTO table (…)`` statement."""
    match = re.search(r"(?:COPY|INSERT INTO)\s+\w+\s*\(([^)]*)\)", sql)
    assert match, sql
    return [name.strip() for name in match.group(1).split(",")]


def test_ingestion_writes_every_column_of_a_usage_record():
    columns = {f.column for f in UsageRecord._meta.concrete_fields}
    for sql in (services._COPY_USAGE_SQL, services._INSERT_SQL):
        written = _listed(sql)
        missing = sorted(columns - set(written) - services.USAGE_UNWRITTEN_COLUMNS)
        assert not missing, f"usage ingestion leaves out column(s) {', '.join(missing)}: {sql}"
        assert len(written) == len(set(written)) and set(written) <= columns
    assert services.USAGE_UNWRITTEN_COLUMNS <= {"id"} | {
        f.column for f in UsageRecord._meta.concrete_fields if f.null
    }, "a column ingestion leaves out must be the key or nullable"


def test_the_staging_table_and_copy_data_use_the_same_columns():
    assert _listed(services._COPY_SQL) == list(validation.COPY_COLUMNS)
    missing = [c for c in validation.COPY_COLUMNS if not re.search(rf"[(,]\s*{c} ", services._STAGING_SQL)]
    assert not missing, f"the staging table lacks {missing}"
    # copy_data writes one value per column
    batch = validation.validate_records(
        [
            {
                "event_id": "e1",
                "card": "GPU-00000000-0000-0000-0000-000000000001",
                "start": "2026-11-01T00:00:00+00:00",
                "end": "2026-11-01T01:00:00+00:00",
                "telemetry": {"utilization_percent": 50, "vendor_note": "x"},
            }
        ],
        now=datetime.datetime(2026, 11, 2, tzinfo=datetime.UTC),
    )
    assert not batch.errors, batch.errors
    batch.rows[0].card_id = 1
    (line,) = batch.copy_data().decode().splitlines()
    assert len(line.split("\t")) == len(validation.COPY_COLUMNS)
