"""Notices: the e-mails a customer receives about an invoice — issued (with its PDF), due in 7
days, overdue (weekly), and a receipt for each payment — each sent at most once
(docs/invoices.md#e-mail). Reads invoicing; invoicing never imports it."""
