"""Voucher redemptions per programme (docs/reports.md): the ledger's redemptions in the range, less
those given back when their invoice was voided, per programme; one query."""

from __future__ import annotations

import csv
import datetime
import io
from decimal import Decimal

import pytest
from django.urls import reverse

from apps.accounts import roles
from apps.billing.invoicing.services.issuing import invoice_void
from apps.core.periods import Period
from apps.reports import selectors
from tests.billing.vouchers.test_vouchers import programme, voucher
from tests.factories.billing_flows import SH, issued_invoice
from tests.factories.catalogue import CustomerFactory, ServerFactory

pytestmark = pytest.mark.django_db

DECEMBER = selectors.PeriodRange(Period(2026, 12), Period(2026, 12))


@pytest.fixture
def am(make_staff):
    return make_staff(roles.ACCOUNT_MANAGER, username="am1")


@pytest.fixture
def redemptions(am):
    """Two programmes: cd-2026 pays 30 % of acme's 1,000.00 and beta's 500.00 invoices (issued
    2026-12-01), and acme's is voided on 12-02; gz-2026 pays 50 % of gamma's 200.00."""
    cd = programme(valid_to=datetime.date(2027, 12, 31))
    gz = programme(code="gz-2026", coverage_percent=Decimal("50"), valid_to=datetime.date(2027, 12, 31))
    acme, beta, gamma = (CustomerFactory(code=code) for code in ("acme", "beta", "gamma"))
    voucher(cd, acme)
    voucher(cd, beta)
    voucher(gz, gamma)
    first = issued_invoice(acme, am, ServerFactory())
    issued_invoice(beta, am, ServerFactory(), hours=50)
    issued_invoice(gamma, am, ServerFactory(), hours=20)
    invoice_void(invoice=first, reason="duplicate", now=datetime.datetime(2026, 12, 2, tzinfo=SH))


def test_redemptions_per_programme_net_of_voided_invoices(redemptions, django_assert_max_num_queries):
    with django_assert_max_num_queries(1):
        rows = selectors.voucher_redemptions(period_range=DECEMBER)
    assert [
        (r["code"], r["currency"], r["redemptions"], r["redeemed"], r["reversed"], r["net"]) for r in rows
    ] == [
        # 30 % of 1,000.00 + 30 % of 500.00 redeemed; acme's 300.00 given back by the void
        ("cd-2026", "CNY", 2, Decimal("450.00"), Decimal("300.00"), Decimal("150.00")),
        ("gz-2026", "CNY", 1, Decimal("100.00"), Decimal("0.00"), Decimal("100.00")),  # 50 % of 200.00
    ]
    november = selectors.PeriodRange(Period(2026, 11), Period(2026, 11))
    assert selectors.voucher_redemptions(period_range=november) == []  # redeemed on issue, Dec 1


def test_the_page_and_its_csv(redemptions, client, make_staff):
    client.force_login(make_staff(roles.FINANCE, username="finance1"))
    url = reverse("reports:vouchers")
    page = client.get(url, {"from": "2026-12", "to": "2026-12"})
    assert page.status_code == 200
    html = page.content.decode()
    assert "Voucher redemptions per programme 算力券核销" in html and "<svg" in html
    export = client.get(url, {"from": "2026-12", "to": "2026-12", "format": "csv"})
    rows = list(csv.reader(io.StringIO(export.content.decode("utf-8-sig"))))
    assert rows[1:] == [
        ["cd-2026", rows[1][1], "CNY", "2", "450.00", "300.00", "150.00"],
        ["gz-2026", rows[2][1], "CNY", "1", "100.00", "0.00", "100.00"],
    ]
    assert reverse("reports:vouchers") in client.get(reverse("reports:index")).content.decode()
    client.force_login(make_staff(roles.OPERATIONS, username="ops1"))
    assert client.get(url).status_code == 403
