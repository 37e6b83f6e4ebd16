"""Set-based loading of N customers with one active monthly contract each (as bench/billing.py does)."""

from __future__ import annotations

# The drills' provider and its site (also loaded by the pg_restart drill). Every NOT NULL column is
# named: Django keeps field defaults in Python, so a new model field needs its value here too.
PROVIDER_SQL = """
INSERT INTO providers_provider (code, name, type, contact_name, contact_email, contact_phone, settlement_terms_days,
    is_related_party, notes, reconciliation_tolerance_percent, reconciliation_tolerance_hours, created_at, updated_at)
VALUES ('drill-idc', 'Drill IDC', 'idc', '', '', '', 30, false, '', 1.00, 0.50, now(), now());
INSERT INTO providers_site (provider_id, name, city, hub, created_at, updated_at)
SELECT id, 'Drill site', 'Chengdu', 'chengyu', now(), now() FROM providers_provider WHERE code = 'drill-idc';
"""

LOAD_SQL = (
    PROVIDER_SQL
    + """

INSERT INTO inventory_server (provider_id, site_id, serial, gpu_model_id, card_count, status, currency, created_at,
    updated_at)
SELECT p.id, s.id, 'D-' || g, m.id, 8, 'available', 'CNY', now(), now()
  FROM generate_series(1, %(customers)s) g, providers_provider p, providers_site s, inventory_gpumodel m
 WHERE p.code = 'drill-idc' AND s.provider_id = p.id AND m.name = 'A100-SXM4-40GB';

INSERT INTO customers_customer (code, name, tax_id, billing_address, phone, bank_name, bank_account, billing_email,
    invoice_type, currency, payment_terms_days, language, auto_issue, created_at, updated_at)
SELECT 'drill-' || lpad(g::text, 6, '0'), 'Drill customer ' || g, 'D' || lpad(g::text, 17, '0'), '', '', '', '', '',
       'vat_special', 'CNY', 30, 'zh-hans', false, now(), now()
  FROM generate_series(1, %(customers)s) g;

INSERT INTO accounts_user (password, is_superuser, username, first_name, last_name, email, is_staff, is_active,
    date_joined, display_name, phone)
VALUES ('!', true, 'drill', '', '', '', true, true, now(), '', '');

-- every contract runs from 2025-01-01 00:00 billing time, open-ended: every month bills the same
INSERT INTO contracts_contract (number, version, customer_id, account_manager_id, currency, prices_include_tax,
    start_at, minimum_monthly_amount, status, notes, created_at, updated_at, end_reason, activated_at)
SELECT 'C-2025-' || lpad(c.id::text, 6, '0'), 1, c.id, u.id, 'CNY', true, '2024-12-31 16:00+00', NULL, 'active', '',
       now(), now(), '', now()
  FROM customers_customer c, accounts_user u WHERE u.username = 'drill';

-- one monthly server line; the price varies with the customer so that totals differ
INSERT INTO contracts_contractline (contract_id, position, resource, gpu_model_id, quantity, term, list_unit_price,
    term_discount_percent, discount_percent, tax_category_id, yearly_billing, p_basis, usage_source)
SELECT k.id, 1, 'server', m.id, 1, 'monthly', 100000.00 + (k.customer_id %% 97) * 13.37, 15, 0, t.id,
       'monthly_instalments', 'fp16_dense', 'partner'
  FROM contracts_contract k CROSS JOIN inventory_gpumodel m CROSS JOIN contracts_taxcategory t
 WHERE m.name = 'A100-SXM4-40GB' AND t.code = 'it_service';

WITH ranked AS (SELECT srv.id, row_number() OVER (ORDER BY srv.id) AS rn FROM inventory_server srv),
     lines AS (SELECT l.id AS line_id, row_number() OVER (ORDER BY l.contract_id) AS cn FROM contracts_contractline l)
INSERT INTO contracts_allocation (line_id, server_id, card_id, slot, start_at, end_at, firm, created_at)
SELECT lines.line_id, r.id, NULL, NULL, timestamptz '2024-12-31 16:00+00', NULL, true, now()
  FROM lines JOIN ranked r ON r.rn = lines.cn;
ANALYZE;
"""
)


def load_monthly_customers(database_url: str, customers: int) -> None:
    import psycopg

    with psycopg.connect(database_url, cursor_factory=psycopg.ClientCursor) as conn:
        conn.execute(LOAD_SQL, {"customers": customers})
        conn.commit()
