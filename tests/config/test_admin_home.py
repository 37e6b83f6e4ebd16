"""The admin's home page per role (issue 12, item 1): each role sees its own panels above Django's
app list, each item a count or amount linking to the filtered changelist, in a bounded number of
queries; superusers see every panel."""

import datetime
import re

import pytest

from apps.accounts.models import User
from apps.billing.models import BillingRun
from apps.contracts.models import Contract, ContractStatus

pytestmark = pytest.mark.django_db

PANELS = ["panel-account-manager", "panel-sales-manager", "panel-finance", "panel-operations"]


def home(client, username, django_assert_max_num_queries, limit=40):
    client.force_login(User.objects.get(username=username))
    with django_assert_max_num_queries(limit):
        response = client.get("/admin/")
    assert response.status_code == 200
    html = response.content.decode()
    assert 'id="content-main"' in html  # Django's app list stays below the panels
    return html


def panels_in(html):
    return [panel for panel in PANELS if f'id="{panel}"' in html]


def results(client, url):
    html = client.get(url.replace("&amp;", "&")).content.decode()
    match = re.search(r"(\d+) results?", html)
    return int(match.group(1)) if match else None


def test_account_manager_home(demo, client, django_assert_max_num_queries):
    html = home(client, "am1", django_assert_max_num_queries)
    assert panels_in(html) == ["panel-account-manager"]
    for label in ["My drafts 我的草稿", "Awaiting approval 待审批", "Ending in the next 60 days 60天内到期"]:
        assert label in html
    am1 = User.objects.get(username="am1")
    assert f"?status__exact=draft&amp;account_manager__id__exact={am1.pk}" in html
    assert (
        results(client, f"/admin/contracts/contract/?status__exact=draft&account_manager__id__exact={am1.pk}")
        == 0
    )
    # The demo's qingluan contract (October to December) ends within 60 days of November 28.
    ending = re.search(
        r'<a href="([^"]+)">Ending in the next 60 days 60天内到期</a></th><td[^>]*>(\d+)<', html
    )
    assert ending and ending.group(2) == "1"
    assert results(client, ending.group(1)) == 1


def test_sales_manager_home_lists_the_approval_queue(demo, client, django_assert_max_num_queries):
    html = home(client, "sales1", django_assert_max_num_queries)
    assert panels_in(html) == ["panel-sales-manager"]
    assert 'href="/admin/contracts/contract/approvals/">Waiting for approval 待审批</a>' in html
    assert "C-2026-000014 · 楚云智造科技有限公司" in html
    assert "discount 23.5% · value CNY 148,938.05/month" in html


def test_finance_home(demo, client, django_assert_max_num_queries):
    html = home(client, "finance1", django_assert_max_num_queries)
    assert panels_in(html) == ["panel-finance"]
    assert "Drafts of 2026-10 to review 待审草稿" in html  # October is the last closed month on Nov 28
    assert 'href="/admin/billing/invoice/?overdue=yes">Overdue invoices 逾期发票</a>' in html
    # acme's October (45,427.50 left), hongtu's July and August (120,000.00 each), guanlan's May (28,000.00)
    assert "4 · CNY 313,427.50" in html
    assert results(client, "/admin/billing/invoice/?overdue=yes") == 4
    assert "Payments to match: customer credit from overpayments 待核销预存款" in html
    assert "Change since the last run of 2026-10 较上次计费变化" in html


def test_finance_home_says_what_the_last_run_of_the_closed_month_changed(
    demo, client, django_assert_max_num_queries
):
    before = datetime.datetime(2026, 11, 28, 2, 0, tzinfo=datetime.UTC)  # now: 10:00 in Shanghai
    BillingRun.objects.create(
        period="2026-10",
        status="done",
        as_of=before,
        finished_at=before,
        draft_changes={
            "acme CNY": {"before": "100.00", "after": "150.50"},
            "beta CNY": {"before": None, "after": "20.00"},
            "gamma CNY": {"before": "30.00", "after": None},
            "delta CNY": {"before": "5.00", "after": "5.00"},
            "omega USD": {"before": "10.00", "after": "7.00"},
        },
    )
    html = home(client, "finance1", django_assert_max_num_queries)
    # +50.50 + 20.00 − 30.00 = +40.50 CNY; −3.00 USD; the unchanged draft is not counted.
    assert "2026-11-28 10:00 CST (UTC+08:00): 1 new, 2 changed, 1 removed (+CNY 40.50, −USD 3.00)" in html
    assert "Billing runs with errors 出错的计费批次" in html


def test_operations_home(demo, client, django_assert_max_num_queries):
    html = home(client, "ops1", django_assert_max_num_queries)
    assert panels_in(html) == ["panel-operations"]
    assert "Free now 空闲: 京津冀 Jing-Jin-Ji · A100-SXM4-40GB" in html
    row = re.search(
        r'<a href="([^"]+)">Free now 空闲: 京津冀 Jing-Jin-Ji · A100-SXM4-40GB</a></th><td[^>]*>(\d+) cards',
        html,
    )
    assert row and int(row.group(2)) == 142
    assert results(client, row.group(1)) == 142  # the link shows exactly those cards
    assert "Servers without a supply agreement 无供应协议的服务器" in html
    assert results(client, "/admin/inventory/server/?supply=none") == 0


def test_superuser_sees_every_panel(demo, client, django_assert_max_num_queries):
    html = home(client, "admin", django_assert_max_num_queries, limit=60)
    assert panels_in(html) == PANELS


def test_account_manager_counts_follow_their_contracts(demo, client, django_assert_max_num_queries):
    am1 = User.objects.get(username="am1")
    active = list(
        Contract.objects.filter(account_manager=am1, status=ContractStatus.ACTIVE).order_by("pk")[:2]
    )
    assert len(active) == 2
    Contract.objects.filter(pk=active[0].pk).update(status=ContractStatus.DRAFT)
    Contract.objects.filter(pk=active[1].pk).update(end_at=demo + datetime.timedelta(days=30))
    html = home(client, "am1", django_assert_max_num_queries)
    drafts = re.search(r'<a href="([^"]+)">My drafts 我的草稿</a></th><td[^>]*>(\d+)<', html)
    assert drafts and drafts.group(2) == "1"
    assert results(client, drafts.group(1)) == 1
    ending = re.search(
        r'<a href="([^"]+)">Ending in the next 60 days 60天内到期</a></th><td[^>]*>(\d+)<', html
    )
    assert ending and ending.group(2) == "2"  # this one and the demo's qingluan contract
    assert results(client, ending.group(1)) == 2
