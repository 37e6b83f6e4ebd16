"""The demo's own price list "Suanli standard 2026", the default CNY list: every model the demo
leases, in every resource and term the demo or a user drafts (the market reference list, loaded by
a data migration, stays as a reference and is no longer the default)."""

from __future__ import annotations

from decimal import Decimal

from apps.contracts.models import PriceList, PriceListItem, TaxCategory
from apps.contracts.reference import REFERENCE_PRICE_LIST_CODE
from apps.inventory.models import GpuModel

from .base import DemoContext, sync
from .data import STANDARD_EXTRA_ITEMS, STANDARD_PRICE_LIST, STANDARD_PRICES

# Compute as a service is an IT service (6 %); a dedicated server is an equipment lease (13 %),
# as in the market reference list.
TAX_BY_RESOURCE = {"card": "it_service", "p_unit": "it_service", "server": "equipment_lease"}


def standard_items() -> list[dict]:
    """Items of the standard list: (model, resource, term, list price, term discount %)."""
    items = []
    for model_name, prices in STANDARD_PRICES.items():
        items += [
            (model_name, "card", "hourly", prices.card_hourly, Decimal("0")),
            (model_name, "server", "monthly", prices.server_monthly, Decimal("0")),
            (model_name, "server", "yearly", prices.server_monthly * 12, prices.server_yearly_discount),
            (model_name, "p_unit", "yearly", prices.p_yearly, prices.p_yearly_discount),
        ]
    taxes = {
        (model_name, resource, term): tax for model_name, resource, term, *_, tax in STANDARD_EXTRA_ITEMS
    }
    items += [
        (model_name, resource, term, price, discount)
        for model_name, resource, term, price, discount, _ in STANDARD_EXTRA_ITEMS
    ]
    return [
        {
            "gpu_model": model_name,
            "resource": resource,
            "term": term,
            "list_unit_price": price,
            "term_discount_percent": discount,
            "tax_category": taxes.get((model_name, resource, term), TAX_BY_RESOURCE[resource]),
        }
        for model_name, resource, term, price, discount in items
    ]


def load_price_lists(ctx: DemoContext) -> None:
    # One default list per currency: the reference list gives the flag up first.
    for reference in PriceList.objects.filter(code=REFERENCE_PRICE_LIST_CODE, is_default=True):
        _, outcome = sync(PriceList, {"code": reference.code}, {"is_default": False})
        ctx.tally("price lists").add(outcome)
    values = {k: v for k, v in STANDARD_PRICE_LIST.items() if k != "code"}
    price_list, outcome = sync(PriceList, {"code": STANDARD_PRICE_LIST["code"]}, values)
    ctx.tally("price lists").add(outcome)

    taxes = {t.code: t for t in TaxCategory.objects.all()}
    models = {m.name: m for m in GpuModel.objects.all()}
    tally = ctx.tally("price list items")
    for item in standard_items():
        _, outcome = sync(
            PriceListItem,
            {
                "price_list": price_list,
                "gpu_model": models[item["gpu_model"]],
                "resource": item["resource"],
                "term": item["term"],
            },
            {
                "list_unit_price": item["list_unit_price"],
                "term_discount_percent": item["term_discount_percent"],
                "tax_category": taxes[item["tax_category"]],
            },
        )
        tally.add(outcome)
