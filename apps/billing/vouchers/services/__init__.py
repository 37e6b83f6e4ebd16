"""Compute vouchers (算力券, docs/vouchers.md): programmes, issuing, redemption at invoice issue, reversal,
expiry, claims, the redemption report and the customer's claim pack.

Every movement of a voucher's balance happens here, under ``select_for_update`` of the voucher
row inside a transaction (plus an advisory lock per customer so the per-customer-per-year cap is
read and spent by one transaction at a time), and writes exactly one append-only ledger entry.
The database has the last word: ``balance >= 0`` (CHECK) and ``balance = Σ ledger`` (deferred
constraint trigger).

Reading of the programme rules (docs/vouchers.md#eligibility-rules), documented for finance:

- **Eligible amount** of an invoice = Σ gross (VAT included) of its lines that pass the
  programme's eligibility rules; the coverage applies per invoice and is rounded once, half up:
  ``round(eligible × coverage)``. Credit notes on eligible lines reduce it (claims only; at
  issue there are none yet).
- **Contract signed on or after**: the signing date is the local (billing time zone) date on
  which the contract was first activated — the first version's ``activated_at`` for amended
  contracts (an amendment does not make an old lease new), ``created_at`` if never activated.
- **Term ≤ N days**: ``end − start`` of the contract (the version billed) is at most
  ``max_contract_term_days`` (default 366, so a one-year lease in a leap year qualifies).
  An open-ended contract has no term and does not qualify when a maximum is set.
- **Supplier not a related party**: per invoice line, the providers of the hardware allocated
  to its contract line during the line's service period; a minimum-commitment shortfall line
  (no contract line) looks at every allocation of its contract. One related-party provider
  excludes the line.
- **Programme validity**: supplier-side vouchers pay invoices issued on a date within the
  programme's ``[valid_from, valid_to]`` and the voucher's ``valid_to``; claims count invoices
  issued within the programme's validity.
- **Several vouchers**: a programme's coverage is one share of the bill, however many vouchers
  of it the customer holds — they fill it in order of expiry (soonest first). Vouchers of
  different programmes each pay their own share; all together never exceed the amount due.
- **Caps**: per customer per calendar year (the year of the invoice's issue date for
  supplier-side redemptions, of the claim date for claims), counted net of reversals; per
  voucher: the face value may not exceed it, and what one voucher pays out in total never does
  either (also if the cap is lowered after issue). The voucher's balance always caps.
- **Void**: voiding an invoice gives its supplier-side redemptions back to the vouchers
  (``reverse`` entries; an expired voucher expires the returned money at once).
"""

from apps.billing.vouchers.services.claims import (
    ClaimComputation,
    ClaimRow,
    claim_compute,
    claim_pack,
    voucher_claim_record,
)
from apps.billing.vouchers.services.eligibility import (
    ContractFacts,
    EligibilityInputs,
    eligible_lines,
    line_ineligibility,
)
from apps.billing.vouchers.services.ledger import (
    PROGRAMME_FIELDS,
    programme_coverage_amount,
    programme_redeemed_in_year,
    voucher_expire,
    voucher_expire_due,
    voucher_issue,
    voucher_programme_check,
    voucher_programme_create,
    voucher_programme_update,
)
from apps.billing.vouchers.services.redemption import (
    voucher_apply_at_issue,
    voucher_return_for_credit_note,
    voucher_reverse_for_invoice,
)
from apps.billing.vouchers.services.report import (
    RedemptionCustomer,
    RedemptionReport,
    RedemptionRow,
    report_range,
    voucher_redemption_report,
)

__all__ = [
    "PROGRAMME_FIELDS",
    "ClaimComputation",
    "ClaimRow",
    "ContractFacts",
    "EligibilityInputs",
    "RedemptionCustomer",
    "RedemptionReport",
    "RedemptionRow",
    "claim_compute",
    "claim_pack",
    "eligible_lines",
    "line_ineligibility",
    "programme_coverage_amount",
    "programme_redeemed_in_year",
    "report_range",
    "voucher_apply_at_issue",
    "voucher_claim_record",
    "voucher_expire",
    "voucher_expire_due",
    "voucher_issue",
    "voucher_programme_check",
    "voucher_programme_create",
    "voucher_programme_update",
    "voucher_redemption_report",
    "voucher_return_for_credit_note",
    "voucher_reverse_for_invoice",
]
