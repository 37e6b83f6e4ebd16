"""Users, customer memberships. Roles are Django groups (see roles.py)."""

from django.contrib.auth.models import AbstractUser
from django.db import models


class User(AbstractUser):
    """Staff (account managers, finance, ...) and customer portal users alike."""

    display_name = models.CharField(max_length=100, blank=True)
    phone = models.CharField(max_length=30, blank=True)

    class Meta:
        verbose_name = "user 用户"
        verbose_name_plural = "users 用户"

    def __str__(self) -> str:
        return self.display_name or self.get_username()


class CustomerMembership(models.Model):
    """A portal user's access to one customer's contracts, usage and invoices."""

    class Role(models.TextChoices):
        ADMIN = "admin", "Admin 管理员"
        BILLING = "billing", "Billing 财务"
        VIEWER = "viewer", "Viewer 只读"

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="memberships")
    customer = models.ForeignKey("customers.Customer", on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=20, choices=Role.choices, default=Role.ADMIN)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "customer"], name="uniq_membership_user_customer")
        ]

    def __str__(self) -> str:
        return f"{self.user} @ {self.customer}"
