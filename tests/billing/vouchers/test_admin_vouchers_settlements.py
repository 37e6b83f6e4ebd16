"""Finance's admin pages for vouchers and provider settlements: issue, ledger, reports, actions."""

from __future__ import annotations

import datetime
import io
import zipfile
from decimal import Decimal

import pytest
import time_machine
from django.urls import reverse

from apps.accounts import roles
from apps.billing.invoicing.services.payments import payment_record
from apps.billing.models import SettlementStatement, Voucher, VoucherProgramme
from apps.billing.settlements import services as settlement_services
from apps.billing.vouchers import services as svc
from apps.providers.models import SupplyAgreement
from tests.factories.billing_flows import SH, issued_invoice
from tests.factories.catalogue import CustomerFactory, ProviderFactory, ServerFactory, SiteFactory, gpu_model

pytestmark = pytest.mark.django_db

NOW = datetime.datetime(2026, 12, 2, 9, tzinfo=SH)


@pytest.fixture(autouse=True)
def frozen_clock():
    with time_machine.travel(NOW, tick=False):
        yield


@pytest.fixture
def am(make_staff):
    return make_staff(roles.ACCOUNT_MANAGER, username="am1")


@pytest.fixture
def finance_client(client, make_staff):
    client.force_login(make_staff(roles.FINANCE, username="fin1"))
    return client


def programme(code="cd-2026", flow="supplier_side") -> VoucherProgramme:
    return svc.voucher_programme_create(
        code=code,
        issuer="成都市经济和信息化局",
        flow=flow,
        coverage_percent=Decimal(30),
        valid_from=datetime.date(2026, 1, 1),
        valid_to=datetime.date(2026, 12, 31),
    )


def test_finance_issues_a_voucher_in_admin_and_sees_its_ledger(finance_client):
    prog = programme()
    customer = CustomerFactory(code="acme")
    response = finance_client.post(
        reverse("admin:billing_voucher_add"),
        {
            "programme": prog.pk,
            "customer": customer.pk,
            "amount": "5000.00",
            "valid_to": "",
            "reference": "CD-1",
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    voucher = Voucher.objects.get()
    assert (voucher.amount, voucher.balance, voucher.reference) == (
        Decimal("5000.00"),
        Decimal("5000.00"),
        "CD-1",
    )
    page = finance_client.get(reverse("admin:billing_voucher_change", args=[voucher.pk])).content.decode()
    assert "Issue 发放" in page and "5000.00" in page

    bad = finance_client.post(
        reverse("admin:billing_voucherprogramme_add"),
        {
            "code": "bad",
            "issuer": "x",
            "flow": "supplier_side",
            "currency": "CNY",
            "coverage_percent": "130",
            "valid_from": "2026-01-01",
            "valid_to": "2026-12-31",
            "max_contract_term_days": "366",
        },
    )
    assert bad.status_code == 200 and "coverage_percent" in bad.context["adminform"].form.errors


def test_the_redemption_report_page_and_csv(finance_client, am):
    prog = programme()
    customer = CustomerFactory(code="acme", name="成都智算有限公司")
    svc.voucher_issue(programme=prog, customer=customer, amount=Decimal("5000.00"), now=NOW)
    invoice = issued_invoice(customer, am, ServerFactory())
    listing = finance_client.get(reverse("admin:billing_voucherprogramme_changelist")).content.decode()
    assert "Redemptions 核销明细" in listing
    assert (
        invoice.customer.code
        in finance_client.get(reverse("admin:billing_voucher_changelist")).content.decode()
    )
    url = reverse("admin:billing_voucherprogramme_redemptions", args=[prog.pk])
    page = finance_client.get(url, {"period": "2026-12"}).content.decode()
    assert 'id="report-total">300.00<' in page and invoice.number in page and "成都智算有限公司" in page
    csv = finance_client.get(url, {"period": "2026-12", "format": "csv"})
    assert csv["Content-Type"].startswith("text/csv")
    text = csv.content.decode("utf-8-sig")
    assert invoice.number in text and text.strip().endswith("300.00")


def test_the_claim_pack_page_downloads_a_zip(finance_client, am):
    prog = programme("bj-2026", flow="customer_claim")
    customer = CustomerFactory()
    voucher = svc.voucher_issue(programme=prog, customer=customer, amount=Decimal("5000.00"), now=NOW)
    invoice = issued_invoice(customer, am, ServerFactory())
    payment_record(invoice=invoice, amount=invoice.total_amount, method="bank_transfer", now=NOW)
    url = reverse("admin:billing_voucher_claim_pack", args=[voucher.pk])
    assert invoice.number in finance_client.get(url).content.decode()
    response = finance_client.post(url, {"invoices": [invoice.pk]})
    assert response["Content-Type"] == "application/zip"
    assert "claim-summary.pdf" in zipfile.ZipFile(io.BytesIO(response.content)).namelist()


def _settled(am):
    provider = ProviderFactory(code="prov-a", name="Provider A")
    server = ServerFactory(site=SiteFactory(provider=provider))
    SupplyAgreement.objects.create(
        provider=provider,
        gpu_model=gpu_model("A100-SXM4-40GB"),
        resource="card",
        term="hourly",
        cost_unit_price=Decimal("6.00"),
        valid_from=datetime.date(2026, 1, 1),
    )
    issued_invoice(CustomerFactory(), am, server)
    return provider


def test_finance_builds_confirms_and_reads_margins_in_admin(finance_client, am, client, make_staff):
    _settled(am)
    response = finance_client.post(reverse("admin:billing_settlementstatement_build"), {"period": "2026-11"})
    assert response.status_code == 302
    statement = SettlementStatement.objects.get()
    page = finance_client.get(reverse("admin:billing_settlementstatement_change", args=[statement.pk]))
    assert "600.00" in page.content.decode() and "343.40" in page.content.decode()

    changelist = reverse("admin:billing_settlementstatement_changelist")
    finance_client.post(changelist, {"action": "confirm_selected", "_selected_action": [statement.pk]})
    statement.refresh_from_db()
    assert statement.status == "confirmed"

    margins = finance_client.get(
        reverse("admin:billing_settlementstatement_margins"),
        {"period_from": "2026-11", "group_by": "provider"},
    ).content.decode()
    assert '<svg id="margin-chart"' in margins and "Provider A" in margins and "343.40" in margins

    operations = make_staff(roles.OPERATIONS, username="ops1")
    client.force_login(operations)
    page = client.get(changelist)
    assert page.status_code == 200  # operations read statements; no action is theirs
    assert page.context["action_form"] is None
    assert client.get(reverse("admin:billing_settlementstatement_build")).status_code == 403


def test_a_rebuild_action_leaves_confirmed_statements(finance_client, am):
    _settled(am)
    settlement_services.settlement_build(period="2026-11", now=NOW)
    statement = SettlementStatement.objects.get()
    changelist = reverse("admin:billing_settlementstatement_changelist")
    response = finance_client.post(
        changelist, {"action": "rebuild_selected", "_selected_action": [statement.pk]}, follow=True
    )
    assert "unchanged 1" in response.content.decode()


def test_a_voucher_over_the_programmes_cap_is_refused_on_the_form_with_the_services_message(finance_client):
    prog = programme()
    svc.voucher_programme_update(programme=prog, cap_per_voucher=Decimal("1000.00"))
    customer = CustomerFactory(code="acme")

    response = finance_client.post(
        reverse("admin:billing_voucher_add"),
        {"programme": prog.pk, "customer": customer.pk, "amount": "5000.00", "valid_to": "", "reference": ""},
    )

    assert response.status_code == 200
    message = "The programme cd-2026 caps one voucher at 1,000.00."
    assert message in response.content.decode()
    assert response.context["adminform"].form.errors["amount"] == [message]
    assert Voucher.objects.count() == 0
