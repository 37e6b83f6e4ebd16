"""Writing statements: build (refresh drafts idempotently), confirm, mark paid."""

from __future__ import annotations

import datetime
import logging
import zlib
from collections import defaultdict
from dataclasses import dataclass, field

from django.db import connection, transaction
from django.utils.translation import gettext

from apps.billing.invoicing.models import Invoice, InvoiceStatus
from apps.billing.settlements.models import SettlementLine, SettlementStatement, SettlementStatus
from apps.billing.settlements.services._period import parse_period
from apps.billing.settlements.services.planning import Planner
from apps.core.errors import DomainError, InvalidState
from apps.core.events import event_publish
from apps.core.money import ZERO
from apps.core.periods import Period
from apps.providers.models import Provider

logger = logging.getLogger(__name__)

ADVISORY_NAMESPACE = 4_200_003  # pg_advisory_xact_lock(namespace, crc32(period))


@dataclass
class BuildResult:
    period: str
    created: int = 0
    refreshed: int = 0
    unchanged: int = 0
    locked: int = 0  # confirmed or paid: left as they are
    deleted: int = 0
    warnings: list[str] = field(default_factory=list)
    unattributed: list[str] = field(default_factory=list)  # invoice lines with no allocated hardware
    statement_ids: list[int] = field(default_factory=list)


# --- writing the statements -------------------------------------------------------------------


def _lock_period(period: Period) -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_advisory_xact_lock(%s, %s)",
            [ADVISORY_NAMESPACE, zlib.crc32(str(period).encode()) & 0x7FFFFFFF],
        )


def _stored(line: SettlementLine) -> tuple:
    return (
        line.invoice_line_id,
        line.kind,
        line.contract_id,
        line.contract_line_id,
        line.allocation_id,
        line.supply_agreement_id,
        line.gpu_model_id,
        line.resource,
        line.term,
        line.description,
        line.quantity,
        line.unit,
        line.cost_unit_price,
        line.cost_amount,
        line.revenue_net_amount,
        line.margin_amount,
        line.service_start_at,
        line.service_end_at,
        line.warning,
    )


def _new_line(statement: SettlementStatement, position: int, values: tuple) -> SettlementLine:
    (
        invoice_line_id,
        kind,
        contract_id,
        contract_line_id,
        allocation_id,
        agreement_id,
        model_id,
        resource,
        term,
        description,
        quantity,
        unit,
        cost_unit_price,
        cost,
        revenue,
        margin,
        start,
        end,
        warning,
    ) = values
    return SettlementLine(
        statement=statement,
        position=position,
        invoice_line_id=invoice_line_id,
        kind=kind,
        contract_id=contract_id,
        contract_line_id=contract_line_id,
        allocation_id=allocation_id,
        supply_agreement_id=agreement_id,
        gpu_model_id=model_id,
        resource=resource,
        term=term,
        description=description,
        quantity=quantity,
        unit=unit,
        cost_unit_price=cost_unit_price,
        cost_amount=cost,
        revenue_net_amount=revenue,
        margin_amount=margin,
        service_start_at=start,
        service_end_at=end,
        warning=warning,
    )


def _totals(statement: SettlementStatement, rows: list[tuple], now: datetime.datetime) -> None:
    statement.cost_amount = sum((r[13] for r in rows), ZERO)
    statement.revenue_net_amount = sum((r[14] for r in rows), ZERO)
    statement.margin_amount = statement.revenue_net_amount - statement.cost_amount
    statement.line_count = len(rows)
    statement.warning_count = sum(1 for r in rows if r[18])
    statement.built_at = now


def settlement_build(
    *, period: str, provider: Provider | None = None, now: datetime.datetime, actor=None
) -> BuildResult:
    """Create or refresh the draft statements of ``period`` (all providers, or one)."""
    parsed = parse_period(period)
    planned, unattributed = Planner(parsed, provider).plan()
    result = BuildResult(period=str(parsed), unattributed=unattributed)
    by_statement: dict[tuple[int, str], list[tuple]] = defaultdict(list)
    for p in planned:
        by_statement[(p.provider_id, p.currency)].append(p.values())
    with transaction.atomic():
        _lock_period(parsed)
        existing_qs = SettlementStatement.objects.select_for_update().filter(period=str(parsed))
        if provider is not None:
            existing_qs = existing_qs.filter(provider=provider)
        existing = {(s.provider_id, s.currency): s for s in existing_qs}
        current: dict[int, list[tuple]] = defaultdict(list)
        draft_ids = [s.pk for s in existing.values() if s.status == SettlementStatus.DRAFT]
        for line in SettlementLine.objects.filter(statement_id__in=draft_ids).order_by(
            "statement_id", "position"
        ):
            current[line.statement_id].append(_stored(line))
        for key in sorted(by_statement):
            rows = by_statement[key]
            statement = existing.pop(key, None)
            if statement is not None and statement.status != SettlementStatus.DRAFT:
                result.locked += 1
                result.statement_ids.append(statement.pk)
                continue
            if statement is not None and current.get(statement.pk) == rows:
                result.unchanged += 1
                result.statement_ids.append(statement.pk)
                continue
            if statement is None:
                statement = SettlementStatement(provider_id=key[0], period=str(parsed), currency=key[1])
                result.created += 1
            else:
                statement.lines.all().delete()
                result.refreshed += 1
            _totals(statement, rows, now)
            statement.save()
            SettlementLine.objects.bulk_create(
                [_new_line(statement, position, values) for position, values in enumerate(rows, start=1)]
            )
            result.statement_ids.append(statement.pk)
        for statement in existing.values():  # nothing left to settle
            if statement.status == SettlementStatus.DRAFT:
                statement.delete()
                result.deleted += 1
            else:
                result.locked += 1
    for p in planned:
        if p.warning:
            result.warnings.append(f"{p.description}: {p.warning}")
    for message in result.unattributed:
        logger.warning("settlement %s: %s", parsed, message)
    return result


def invoice_drafts_count(*, period: str) -> int:
    """Draft invoices of the period: not settled until they are issued."""
    return Invoice.objects.filter(period=str(parse_period(period)), status=InvoiceStatus.DRAFT).count()


def _locked(statement: SettlementStatement) -> SettlementStatement:
    return SettlementStatement.objects.select_for_update().get(pk=statement.pk)


@transaction.atomic
def settlement_confirm(
    *, statement: SettlementStatement, actor, now: datetime.datetime
) -> SettlementStatement:
    """Draft → confirmed: the statement is final (cost owed to the provider); it never changes again."""
    statement = _locked(statement)
    if statement.status != SettlementStatus.DRAFT:
        raise InvalidState(
            gettext("Statement %(statement)s is %(status)s; only drafts can be confirmed.")
            % {"statement": statement, "status": statement.status}
        )
    if statement.warning_count:
        raise DomainError(
            gettext(
                "Statement %(statement)s has %(count)s line(s) without a cost (see their warnings); "
                "add the supply agreement and rebuild the draft first."
            )
            % {"statement": statement, "count": statement.warning_count},
            code="settlement_has_warnings",
        )
    statement.status = SettlementStatus.CONFIRMED
    statement.confirmed_at = now
    statement.confirmed_by = actor
    statement.save(update_fields=["status", "confirmed_at", "confirmed_by", "updated_at"])
    # Webhooks (docs/webhooks.md): the provider hears of it.
    event_publish("settlement.confirmed", owner=statement.provider, subject=statement, now=now)
    return statement


@transaction.atomic
def settlement_mark_paid(
    *, statement: SettlementStatement, actor, now: datetime.datetime, reference: str = ""
) -> SettlementStatement:
    """Confirmed → paid (the platform paid the provider)."""
    statement = _locked(statement)
    if statement.status != SettlementStatus.CONFIRMED:
        raise InvalidState(
            gettext("Statement %(statement)s is %(status)s; only confirmed statements can be paid.")
            % {"statement": statement, "status": statement.status}
        )
    statement.status = SettlementStatus.PAID
    statement.paid_at = now
    statement.paid_by = actor
    statement.payment_reference = reference
    statement.save(update_fields=["status", "paid_at", "paid_by", "payment_reference", "updated_at"])
    return statement
