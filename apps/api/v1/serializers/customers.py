"""Customers (with what their fapiao needs)."""

from __future__ import annotations

from django.utils.translation import gettext_lazy
from rest_framework.validators import UniqueValidator

from apps.accounts.models import User
from apps.core.validators import validate_uscc
from apps.customers.models import Customer

from .common import ImmutableFieldsMixin
from .fields import ModelSerializer, NaturalKeyField, StrictCharField, StrictSlugField


class TaxIdField(StrictCharField):
    """A unified social credit code: spaces dropped, letters upper-cased, then checked."""

    def to_internal_value(self, data):
        value = super().to_internal_value(data)
        return value.replace(" ", "").upper()


class CustomerSerializer(ImmutableFieldsMixin, ModelSerializer):
    code = StrictSlugField(
        max_length=50,
        validators=[
            UniqueValidator(
                Customer.objects.all(), message=gettext_lazy("Another customer already has this code.")
            )
        ],
        help_text="Unique slug; write payloads refer to the customer by it.",
    )
    tax_id = TaxIdField(
        max_length=18,
        validators=[
            validate_uscc,
            UniqueValidator(
                Customer.objects.all(), message=gettext_lazy("Another customer already has this tax id.")
            ),
        ],
        help_text="Unified social credit code 统一社会信用代码 (18 characters with a check character).",
    )
    account_manager = NaturalKeyField(
        noun="staff user",
        slug_field="username",
        queryset=User.objects.filter(is_staff=True, is_active=True),
        required=False,
        allow_null=True,
        help_text="Username of the account manager; defaults to the creating account manager.",
    )

    class Meta:
        model = Customer
        fields = [
            "id",
            "code",
            "name",
            "tax_id",
            "billing_address",
            "phone",
            "bank_name",
            "bank_account",
            "billing_email",
            "invoice_type",
            "currency",
            "payment_terms_days",
            "auto_issue",
            "language",
            "account_manager",
            "created_at",
            "updated_at",
        ]
        extra_kwargs = {"payment_terms_days": {"max_value": 365}}
        immutable_fields = ("code",)
