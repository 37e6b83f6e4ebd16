"""Payments beyond invoicing's own record: bank transfers with overpayment, the customer credit
ledger, Stripe Checkout and its webhook (docs/invoices.md#payments-and-customer-credit).

Modules: ``credit`` (the ledger, bank transfers, credit at issue, refunds, credit-note returns)
and ``stripe`` (Checkout Session, webhook events). Import from the modules themselves.
"""
