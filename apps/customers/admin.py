from django.contrib import admin

from apps.accounts.models import CustomerMembership
from apps.core.admin import GuardedHistoryAdmin

from .models import Customer


class MembershipInline(admin.TabularInline):
    model = CustomerMembership
    extra = 0
    autocomplete_fields = ["user"]


@admin.register(Customer)
class CustomerAdmin(GuardedHistoryAdmin):
    list_display = (
        "code",
        "name",
        "tax_id",
        "invoice_type",
        "currency",
        "payment_terms_days",
        "auto_issue",
        "account_manager",
    )
    list_filter = ("invoice_type", "currency", "auto_issue", "account_manager")
    search_fields = ("code", "name", "tax_id", "billing_email")
    list_select_related = ("account_manager",)
    autocomplete_fields = ["account_manager"]
    inlines = [MembershipInline]
    fieldsets = (
        (None, {"fields": ("code", "name", "account_manager")}),
        (
            "Fapiao 开票信息",
            {
                "fields": (
                    "tax_id",
                    "invoice_type",
                    "billing_address",
                    "phone",
                    "bank_name",
                    "bank_account",
                    "billing_email",
                )
            },
        ),
        ("Billing 计费", {"fields": ("currency", "payment_terms_days", "auto_issue", "language")}),
    )
