"""The customer portal in a real browser: a customer of the demo logs in and does their month.

Runs against ``portal_server`` (its own database with the demo, a real server process, the fake
Stripe for payments). Screenshots of the main pages in both languages go to var/screenshots/.
"""

from __future__ import annotations

import csv
import io

import psycopg
import pytest

from tests.browser.conftest import screenshot

USER, PASSWORD = "acme-user", "suanli-demo"


def sql(server, query: str, *params):
    """Read the server's database directly (what the product stored, not what a page says)."""
    db = server.env["DATABASE_URL"].removeprefix("postgres://")
    user, rest = db.split("@", 1)
    hostport, name = rest.split("/", 1)
    host, port = hostport.split(":")
    with psycopg.connect(host=host, port=port, user=user, dbname=name) as conn:
        return conn.execute(query, params).fetchall()


def log_in(page, server, username=USER, password=PASSWORD):
    page.goto(f"{server.url}/portal/login/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.click("[data-testid=login-submit]")


def switch_language(page, code: str):
    page.click(f"[data-testid=lang-{code}]")
    page.wait_for_load_state()


@pytest.fixture
def customer_page(page, portal_server):
    log_in(page, portal_server)
    page.wait_for_selector("[data-testid=nav-invoices]")
    switch_language(page, "en")
    return page


def test_the_dashboard_shows_what_is_due_and_a_chart_of_card_hours(customer_page, portal_server):
    page = customer_page
    page.goto(f"{portal_server.url}/portal/")
    assert (
        page.locator("[data-testid=amount-due]").count()
        + page.locator("[data-testid=amount-due-none]").count()
        == 1
    )
    bars = page.locator("[data-testid=usage-chart-svg] rect")
    assert bars.count() > 0, "the demo customer has 90 days of usage: the chart has bars"
    assert page.locator("[data-testid=chart-legend]").inner_text().strip() != ""
    assert page.locator("[data-testid=efficiency-table]").count() == 1
    screenshot(page, "portal-dashboard-en")
    switch_language(page, "zh-hans")
    assert "账单" in page.locator("[data-testid=nav-invoices]").inner_text()
    screenshot(page, "portal-dashboard-zh-hans")


def test_invoice_list_detail_and_pdf_download(customer_page, portal_server):
    page = customer_page
    page.click("[data-testid=nav-invoices]")
    rows = page.locator("[data-testid=invoice-row]")
    assert rows.count() >= 1
    numbers = {
        row[0]
        for row in sql(
            portal_server,
            "SELECT number FROM billing_invoice i JOIN customers_customer c ON c.id = i.customer_id WHERE c.code = 'acme' AND i.status <> 'draft'",
        )
    }
    assert numbers and all(number in page.content() for number in numbers)
    assert "Draft" not in page.locator("[data-testid=invoice-table]").inner_text()
    screenshot(page, "portal-invoices-en")
    rows.first.locator("a").first.click()
    page.wait_for_selector("[data-testid=invoice-lines]")
    screenshot(page, "portal-invoice-detail-en")
    with page.expect_download() as download:
        page.click("[data-testid=invoice-pdf]")
    pdf = download.value
    assert pdf.suggested_filename.endswith(".pdf")
    with open(pdf.path(), "rb") as content:
        assert content.read(5) == b"%PDF-"
    switch_language(page, "zh-hans")
    screenshot(page, "portal-invoice-detail-zh-hans")


def test_the_language_switch_is_remembered(customer_page, portal_server):
    page = customer_page
    assert page.locator("[data-testid=nav-invoices]").inner_text().strip() == "Invoices"
    switch_language(page, "zh-hans")
    page.goto(f"{portal_server.url}/portal/usage/")
    assert page.locator("html").get_attribute("lang") == "zh-hans"
    assert "用量" in page.locator("[data-testid=nav-usage]").inner_text()
    screenshot(page, "portal-usage-zh-hans")
    switch_language(page, "en")
    page.goto(f"{portal_server.url}/portal/contracts/")
    assert page.locator("[data-testid=nav-contracts]").inner_text().strip() == "Contracts"
    screenshot(page, "portal-contracts-en")
    page.goto(f"{portal_server.url}/portal/vouchers/")
    screenshot(page, "portal-vouchers-en")


def test_usage_csv_export(customer_page, portal_server):
    page = customer_page
    page.goto(f"{portal_server.url}/portal/usage/")
    screenshot(page, "portal-usage-en")
    with page.expect_download() as download:
        page.click("[data-testid=usage-csv]")
    with open(download.value.path(), encoding="utf-8-sig") as content:
        rows = list(csv.reader(io.StringIO(content.read())))
    assert len(rows) >= 2, "a header and the demo customer's records"
    assert len({len(row) for row in rows}) == 1


def test_another_customers_invoice_is_not_found(customer_page, portal_server):
    page = customer_page
    (foreign,) = sql(
        portal_server,
        "SELECT i.id FROM billing_invoice i JOIN customers_customer c ON c.id = i.customer_id "
        "WHERE c.code <> 'acme' AND i.status <> 'draft' ORDER BY i.id LIMIT 1",
    )[0:1]
    response = page.goto(f"{portal_server.url}/portal/invoices/{foreign[0]}/")
    assert response.status == 404
    response = page.goto(f"{portal_server.url}/portal/invoices/{foreign[0]}/pdf/")
    assert response.status == 404


def test_pay_by_card_through_stripe_checkout_and_the_webhook(customer_page, portal_server):
    page = customer_page
    due = sql(
        portal_server,
        "SELECT i.id, i.number FROM billing_invoice i JOIN customers_customer c ON c.id = i.customer_id "
        "WHERE c.code = 'acme' AND i.status = 'issued' ORDER BY i.id LIMIT 1",
    )
    assert due, "the demo customer has an issued invoice with an amount due"
    invoice_id, number = due[0]
    page.goto(f"{portal_server.url}/portal/invoices/{invoice_id}/")
    page.click("[data-testid=pay-button]")
    # Stripe's hosted Checkout page (the fake): pay, Stripe posts the signed webhook, then returns.
    page.wait_for_selector("[data-testid=fake-stripe-pay]")
    screenshot(page, "stripe-checkout-fake")
    page.click("[data-testid=fake-stripe-pay]")
    page.wait_for_url(f"{portal_server.url}/portal/payments/success/**")
    page.goto(f"{portal_server.url}/portal/invoices/{invoice_id}/")
    assert page.locator("[data-testid=invoice-status]").inner_text().strip() == "Paid"
    assert page.locator("[data-testid=pay-button]").count() == 0
    assert sql(
        portal_server,
        "SELECT count(*) FROM billing_payment WHERE invoice_id = %s AND method = 'stripe'",
        invoice_id,
    ) == [(1,)]
    screenshot(page, f"portal-invoice-paid-{number}")


def test_login_locks_out_after_repeated_failures(page, portal_server):
    """Last in the module: it locks the demo customer's login on this server."""
    for _ in range(5):
        log_in(page, portal_server, password="wrong-password")
    log_in(page, portal_server)
    assert page.locator("[data-testid=lockout-message]").count() == 1
    assert page.locator("[data-testid=nav-invoices]").count() == 0
    screenshot(page, "portal-locked-out-en")
