"""CSV/XLSX import and export of servers with their cards (django-import-export).

One row per server: ``serial, provider, site, gpu_model, status, card_count, card_uuids`` where
``provider`` is the provider's code, ``site`` the site's name within that provider, ``gpu_model``
the catalogue name and ``card_uuids`` the NVML UUIDs in slot order (slot 0 first), separated by
``;``. Export writes the same format, so an exported file imports back unchanged.

An import is all or nothing: any bad row rolls the whole file back, and every bad row is
reported with the column and value at fault. A new server's cards are created with it, in the
same transaction. A server already in the database (same serial) may change provider, site,
model or status, but not its cards: those are edited on the server's admin page.
"""

from __future__ import annotations

from collections import defaultdict

from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.db import transaction
from import_export import fields, resources, widgets
from import_export.results import Result
from simple_history.utils import bulk_create_with_history

from apps.core.validators import validate_nvml_uuid
from apps.providers.models import Provider, Site

from .models import Card, GpuModel, HardwareStatus, Server

COLUMNS = ("serial", "provider", "site", "gpu_model", "status", "card_count", "card_uuids")
UUID_SEPARATOR = ";"
MAX_CARDS = 16


def _text(value) -> str:
    return "" if value is None else str(value).strip()


def _rows(numbers: list[int]) -> str:
    return ", ".join(str(n) for n in numbers)


def _listing(items: list[str], limit: int = 4) -> str:
    """``a, b, c, d and 5 more``: every problem named, without flooding the page."""
    shown = ", ".join(items[:limit])
    return shown if len(items) <= limit else f"{shown} and {len(items) - limit} more"


def _is_nvml_uuid(value: str) -> bool:
    try:
        validate_nvml_uuid(value)
    except ValidationError:
        return False
    return True


def normalise_uuid(value: str) -> str:
    """``gpu-ABC…`` → ``GPU-abc…``: NVML prints lowercase hex, and the database compares exactly."""
    value = value.strip()
    if value[:4].upper() == "GPU-":
        return "GPU-" + value[4:].lower()
    return value


class SerialWidget(widgets.CharWidget):
    def clean(self, value, row=None, **kwargs):
        return _text(value)


class ProviderCodeWidget(widgets.ForeignKeyWidget):
    def __init__(self):
        super().__init__(Provider, field="code")

    def clean(self, value, row=None, **kwargs):
        code = _text(value)
        if not code:
            raise ValueError("provider is required (the provider's code).")
        provider = Provider.objects.filter(code=code).first()
        if provider is None:
            raise ValueError(f"provider “{code}” does not exist (expected a provider code).")
        return provider


class SiteNameWidget(widgets.ForeignKeyWidget):
    """A site by name within the row's provider."""

    def __init__(self):
        super().__init__(Site, field="name")

    def clean(self, value, row=None, **kwargs):
        name = _text(value)
        provider_code = _text((row or {}).get("provider"))
        if not name:
            raise ValueError("site is required (the site's name within the provider).")
        sites = list(Site.objects.filter(name=name).select_related("provider"))
        for site in sites:
            if site.provider.code == provider_code:
                return site
        if sites:
            owners = ", ".join(sorted(s.provider.code for s in sites))
            raise ValueError(f"site “{name}” belongs to provider {owners}, not to “{provider_code}”.")
        raise ValueError(f"site “{name}” does not exist.")


class GpuModelNameWidget(widgets.ForeignKeyWidget):
    def __init__(self):
        super().__init__(GpuModel, field="name")

    def clean(self, value, row=None, **kwargs):
        name = _text(value)
        if not name:
            raise ValueError("gpu_model is required (a GPU model name from the catalogue).")
        gpu_model = GpuModel.objects.filter(name=name).first()
        if gpu_model is None:
            raise ValueError(f"gpu_model “{name}” is not in the GPU catalogue.")
        return gpu_model


class StatusWidget(widgets.CharWidget):
    """Blank keeps the current status (``available`` for a new server)."""

    def clean(self, value, row=None, **kwargs):
        status = _text(value).lower()
        if not status:
            return None
        if status not in HardwareStatus.values:
            raise ValueError(f"status “{_text(value)}” is not one of {', '.join(HardwareStatus.values)}.")
        return status


class CardCountWidget(widgets.IntegerWidget):
    def clean(self, value, row=None, **kwargs):
        try:
            count = super().clean(value, row=row, **kwargs)
        except (ValueError, ArithmeticError):
            count = None
            if _text(value):
                raise ValueError(f"card_count “{_text(value)}” is not a whole number.") from None
        if count is None:
            raise ValueError("card_count is required.")
        if not 1 <= count <= MAX_CARDS:
            raise ValueError(f"card_count must be between 1 and {MAX_CARDS}, got {count}.")
        return count


class CardUuidsWidget(widgets.Widget):
    """``GPU-a;GPU-b`` ⇄ ``["GPU-a", "GPU-b"]`` (slot order)."""

    def clean(self, value, row=None, **kwargs):
        return [normalise_uuid(part) for part in _text(value).split(UUID_SEPARATOR) if part.strip()]

    def render(self, value, obj=None, **kwargs):
        return UUID_SEPARATOR.join(value or [])


class ServerResource(resources.ModelResource):
    serial = fields.Field(attribute="serial", column_name="serial", widget=SerialWidget())
    provider = fields.Field(attribute="provider", column_name="provider", widget=ProviderCodeWidget())
    site = fields.Field(attribute="site", column_name="site", widget=SiteNameWidget())
    gpu_model = fields.Field(attribute="gpu_model", column_name="gpu_model", widget=GpuModelNameWidget())
    status = fields.Field(
        attribute="status", column_name="status", widget=StatusWidget(), saves_null_values=False
    )
    card_count = fields.Field(attribute="card_count", column_name="card_count", widget=CardCountWidget())
    # Held on the instance during an import (not a model field); written as cards after the save.
    card_uuids = fields.Field(
        attribute="import_card_uuids", column_name="card_uuids", widget=CardUuidsWidget()
    )

    class Meta:
        model = Server
        fields = COLUMNS
        import_order = COLUMNS
        export_order = COLUMNS
        import_id_fields = ("serial",)
        clean_model_instances = True
        skip_unchanged = True
        report_skipped = True
        use_transactions = True

    # -- export --------------------------------------------------------------------------------

    def get_queryset(self):
        return Server.objects.select_related("provider", "site", "gpu_model")

    def filter_export(self, queryset, **kwargs):
        return queryset.select_related("provider", "site", "gpu_model").prefetch_related("cards")

    def dehydrate_card_uuids(self, server: Server) -> str:
        if server.pk is None:
            return ""
        cards = sorted(server.cards.all(), key=lambda card: card.slot)
        return UUID_SEPARATOR.join(card.uuid for card in cards)

    # -- import --------------------------------------------------------------------------------

    def import_data(self, dataset, dry_run=False, raise_errors=False, use_transactions=None, **kwargs):
        """All or nothing: a row that fails validation rolls back the whole file, not just itself."""
        kwargs["rollback_on_validation_errors"] = True
        return super().import_data(
            dataset, dry_run=dry_run, raise_errors=raise_errors, use_transactions=use_transactions, **kwargs
        )

    def before_import(self, dataset, **kwargs):
        # Where each serial and card UUID occurs in the file (row numbers count from 1, as reported).
        self._serial_rows: dict[str, list[int]] = defaultdict(list)
        self._uuid_rows: dict[str, list[int]] = defaultdict(list)
        if dataset.headers:
            dataset.headers = [_text(header).lower() for header in dataset.headers]
        # Spreadsheets often carry empty rows below the data.
        for index in reversed(range(len(dataset))):
            if not any(_text(value) for value in dataset[index]):
                del dataset[index]
        missing = [column for column in COLUMNS if column not in (dataset.headers or [])]
        if missing:
            raise ValidationError(
                f"The file lacks the column(s) {', '.join(missing)}; expected: {', '.join(COLUMNS)}."
            )
        for number, row in enumerate(dataset.dict, start=1):
            serial = _text(row.get("serial"))
            if serial:
                self._serial_rows[serial].append(number)
            for card in CardUuidsWidget().clean(row.get("card_uuids")):
                self._uuid_rows[card].append(number)

    def after_init_instance(self, instance, new, row, **kwargs):
        # Before import_export snapshots the original, so an unchanged row is reported as skipped.
        instance.import_is_new = new
        instance.import_original_status = None if new else instance.status
        instance.import_card_uuids = (
            [] if new else list(instance.cards.order_by("slot").values_list("uuid", flat=True))
        )
        instance.import_current_card_uuids = list(instance.import_card_uuids)

    def import_instance(self, instance, row, **kwargs):
        errors: dict[str, list] = {}
        try:
            super().import_instance(instance, row, **kwargs)
        except ValidationError as exc:
            errors = exc.update_error_dict(errors)
        for column, message in self._row_problems(instance, row, errors):
            errors.setdefault(column, []).append(ValidationError(message))
        if errors:
            raise ValidationError(errors)

    def _row_problems(self, instance, row, errors):
        """(column, message) for what field cleaning alone cannot see."""
        serial = _text(row.get("serial"))
        if not serial:
            yield "serial", "serial is required."
        elif len(self._serial_rows.get(serial, [])) > 1:
            rows = _rows(self._serial_rows[serial])
            yield "serial", f"serial “{serial}” appears more than once in the file (rows {rows})."

        if (
            instance.status == HardwareStatus.ALLOCATED
            and instance.import_original_status != HardwareStatus.ALLOCATED
        ):
            yield "status", "status “allocated” is set by activating a contract, not by import."

        if "card_uuids" not in errors:
            yield from self._card_problems(instance, errors)

    def _card_problems(self, instance, errors):
        uuids = instance.import_card_uuids
        if "card_count" not in errors and instance.card_count != len(uuids):
            yield (
                "card_count",
                f"card_count is {instance.card_count} but card_uuids lists {len(uuids)} UUID(s).",
            )

        invalid = [f"entry {n} “{card}”" for n, card in enumerate(uuids, start=1) if not _is_nvml_uuid(card)]
        if invalid:
            yield (
                "card_uuids",
                f"not an NVML UUID like GPU-xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx: {_listing(invalid)}.",
            )
        valid = list(dict.fromkeys(card for card in uuids if _is_nvml_uuid(card)))

        repeated = [card for card in valid if uuids.count(card) > 1]
        if repeated:
            yield "card_uuids", f"card UUID listed more than once in this row: {_listing(repeated)}."
        elsewhere = [
            f"{card} (rows {_rows(sorted(set(self._uuid_rows[card])))})"
            for card in valid
            if len(set(self._uuid_rows.get(card, []))) > 1
        ]
        if elsewhere:
            yield "card_uuids", f"card UUID also on another row of the file: {_listing(elsewhere)}."

        in_use = (
            Card.objects.filter(uuid__in=valid).select_related("server").order_by("server__serial", "slot")
        )
        if instance.pk:
            in_use = in_use.exclude(server_id=instance.pk)
        taken = [f"{card.uuid} (server {card.server.serial}, slot {card.slot})" for card in in_use]
        if taken:
            yield "card_uuids", f"card UUID already in use by another server: {_listing(taken)}."

        if not instance.import_is_new and uuids != instance.import_current_card_uuids:
            yield (
                "card_uuids",
                f"server {instance.serial} already exists with other cards; an import cannot change a "
                "server's cards (edit them on the server's page).",
            )

    def save_instance(self, instance, is_create, row, **kwargs):
        # A savepoint around server and cards: a unique-constraint race fails this row cleanly.
        with transaction.atomic():
            super().save_instance(instance, is_create, row, **kwargs)

    def after_save_instance(self, instance, row, **kwargs):
        if not instance.import_is_new:
            return
        card_status = (
            instance.status if instance.status != HardwareStatus.ALLOCATED else HardwareStatus.AVAILABLE
        )
        cards = [
            Card(server=instance, slot=slot, uuid=card, status=card_status)
            for slot, card in enumerate(instance.import_card_uuids)
        ]
        bulk_create_with_history(cards, Card, default_user=kwargs.get("user"), default_change_reason="import")


def import_error_lines(result: Result) -> list[str]:
    """Every problem of an import result as one line: ``Row 2, gpu_model: …`` (for logs and tests)."""
    lines = [f"File: {error.error}" for error in result.base_errors]
    for number, errors in result.row_errors():
        lines += [f"Row {number}: {error.error}" for error in errors]
    for invalid in result.invalid_rows:
        for column, messages in invalid.error_dict.items():
            label = "row" if column == NON_FIELD_ERRORS else column
            lines += [f"Row {invalid.number}, {label}: {message}" for message in messages]
    return lines
