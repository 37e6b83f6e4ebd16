"""Demo customers: invented companies with valid unified social credit codes."""

from __future__ import annotations

from django.contrib.auth import get_user_model

from apps.core.validators import USCC_ALPHABET, uscc_check_character
from apps.customers.models import Customer

from .base import DemoContext, sync
from .data import ACCOUNT_MANAGERS, BANKS, CITIES, CUSTOMERS, CustomerSpec


def credit_code(ctx: DemoContext, spec: CustomerSpec) -> str:
    """A valid 统一社会信用代码: 91 (enterprise) + region + ``MA`` organisation code + check character."""
    rng = ctx.rng("customer", spec.code, "tax_id")
    first17 = (
        "91" + CITIES[spec.city].region_code + "MA" + "".join(rng.choice(USCC_ALPHABET) for _ in range(7))
    )
    return first17 + uscc_check_character(first17)


def customer_values(ctx: DemoContext, spec: CustomerSpec) -> dict:
    rng = ctx.rng("customer", spec.code)
    city = CITIES[spec.city]
    bank = rng.choice(BANKS)
    return {
        "name": spec.name,
        "tax_id": credit_code(ctx, spec),
        "billing_address": f"{city.district}{rng.choice(city.streets)}{rng.randint(1, 399)}号",
        "phone": f"{city.area_code}-{rng.randint(5000_0000, 8999_9999)}",
        "bank_name": f"{bank}{city.district[:3].rstrip('市省')}分行",
        "bank_account": "".join(str(rng.randint(0, 9)) for _ in range(19)),
        "billing_email": f"finance@{spec.code}.example.cn",
        "invoice_type": spec.invoice_type,
        "currency": "CNY",
        "payment_terms_days": spec.payment_terms_days,
        "auto_issue": spec.auto_issue,
    }


def load_customers(ctx: DemoContext) -> None:
    managers = {u.username: u for u in get_user_model().objects.filter(username__in=ACCOUNT_MANAGERS)}
    tally = ctx.tally("customers")
    for index, spec in enumerate(CUSTOMERS):
        values = customer_values(ctx, spec)
        values["account_manager"] = managers[ACCOUNT_MANAGERS[index % len(ACCOUNT_MANAGERS)]]
        _, outcome = sync(Customer, {"code": spec.code}, values)
        tally.add(outcome)
