"""The staff roles (docs/architecture.md#roles) as Django groups, with their model permissions.

``sync_roles`` is called from data migrations (with the historical app registry) whenever a
new app adds models a role should reach; it is idempotent.
"""

from __future__ import annotations

ACCOUNT_MANAGER = "account_manager"
SALES_MANAGER = "sales_manager"
FINANCE = "finance"
OPERATIONS = "operations"

ALL = "view add change delete".split()
VIEW = ["view"]

# role → {"app_label.model": [actions]}; the codename is "<action>_<model>" (custom ones such as
# approve_contract included), or the action itself when it has an underscore (record_payment);
# a model not yet installed is skipped.
ROLE_PERMISSIONS: dict[str, dict[str, list[str]]] = {
    ACCOUNT_MANAGER: {
        "customers.customer": ["view", "add", "change"],
        "accounts.customermembership": ALL,
        "contracts.pricelist": VIEW,
        "contracts.slapolicy": VIEW,
        "contracts.slacredittier": VIEW,
        "contracts.pricelistitem": VIEW,
        "contracts.taxcategory": VIEW,
        "inventory.gpumodel": VIEW,
        "inventory.server": VIEW,
        "inventory.card": VIEW,
        "inventory.cardincident": VIEW,
        "providers.provider": VIEW,
        "providers.site": VIEW,
        "providers.supplyagreement": VIEW,
        "contracts.contract": ["view", "add", "change", "delete", "activate", "terminate"],
        "contracts.contractline": ALL,
        "contracts.linetier": ALL,
        "contracts.allocation": ALL,
        "metering.usagerecord": VIEW,
        "billing.voucherprogramme": VIEW,
        "billing.voucher": VIEW,
        "billing.voucherledgerentry": VIEW,
        # Their own customers' webhook endpoints and delivery log, read-only (docs/webhooks.md).
        "webhooks.webhookendpoint": VIEW,
        "webhooks.webhookdelivery": VIEW,
    },
    SALES_MANAGER: {
        "customers.customer": VIEW,
        "contracts.pricelist": ALL,
        "contracts.slapolicy": ALL,
        "contracts.slacredittier": ALL,
        "contracts.pricelistitem": ALL,
        "contracts.taxcategory": VIEW,
        "inventory.gpumodel": VIEW,
        "inventory.server": VIEW,
        "inventory.card": VIEW,
        "inventory.cardincident": VIEW,
        "providers.provider": VIEW,
        "providers.site": VIEW,
        "providers.supplyagreement": VIEW,
        "contracts.contract": ["view", "approve"],
        "contracts.contractline": VIEW,
        "contracts.linetier": VIEW,
        "contracts.allocation": VIEW,
        "audit.auditevent": VIEW,
        "reports.report": ["view_reports"],
    },
    FINANCE: {
        "customers.customer": ["view", "change"],
        "contracts.pricelist": VIEW,
        "contracts.slapolicy": VIEW,
        "contracts.slacredittier": VIEW,
        "contracts.pricelistitem": VIEW,
        "contracts.taxcategory": ALL,
        "inventory.gpumodel": VIEW,
        "inventory.server": VIEW,
        "inventory.card": VIEW,
        "inventory.cardincident": VIEW,
        "providers.provider": VIEW,
        "providers.site": VIEW,
        "providers.supplyagreement": VIEW,
        "contracts.contract": ["view", "terminate"],
        "contracts.contractline": VIEW,
        "contracts.linetier": VIEW,
        "contracts.allocation": VIEW,
        "metering.usagerecord": VIEW,
        "billing.invoice": ["view", "change", "issue", "void", "record_payment", "decide_reconciliation"],
        "billing.invoiceline": VIEW,
        "billing.reconciliationcard": VIEW,
        "billing.creditnote": ["view", "add"],
        "billing.creditnoteline": VIEW,
        "billing.payment": ["view", "add"],
        "billing.billingrun": ["view", "add"],
        "billing.voucherprogramme": ["view", "add", "change"],
        "billing.voucher": ["view", "add", "change", "expire"],
        "billing.voucherledgerentry": VIEW,
        "billing.settlementstatement": ["view", "change", "confirm", "pay"],
        "billing.settlementline": VIEW,
        "billing.notice": VIEW,
        "billing.creditentry": ["view", "refund_credit"],
        "billing.stripeevent": VIEW,
        "webhooks.webhookendpoint": ALL,
        "webhooks.webhookdelivery": ["view", "resend_webhookdelivery"],
        "audit.auditevent": VIEW,
        "reports.report": ["view_reports"],
    },
    OPERATIONS: {
        "providers.provider": ALL,
        "providers.site": ALL,
        "providers.supplyagreement": ALL,
        "inventory.gpumodel": ALL,
        "inventory.server": ALL,
        "inventory.card": ALL,
        "inventory.cardincident": ALL,
        "customers.customer": VIEW,
        "contracts.contract": VIEW,
        "contracts.contractline": VIEW,
        "contracts.allocation": VIEW,
        "rest_framework_api_key.apikey": ALL,
        "metering.partnerapikey": ALL,
        "metering.agentapikey": ALL,
        "metering.usagerecord": VIEW,
        "billing.settlementstatement": VIEW,
        "billing.settlementline": VIEW,
        "webhooks.webhookendpoint": ALL,
        "webhooks.webhookdelivery": ["view", "resend_webhookdelivery"],
        "audit.auditevent": VIEW,
    },
}


def sync_roles(apps, schema_editor=None) -> None:
    """Create the role groups and grant exactly the permissions listed above."""
    from django.contrib.auth.management import create_permissions

    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, verbosity=0, apps=apps)
        app_config.models_module = None

    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for role, grants in ROLE_PERMISSIONS.items():
        group, _ = Group.objects.get_or_create(name=role)
        wanted = []
        for model_key, actions in grants.items():
            app_label, model = model_key.split(".")
            codenames = [action if "_" in action else f"{action}_{model}" for action in actions]
            wanted.extend(
                Permission.objects.filter(content_type__app_label=app_label, codename__in=codenames)
            )
        group.permissions.set(wanted)
