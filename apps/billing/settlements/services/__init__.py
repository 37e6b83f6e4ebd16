"""Provider settlements (docs/settlements.md#quantity-basis): the cost of each provider's share
of what customers were billed.

``settlement_build`` rebuilds a period's draft statements from the customer invoices of that
period; only the rating engine (``apps/contracts/pricing.py``) computes an amount, fed with the
supply agreement's cost price instead of the customer's price.

Decisions, documented for finance:

- **Which invoices**: issued and paid invoices of the period (drafts may still change with the
  next billing run; void invoices billed nothing). Lines of kind ``usage``, ``recurring`` and
  ``late_usage``; a minimum-commitment shortfall uses no hardware and is not settled. Late usage
  is settled in the period of the invoice that billed it, at the agreement valid when it was used.
- **Hourly lines**: each provider's quantity is rated from the same merged usage the customer
  line was (received up to the invoice's usage cutoff; for late usage, only the time not billed
  before), by ``pricing.rate_contract`` on the line restricted to that provider's allocations,
  at the cost price, with no discounts, no tiers and no tax. The providers' quantities add up to
  the customer's.
- **Recurring lines**: the line's quantity is split by each provider's share of the allocated
  card-time in the line's service interval (card count × overlap, so a server swapped mid-month
  is split by time), then rated by the engine like the customer line (same proration).
- **Cost price**: the supply agreement of (provider, hardware GPU model, the line's resource and
  term, the invoice currency) valid on the local date the line's service starts; the latest
  ``valid_from`` wins. None: the line shows cost 0 and a ``warning``, and the statement cannot
  be confirmed until an agreement exists and the draft is rebuilt.
- **Revenue**: the customer line's net amount (excl. VAT), split in the same proportion as the
  quantity; the last provider takes the rounding rest so the parts add up to the line.
- **Drafts** are refreshed idempotently (unchanged statements are not written); confirmed and paid
  statements never change (checked under a row lock here, and by a database trigger).
"""

from apps.billing.settlements.services.margins import GROUPS, MarginReport, MarginRow, margin_report
from apps.billing.settlements.services.planning import PlannedLine, Planner
from apps.billing.settlements.services.statements import (
    BuildResult,
    invoice_drafts_count,
    settlement_build,
    settlement_confirm,
    settlement_mark_paid,
)

__all__ = [
    "GROUPS",
    "BuildResult",
    "MarginReport",
    "MarginRow",
    "PlannedLine",
    "Planner",
    "invoice_drafts_count",
    "margin_report",
    "settlement_build",
    "settlement_confirm",
    "settlement_mark_paid",
]
