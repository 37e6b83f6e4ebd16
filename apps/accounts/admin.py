from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin

from apps.core.admin import GuardedAdmin, GuardedAdminMixin

from .models import CustomerMembership, User


class MembershipInline(admin.TabularInline):
    model = CustomerMembership
    extra = 0
    autocomplete_fields = ["customer"]


@admin.register(User)
class UserAdmin(GuardedAdminMixin, BaseUserAdmin):
    fieldsets = (*BaseUserAdmin.fieldsets, ("Suanli", {"fields": ("display_name", "phone")}))
    list_display = ("username", "display_name", "email", "is_staff", "group_names")
    list_filter = ("is_staff", "is_active", "groups")
    inlines = [MembershipInline]

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("groups")

    @admin.display(description="roles")
    def group_names(self, obj):
        return ", ".join(g.name for g in obj.groups.all())


@admin.register(CustomerMembership)
class CustomerMembershipAdmin(GuardedAdmin):
    list_display = ("user", "customer", "role", "created_at")
    list_filter = ("role",)
    search_fields = ("user__username", "customer__code", "customer__name")
    autocomplete_fields = ["user", "customer"]
    list_select_related = ("user", "customer")
