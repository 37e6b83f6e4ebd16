"""Every write to contracts: drafting, allocation, the lifecycle, amendments.

Each service runs in a transaction, locks the contract row, checks the source state and leaves an
audit trail (django-simple-history records who changed what; ``_history_user`` carries the actor).
"""

from __future__ import annotations

import contextlib
import datetime
from dataclasses import dataclass, field
from decimal import Decimal

from django.conf import settings
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.db.models import Max, Q
from django.utils.translation import gettext

from apps.core.errors import Conflict, DomainError, InvalidState
from apps.core.events import event_publish
from apps.core.money import decimal_text
from apps.core.numbering import next_number
from apps.core.periods import Period
from apps.inventory.models import Card, GpuModel, HardwareStatus, Server

from .models import (
    Allocation,
    Contract,
    ContractLine,
    ContractStatus,
    LineTier,
    PriceList,
    PriceListItem,
    SlaPolicy,
    TaxCategory,
    YearlyBilling,
)
from .rules import line_problems

DEFAULT_TAX_CATEGORY = "it_service"


@dataclass
class AllocationData:
    card: Card | None = None
    server: Server | None = None
    start_at: datetime.datetime | None = None
    end_at: datetime.datetime | None = None


@dataclass
class LineData:
    resource: str
    gpu_model: GpuModel
    quantity: Decimal
    term: str
    list_unit_price: Decimal | None = None
    term_discount_percent: Decimal | None = None
    discount_percent: Decimal = Decimal("0")
    tax_category: TaxCategory | None = None
    start_at: datetime.datetime | None = None
    end_at: datetime.datetime | None = None
    yearly_billing: str = YearlyBilling.MONTHLY_INSTALMENTS
    tiers: list[tuple[Decimal | None, Decimal]] = field(default_factory=list)
    allocations: list[AllocationData] = field(default_factory=list)
    usage_source: str = "partner"
    observed_busy_threshold_percent: Decimal | None = None
    sla: SlaPolicy | None = None


# ---------------------------------------------------------------------------------------------
# Helpers


def _locked(contract: Contract) -> Contract:
    return Contract.objects.select_for_update().get(pk=contract.pk)


def _require_status(contract: Contract, *allowed: str, action: str) -> None:
    if contract.status not in allowed:
        raise InvalidState(
            gettext("Cannot %(action)s contract %(contract)s: it is %(status)s, not %(allowed)s.")
            % {
                "action": gettext(action),
                "contract": contract,
                "status": contract.status,
                "allowed": gettext(" or ").join(allowed),
            },
            fields={"status": contract.status},
        )


def _save(obj, actor, reason: str = "", **kwargs) -> None:
    """Save with the actor and, when given, the reason shown in the object's history."""
    obj._history_user = actor
    if reason:
        obj._change_reason = reason[:100]
    obj.save(**kwargs)


def price_list_item_get(*, price_list: PriceList | None, gpu_model: GpuModel, resource: str, term: str):
    """The price list item for (model, resource, term): the given list's, else the default list's."""
    qs = PriceListItem.objects.select_related("tax_category").filter(
        gpu_model=gpu_model, resource=resource, term=term
    )
    if price_list is not None:
        item = qs.filter(price_list=price_list).first()
        if item is not None:
            return item
    return qs.filter(price_list__is_default=True).first()


# ---------------------------------------------------------------------------------------------
# Drafting


@transaction.atomic
def contract_create(
    *,
    actor,
    customer,
    start_at: datetime.datetime,
    lines: list[LineData],
    account_manager=None,
    currency: str | None = None,
    prices_include_tax: bool = True,
    end_at: datetime.datetime | None = None,
    minimum_monthly_amount: Decimal | None = None,
    price_list: PriceList | None = None,
    notes: str = "",
) -> Contract:
    """Create a draft contract with its lines and tentative allocations; number ``C-YYYY-NNNNNN``."""
    errors: dict = {}
    if end_at is not None and end_at <= start_at:
        errors["end"] = [gettext("End must be after start.")]
    if minimum_monthly_amount is not None and minimum_monthly_amount < 0:
        errors["minimum_monthly_amount"] = [gettext("Minimum monthly amount must not be negative.")]
    line_errors = {}
    for index, data in enumerate(lines):
        problems = line_problems(data, contract_start=start_at, contract_end=end_at)
        if problems:
            line_errors[index] = problems
    if line_errors:
        errors["lines"] = line_errors
    if errors:
        raise DomainError(_first(errors), code="invalid", fields=errors)

    year = Period.containing(start_at, settings.BILLING_TIME_ZONE).year
    contract = Contract(
        number=next_number("C", year),
        customer=customer,
        account_manager=account_manager or actor,
        price_list=price_list,
        currency=currency or customer.currency,
        prices_include_tax=prices_include_tax,
        start_at=start_at,
        end_at=end_at,
        minimum_monthly_amount=minimum_monthly_amount,
        notes=notes,
    )
    _save(contract, actor, reason="drafted")
    for position, data in enumerate(lines, start=1):
        with _errors_under("lines", position - 1):
            line_add(contract=contract, data=data, actor=actor, position=position)
    return contract


@contextlib.contextmanager
def _errors_under(collection: str, index: int):
    """Re-raise a refusal with its fields nested under ``{collection: {index: …}}`` (the item's path).

    State errors pass through unchanged: they are about the contract, not the item.
    """
    try:
        yield
    except InvalidState:
        raise
    except DomainError as exc:
        fields = {collection: {index: exc.fields or {"non_field_errors": [exc.message]}}}
        raise type(exc)(exc.message, code=exc.code, fields=fields, http_status=exc.http_status) from None


def _first(errors) -> str:
    if isinstance(errors, dict):
        for key, value in errors.items():
            inner = _first(value)
            if isinstance(key, int):
                return gettext("line %(position)s: %(message)s") % {"position": key, "message": inner}
            return f"{key}: {inner}"
    if isinstance(errors, list) and errors:
        return _first(errors[0])
    return str(errors)


@transaction.atomic
def line_add(*, contract: Contract, data: LineData, actor, position: int | None = None) -> ContractLine:
    """Add a line to a draft, defaulting the term discount and tax category from the price list."""
    contract = _locked(contract)
    _require_status(contract, ContractStatus.DRAFT, action="edit")
    problems = line_problems(data, contract_start=contract.start_at, contract_end=contract.end_at)
    item = price_list_item_get(
        price_list=contract.price_list, gpu_model=data.gpu_model, resource=data.resource, term=data.term
    )
    list_price = data.list_unit_price
    if list_price is None:
        if item is None:
            problems.setdefault("list_unit_price", []).append(
                gettext("No list price for %(model)s %(resource)s/%(term)s; give one.")
                % {"model": data.gpu_model, "resource": data.resource, "term": data.term}
            )
        else:
            list_price = item.list_unit_price
    if problems:
        raise DomainError(_first(problems), code="invalid", fields=problems)
    term_discount = data.term_discount_percent
    if term_discount is None:
        term_discount = item.term_discount_percent if item else Decimal("0")
    tax_category = data.tax_category or (
        item.tax_category if item else TaxCategory.objects.get(code=DEFAULT_TAX_CATEGORY)
    )
    if position is None:
        position = contract.lines.count() + 1
    line = ContractLine(
        contract=contract,
        position=position,
        resource=data.resource,
        gpu_model=data.gpu_model,
        quantity=data.quantity,
        term=data.term,
        list_unit_price=list_price,
        term_discount_percent=term_discount,
        discount_percent=data.discount_percent or Decimal("0"),
        tax_category=tax_category,
        start_at=data.start_at,
        end_at=data.end_at,
        yearly_billing=data.yearly_billing,
        usage_source=data.usage_source,
        observed_busy_threshold_percent=data.observed_busy_threshold_percent,
        sla=data.sla,
    )
    _save(line, actor)
    if data.tiers:
        LineTier.objects.bulk_create(
            [LineTier(line=line, up_to=up_to, list_unit_price=price) for up_to, price in data.tiers]
        )
    for index, alloc in enumerate(data.allocations):
        with _errors_under("allocations", index):
            allocation_add(
                line=line,
                card=alloc.card,
                server=alloc.server,
                start_at=alloc.start_at,
                end_at=alloc.end_at,
                actor=actor,
            )
    return line


def line_interval(*, line: ContractLine) -> tuple[datetime.datetime, datetime.datetime | None]:
    return line.start_at or line.contract.start_at, line.end_at or line.contract.end_at


def allocation_conflicts(
    *, server: Server, slot: int | None, start_at, end_at, exclude_line_id: int | None = None, firm_only=True
):
    """Allocations that would overlap: same card, or the card's whole server, or any card of a server."""
    qs = Allocation.objects.select_related("line__contract", "card", "server").filter(
        server=server, start_at__lt=end_at or datetime.datetime.max.replace(tzinfo=datetime.UTC)
    )
    qs = qs.filter(Q(end_at__isnull=True) | Q(end_at__gt=start_at))
    if slot is not None:
        qs = qs.filter(Q(slot=slot) | Q(slot__isnull=True))
    if firm_only:
        qs = qs.filter(firm=True)
    if exclude_line_id:
        qs = qs.exclude(line_id=exclude_line_id)
    return qs


def _conflict_message(hardware: str, other: Allocation) -> str:
    other_what = (
        other.card.uuid if other.card_id else gettext("server %(serial)s") % {"serial": other.server.serial}
    )
    until = other.end_at.isoformat() if other.end_at else gettext("open-ended")
    return gettext(
        "%(hardware)s is already allocated to contract %(contract)s (%(what)s, %(start)s – %(until)s)."
    ) % {
        "hardware": hardware,
        "contract": other.line.contract,
        "what": other_what,
        "start": other.start_at.isoformat(),
        "until": until,
    }


def allocation_problem(
    *, line: ContractLine, card: Card | None, server: Server | None, start_at, end_at
) -> DomainError | None:
    """Why this card or server cannot serve ``line`` over ``[start_at, end_at)``, or None."""

    def invalid(field_name: str, msg: str, error=DomainError, code="invalid") -> DomainError:
        return error(msg, code=code, fields={field_name: [msg]})

    if (card is None) == (server is None):
        return invalid("card", gettext("Give a card or a server, not both."))
    field_name = "card" if card is not None else "server"
    if card is not None:
        server = card.server
        hardware = gettext("Card %(uuid)s") % {"uuid": card.uuid}
        if line.resource == "server":
            return invalid("card", gettext("A server line takes whole servers, not single cards."))
    else:
        hardware = gettext("Server %(serial)s") % {"serial": server.serial}
        if line.resource == "card":
            return invalid("server", gettext("A card line takes cards, not whole servers."))
    if server.gpu_model_id != line.gpu_model_id:
        return invalid(
            field_name,
            gettext("%(hardware)s is a %(model)s, but the line is for %(line_model)s.")
            % {"hardware": hardware, "model": server.gpu_model, "line_model": line.gpu_model},
        )
    for obj in filter(None, [server, card]):
        if obj.status in (HardwareStatus.RETIRED, HardwareStatus.MAINTENANCE):
            return invalid(
                field_name,
                gettext("%(hardware)s is %(status)s and cannot be allocated.")
                % {"hardware": hardware, "status": obj.status},
            )
    line_start, line_end = line_interval(line=line)
    if end_at is not None and end_at <= start_at:
        return invalid("end", gettext("End must be after start."))
    if start_at < line_start or (line_end is not None and (end_at is None or end_at > line_end)):
        return invalid("start", gettext("The allocation must lie within the line's period."))
    slot = card.slot if card is not None else None
    overlapping = allocation_conflicts(
        server=server, slot=slot, start_at=start_at, end_at=end_at, firm_only=False
    )
    other = allocation_conflicts(server=server, slot=slot, start_at=start_at, end_at=end_at).first()
    if other is not None:
        return invalid(field_name, _conflict_message(hardware, other), error=Conflict, code="double_booking")
    same_contract = overlapping.filter(line__contract_id=line.contract_id).select_related("line").first()
    if same_contract is not None:
        where = (
            gettext("this line")
            if same_contract.line_id == line.pk
            else gettext("line %(position)s") % {"position": same_contract.line.position}
        )
        return invalid(
            field_name,
            gettext("%(hardware)s is already allocated to %(where)s of this contract.")
            % {"hardware": hardware, "where": where},
        )
    return None


@transaction.atomic
def allocation_add(
    *,
    line: ContractLine,
    actor,
    card: Card | None = None,
    server: Server | None = None,
    start_at: datetime.datetime | None = None,
    end_at: datetime.datetime | None = None,
) -> Allocation:
    """Allocate a card or a whole server to a draft's line (tentative until activation)."""
    contract = _locked(line.contract)
    _require_status(contract, ContractStatus.DRAFT, action="allocate hardware to")
    if card is not None:
        card = Card.objects.select_related("server__gpu_model").get(pk=card.pk)
        server_for_card = card.server
    else:
        server_for_card = None
    if server is not None:
        server = Server.objects.select_related("gpu_model").get(pk=server.pk)
    line_start, line_end = line_interval(line=line)
    start_at = start_at or line_start
    end_at = end_at or line_end
    problem = allocation_problem(line=line, card=card, server=server, start_at=start_at, end_at=end_at)
    if problem is not None:
        raise problem
    allocation = Allocation(
        line=line,
        server=server_for_card or server,
        card=card,
        slot=card.slot if card is not None else None,
        start_at=start_at,
        end_at=end_at,
    )
    _save(allocation, actor)
    return allocation


@transaction.atomic
def allocation_remove(*, allocation: Allocation, actor) -> None:
    contract = _locked(allocation.line.contract)
    _require_status(contract, ContractStatus.DRAFT, action="change allocations of")
    allocation._history_user = actor
    allocation.delete()


@transaction.atomic
def line_sla_set(*, line: ContractLine, sla: SlaPolicy | None, actor, reason: str = "") -> ContractLine:
    """Give a line of a draft or running contract an SLA policy (or take its own away, leaving the
    price list's): credits only ever lower what the customer pays, so it needs no amendment
    (docs/hardware-truth.md#sla-policies). Kept in the line's history with ``reason``."""
    contract = _locked(line.contract)
    _require_status(
        contract, ContractStatus.DRAFT, ContractStatus.ACTIVE, ContractStatus.SUSPENDED, action="edit"
    )
    line = ContractLine.objects.select_for_update().get(pk=line.pk)
    if line.sla_id != (sla.pk if sla else None):
        line.sla = sla
        _save(line, actor, reason or "SLA set", update_fields=["sla"])
    return line


@transaction.atomic
def line_delete(*, line: ContractLine, actor) -> None:
    """Remove a line (with its tentative allocations and tiers) from a draft."""
    contract = _locked(line.contract)
    _require_status(contract, ContractStatus.DRAFT, action="remove lines of")
    line._history_user = actor
    line.delete()


@transaction.atomic
def contract_delete(*, contract: Contract, actor) -> None:
    """Only drafts can be deleted (their number is kept by the series; it is not reused)."""
    contract = _locked(contract)
    _require_status(contract, ContractStatus.DRAFT, action="delete")
    contract._history_user = actor
    contract.delete()


# ---------------------------------------------------------------------------------------------
# Policy


def contract_needs_approval(*, contract: Contract) -> bool:
    """Any line whose combined discount exceeds ``DISCOUNT_APPROVAL_THRESHOLD`` percent."""
    threshold = Decimal(settings.DISCOUNT_APPROVAL_THRESHOLD)
    return any(line.combined_discount_percent > threshold for line in contract.lines.all())


def _pct(value: Decimal) -> str:
    return f"{decimal_text(value.quantize(Decimal('0.01')))}%"


def approval_rule_text(*, top_discount: Decimal | None, top_position: int | None) -> tuple[bool, str]:
    """(needs approval, why) for lines whose largest combined discount is ``top_discount``."""
    threshold = Decimal(settings.DISCOUNT_APPROVAL_THRESHOLD)
    if top_discount is None:
        return False, f"No lines yet; discounts above {_pct(threshold)} will need a sales manager's approval."
    if top_discount > threshold:
        return True, (
            f"Needs a sales manager's approval: line {top_position} has a {_pct(top_discount)} discount, "
            f"above the {_pct(threshold)} threshold."
        )
    return False, (
        f"No approval needed: the largest discount ({_pct(top_discount)}, line {top_position}) "
        f"is within the {_pct(threshold)} threshold."
    )


def contract_approval_rule(*, contract: Contract) -> tuple[bool, str]:
    """(needs approval, why) — the rule as the contract page and the history state it."""
    top = max(contract.lines.all(), key=lambda line: line.combined_discount_percent, default=None)
    return approval_rule_text(
        top_discount=top.combined_discount_percent if top else None,
        top_position=top.position if top else None,
    )


def _notify_account_manager(contract: Contract, subject: str, body: str) -> None:
    """E-mail the contract's account manager once the transaction has committed."""
    email = contract.account_manager.email
    if not email:
        return

    def send():
        send_mail(subject, body, None, [email], fail_silently=True)

    transaction.on_commit(send)


def contract_coverage_problems(*, contract: Contract) -> dict[int, str]:
    """Lines whose allocations at the line start do not cover the quantity: {line position: why}."""
    problems = {}
    units = {"card": "cards", "server": "servers", "p_unit": "P"}
    for line in contract.lines.select_related("gpu_model", "contract"):
        missing = line_shortfall(line=line)
        if missing > 0:
            have = line.quantity - missing
            unit = units[line.resource]
            problems[line.position] = gettext(
                "line %(position)s (%(model)s %(resource)s) needs %(quantity)s %(unit)s, "
                "allocations cover %(have)s %(unit)s"
            ) % {
                "position": line.position,
                "model": line.gpu_model,
                "resource": line.resource,
                "quantity": decimal_text(line.quantity),
                "unit": unit,
                "have": decimal_text(have),
            }
    return problems


# ---------------------------------------------------------------------------------------------
# Lifecycle


@transaction.atomic
def contract_submit(*, contract: Contract, actor, now: datetime.datetime) -> Contract:
    """Draft → pending approval (for discounts above the threshold)."""
    contract = _locked(contract)
    _require_status(contract, ContractStatus.DRAFT, action="submit")
    if not contract.lines.exists():
        raise DomainError(
            gettext("A contract needs at least one line."),
            code="invalid",
            fields={"lines": [gettext("Add a line.")]},
        )
    needed, _why = contract_approval_rule(contract=contract)
    contract.status = ContractStatus.PENDING_APPROVAL
    contract.submitted_at = now
    threshold = _pct(Decimal(settings.DISCOUNT_APPROVAL_THRESHOLD))
    note = f"discount above {threshold}" if needed else f"discounts within {threshold}, no approval needed"
    _save(contract, actor, reason=f"submitted for approval ({note})")
    return contract


@transaction.atomic
def contract_approve(*, contract: Contract, actor, now: datetime.datetime) -> Contract:
    """A sales manager approves the discounts; never the contract's own account manager."""
    contract = _locked(contract)
    _require_status(contract, ContractStatus.PENDING_APPROVAL, action="approve")
    if not actor.has_perm("contracts.approve_contract"):
        raise DomainError(
            gettext("Only a sales manager can approve discounts."), code="permission_denied", http_status=403
        )
    if actor.pk == contract.account_manager_id:
        raise DomainError(
            gettext("The contract's own account manager cannot approve it."),
            code="permission_denied",
            http_status=403,
        )
    contract.approved_by = actor
    contract.approved_at = now
    _save(contract, actor, reason=f"approved by {actor.get_username()}")
    _notify_account_manager(
        contract,
        f"Contract {contract} approved",
        f"{actor.get_full_name() or actor.get_username()} approved the discounts of contract {contract} "
        f"({contract.customer}) at {now:%Y-%m-%d %H:%M %Z}. It can be activated now.",
    )
    return contract


@transaction.atomic
def contract_reject(*, contract: Contract, actor, now: datetime.datetime, reason: str) -> Contract:
    """Pending approval → draft, with the sales manager's reason in the history and an e-mail."""
    reason = (reason or "").strip()
    if not reason:
        raise DomainError(
            gettext("Give a reason for the rejection."),
            code="invalid",
            fields={"reason": [gettext("Required.")]},
        )
    contract = _locked(contract)
    _require_status(contract, ContractStatus.PENDING_APPROVAL, action="reject")
    if not actor.has_perm("contracts.approve_contract"):
        raise DomainError(
            gettext("Only a sales manager can reject discounts."), code="permission_denied", http_status=403
        )
    if actor.pk == contract.account_manager_id:
        raise DomainError(
            gettext("The contract's own account manager cannot reject it."),
            code="permission_denied",
            http_status=403,
        )
    contract.status = ContractStatus.DRAFT
    contract.submitted_at = None
    contract.approved_by = None
    contract.approved_at = None
    _save(contract, actor, reason=f"rejected by {actor.get_username()}: {reason}")
    _notify_account_manager(
        contract,
        f"Contract {contract} rejected",
        f"{actor.get_full_name() or actor.get_username()} rejected the discounts of contract {contract} "
        f"({contract.customer}) at {now:%Y-%m-%d %H:%M %Z} and returned it to draft.\n\nReason: {reason}",
    )
    return contract


def _firm_up(contract: Contract) -> None:
    """Make the contract's allocations firm; the exclusion constraint has the last word."""
    allocations = Allocation.objects.filter(line__contract=contract).select_related("card", "server", "line")
    for allocation in allocations:
        hardware = (
            gettext("Card %(uuid)s") % {"uuid": allocation.card.uuid}
            if allocation.card_id
            else gettext("Server %(serial)s") % {"serial": allocation.server.serial}
        )
        other = allocation_conflicts(
            server=allocation.server,
            slot=allocation.slot,
            start_at=allocation.start_at,
            end_at=allocation.end_at,
            exclude_line_id=allocation.line_id,
        ).first()
        if other is not None:
            msg = _conflict_message(hardware, other)
            raise Conflict(msg, code="double_booking", fields={"allocations": [msg]})
    try:
        with transaction.atomic():
            Allocation.objects.filter(line__contract=contract).update(firm=True)
    except IntegrityError:
        # A concurrent activation committed first; name what it took.
        for allocation in allocations:
            other = allocation_conflicts(
                server=allocation.server,
                slot=allocation.slot,
                start_at=allocation.start_at,
                end_at=allocation.end_at,
                exclude_line_id=allocation.line_id,
            ).first()
            if other is not None:
                hardware = (
                    gettext("Card %(uuid)s") % {"uuid": allocation.card.uuid}
                    if allocation.card_id
                    else gettext("Server %(serial)s") % {"serial": allocation.server.serial}
                )
                msg = _conflict_message(hardware, other)
                raise Conflict(msg, code="double_booking", fields={"allocations": [msg]}) from None
        raise Conflict(
            gettext("Another contract took some of this hardware."), code="double_booking"
        ) from None


@transaction.atomic
def contract_activate(*, contract: Contract, actor, now: datetime.datetime) -> Contract:
    """Draft (within the discount threshold) or approved → active, once allocations cover every line."""
    contract = _locked(contract)
    _require_status(contract, ContractStatus.DRAFT, ContractStatus.PENDING_APPROVAL, action="activate")
    if not contract.lines.exists():
        raise DomainError(
            gettext("A contract needs at least one line."),
            code="invalid",
            fields={"lines": [gettext("Add a line.")]},
        )
    needed, _why = contract_approval_rule(contract=contract)
    if needed and contract.approved_at is None:
        threshold = decimal_text(Decimal(settings.DISCOUNT_APPROVAL_THRESHOLD))
        raise InvalidState(
            gettext("Discounts above %(threshold)s%% need a sales manager's approval before activation.")
            % {"threshold": threshold},
            code="approval_required",
        )
    reason = "activated"
    if not needed and contract.approved_at is None:
        # Within the threshold: the rule approves it; say so and record who activated it when.
        contract.approved_by = actor
        contract.approved_at = now
        reason = "activated; auto-approved: under the threshold"
    problems = contract_coverage_problems(contract=contract)
    if problems:
        raise DomainError(
            gettext("Allocations do not cover the contract: %(problems)s.")
            % {"problems": "; ".join(problems.values())},
            code="insufficient_allocation",
            fields={"allocations": list(problems.values())},
        )
    if contract.amends_id:
        previous = _locked(contract.amends)
        _end(
            previous,
            at=contract.start_at,
            status=ContractStatus.TERMINATED,
            actor=actor,
            now=now,
            reason=f"amended by version {contract.version}",
        )
    _firm_up(contract)
    contract.status = ContractStatus.ACTIVE
    contract.activated_at = now
    _save(contract, actor, reason=reason)
    # Webhooks (docs/webhooks.md): the customer hears of it.
    event_publish("contract.activated", owner=contract.customer, subject=contract, now=now)
    return contract


@transaction.atomic
def contract_suspend(*, contract: Contract, actor, reason: str = "") -> Contract:
    """Active → suspended, with the reason; still billed (the history row records when)."""
    contract = _locked(contract)
    _require_status(contract, ContractStatus.ACTIVE, action="suspend")
    contract.status = ContractStatus.SUSPENDED
    contract.end_reason = reason
    _save(contract, actor, reason=f"suspended: {reason}" if reason else "suspended")
    return contract


@transaction.atomic
def contract_resume(*, contract: Contract, actor) -> Contract:
    """Suspended → active; the suspension reason is cleared."""
    contract = _locked(contract)
    _require_status(contract, ContractStatus.SUSPENDED, action="resume")
    contract.status = ContractStatus.ACTIVE
    contract.end_reason = ""
    _save(contract, actor, reason="resumed")
    return contract


def _end(contract: Contract, *, at, status, actor, now, reason: str) -> None:
    """End a contract at ``at``: clip its end, its lines and allocations; hardware is free after ``at``."""
    at = max(at, contract.start_at)
    if contract.end_at is None or contract.end_at > at:
        contract.end_at = at
    for allocation in Allocation.objects.filter(line__contract=contract):
        if allocation.start_at >= at:
            allocation._history_user = actor
            allocation.delete()
        elif allocation.end_at is None or allocation.end_at > at:
            allocation.end_at = at
            _save(allocation, actor, update_fields=["end_at"])
    for line in contract.lines.all():
        if line.end_at is not None and line.end_at > at:
            line.end_at = at
            _save(line, actor, update_fields=["end_at"])
    contract.status = status
    contract.ended_at = now
    contract.end_reason = reason
    _save(contract, actor, reason=f"{status}: {reason}" if reason else str(status))


@transaction.atomic
def contract_terminate(
    *,
    contract: Contract,
    actor,
    now: datetime.datetime,
    at: datetime.datetime | None = None,
    reason: str = "",
) -> Contract:
    """Active or suspended → terminated at ``at`` (default now); billing stops there."""
    contract = _locked(contract)
    _require_status(contract, ContractStatus.ACTIVE, ContractStatus.SUSPENDED, action="terminate")
    _end(contract, at=at or now, status=ContractStatus.TERMINATED, actor=actor, now=now, reason=reason)
    return contract


@transaction.atomic
def contract_expire_due(*, now: datetime.datetime, actor=None) -> int:
    """Mark active contracts whose end has passed as expired (daily job). Returns how many."""
    due = Contract.objects.select_for_update(skip_locked=True).filter(
        status__in=[ContractStatus.ACTIVE, ContractStatus.SUSPENDED], end_at__lte=now
    )
    count = 0
    for contract in due:
        contract.status = ContractStatus.EXPIRED
        contract.ended_at = now
        _save(contract, actor, reason="expired at its end")
        count += 1
    return count


@transaction.atomic
def contract_amend(*, contract: Contract, actor, effective_at: datetime.datetime) -> Contract:
    """Start an amendment: a new draft version from ``effective_at`` with copies of lines and allocations.

    The current version keeps running (and stays readable) until the amendment is activated, which
    ends it at ``effective_at``.
    """
    contract = _locked(contract)
    _require_status(contract, ContractStatus.ACTIVE, ContractStatus.SUSPENDED, action="amend")
    if Contract.objects.filter(amends=contract).exists():
        raise InvalidState(
            gettext("Contract %(contract)s already has an amendment in progress.") % {"contract": contract}
        )
    if effective_at <= contract.start_at or (contract.end_at and effective_at >= contract.end_at):
        raise DomainError(
            gettext("The amendment must take effect within the contract's term."),
            code="invalid",
            fields={"effective_at": [gettext("Must lie within the contract's term.")]},
        )
    new = Contract(
        number=contract.number,
        version=contract.version + 1,
        amends=contract,
        customer=contract.customer,
        account_manager=contract.account_manager,
        price_list=contract.price_list,
        currency=contract.currency,
        prices_include_tax=contract.prices_include_tax,
        start_at=effective_at,
        end_at=contract.end_at,
        minimum_monthly_amount=contract.minimum_monthly_amount,
        notes=contract.notes,
    )
    _save(new, actor)
    for line in contract.lines.prefetch_related("allocations", "tiers"):
        _, line_end = line_interval(line=line)
        if line_end is not None and line_end <= effective_at:
            continue
        allocations = list(line.allocations.all())
        tiers = list(line.tiers.all())
        line.pk = None
        line.contract = new
        line.start_at = max(line.start_at or effective_at, effective_at)
        _save(line, actor)
        LineTier.objects.bulk_create(
            [LineTier(line=line, up_to=t.up_to, list_unit_price=t.list_unit_price) for t in tiers]
        )
        for allocation in allocations:
            if allocation.end_at is not None and allocation.end_at <= effective_at:
                continue
            Allocation.objects.create(
                line=line,
                server=allocation.server,
                card=allocation.card,
                slot=allocation.slot,
                start_at=max(allocation.start_at, effective_at),
                end_at=allocation.end_at,
            )
    return new


@transaction.atomic
def contract_save_draft(*, contract: Contract, actor) -> Contract:
    """Save a draft's header from the admin form; a new draft gets its number here."""
    current_pk = contract.pk
    if contract.pk is None:
        year = Period.containing(contract.start_at, settings.BILLING_TIME_ZONE).year
        contract.number = next_number("C", year)
        if contract.account_manager_id is None:
            contract.account_manager = actor
        contract.currency = contract.currency or contract.customer.currency
    else:
        current = _locked(contract)
        _require_status(current, ContractStatus.DRAFT, action="edit")
    _save(contract, actor, reason="draft saved" if current_pk else "drafted")
    return contract


@transaction.atomic
def line_save(*, line: ContractLine, actor) -> ContractLine:
    """Save a draft's line from the admin form, defaulting the term discount and tax from the price list."""
    contract = _locked(line.contract)
    _require_status(contract, ContractStatus.DRAFT, action="edit")
    if line.tax_category_id is None or line.term_discount_percent is None or line.list_unit_price is None:
        item = price_list_item_get(
            price_list=contract.price_list, gpu_model=line.gpu_model, resource=line.resource, term=line.term
        )
        if line.list_unit_price is None:
            if item is None:
                msg = gettext("No list price for %(model)s %(resource)s/%(term)s; give one.") % {
                    "model": line.gpu_model,
                    "resource": line.resource,
                    "term": line.term,
                }
                raise DomainError(msg, code="invalid", fields={"list_unit_price": [msg]})
            line.list_unit_price = item.list_unit_price
        if line.term_discount_percent is None:
            line.term_discount_percent = item.term_discount_percent if item else Decimal("0")
        if line.tax_category_id is None:
            line.tax_category = (
                item.tax_category if item else TaxCategory.objects.get(code=DEFAULT_TAX_CATEGORY)
            )
    if line.pk is None and line.position is None:
        last = ContractLine.objects.filter(contract=contract).aggregate(last=Max("position"))["last"]
        line.position = (last or 0) + 1
    _save(line, actor)
    return line


@transaction.atomic
def allocation_fill(*, line: ContractLine, options, actor) -> list[Allocation]:
    """Allocate hardware from ``options`` (capacity finder rows, best first) until the line is covered."""
    created = []
    for option in options:
        if line_shortfall(line=line) <= 0:
            break
        created.append(
            allocation_add(
                line=line, card=option.card, server=None if option.card else option.server, actor=actor
            )
        )
    return created


def line_shortfall(*, line: ContractLine) -> Decimal:
    """What the line's allocations at its start still lack: cards, servers or P."""
    start, _ = line_interval(line=line)
    live = [
        a
        for a in line.allocations.select_related("server__gpu_model")
        if a.start_at <= start and (a.end_at is None or a.end_at > start)
    ]
    if line.resource == "card":
        have = Decimal(sum(1 for a in live if a.card_id))
    elif line.resource == "server":
        have = Decimal(sum(1 for a in live if not a.card_id))
    else:
        have = sum(
            (a.server.gpu_model.p_per_card * (1 if a.card_id else a.server.card_count) for a in live),
            Decimal(0),
        )
    return line.quantity - have
