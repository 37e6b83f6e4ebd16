"""Contracts with their lines and allocations (docs/api.md#shapes), the lifecycle actions and the quote.

Input serializers only parse: natural keys become rows, strings become ``Decimal`` and aware
datetimes, and the result is handed to ``apps.contracts.services`` as ``LineData`` /
``AllocationData``. Every business rule (positive quantities, discounts below 100, hardware of the
line's model, no double booking) is the services' to check.
"""

from __future__ import annotations

import datetime
from decimal import Decimal

from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers
from rest_framework.exceptions import ErrorDetail

from apps.accounts.models import User
from apps.contracts import services
from apps.contracts.models import (
    Allocation,
    Contract,
    ContractLine,
    PriceList,
    TaxCategory,
    YearlyBilling,
)
from apps.contracts.services import AllocationData, LineData
from apps.core.choices import Currency, LeaseTerm, ResourceKind
from apps.core.money import effective_unit_price, round_unit_price
from apps.customers.models import Customer
from apps.inventory.models import Card, GpuModel, Server
from apps.inventory.services import card_uuid_normalize

from .fields import DecimalStringField, NaturalKeyField, StrictCharField, decimal_string

MAX_LINES = 200
MAX_ALLOCATIONS_PER_LINE = 1000
MAX_TIERS = 20
EARLIEST = datetime.datetime(2000, 1, 1, tzinfo=datetime.UTC)
LATEST = datetime.datetime(3000, 1, 1, tzinfo=datetime.UTC)

# ---------------------------------------------------------------------------------------- fields


@extend_schema_field({"type": "string", "format": "date-time", "example": "2026-11-01T00:00:00+08:00"})
class AwareDateTimeField(serializers.DateTimeField):
    """An ISO 8601 timestamp that states its UTC offset (a bare local time is ambiguous: refused)."""

    default_error_messages = {
        "naive": "Give the time with its UTC offset, e.g. 2026-11-01T00:00:00+08:00.",
        "out_of_range": "Must be between the years 2000 and 2999.",
    }

    def to_internal_value(self, value):
        if not isinstance(value, str):
            self.fail("invalid", format="ISO 8601 with offset, e.g. 2026-11-01T00:00:00+08:00")
        try:
            parsed = parse_datetime(value.strip())
        except ValueError:
            parsed = None
        if parsed is not None and parsed.tzinfo is None:
            self.fail("naive")
        result = super().to_internal_value(value)  # DRF answers "out of range" on overflow
        if not EARLIEST <= result < LATEST:
            self.fail("out_of_range")
        return result


@extend_schema_field(
    {"type": "string", "minLength": 1, "example": "GPU-5f1a0c3e-6b1d-4c2e-9a8f-0123456789ab"}
)
class CardKeyField(NaturalKeyField):
    """A card by its NVML UUID, in any letter case (stored in lower case, as NVML prints it)."""

    def to_internal_value(self, data):
        if isinstance(data, str):
            data = card_uuid_normalize(uuid=data)
        return super().to_internal_value(data)


def _money(**kwargs) -> DecimalStringField:
    return DecimalStringField(max_digits=18, decimal_places=6, **kwargs)


def _percent(**kwargs) -> DecimalStringField:
    return DecimalStringField(max_digits=5, decimal_places=2, min_places=0, **kwargs)


# ---------------------------------------------------------------------------------------- input


class AllocationInputSerializer(serializers.Serializer):
    """``{"card": "GPU-…"}`` or ``{"server": "SRV-…"}``; start and end default to the line's."""

    card = CardKeyField(
        noun="card",
        slug_field="uuid",
        queryset=Card.objects.select_related("server"),
        required=False,
        help_text="NVML UUID of one card (card and P-unit lines).",
    )
    server = NaturalKeyField(
        noun="server",
        slug_field="serial",
        queryset=Server.objects.all(),
        required=False,
        help_text="Serial of a whole server (server and P-unit lines).",
    )
    start = AwareDateTimeField(source="start_at", required=False, allow_null=True)
    end = AwareDateTimeField(source="end_at", required=False, allow_null=True)

    def validate(self, attrs):
        if ("card" in attrs) == ("server" in attrs):
            raise serializers.ValidationError(
                {"card": [gettext("Give a card or a server (one of the two).")]}
            )
        return attrs


class TierInputSerializer(serializers.Serializer):
    up_to = DecimalStringField(
        max_digits=18, decimal_places=6, min_places=0, allow_null=True, help_text="Empty = no limit."
    )
    list_unit_price = _money()


class LineInputSerializer(serializers.Serializer):
    """One contract line. Omitted: start/end the contract's, term discount and tax category the
    price list's (tax ``it_service`` where the list has no item), negotiated discount 0."""

    resource = serializers.ChoiceField(choices=ResourceKind.choices)
    gpu_model = NaturalKeyField(
        noun="GPU model", slug_field="name", queryset=GpuModel.objects.all(), help_text="GPU model name."
    )
    quantity = DecimalStringField(
        max_digits=18,
        decimal_places=6,
        min_places=0,
        help_text="Cards, servers (whole numbers) or P with up to 6 decimals.",
    )
    term = serializers.ChoiceField(choices=LeaseTerm.choices)
    list_unit_price = _money(required=False, allow_null=True, help_text="Default: the price list's.")
    term_discount_percent = _percent(required=False, allow_null=True, help_text="Default: the price list's.")
    discount_percent = _percent(required=False, default=Decimal(0), help_text="Negotiated discount.")
    tax_category = NaturalKeyField(
        noun="tax category",
        slug_field="code",
        queryset=TaxCategory.objects.all(),
        required=False,
        allow_null=True,
        help_text="Tax category code; default the price list item's, else it_service.",
    )
    start = AwareDateTimeField(source="start_at", required=False, allow_null=True)
    end = AwareDateTimeField(source="end_at", required=False, allow_null=True)
    yearly_billing = serializers.ChoiceField(
        choices=YearlyBilling.choices, default=YearlyBilling.MONTHLY_INSTALMENTS
    )
    tiers = TierInputSerializer(many=True, required=False, default=list, max_length=MAX_TIERS)
    allocations = AllocationInputSerializer(
        many=True, required=False, default=list, max_length=MAX_ALLOCATIONS_PER_LINE
    )


def line_data(attrs: dict) -> LineData:
    """The service's ``LineData`` from a validated line."""
    values = dict(attrs)
    tiers = [(tier["up_to"], tier["list_unit_price"]) for tier in values.pop("tiers", [])]
    allocations = [allocation_data(a) for a in values.pop("allocations", [])]
    return LineData(**values, tiers=tiers, allocations=allocations)


def allocation_data(attrs: dict) -> AllocationData:
    return AllocationData(
        card=attrs.get("card"),
        server=attrs.get("server"),
        start_at=attrs.get("start_at"),
        end_at=attrs.get("end_at"),
    )


class ContractCreateSerializer(serializers.Serializer):
    """``POST /contracts/``: the header, the lines and their allocations, all or nothing."""

    customer = NaturalKeyField(
        noun="customer", slug_field="code", queryset=Customer.objects.all(), help_text="Customer code."
    )
    account_manager = NaturalKeyField(
        noun="staff user",
        slug_field="username",
        queryset=User.objects.filter(is_staff=True, is_active=True),
        required=False,
        help_text="Username; default the user drafting the contract.",
    )
    price_list = NaturalKeyField(
        noun="price list",
        slug_field="code",
        queryset=PriceList.objects.all(),
        required=False,
        allow_null=True,
        help_text="Price list code for the defaults; default the default list of the currency.",
    )
    currency = serializers.ChoiceField(
        choices=Currency.choices, required=False, help_text="Default: the customer's."
    )
    prices_include_tax = serializers.BooleanField(default=True, help_text="含税价 (default true).")
    start = AwareDateTimeField(source="start_at")
    end = AwareDateTimeField(
        source="end_at", required=False, allow_null=True, help_text="Empty = open-ended."
    )
    minimum_monthly_amount = DecimalStringField(
        max_digits=14, decimal_places=2, required=False, allow_null=True, help_text="Minimum commitment."
    )
    notes = StrictCharField(required=False, allow_blank=True, max_length=10_000)
    lines = LineInputSerializer(many=True, max_length=MAX_LINES)


class LineCreateSerializer(LineInputSerializer):
    """``POST /contracts/{id}/lines/``: one more line (with its allocations) on a draft."""


class AllocationCreateSerializer(AllocationInputSerializer):
    """``POST /contracts/{id}/lines/{line_pk}/allocations/``: a card or a server for a draft's line."""


class ActionSerializer(serializers.Serializer):
    """An action that takes no arguments: the body is empty or ``{}``."""


class SuspendSerializer(serializers.Serializer):
    reason = StrictCharField(required=False, allow_blank=True, max_length=300, default="")


class TerminateSerializer(serializers.Serializer):
    at = AwareDateTimeField(
        required=False, allow_null=True, help_text="When billing stops; default now (may lie ahead)."
    )
    reason = StrictCharField(required=False, allow_blank=True, max_length=300, default="")


class AmendSerializer(serializers.Serializer):
    effective_at = AwareDateTimeField(help_text="When the new version takes over (within the term).")


class QuoteQuerySerializer(serializers.Serializer):
    utilisation = DecimalStringField(
        max_digits=5,
        decimal_places=2,
        min_value=Decimal(0),
        max_value=Decimal(100),
        default=Decimal(100),
        help_text="Expected utilisation of hourly lines, percent (default 100).",
    )


# ---------------------------------------------------------------------------------------- output


def _percent_string(value: Decimal) -> str:
    return decimal_string(value)


class AllocationSerializer(serializers.ModelSerializer):
    card = serializers.CharField(source="card.uuid", allow_null=True, default=None, read_only=True)
    server = serializers.CharField(source="server.serial", read_only=True)
    start = serializers.DateTimeField(source="start_at", read_only=True)
    end = serializers.DateTimeField(source="end_at", read_only=True, allow_null=True)

    class Meta:
        model = Allocation
        fields = ["id", "card", "server", "slot", "start", "end", "firm"]
        read_only_fields = fields


class TierSerializer(serializers.Serializer):
    up_to = DecimalStringField(max_digits=18, decimal_places=6, min_places=0, allow_null=True)
    list_unit_price = _money()


class ContractLineSerializer(serializers.ModelSerializer):
    """A line as read: defaults resolved (start/end are the contract's where the line has none)."""

    gpu_model = serializers.CharField(source="gpu_model.name", read_only=True)
    quantity = DecimalStringField(max_digits=18, decimal_places=6, min_places=0, read_only=True)
    unit = serializers.CharField(read_only=True, help_text="card_hour, server_month, p_year, …")
    list_unit_price = _money(read_only=True)
    term_discount_percent = _percent(read_only=True)
    discount_percent = _percent(read_only=True)
    combined_discount_percent = serializers.SerializerMethodField(
        help_text="1 − (1 − term)(1 − negotiated), percent; above the threshold needs approval."
    )
    unit_price = serializers.SerializerMethodField(
        help_text="Effective unit price: list × (1 − term) × (1 − negotiated), 6 places."
    )
    tax_category = serializers.CharField(source="tax_category.code", read_only=True)
    tax_rate = DecimalStringField(source="tax_category.rate", max_digits=5, decimal_places=4, read_only=True)
    start = serializers.SerializerMethodField()
    end = serializers.SerializerMethodField()
    tiers = TierSerializer(many=True, read_only=True)
    allocations = AllocationSerializer(many=True, read_only=True)

    class Meta:
        model = ContractLine
        fields = [
            "id",
            "position",
            "resource",
            "gpu_model",
            "quantity",
            "term",
            "unit",
            "list_unit_price",
            "term_discount_percent",
            "discount_percent",
            "combined_discount_percent",
            "unit_price",
            "tax_category",
            "tax_rate",
            "start",
            "end",
            "yearly_billing",
            "p_basis",
            "tiers",
            "allocations",
        ]
        read_only_fields = fields

    @extend_schema_field({"type": "string", "format": "decimal", "example": "23.5"})
    def get_combined_discount_percent(self, line: ContractLine) -> str:
        return _percent_string(line.combined_discount_percent)

    @extend_schema_field({"type": "string", "format": "decimal", "example": "20.43"})
    def get_unit_price(self, line: ContractLine) -> str:
        price = effective_unit_price(line.list_unit_price, line.term_discount_percent, line.discount_percent)
        return decimal_string(round_unit_price(price), min_places=2)

    @extend_schema_field({"type": "string", "format": "date-time"})
    def get_start(self, line: ContractLine) -> str:
        start, _ = services.line_interval(line=line)
        return serializers.DateTimeField().to_representation(start)

    @extend_schema_field({"type": "string", "format": "date-time", "nullable": True})
    def get_end(self, line: ContractLine) -> str | None:
        _, end = services.line_interval(line=line)
        return None if end is None else serializers.DateTimeField().to_representation(end)


class ContractSerializer(serializers.ModelSerializer):
    """A contract version as read, with its lines and their allocations."""

    customer = serializers.CharField(source="customer.code", read_only=True, help_text="Customer code.")
    account_manager = serializers.CharField(source="account_manager.username", read_only=True)
    price_list = serializers.CharField(
        source="price_list.code", read_only=True, allow_null=True, default=None
    )
    start = serializers.DateTimeField(source="start_at", read_only=True)
    end = serializers.DateTimeField(source="end_at", read_only=True, allow_null=True)
    minimum_monthly_amount = DecimalStringField(
        max_digits=14, decimal_places=2, read_only=True, allow_null=True
    )
    combined_discount_percent = serializers.SerializerMethodField(
        help_text="The highest combined discount of the lines, percent."
    )
    needs_approval = serializers.SerializerMethodField(
        help_text="A line's combined discount is above the threshold: a sales manager approves first."
    )
    approved_by = serializers.CharField(
        source="approved_by.username", read_only=True, allow_null=True, default=None
    )
    lines = ContractLineSerializer(many=True, read_only=True)

    class Meta:
        model = Contract
        fields = [
            "id",
            "number",
            "version",
            "amends",
            "status",
            "customer",
            "account_manager",
            "price_list",
            "currency",
            "prices_include_tax",
            "start",
            "end",
            "minimum_monthly_amount",
            "combined_discount_percent",
            "needs_approval",
            "submitted_at",
            "approved_by",
            "approved_at",
            "activated_at",
            "ended_at",
            "end_reason",
            "notes",
            "lines",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields

    @extend_schema_field({"type": "string", "format": "decimal", "example": "23.5"})
    def get_combined_discount_percent(self, contract: Contract) -> str:
        discounts = [line.combined_discount_percent for line in contract.lines.all()]
        return _percent_string(max(discounts, default=Decimal(0)))

    def get_needs_approval(self, contract: Contract) -> bool:
        return services.contract_needs_approval(contract=contract)

    def to_representation(self, instance):
        data = super().to_representation(instance)
        request = self.context.get("request")
        if request is not None and not request.user.is_staff:
            data.pop("notes", None)  # internal remarks are not the customer's to read
        return data


# ---------------------------------------------------------------------------------------- quote


def _amount_field(**kwargs) -> DecimalStringField:
    return DecimalStringField(max_digits=18, decimal_places=2, read_only=True, **kwargs)


class QuoteLineSerializer(serializers.Serializer):
    line = serializers.IntegerField(source="line.id", read_only=True)
    position = serializers.IntegerField(source="line.position", read_only=True)
    resource = serializers.CharField(source="line.resource", read_only=True)
    gpu_model = serializers.CharField(source="line.gpu_model.name", read_only=True)
    term = serializers.CharField(source="line.term", read_only=True)
    quantity = DecimalStringField(
        source="line.quantity", max_digits=18, decimal_places=6, min_places=0, read_only=True
    )
    unit = serializers.CharField(source="line.unit", read_only=True)
    tax_rate = DecimalStringField(
        source="line.tax_category.rate", max_digits=5, decimal_places=4, read_only=True
    )
    list_amount = _amount_field()
    term_discount_amount = _amount_field()
    negotiated_discount_amount = _amount_field()
    amount = _amount_field(help_text="The month's charge on the contract's tax basis.")
    tax_amount = _amount_field()
    net_amount = _amount_field()
    gross_amount = _amount_field()
    cost_amount = _amount_field(allow_null=True, help_text="Providers' cost; empty without allocations.")
    margin_amount = _amount_field(allow_null=True, help_text="net − cost.")


class QuoteTotalsSerializer(serializers.Serializer):
    list_amount = _amount_field()
    discount_amount = _amount_field()
    amount = _amount_field()
    tax_amount = _amount_field()
    net_amount = _amount_field()
    gross_amount = _amount_field()
    cost_amount = _amount_field(allow_null=True)
    margin_amount = _amount_field(allow_null=True)


class QuoteSerializer(serializers.Serializer):
    """What the contract costs for its first full calendar month (nothing is saved)."""

    contract = serializers.CharField(source="contract.number", read_only=True)
    version = serializers.IntegerField(source="contract.version", read_only=True)
    currency = serializers.CharField(source="contract.currency", read_only=True)
    prices_include_tax = serializers.BooleanField(source="contract.prices_include_tax", read_only=True)
    period = serializers.CharField(read_only=True, help_text="YYYY-MM")
    utilisation_percent = _percent(read_only=True)
    lines = QuoteLineSerializer(many=True, read_only=True)
    totals = serializers.SerializerMethodField()

    @extend_schema_field(QuoteTotalsSerializer)
    def get_totals(self, quote) -> dict:
        return QuoteTotalsSerializer(quote).data


# ---------------------------------------------------------------------------------------- errors


def error_paths(errors, prefix: str = "") -> dict[str, list[str]]:
    """Nested errors (DRF's or a service's ``fields``) as ``{"lines.1.allocations.0.card": [...]}``.

    ``non_field_errors`` of a nested object is reported on the object's own path.
    """
    flat: dict[str, list[str]] = {}

    def add(path: str, message) -> None:
        flat.setdefault(path or "non_field_errors", []).append(str(message))

    def walk(value, path: str) -> None:
        if isinstance(value, dict):
            for key, inner in value.items():
                key = str(key)
                walk(inner, path if key == "non_field_errors" else f"{path}.{key}" if path else key)
        elif isinstance(value, list | tuple):
            if all(isinstance(item, str | ErrorDetail) for item in value):
                for item in value:
                    add(path, item)
            else:
                for index, item in enumerate(value):
                    walk(item, f"{path}.{index}" if path else str(index))
        elif value is not None:
            add(path, value)

    walk(errors, prefix)
    return flat
