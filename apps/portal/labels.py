"""The portal's words for the domains' choice values, through gettext (the models' own labels
are bilingual strings for the admin)."""

from django.utils.translation import gettext_lazy as _

LABELS = {
    "status": {
        "draft": _("Draft"),
        "issued": _("Open"),
        "paid": _("Paid"),
        "void": _("Void"),
        "overdue": _("Overdue"),
        "pending_approval": _("Pending approval"),
        "active": _("Active"),
        "suspended": _("Suspended"),
        "terminated": _("Terminated"),
        "expired": _("Expired"),
        "exhausted": _("Used up"),
    },
    "resource": {"card": _("Card"), "server": _("Whole server"), "p_unit": _("P-unit")},
    "term": {"hourly": _("Hourly"), "daily": _("Daily"), "monthly": _("Monthly"), "yearly": _("Yearly")},
    "method": {
        "bank_transfer": _("Bank transfer"),
        "stripe": _("Card (Stripe)"),
        "voucher": _("Compute voucher"),
        "credit": _("Customer credit"),
    },
    "role": {"admin": _("Admin"), "billing": _("Billing"), "viewer": _("Viewer")},
    "kind": {
        "usage": _("Usage"),
        "recurring": _("Recurring"),
        "minimum_commitment_shortfall": _("Minimum commitment shortfall"),
        "late_usage": _("Late usage"),
        "sla_credit": _("SLA credit"),
        "issue": _("Granted"),
        "redeem": _("Redeemed"),
        "reverse": _("Reversed"),
        "expire": _("Expired"),
    },
    "flow": {"supplier_side": _("Paid at issue"), "customer_claim": _("Claimed by you after payment")},
    "incident": {
        "xid": _("Xid error"),
        "ecc_double_bit": _("Double-bit ECC error"),
        "fell_off_bus": _("Fell off the bus"),
        "thermal_throttle": _("Thermal throttling"),
        "power_throttle": _("Power throttling"),
    },
}


def label(group: str, value: str) -> str:
    return str(LABELS.get(group, {}).get(value, value))
