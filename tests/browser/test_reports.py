"""The finance reports in a real browser, on the demo (``make run``'s data, today's date).

Finance opens the reports' landing page from the admin home, then every report it links to: each
shows its chart and table, fits the screen, filters by period range and downloads the same rows as
CSV. A screenshot of each is kept as ``var/screenshots/report-<slug>.png``.
"""

from __future__ import annotations

import csv
import io

import pytest

from tests.browser.conftest import screenshot

PASSWORD = "suanli-demo"


@pytest.fixture
def finance(chromium, portal_server):
    context = chromium.new_context(viewport={"width": 1366, "height": 900}, accept_downloads=True)
    page = context.new_page()
    page.set_default_timeout(20_000)
    page.goto(f"{portal_server.url}/admin/login/")
    page.fill("#id_username", "finance1")
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_selector("#content")
    yield page
    context.close()


def _slug(url: str) -> str:
    return url.rstrip("/").rsplit("/", 1)[-1]


def _table(page) -> tuple[list[str], list[list[str]]]:
    header = [cell.strip() for cell in page.locator("#report-table thead th").all_text_contents()]
    rows = []
    for row in page.locator("#report-table tbody tr").all():
        cells = [cell.strip() for cell in row.locator("td").all_text_contents()]
        if len(cells) == len(header):  # not the "Nothing in this range" row
            rows.append(cells)
    return header, rows


def _report_links(page, base_url: str) -> list[str]:
    hrefs = page.eval_on_selector_all("#report-links a", "links => links.map(a => a.getAttribute('href'))")
    return [href if href.startswith("http") else base_url + href for href in hrefs]


def test_finance_opens_every_report_with_its_chart_table_and_csv(finance, portal_server):
    page = finance
    page.goto(f"{portal_server.url}/admin/")
    page.click("a[href='/admin/reports/']")
    page.wait_for_selector("#reports-home")
    assert "Net revenue of" in page.inner_text("#month-figures")
    screenshot(page, "reports-home")

    links = _report_links(page, portal_server.url)
    assert len(links) >= 6, links  # revenue, AR aging, payback, P-year margin, unrated usage, vouchers
    with_rows = 0
    for url in links:
        slug = _slug(url)
        response = page.goto(url)
        assert response.status == 200, (url, response.status)
        page.wait_for_selector("#report-table")
        assert page.evaluate("document.documentElement.scrollWidth") <= 1366, f"{slug} overflows"
        header, rows = _table(page)
        assert header, f"{slug} has no table header"
        if rows:
            with_rows += 1
            # a report with figures draws them: at least one chart with a bar or a labelled value
            assert page.locator("#report svg").count() >= 1, f"{slug} shows rows but no chart"
        screenshot(page, f"report-{slug}")

        with page.expect_download() as download_info:
            page.click("text=Download CSV")
        path = download_info.value.path()
        with open(path, newline="", encoding="utf-8-sig") as handle:
            lines = list(csv.reader(io.StringIO(handle.read())))
        assert lines[0] == header, (slug, lines[0], header)
        assert len(lines) - 1 == len(rows), f"{slug}: CSV has {len(lines) - 1} rows, the page {len(rows)}"
    # the demo fills most reports on first look
    assert with_rows >= len(links) - 2, f"only {with_rows} of {len(links)} reports show figures"


def test_a_report_filters_by_period_range_and_explains_a_bad_month(finance, portal_server):
    page = finance
    page.goto(f"{portal_server.url}/admin/reports/revenue/")
    page.fill("#id_from", "2026-10")
    page.fill("#id_to", "2026-10")
    page.click("#report input[type=submit]")
    page.wait_for_url("**from=2026-10**")
    _, rows = _table(page)
    periods = {row[1] for row in rows if row[0].startswith("month")}
    assert periods == {"2026-10"}, periods

    page.goto(f"{portal_server.url}/admin/reports/revenue/?from=2026-13&to=2026-10")
    assert "2026-13" in page.inner_text("#report .errorlist")
