"""Writes to the hardware inventory: servers with their cards, in one transaction.

Every function validates the whole request first and raises a ``DomainError`` (code ``invalid``,
``fields`` naming what is wrong) before anything is written; the database constraints (unique
serial, unique card UUID, unique slot per server) have the last word, and a concurrent writer that
wins the race makes the loser raise ``Conflict`` naming the field, with nothing half-written.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils.translation import gettext
from simple_history.utils import bulk_create_with_history

from apps.core.errors import Conflict, DomainError, InvalidState
from apps.core.validators import validate_nvml_uuid
from apps.providers.models import Provider, Site

from .models import Card, CardIncident, GpuModel, HardwareStatus, Server

MAX_CARDS_PER_SERVER = 16
DEFAULT_CARD_COUNT = 8
# ``allocated`` is derived from contract allocations; nobody sets it by hand.
SETTABLE_STATUSES = (HardwareStatus.AVAILABLE, HardwareStatus.MAINTENANCE, HardwareStatus.RETIRED)


@dataclass(frozen=True)
class CardSpec:
    slot: int
    uuid: str
    status: str = HardwareStatus.AVAILABLE


def _invalid(message: str, fields: dict) -> DomainError:
    return DomainError(message, code="invalid", fields=fields)


def card_uuid_normalize(*, uuid: str) -> str:
    """NVML prints UUIDs in lower case; store them that way so usage reports match."""
    uuid = uuid.strip()
    return "GPU-" + uuid[4:].lower() if uuid[:4].upper() == "GPU-" else uuid


def _resolve_provider(provider: Provider | str) -> Provider:
    if isinstance(provider, Provider):
        return provider
    found = Provider.objects.filter(code=provider).first()
    if found is None:
        message = gettext("Unknown provider '%(code)s'.") % {"code": provider}
        raise _invalid(message, {"provider": [message]})
    return found


def _resolve_site(site: Site | str, provider: Provider) -> Site:
    if isinstance(site, str):
        found = Site.objects.filter(provider=provider, name=site).first()
        if found is None:
            message = gettext("Unknown site '%(name)s' for provider '%(provider)s'.") % {
                "name": site,
                "provider": provider.code,
            }
            raise _invalid(message, {"site": [message]})
        return found
    if site.provider_id != provider.pk:
        message = gettext("Site '%(name)s' belongs to another provider, not to '%(provider)s'.") % {
            "name": site.name,
            "provider": provider.code,
        }
        raise _invalid(message, {"site": [message]})
    return site


def _resolve_gpu_model(gpu_model: GpuModel | str) -> GpuModel:
    if isinstance(gpu_model, GpuModel):
        return gpu_model
    found = GpuModel.objects.filter(name=gpu_model).first()
    if found is None:
        message = gettext("Unknown GPU model '%(name)s'.") % {"name": gpu_model}
        raise _invalid(message, {"gpu_model": [message]})
    return found


def _check_status(status: str, field: str = "status") -> None:
    if status not in SETTABLE_STATUSES:
        allowed = ", ".join(SETTABLE_STATUSES)
        message = gettext(
            "Status '%(status)s' cannot be set here; use one of %(allowed)s "
            "('allocated' follows from contract allocations)."
        ) % {"status": status, "allowed": allowed}
        raise _invalid(message, {field: [message]})


def _card_specs(cards: Iterable[CardSpec | Mapping]) -> list[CardSpec]:
    specs = []
    for card in cards:
        if isinstance(card, CardSpec):
            specs.append(card)
        else:
            specs.append(
                CardSpec(
                    slot=card["slot"],
                    uuid=card["uuid"],
                    status=card.get("status") or HardwareStatus.AVAILABLE,
                )
            )
    return [CardSpec(slot=s.slot, uuid=card_uuid_normalize(uuid=s.uuid), status=s.status) for s in specs]


def _card_errors(specs: list[CardSpec], *, card_count: int, taken_slots: Collection[int] = ()) -> list[dict]:
    """Per-card error dicts (``{}`` for a good card), in the order the cards were given."""
    errors: list[dict] = [{} for _ in specs]

    def add(index: int, field: str, message: str) -> None:
        errors[index].setdefault(field, []).append(message)

    seen_slots: dict[int, int] = {}
    seen_uuids: dict[str, int] = {}
    for index, spec in enumerate(specs):
        if spec.status not in SETTABLE_STATUSES:
            add(
                index,
                "status",
                gettext("Status '%(status)s' cannot be set here; use one of %(allowed)s.")
                % {"status": spec.status, "allowed": ", ".join(SETTABLE_STATUSES)},
            )
        if not 0 <= spec.slot < card_count:
            add(
                index,
                "slot",
                gettext("Slot %(slot)s is out of range: a %(count)s-card server has slots 0–%(last)s.")
                % {"slot": spec.slot, "count": card_count, "last": card_count - 1},
            )
        elif spec.slot in taken_slots:
            add(index, "slot", gettext("Slot %(slot)s already holds a card.") % {"slot": spec.slot})
        elif spec.slot in seen_slots:
            add(
                index,
                "slot",
                gettext("Slot %(slot)s is given twice (also card %(other)s).")
                % {"slot": spec.slot, "other": seen_slots[spec.slot]},
            )
        else:
            seen_slots[spec.slot] = index
        try:
            validate_nvml_uuid(spec.uuid)
        except ValidationError as exc:
            add(index, "uuid", " ".join(exc.messages))
            continue
        if spec.uuid in seen_uuids:
            add(index, "uuid", f"UUID {spec.uuid} is given twice (also card {seen_uuids[spec.uuid]}).")
        else:
            seen_uuids[spec.uuid] = index

    existing = set(Card.objects.filter(uuid__in=list(seen_uuids)).values_list("uuid", flat=True))
    for uuid in existing:
        add(seen_uuids[uuid], "uuid", f"A card with UUID {uuid} already exists.")
    return errors


def _raise_for_cards(errors: list[dict], *, field: str = "cards") -> None:
    """Raise the per-card errors keyed by the card's index, as DRF reports nested list errors."""
    bad = {str(index): error for index, error in enumerate(errors) if error}
    if bad:
        index, first = next(iter(bad.items()))
        key, messages = next(iter(first.items()))
        raise _invalid(f"{field}: {index}: {key}: {messages[0]}", {field: bad})


def _conflict_from(exc: IntegrityError, *, serial: str = "", cards_field: str | None = "cards") -> Conflict:
    """Name the field of the unique constraint a concurrent writer beat us to.

    ``cards_field=None`` names the card's own ``uuid`` / ``slot`` field (one card written).
    """
    constraint = getattr(getattr(exc.__cause__, "diag", None), "constraint_name", "") or ""
    if "serial" in constraint:
        message = gettext("A server with serial '%(serial)s' was registered meanwhile.") % {"serial": serial}
        return Conflict(message, fields={"serial": [message]})
    for key, message in (
        ("uuid", gettext("A card with this UUID was registered meanwhile.")),
        ("slot", gettext("A card was put in this slot meanwhile.")),
    ):
        if key in constraint:
            return Conflict(message, fields={cards_field or key: [message]})
    return Conflict(gettext("The request conflicts with data written meanwhile; reload and retry."))


def server_create(
    *,
    provider: Provider | str,
    site: Site | str,
    serial: str,
    gpu_model: GpuModel | str,
    cards: Iterable[CardSpec | Mapping] = (),
    card_count: int | None = None,
    status: str = HardwareStatus.AVAILABLE,
    purchase_cost_amount: Decimal | None = None,
    annual_cash_cost_amount: Decimal | None = None,
    currency: str = "CNY",
    actor=None,
) -> Server:
    """Register a server and its cards, all or nothing.

    ``provider``, ``site`` and ``gpu_model`` are instances or natural keys (provider code, site
    name within that provider, GPU model name). ``card_count`` defaults to the number of cards
    given, or 8 when none are. Slots are unique and within ``[0, card_count)``; card UUIDs are NVML
    UUIDs, unique in the request and in the database.
    """
    provider = _resolve_provider(provider)
    site = _resolve_site(site, provider)
    gpu_model = _resolve_gpu_model(gpu_model)
    serial = serial.strip()
    specs = _card_specs(cards)
    if card_count is None:
        card_count = len(specs) or DEFAULT_CARD_COUNT
    if not 1 <= card_count <= MAX_CARDS_PER_SERVER:
        message = gettext("A server has 1 to %(max)s cards, not %(count)s.") % {
            "max": MAX_CARDS_PER_SERVER,
            "count": card_count,
        }
        raise _invalid(message, {"card_count": [message]})
    if len(specs) > card_count:
        message = gettext("%(given)s cards given for a server with card_count %(count)s.") % {
            "given": len(specs),
            "count": card_count,
        }
        raise _invalid(message, {"cards": [message]})
    _check_status(status)
    for field, amount in (
        ("purchase_cost_amount", purchase_cost_amount),
        ("annual_cash_cost_amount", annual_cash_cost_amount),
    ):
        if amount is not None and amount < 0:
            message = gettext("The amount cannot be negative.")
            raise _invalid(f"{field}: {message}", {field: [message]})
    if Server.objects.filter(serial=serial).exists():
        message = gettext("A server with serial '%(serial)s' already exists.") % {"serial": serial}
        raise _invalid(message, {"serial": [message]})
    _raise_for_cards(_card_errors(specs, card_count=card_count))

    try:
        with transaction.atomic():
            server = Server(
                provider=provider,
                site=site,
                serial=serial,
                gpu_model=gpu_model,
                card_count=card_count,
                status=status,
                purchase_cost_amount=purchase_cost_amount,
                annual_cash_cost_amount=annual_cash_cost_amount,
                currency=currency,
            )
            server._history_user = actor
            server.save()
            bulk_create_with_history(
                [Card(server=server, slot=s.slot, uuid=s.uuid, status=s.status) for s in specs],
                Card,
                default_user=actor,
            )
    except IntegrityError as exc:
        raise _conflict_from(exc, serial=serial) from exc
    return server


_UNSET: object = object()


def server_update(
    *,
    server: Server,
    actor=None,
    site: Site | str | None = None,
    status: str | None = None,
    purchase_cost_amount: Decimal | object | None = _UNSET,
    annual_cash_cost_amount: Decimal | object | None = _UNSET,
    currency: str | None = None,
) -> Server:
    """Change what operations may change on a registered server: its site (within the same
    provider), its status (never to or from ``allocated``: allocations own that), its purchase and
    cash-cost figures and currency. Serial, provider, GPU model and card count are the server's
    identity and do not change here. Arguments left out stay as they are.
    """
    with transaction.atomic():
        server = Server.objects.select_for_update().select_related("provider").get(pk=server.pk)
        changed = []
        if site is not None:
            server.site = _resolve_site(site, server.provider)
            changed.append("site")
        if status is not None and status != server.status:
            if server.status == HardwareStatus.ALLOCATED:
                message = gettext("The server is allocated to a contract; end the allocation first.")
                raise InvalidState(message, fields={"status": [message]})
            _check_status(status)
            server.status = status
            changed.append("status")
        for field, amount in (
            ("purchase_cost_amount", purchase_cost_amount),
            ("annual_cash_cost_amount", annual_cash_cost_amount),
        ):
            if amount is _UNSET:
                continue
            if amount is not None and amount < 0:
                message = gettext("The amount cannot be negative.")
                raise _invalid(f"{field}: {message}", {field: [message]})
            setattr(server, field, amount)
            changed.append(field)
        if currency is not None:
            server.currency = currency
            changed.append("currency")
        if changed:
            server._history_user = actor
            server.save(update_fields=[*changed, "updated_at"])
    return server


def card_add(
    *, server: Server, slot: int, uuid: str, status: str = HardwareStatus.AVAILABLE, actor=None
) -> Card:
    """Put a card in a free slot of a registered server (a new server, or a replaced GPU)."""
    specs = _card_specs([CardSpec(slot=slot, uuid=uuid, status=status)])
    with transaction.atomic():
        locked = Server.objects.select_for_update().get(pk=server.pk)
        taken = set(locked.cards.values_list("slot", flat=True))
        errors = _card_errors(specs, card_count=locked.card_count, taken_slots=taken)
        if errors[0]:
            messages = next(iter(errors[0].values()))
            raise _invalid(messages[0], errors[0])
        card = Card(server=locked, slot=specs[0].slot, uuid=specs[0].uuid, status=specs[0].status)
        card._history_user = actor
        try:
            with transaction.atomic():
                card.save()
        except IntegrityError as exc:
            raise _conflict_from(exc, cards_field=None) from exc
    return card


# -- card incidents (docs/hardware-truth.md#sources-and-incidents) ------------------------------
@dataclass(frozen=True, slots=True)
class IncidentReportResult:
    created: int  # new incidents
    ended: int  # ongoing incidents whose end this report brought
    unchanged: int  # resends of what is stored already


class IncidentsRejected(DomainError):
    """Some incidents name another server's card or contradict the stored one; nothing stored.

    ``errors``: ``[{"index", "event_id", "code": "invalid" | "conflict", "errors": {field: [msg]}}]``
    """

    code = "invalid_batch"
    http_status = 400

    def __init__(self, errors: list[dict]) -> None:
        self.errors = errors
        super().__init__(
            gettext("%(count)s incident(s) of the batch are invalid or conflicting; nothing was stored.")
            % {"count": len(errors)},
        )


def _incident_error(index: int, event_id: str, code: str, field: str, message: str) -> dict:
    return {"index": index, "event_id": event_id, "code": code, "errors": {field: [message]}}


@transaction.atomic
def card_incidents_report(*, server: Server, incidents: list[dict], now) -> IncidentReportResult:
    """Store the incidents the metering agent of ``server`` reports, all or nothing.

    Each incident: ``event_id``, ``card`` (normalised NVML UUID), ``kind``, ``xid_code``,
    ``detail``, ``start``, ``end`` (``None`` while ongoing). The agent's ``event_id`` is unique
    per card: sent again it is a resend (unchanged), or brings the end of an ongoing incident;
    another kind or start, or another end than the stored one, is a conflict. Only the server's
    own cards may be named.
    """
    uuids = {incident["card"] for incident in incidents}
    # The cards' rows are locked, so two posts of the same new incident (a resend racing the
    # first) take turns: the second finds it stored instead of failing on the unique key.
    cards = {
        card.uuid: card
        for card in Card.objects.select_for_update(of=("self",))
        .filter(server=server, uuid__in=uuids)
        .order_by("pk")
    }
    errors: list[dict] = []
    for index, incident in enumerate(incidents):
        if incident["card"] not in cards:
            errors.append(
                _incident_error(
                    index,
                    incident["event_id"],
                    "invalid",
                    "card",
                    gettext("No card with this UUID in this server."),
                )
            )
    if errors:
        raise IncidentsRejected(errors)
    stored = {
        (row.card_id, row.source_event_id): row
        for row in CardIncident.objects.select_for_update().filter(
            card__in=list(cards.values()), source_event_id__in={i["event_id"] for i in incidents}
        )
    }
    new: dict[tuple[int, str], CardIncident] = {}
    ended: dict[int, CardIncident] = {}
    unchanged = 0
    for index, incident in enumerate(incidents):
        card = cards[incident["card"]]
        key = (card.pk, incident["event_id"])
        found = stored.get(key) or new.get(key)
        if found is None:
            new[key] = CardIncident(
                card=card,
                kind=incident["kind"],
                xid_code=incident.get("xid_code"),
                detail=incident.get("detail") or "",
                started_at=incident["start"],
                ended_at=incident.get("end"),
                reported_at=now,
                source_event_id=incident["event_id"],
            )
            continue
        end = incident.get("end")
        if found.kind != incident["kind"] or found.started_at != incident["start"]:
            errors.append(
                _incident_error(
                    index,
                    incident["event_id"],
                    "conflict",
                    "event_id",
                    gettext("This event id is stored with another kind or start."),
                )
            )
        elif end is None or found.ended_at == end:
            unchanged += 1
        elif found.ended_at is None:
            found.ended_at = end
            if incident.get("detail"):
                found.detail = incident["detail"]
            if found.pk is not None:
                ended[found.pk] = found
        else:
            errors.append(
                _incident_error(
                    index,
                    incident["event_id"],
                    "conflict",
                    "end",
                    gettext("This incident is stored as ended at another time."),
                )
            )
    if errors:
        raise IncidentsRejected(errors)
    for incident in new.values():
        incident.full_clean(exclude=["card"], validate_unique=False, validate_constraints=False)
    CardIncident.objects.bulk_create(new.values())
    if ended:
        CardIncident.objects.bulk_update(ended.values(), ["ended_at", "detail"])
    return IncidentReportResult(created=len(new), ended=len(ended), unchanged=unchanged)
