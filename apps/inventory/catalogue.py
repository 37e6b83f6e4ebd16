"""The GPU catalogue shipped with the product (copied from the market reference data)."""

from __future__ import annotations

import csv
from decimal import Decimal
from pathlib import Path

CATALOGUE_CSV = Path(__file__).resolve().parent / "data" / "gpu_models.csv"


def catalogue_rows() -> list[dict]:
    """Rows of the catalogue as model field values (dense figures, Decimals)."""
    with CATALOGUE_CSV.open(encoding="utf-8") as fh:
        lines = [line for line in fh if not line.startswith("#")]
    rows = []
    for raw in csv.DictReader(lines):
        rows.append(
            {
                "vendor": raw["vendor"],
                "name": raw["model"],
                "memory_gb": int(raw["memory_gb"]),
                "memory_type": raw["memory_type"],
                "interconnect": raw["interconnect"],
                "interconnect_gbps": int(raw["interconnect_gbps"]) if raw["interconnect_gbps"] else None,
                "fp16_dense_tflops": Decimal(raw["fp16_dense_tflops"]),
                "int8_dense_tops": Decimal(raw["int8_dense_tops"]) if raw["int8_dense_tops"] else None,
                "verified": raw["verified"] == "yes",
                "notes": raw["notes"],
            }
        )
    return rows


def load_catalogue(GpuModel) -> int:
    """Create or update every catalogue model; returns how many rows changed. Idempotent."""
    changed = 0
    for row in catalogue_rows():
        name = row.pop("name")
        obj, created = GpuModel.objects.get_or_create(name=name, defaults=row)
        if created:
            changed += 1
            continue
        dirty = [field for field, value in row.items() if getattr(obj, field) != value]
        if dirty:
            for field in dirty:
                setattr(obj, field, row[field])
            obj.save(update_fields=dirty)
            changed += 1
    return changed
