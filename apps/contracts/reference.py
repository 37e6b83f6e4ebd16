"""Tax categories and the "market reference" price list, built from the shipped reference data.

The reference CSV lists several clouds' prices per (GPU, memory, interconnect, unit). The
market reference list takes their mean list price and their mean published yearly discount.
"""

from __future__ import annotations

import csv
import datetime
from collections import defaultdict
from decimal import Decimal
from pathlib import Path

from apps.core.money import round_money

REFERENCE_CSV = Path(__file__).resolve().parent / "data" / "reference_prices.csv"
REFERENCE_PRICE_LIST_CODE = "market-reference"
REFERENCE_VALID_FROM = datetime.date(2024, 8, 15)

TAX_CATEGORIES = [
    {
        "code": "it_service",
        "name": "IT service 信息技术服务 (compute as a service)",
        "rate": Decimal("0.06"),
        "fapiao_classification": "*信息技术服务*算力服务费",
    },
    {
        "code": "equipment_lease",
        "name": "Equipment lease 有形动产租赁 (dedicated physical server)",
        "rate": Decimal("0.13"),
        "fapiao_classification": "*经营租赁*服务器租赁费",
    },
]

# (gpu family, memory GB, interconnect) in the reference data → catalogue model name.
MODEL_BY_REFERENCE = {
    ("V100", "32", "NVLink"): "V100-SXM2-32GB",
    ("A100", "40", "PCIe"): "A100-PCIe-40GB",
    ("A100", "40", "NVLink"): "A100-SXM4-40GB",
    ("A100", "80", "NVLink"): "A100-SXM4-80GB",
}


def reference_items() -> list[dict]:
    """Price list items: card/hourly from card_hour; server/monthly and server/yearly from server_month."""
    with REFERENCE_CSV.open(encoding="utf-8") as fh:
        lines = [line for line in fh if not line.startswith("#")]
    prices: dict[tuple, list[Decimal]] = defaultdict(list)
    discounts: dict[tuple, list[Decimal]] = defaultdict(list)
    for row in csv.DictReader(lines):
        model = MODEL_BY_REFERENCE[(row["gpu_model"], row["memory_gb"], row["interconnect"])]
        key = (model, row["unit"])
        prices[key].append(Decimal(row["price_cny"]))
        if row["annual_discount"]:
            discounts[key].append(Decimal(row["annual_discount"]))
    items = []
    for (model, unit), values in sorted(prices.items()):
        mean = round_money(sum(values) / len(values))
        yearly = discounts.get((model, unit))
        yearly_discount = round_money(sum(yearly) / len(yearly) * 100) if yearly else Decimal("0.00")
        if unit == "card_hour":
            items.append(
                {
                    "gpu_model": model,
                    "resource": "card",
                    "term": "hourly",
                    "list_unit_price": mean,
                    "term_discount_percent": Decimal("0"),
                    "tax_category": "it_service",
                }
            )
        else:
            items.append(
                {
                    "gpu_model": model,
                    "resource": "server",
                    "term": "monthly",
                    "list_unit_price": mean,
                    "term_discount_percent": Decimal("0"),
                    "tax_category": "equipment_lease",
                }
            )
            items.append(
                {
                    "gpu_model": model,
                    "resource": "server",
                    "term": "yearly",
                    "list_unit_price": mean * 12,
                    "term_discount_percent": yearly_discount,
                    "tax_category": "equipment_lease",
                }
            )
    return items


def load_reference_data(TaxCategory, PriceList, PriceListItem, GpuModel) -> None:
    """Create or update the tax categories and the market reference price list. Idempotent."""
    for row in TAX_CATEGORIES:
        TaxCategory.objects.update_or_create(code=row["code"], defaults=row)
    taxes = {t.code: t for t in TaxCategory.objects.all()}
    models = {m.name: m for m in GpuModel.objects.all()}
    price_list, _ = PriceList.objects.get_or_create(
        code=REFERENCE_PRICE_LIST_CODE,
        defaults={
            "name": "Market reference 市场参考价 (2024-08)",
            "currency": "CNY",
            "is_default": True,
            "prices_include_tax": True,
            "valid_from": REFERENCE_VALID_FROM,
            "notes": "Mean list prices of Chinese GPU clouds, 2024-08-15 (Frost & Sullivan white paper).",
        },
    )
    for item in reference_items():
        PriceListItem.objects.update_or_create(
            price_list=price_list,
            gpu_model=models[item["gpu_model"]],
            resource=item["resource"],
            term=item["term"],
            defaults={
                "list_unit_price": item["list_unit_price"],
                "term_discount_percent": item["term_discount_percent"],
                "tax_category": taxes[item["tax_category"]],
            },
        )
