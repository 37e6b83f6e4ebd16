"""The admin's home page per role (issue 12): what each role's day starts with, above Django's app list.

This is the top interface layer (``config`` sits above every app), so it may call each app's
selectors; it renders panels of items, each a count or an amount linking to the filtered
changelist or view where the work is done. Superusers see every panel. Each panel costs a
constant number of queries.
"""

from __future__ import annotations

import datetime
from decimal import Decimal
from urllib.parse import urlencode

from django.conf import settings
from django.urls import reverse
from django.utils import timezone

from apps.accounts import roles
from apps.billing.invoicing.selectors import finance_home
from apps.billing.payments.selectors import credit_balances
from apps.contracts.models import ContractStatus
from apps.contracts.selectors import account_manager_home, approval_queue, contract_list
from apps.core.money import decimal_text
from apps.core.periods import local_time_text
from apps.inventory.selectors import free_capacity_by_hub, servers_without_supply
from apps.metering.selectors import unrated_usage_counts, unrated_usage_customers

CENT = Decimal("0.01")


def _url(name: str, **params) -> str:
    url = reverse(f"admin:{name}")
    return f"{url}?{urlencode(params)}" if params else url


def _money(currency: str, amount: Decimal | None) -> str:
    return f"{currency} {(amount or Decimal(0)).quantize(CENT):,}"


def _item(label: str, value, url: str) -> dict:
    return {"label": label, "value": value, "url": url}


def _totals(rows: list[dict]) -> str:
    """'2 · CNY 1,234.00' per currency, or '0'."""
    if not rows:
        return "0"
    return "; ".join(f"{row['invoices']} · {_money(row['currency'], row['amount'])}" for row in rows)


def account_manager_panel(user, now: datetime.datetime) -> dict:
    counts = account_manager_home(user=user, now=now)
    mine = {"account_manager__id__exact": user.pk}
    changelist = "contracts_contract_changelist"
    items = [
        _item(
            "My drafts 我的草稿",
            counts["drafts"],
            _url(changelist, status__exact=ContractStatus.DRAFT, **mine),
        ),
        _item(
            "Awaiting approval 待审批",
            counts["awaiting_approval"],
            _url(
                changelist, status__exact=ContractStatus.PENDING_APPROVAL, approved_at__isnull="True", **mine
            ),
        ),
        _item(
            "Approved, awaiting activation 待生效",
            counts["awaiting_activation"],
            _url(
                changelist, status__exact=ContractStatus.PENDING_APPROVAL, approved_at__isnull="False", **mine
            ),
        ),
        _item(
            "Ending in the next 60 days 60天内到期",
            counts["ending_soon"],
            _url(
                changelist,
                status__exact=ContractStatus.ACTIVE,
                end_at__gt=now.isoformat(),
                end_at__lte=counts["ending_before"].isoformat(),
                **mine,
            ),
        ),
    ]
    unrated = _url("metering_usagerecord_changelist", rating="unrated")
    for row in unrated_usage_customers(contracts=contract_list(user=user).filter(account_manager=user)):
        items.append(
            _item(
                f"Unrated usage 未计费用量: {row['customer_code']} {row['customer_name']}",
                f"{row['records']} records",
                unrated,
            )
        )
    return {"key": "account-manager", "title": "Account manager 客户经理", "items": items}


def sales_manager_panel(user, now: datetime.datetime) -> dict:
    queue = approval_queue(user=user)
    items = [_item("Waiting for approval 待审批", queue["total"], _url("contracts_contract_approvals"))]
    for row in queue["rows"]:
        contract = row["contract"]
        margin = (
            "no supply price yet 暂无供货价"
            if row["margin_amount"] is None
            else _money(contract.currency, row["margin_amount"])
        )
        items.append(
            _item(
                f"{contract.number} · {contract.customer.name}",
                f"discount {decimal_text(row['discount_percent'])}% · value {_money(contract.currency, row['value_amount'])}/month"
                f" · margin {margin}",
                reverse("admin:contracts_contract_change", args=[contract.pk]),
            )
        )
    return {"key": "sales-manager", "title": "Sales manager 销售经理", "items": items}


def _last_run_item(last: dict | None, period: str) -> dict:
    """The change the latest billing run of the closed month made to its drafts."""
    if last is None:
        return _item(
            f"Last billing run of {period} 最近计费",
            "none yet 尚未运行",
            _url("billing_billingrun_changelist"),
        )
    run = last["run"]
    deltas = ", ".join(f"{'+' if d >= 0 else '−'}{_money(c, abs(d))}" for c, d in last["delta"].items())
    text = (
        f"{local_time_text(run.finished_at, settings.BILLING_TIME_ZONE)}: {last['new']} new, "
        f"{last['changed']} changed, {last['removed']} removed" + (f" ({deltas})" if deltas else "")
    )
    return _item(
        f"Change since the last run of {period} 较上次计费变化",
        text,
        reverse("admin:billing_billingrun_change", args=[run.pk]),
    )


def finance_panel(user, now: datetime.datetime) -> dict:
    home = finance_home(now=now)
    invoices = "billing_invoice_changelist"
    credit: dict[str, list] = {}
    for customer in credit_balances():
        if customer.credit_balance and customer.credit_balance > 0:
            credit.setdefault(customer.currency, []).append(customer.credit_balance)
    credit_text = "; ".join(
        f"{len(amounts)} customers · {_money(currency, sum(amounts))}"
        for currency, amounts in sorted(credit.items())
    )
    items = [
        _item(
            f"Drafts of {home['closed_period']} to review 待审草稿",
            _totals(home["drafts"]),
            _url(invoices, status__exact="draft", period__exact=home["closed_period"]),
        ),
        _last_run_item(home["last_run"], home["closed_period"]),
        _item("Overdue invoices 逾期发票", _totals(home["overdue"]), _url(invoices, overdue="yes")),
        _item(
            "Payments to match: customer credit from overpayments 待核销预存款",
            credit_text or "0",
            _url("billing_creditentry_changelist"),
        ),
        _item(
            "Billing runs with errors 出错的计费批次",
            home["runs_with_errors"],
            _url("billing_billingrun_changelist", status__in="done_with_errors,failed"),
        ),
        _item("Finance reports 财务报表", "revenue, AR aging, payback, margin", reverse("reports:index")),
    ]
    return {"key": "finance", "title": "Finance 财务", "items": items}


def operations_panel(user, now: datetime.datetime) -> dict:
    items = []
    for row in free_capacity_by_hub(now=now):
        items.append(
            _item(
                f"Free now 空闲: {row['hub_label']} · {row['gpu_model']}",
                f"{row['cards']} cards",
                _url(
                    "inventory_card_changelist",
                    free="now",
                    server__site__hub__exact=row["hub"],
                    server__gpu_model__id__exact=row["gpu_model_id"],
                ),
            )
        )
    for row in unrated_usage_counts():
        items.append(
            _item(
                f"Unrated usage 未计费用量: {row['provider_code']}",
                f"{row['records']} records",
                _url(
                    "metering_usagerecord_changelist",
                    rating="unrated",
                    provider__id__exact=row["provider_id"],
                ),
            )
        )
    today = now.astimezone(timezone.get_default_timezone()).date()
    items.append(
        _item(
            "Servers without a supply agreement 无供应协议的服务器",
            servers_without_supply(on=today).count(),
            _url("inventory_server_changelist", supply="none"),
        )
    )
    return {"key": "operations", "title": "Operations 运维", "items": items}


PANELS = [
    (roles.ACCOUNT_MANAGER, account_manager_panel),
    (roles.SALES_MANAGER, sales_manager_panel),
    (roles.FINANCE, finance_panel),
    (roles.OPERATIONS, operations_panel),
]


def role_panels(user, now: datetime.datetime) -> list[dict]:
    if not user.is_active or not user.is_staff:
        return []
    names = (
        {role for role, _ in PANELS} if user.is_superuser else set(user.groups.values_list("name", flat=True))
    )
    return [panel(user, now) for role, panel in PANELS if role in names]


def install(site) -> None:
    """Render ``admin/home.html`` (the role panels, then Django's app list) as ``site``'s index."""
    index = site.index

    def home(request, extra_context=None):
        context = {
            "role_panels": role_panels(request.user, timezone.now()),
            "billing_time_zone": settings.BILLING_TIME_ZONE,
        }
        context.update(extra_context or {})
        return index(request, extra_context=context)

    site.index_template = "admin/home.html"
    site.index = home
