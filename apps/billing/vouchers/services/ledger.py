"""Programmes and the voucher ledger: issue, expire, and the one way a balance moves (``ledger_move``)."""

from __future__ import annotations

import datetime
from collections.abc import Iterable
from decimal import Decimal

from django.db import connection, transaction
from django.db.models import Q, Sum
from django.utils.translation import gettext

from apps.billing.vouchers.models import (
    LedgerKind,
    Voucher,
    VoucherFlow,
    VoucherLedgerEntry,
    VoucherProgramme,
    VoucherStatus,
)
from apps.billing.vouchers.services._common import invalid, local_date
from apps.core.errors import InvalidState
from apps.core.money import ZERO, round_money
from apps.core.numbering import next_number
from apps.customers.models import Customer

VOUCHER_LOCK_NAMESPACE = 4_200_002  # pg_advisory_xact_lock(namespace, customer_id)
HUNDRED = Decimal(100)
PROGRAMME_FIELDS = (
    "name",
    "issuer",
    "flow",
    "currency",
    "coverage_percent",
    "cap_per_customer_year",
    "cap_per_voucher",
    "valid_from",
    "valid_to",
    "contract_signed_on_or_after",
    "max_contract_term_days",
    "exclude_related_party_suppliers",
    "notes",
)


def customer_vouchers_lock(*, customer_id: int) -> None:
    """Serialise voucher movements of one customer (the yearly cap spans all their vouchers)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", [VOUCHER_LOCK_NAMESPACE, customer_id])


# --- programmes -------------------------------------------------------------------------------


def voucher_programme_check(*, values: dict) -> None:
    """Raise ``DomainError`` (naming the field) when a programme's terms do not hold together."""
    coverage = values.get("coverage_percent")
    if coverage is None or not ZERO < coverage <= HUNDRED:
        raise invalid("coverage_percent", "Coverage must be more than 0 and at most 100 percent.")
    for name in ("cap_per_customer_year", "cap_per_voucher"):
        cap = values.get(name)
        if cap is not None and cap <= 0:
            raise invalid(name, "A cap must be positive (leave it empty for no cap).")
    if values["valid_to"] < values["valid_from"]:
        raise invalid("valid_to", "valid_to must not be before valid_from.")
    if values.get("flow") not in VoucherFlow.values:
        raise invalid("flow", f"Flow must be one of {', '.join(VoucherFlow.values)}.")
    days = values.get("max_contract_term_days")
    if days is not None and days <= 0:
        raise invalid("max_contract_term_days", "The maximum term must be at least one day.")


@transaction.atomic
def voucher_programme_create(*, actor=None, code: str, **values) -> VoucherProgramme:
    unknown = set(values) - set(PROGRAMME_FIELDS)
    if unknown:
        raise TypeError(f"unknown programme fields {sorted(unknown)}")
    if VoucherProgramme.objects.filter(code=code).exists():
        raise invalid("code", f"A voucher programme with code {code!r} already exists.", "conflict")
    programme = VoucherProgramme(code=code, **values)
    voucher_programme_check(values={f: getattr(programme, f) for f in PROGRAMME_FIELDS})
    programme._history_user = actor  # django-simple-history records who set the terms
    programme.save()
    return programme


@transaction.atomic
def voucher_programme_update(*, programme: VoucherProgramme, actor=None, **values) -> VoucherProgramme:
    """Change a programme's terms; past redemptions keep the terms they were made under."""
    programme = VoucherProgramme.objects.select_for_update().get(pk=programme.pk)
    if "code" in values and values.pop("code") != programme.code:
        raise invalid("code", "The code cannot change once set; vouchers and reports refer to it.")
    unknown = set(values) - set(PROGRAMME_FIELDS)
    if unknown:
        raise TypeError(f"unknown programme fields {sorted(unknown)}")
    if "flow" in values and values["flow"] != programme.flow and programme.vouchers.exists():
        raise invalid("flow", "The flow cannot change once vouchers were issued under the programme.")
    for name, value in values.items():
        setattr(programme, name, value)
    voucher_programme_check(values={f: getattr(programme, f) for f in PROGRAMME_FIELDS})
    programme._history_user = actor  # django-simple-history records who set the terms
    programme.save()
    return programme


# --- vouchers ---------------------------------------------------------------------------------


def voucher_ledger_move(
    *, voucher: Voucher, kind: str, amount: Decimal, now: datetime.datetime, actor=None, **extra
) -> VoucherLedgerEntry:
    """Move the (locked) voucher's balance by ``amount`` and write its ledger entry."""
    voucher.balance += amount
    if voucher.balance < 0:  # the CHECK constraint would refuse it too
        raise InvalidState(
            gettext("Voucher %(voucher)s would go below zero.") % {"voucher": voucher},
            code="voucher_overdrawn",
        )
    if voucher.status != VoucherStatus.EXPIRED:
        voucher.status = VoucherStatus.ACTIVE if voucher.balance > 0 else VoucherStatus.EXHAUSTED
    voucher.save(update_fields=["balance", "status"])
    return VoucherLedgerEntry.objects.create(
        voucher=voucher,
        kind=kind,
        amount=amount,
        balance_after=voucher.balance,
        created_at=now,
        created_by=actor,
        **extra,
    )


@transaction.atomic
def voucher_issue(
    *,
    programme: VoucherProgramme,
    customer: Customer,
    amount: Decimal,
    now: datetime.datetime,
    actor=None,
    valid_to: datetime.date | None = None,
    reference: str = "",
) -> Voucher:
    """Grant ``customer`` a voucher of ``amount`` under ``programme`` (number ``VCH-YYYY-NNNNNN``)."""
    amount = round_money(amount)
    today = local_date(now)
    if amount <= 0:
        raise invalid("amount", "A voucher amount must be positive.")
    if programme.cap_per_voucher is not None and amount > programme.cap_per_voucher:
        raise invalid(
            "amount",
            f"The programme {programme.code} caps one voucher at {programme.cap_per_voucher:,.2f}.",
            "voucher_cap_exceeded",
        )
    if programme.valid_to < today:
        raise invalid("programme", f"The programme {programme.code} ended on {programme.valid_to}.")
    valid_to = valid_to or programme.valid_to
    if valid_to > programme.valid_to:
        raise invalid("valid_to", f"A voucher cannot outlive its programme ({programme.valid_to}).")
    if valid_to < today:
        raise invalid("valid_to", "valid_to is in the past.")
    customer_vouchers_lock(customer_id=customer.pk)
    voucher = Voucher.objects.create(
        number=next_number("VCH", today.year),
        programme=programme,
        customer=customer,
        amount=amount,
        balance=ZERO,
        status=VoucherStatus.EXHAUSTED,
        valid_to=valid_to,
        issued_at=now,
        issued_by=actor,
        reference=reference,
    )
    voucher_ledger_move(
        voucher=voucher,
        kind=LedgerKind.ISSUE,
        amount=amount,
        now=now,
        actor=actor,
        note=reference or f"issued under {programme.code}",
    )
    return voucher


@transaction.atomic
def voucher_expire(*, voucher: Voucher, now: datetime.datetime, actor=None) -> Voucher:
    """Expire a voucher now: its remaining balance leaves with an ``expire`` entry."""
    # the customer's lock always before the voucher rows: one lock order everywhere
    customer_vouchers_lock(customer_id=voucher.customer_id)
    voucher = Voucher.objects.select_for_update().get(pk=voucher.pk)
    if voucher.status == VoucherStatus.EXPIRED:
        raise InvalidState(gettext("Voucher %(voucher)s has already expired.") % {"voucher": voucher})
    voucher.status = VoucherStatus.EXPIRED
    if not voucher_balance_expire(voucher=voucher, now=now, actor=actor, note="expired"):
        voucher.save(update_fields=["status"])
    return voucher


def voucher_expire_due(*, now: datetime.datetime) -> int:
    """Expire every active voucher whose last day has passed (billing time zone). Safe to repeat."""
    today = local_date(now)
    due = Voucher.objects.filter(
        Q(valid_to__lt=today) | Q(programme__valid_to__lt=today),
        status__in=[VoucherStatus.ACTIVE, VoucherStatus.EXHAUSTED],
    )
    done = 0
    for voucher in list(due.only("pk", "customer_id")):
        try:
            voucher_expire(voucher=voucher, now=now)
        except InvalidState:  # expired meanwhile by another run
            continue
        done += 1
    return done


def programme_coverage_amount(*, programme: VoucherProgramme, amount: Decimal) -> Decimal:
    return round_money(amount * programme.coverage_percent / HUNDRED)


def programme_redeemed_in_year(
    *, customer_id: int, programme_ids: Iterable[int], year: int
) -> dict[int, Decimal]:
    """Net amount redeemed (redemptions less reversals) per programme for the customer's year cap."""
    rows = (
        VoucherLedgerEntry.objects.filter(
            voucher__customer_id=customer_id,
            voucher__programme_id__in=list(programme_ids),
            kind__in=[LedgerKind.REDEEM, LedgerKind.REVERSE],
            cap_year=year,
        )
        .values("voucher__programme_id")
        .annotate(total=Sum("amount"))
    )
    return {row["voucher__programme_id"]: ZERO - row["total"] for row in rows}


def voucher_paid_out(*, voucher_ids: Iterable[int]) -> dict[int, Decimal]:
    """Net amount each voucher has paid out (for the per-voucher cap)."""
    rows = (
        VoucherLedgerEntry.objects.filter(
            voucher_id__in=list(voucher_ids), kind__in=[LedgerKind.REDEEM, LedgerKind.REVERSE]
        )
        .values("voucher_id")
        .annotate(total=Sum("amount"))
    )
    return {row["voucher_id"]: ZERO - row["total"] for row in rows}


def voucher_cap_left(*, cap: Decimal | None, used: Decimal) -> Decimal | None:
    return None if cap is None else max(ZERO, cap - used)


def voucher_balance_expire(*, voucher: Voucher, now: datetime.datetime, actor, note: str) -> bool:
    """Move what is left on an expired (locked) voucher out of its balance with an ``expire`` entry
    (which saves the voucher); False, and nothing written, if the balance is already zero."""
    if voucher.balance <= 0:
        return False
    voucher_ledger_move(
        voucher=voucher,
        kind=LedgerKind.EXPIRE,
        amount=-voucher.balance,
        now=now,
        actor=actor,
        note=note,
    )
    return True
