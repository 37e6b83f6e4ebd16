"""The admin as a workplace, walked in a real browser on the demo (``make run``'s data, today's date).

An account manager drafts a three-line contract (card hourly, server monthly, P-unit yearly) for a
customer who signed in September on the drafting screen, allocates hardware with the capacity
finder, saves, sends and accepts a quote and submits it; a sales manager approves it from the
approval queue; the account manager activates it. Finance then runs billing for the closed month,
reviews the new draft and issues it after the bulk confirmation. Screenshots go to
``var/screenshots/admin-*.png``.
"""

from __future__ import annotations

import re

import pytest

from tests.browser.conftest import screenshot

PASSWORD = "suanli-demo"
CUSTOMER = "linglong"  # a demo customer without a contract yet


@pytest.fixture
def as_user(chromium, portal_server):
    """``as_user("am1")`` → a logged-in admin page in its own browser context (own session)."""
    contexts = []

    def login(username):
        context = chromium.new_context(viewport={"width": 1366, "height": 900})
        contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(20_000)
        page.goto(f"{portal_server.url}/admin/login/")
        page.fill("#id_username", username)
        page.fill("#id_password", PASSWORD)
        page.click("input[type=submit]")
        page.wait_for_selector("#content")
        return page

    yield login
    for context in contexts:
        context.close()


def _fits_the_screen(page) -> None:
    assert page.evaluate("document.documentElement.scrollWidth") <= 1366


def _messages(page) -> str:
    return page.inner_text(".messagelist")


def _draft_three_lines(page, url) -> str:
    page.goto(f"{url}/admin/contracts/contract/add/")
    page.click("#id_customer + .select2 .select2-selection")
    page.fill(".select2-search__field", CUSTOMER)
    page.click(f".select2-results__option:has-text('({CUSTOMER})')")
    assert CUSTOMER in page.inner_text("#select2-id_customer-container")
    page.fill("#id_start_at_0", "2026-10-01")
    page.fill("#id_start_at_1", "00:00:00")
    page.fill("#id_end_at_0", "2027-10-01")
    page.fill("#id_end_at_1", "00:00:00")
    page.click("input[name=_save]")
    page.wait_for_selector("#draft-form")
    assert "now add its lines" in _messages(page)
    number = re.search(r"C-\d{4}-\d{6}", page.inner_text("h1, #content h2, .breadcrumbs")).group(0)

    rows = [
        ("card", "A100-SXM4-40GB", "2", "hourly", "10"),
        ("server", "A100-SXM4-80GB", "1", "monthly", ""),
        ("p_unit", "A100-SXM4-80GB", "2.496", "yearly", "25"),
    ]
    for index, (resource, model, quantity, term, discount) in enumerate(rows):
        page.click("#add-line")
        page.select_option(f"[name=lines-{index}-resource]", resource)
        page.select_option(f"[name=lines-{index}-gpu_model]", label=model)
        page.fill(f"[name=lines-{index}-quantity]", quantity)
        page.select_option(f"[name=lines-{index}-term]", term)
        if discount:
            page.fill(f"[name=lines-{index}-discount_percent]", discount)
    # Live figures: the list price the line will take, its estimate, and the approval it needs.
    page.wait_for_function(
        "document.getElementById('approval-text').textContent.includes('Needs a sales manager')"
    )
    assert "line 3 has a 25% discount" in page.inner_text("#approval-text")
    assert page.get_attribute("[name=lines-1-list_unit_price]", "placeholder") not in ("", None)
    monthly = page.inner_text("#total-monthly")
    assert re.fullmatch(r"\d{1,3}(,\d{3})*\.\d\d", monthly) and monthly != "0.00"
    assert page.locator("tr.line-extra[data-prefix=lines-2] .yearly-billing").is_visible()
    assert not page.locator("tr.line-extra[data-prefix=lines-0]").is_visible()
    _fits_the_screen(page)
    screenshot(page, "admin-drafting-screen")

    page.click("#save-lines")
    page.wait_for_selector(".messagelist")
    assert "Lines saved" in _messages(page)
    assert [page.inner_text(f"tr.line-row[data-prefix=lines-{i}] td >> nth=0").strip() for i in range(3)] == [
        "#1",
        "#2",
        "#3",
    ]
    assert page.inner_text("#total-monthly") == monthly  # the same figures, now saved
    return number


def _allocate_every_line(page) -> None:
    lines_url = page.url
    for index in range(3):
        page.goto(lines_url)
        page.click(f"tr.line-row[data-prefix=lines-{index}] a.capacity-link")
        page.wait_for_selector("#capacity-results")
        page.click("input[name=fill]")
        page.wait_for_selector(".messagelist")
        assert "Allocated" in _messages(page), _messages(page)
        if index == 1:
            screenshot(page, "admin-capacity-finder")
    page.goto(lines_url)


def _quote_sent_and_accepted(page, url, contract_id) -> None:
    page.goto(f"{url}/admin/contracts/contract/{contract_id}/quote/")
    screenshot(page, "admin-quote")
    page.click("#quote-save")
    page.click("#quote-mark-sent")
    page.click("#quote-mark-accepted")
    assert page.get_attribute("tr.quote-version[data-version='1']", "data-status") == "accepted"


def test_account_manager_drafts_sales_approves_finance_issues(as_user, portal_server):
    url = portal_server.url
    am = as_user("am1")
    assert am.locator("#panel-account-manager").is_visible()
    screenshot(am, "admin-home-account-manager")

    number = _draft_three_lines(am, url)
    contract_id = re.search(r"/contract/(\d+)/lines/", am.url).group(1)
    _allocate_every_line(am)
    _quote_sent_and_accepted(am, url, contract_id)

    am.goto(f"{url}/admin/contracts/contract/{contract_id}/lines/")
    am.click("#save-and-submit")
    am.wait_for_selector(".messagelist")
    assert f"Saved and submitted {number}" in _messages(am)
    assert "Pending approval" in am.inner_text(".field-status")
    assert "Needs a sales manager's approval" in am.inner_text(".field-approval_rule")

    # The sales manager approves from the queue on their home page.
    sales = as_user("sales1")
    sales.click("#panel-sales-manager a:has-text('Waiting for approval')")
    row = sales.locator("tr", has_text=number)
    assert "25%" in row.inner_text()
    screenshot(sales, "admin-approval-queue")
    row.locator("button[value=approve]").click()
    assert f"Approved {number}" in _messages(sales)

    # The account manager activates it: allocations cover every line, the approval is recorded.
    am.goto(f"{url}/admin/contracts/contract/?q={number}")
    am.check(f"input[name=_selected_action][value='{contract_id}']")
    am.select_option("select[name=action]", "activate_selected")
    am.click("button[name=index]")
    assert "Activated 1 contract(s)" in _messages(am), _messages(am)
    am.goto(f"{url}/admin/contracts/contract/{contract_id}/change/")
    assert "Active" in am.inner_text(".field-status")
    assert "(sales manager)" in am.inner_text(".field-approved_by")
    screenshot(am, "admin-contract-active")
    am.goto(f"{url}/admin/contracts/contract/{contract_id}/history/")
    history = am.inner_text("#content")
    assert "approved" in history and "Quote v1 accepted" in history

    # Finance: run October (closed) for the customer, review the new draft, issue it.
    finance = as_user("finance1")
    screenshot(finance, "admin-home-finance")
    finance.goto(f"{url}/admin/billing/billingrun/add/")
    assert finance.input_value("[name=period]") == "2026-10"
    finance.fill("[name=customer]", CUSTOMER)
    finance.click("input[type=submit]")
    finance.wait_for_selector(".messagelist")
    assert "started" in _messages(finance)
    finance.reload()
    assert "Done" in finance.inner_text(".field-status_badge, .field-status")
    screenshot(finance, "admin-billing-run")

    finance.goto(f"{url}/admin/billing/invoice/?status__exact=draft&period__exact=2026-10")
    assert CUSTOMER in finance.inner_text("#result_list") or "玲珑" in finance.inner_text("#result_list")
    finance.check("#action-toggle")
    finance.select_option("select[name=action]", "issue_selected")
    finance.click("button[name=index]")
    summary = finance.inner_text("#issue-summary")
    assert "Issue 1 draft invoice(s)" in summary
    screenshot(finance, "admin-issue-confirmation")
    finance.click(".submit-row input[type=submit]")
    assert "Issued 1" in _messages(finance) or "issued 1" in _messages(finance).lower(), _messages(finance)
    finance.goto(f"{url}/admin/billing/invoice/?period__exact=2026-10&q={CUSTOMER}")
    assert "Issued" in finance.inner_text("#result_list")
