"""Saved quote versions: save, mark sent, mark accepted (docs/quotes.md#versions-and-statuses).

Each service runs in a transaction, locks the contract row (so two saves cannot take the same
version number and a mark cannot race a save), checks the source state and records the decision
in the contract's history ("Quote v2 sent 报价已发送" with the actor), where the admin's history
page shows it. The database has the last word: one version number per contract, one accepted
quote per contract, accepted only after sent.
"""

from __future__ import annotations

import datetime
from decimal import Decimal

from django.db import transaction
from django.db.models import Max

from apps.core.errors import DomainError, InvalidState
from apps.core.money import decimal_text

from .models import Contract, ContractQuote, ContractStatus, QuoteStatus
from .quotes import HUNDRED, contract_quote, default_quote_terms, quote_snapshot

QUOTABLE = (ContractStatus.DRAFT, ContractStatus.PENDING_APPROVAL)


def quote_may_manage(*, contract: Contract, user) -> bool:
    """Who may save and mark quotes: the contract's own account manager, or a superuser."""
    if not user.is_authenticated or not user.is_active:
        return False
    if user.is_superuser:
        return True
    return contract.account_manager_id == user.pk and user.has_perm("contracts.change_contract")


def _locked(contract: Contract) -> Contract:
    return Contract.objects.select_for_update().select_related("customer").get(pk=contract.pk)


def _check(contract: Contract, actor, action: str) -> None:
    if not quote_may_manage(contract=contract, user=actor):
        raise DomainError(
            "Only the contract's account manager can save or mark its quotes. 仅合同的客户经理可以操作报价。",
            code="permission_denied",
            http_status=403,
        )
    if contract.status not in QUOTABLE:
        raise InvalidState(
            f"Cannot {action}: contract {contract} is {contract.get_status_display()}; quotes are for "
            f"draft or pending-approval contracts only. 合同已不在草稿或待审批状态。",
            code="contract_not_draft",
            fields={"status": contract.status},
        )


def _record(contract: Contract, actor, reason: str) -> None:
    """A row in the contract's history with the actor and the reason (nothing else changes)."""
    contract._history_user = actor
    contract._change_reason = reason[:100]
    contract.save(update_fields=["updated_at"])


def _latest(contract: Contract, version: int | None) -> ContractQuote:
    latest = ContractQuote.objects.select_for_update().filter(contract=contract).order_by("-version").first()
    if latest is None:
        raise InvalidState("Save the quote as a version first. 请先保存报价版本。", code="quote_not_saved")
    if version is not None and version != latest.version:
        raise InvalidState(
            f"Quote v{version} is not the latest version (v{latest.version}); only the latest can be marked. "
            f"仅最新版本可以标记。",
            code="quote_not_latest",
            fields={"version": version},
        )
    return latest


@transaction.atomic
def quote_save(
    *,
    contract: Contract,
    actor,
    now: datetime.datetime,
    utilisation_percent: Decimal = HUNDRED,
    terms: str | None = None,
) -> ContractQuote:
    """Freeze the current draft's quote as version N+1; older draft and sent versions are
    superseded. The snapshot keeps the figures, so later edits of the draft never change it."""
    contract = _locked(contract)
    _check(contract, actor, "save a quote")
    if ContractQuote.objects.filter(contract=contract, status=QuoteStatus.ACCEPTED).exists():
        raise InvalidState(
            f"Contract {contract} already has an accepted quote. 该合同已有已接受的报价。",
            code="quote_already_accepted",
        )
    if not contract.lines.exists():
        raise DomainError(
            "A quote needs at least one line. 报价至少需要一行。",
            code="invalid",
            fields={"lines": ["Add a line."]},
        )
    quote = contract_quote(contract=contract, utilisation_percent=utilisation_percent, over_term=True)
    version = (ContractQuote.objects.filter(contract=contract).aggregate(v=Max("version"))["v"] or 0) + 1
    ContractQuote.objects.filter(contract=contract, status__in=[QuoteStatus.DRAFT, QuoteStatus.SENT]).update(
        status=QuoteStatus.SUPERSEDED
    )
    term = quote.term
    saved = ContractQuote.objects.create(
        contract=contract,
        version=version,
        status=QuoteStatus.DRAFT,
        utilisation_percent=quote.utilisation_percent,
        currency=contract.currency,
        monthly_amount=quote.amount,
        monthly_gross_amount=quote.gross_amount,
        term_amount=term.total.amount,
        term_gross_amount=term.total.gross_amount,
        term_open_ended=term.open_ended,
        terms=terms if terms is not None else default_quote_terms(contract=contract),
        snapshot=quote_snapshot(quote),
        created_at=now,
        created_by=actor,
    )
    _record(
        contract,
        actor,
        f"Quote v{version} saved 报价已保存 ({decimal_text(term.total.gross_amount)} {contract.currency})",
    )
    return saved


@transaction.atomic
def quote_mark_sent(
    *, contract: Contract, actor, now: datetime.datetime, version: int | None = None
) -> ContractQuote:
    """The latest version was sent to the customer (draft → sent)."""
    contract = _locked(contract)
    _check(contract, actor, "mark a quote sent")
    quote = _latest(contract, version)
    if quote.status != QuoteStatus.DRAFT:
        raise InvalidState(
            f"Quote v{quote.version} is {quote.get_status_display()}, not a draft. 报价不是草稿状态。",
            code="quote_not_draft",
            fields={"status": quote.status},
        )
    quote.status = QuoteStatus.SENT
    quote.sent_at = now
    quote.sent_by = actor
    quote.save(update_fields=["status", "sent_at", "sent_by"])
    _record(contract, actor, f"Quote v{quote.version} sent 报价已发送")
    return quote


@transaction.atomic
def quote_mark_accepted(
    *, contract: Contract, actor, now: datetime.datetime, version: int | None = None
) -> ContractQuote:
    """The customer accepted the latest version (sent → accepted)."""
    contract = _locked(contract)
    _check(contract, actor, "mark a quote accepted")
    quote = _latest(contract, version)
    if quote.status != QuoteStatus.SENT:
        raise InvalidState(
            f"Quote v{quote.version} is {quote.get_status_display()}: mark it sent before accepted. "
            f"报价需先标记为已发送。",
            code="quote_not_sent",
            fields={"status": quote.status},
        )
    quote.status = QuoteStatus.ACCEPTED
    quote.accepted_at = now
    quote.accepted_by = actor
    quote.save(update_fields=["status", "accepted_at", "accepted_by"])
    _record(contract, actor, f"Quote v{quote.version} accepted 报价已接受")
    return quote


def quote_versions(*, contract: Contract) -> list[ContractQuote]:
    """The saved versions of a contract's quote, newest first, with who saved and marked them."""
    return list(
        ContractQuote.objects.filter(contract=contract)
        .select_related("created_by", "sent_by", "accepted_by")
        .order_by("-version")
    )


def quote_version_get(*, contract: Contract, version: int) -> ContractQuote | None:
    return ContractQuote.objects.filter(contract=contract, version=version).first()
