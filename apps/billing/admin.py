"""Billing's admin: one module per peer (invoicing, vouchers, settlements, notices, payments), registered here."""

from apps.billing.invoicing import admin as invoicing_admin
from apps.billing.notices import admin as notices_admin
from apps.billing.payments import admin as payments_admin
from apps.billing.settlements import admin as settlements_admin
from apps.billing.vouchers import admin as vouchers_admin

__all__ = ["invoicing_admin", "notices_admin", "payments_admin", "settlements_admin", "vouchers_admin"]
