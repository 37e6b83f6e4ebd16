"""Finance in the admin: invoices (list, filters, actions, buttons), preview, billing runs, credit notes."""

from __future__ import annotations

import datetime
from decimal import Decimal

import pytest
import time_machine
from django.contrib.auth.models import Permission
from django.urls import reverse

from apps.accounts import roles
from apps.billing.invoicing.services.issuing import credit_note_create, invoice_issue
from apps.billing.invoicing.services.payments import payment_record
from apps.billing.models import BillingRun, CreditNote, Invoice, InvoiceLine, Payment
from apps.core.models import NumberSeries
from tests.factories.catalogue import CustomerFactory, ServerFactory
from tests.factories.contracts import server_line
from tests.factories.invoices import ISSUED_AT, SH, active, bill, metered_customer, metered_invoice, pdf_text

pytestmark = pytest.mark.django_db

CHANGELIST = "admin:billing_invoice_changelist"


@pytest.fixture(autouse=True)
def clock():
    with time_machine.travel(ISSUED_AT, tick=False):
        yield


@pytest.fixture
def am(make_staff):
    return make_staff(roles.ACCOUNT_MANAGER, username="am1")


@pytest.fixture
def finance(make_staff):
    return make_staff(roles.FINANCE)


@pytest.fixture
def finance_client(client, finance):
    client.force_login(finance)
    return client


def _monthly_customers(am, count: int, prefix: str = "c") -> None:
    for index in range(count):
        customer = CustomerFactory(code=f"{prefix}{index:02d}")
        active(customer, am, [server_line(ServerFactory(), price="30000.00", term_discount="0")])


def test_finance_has_the_billing_permissions():
    codenames = set(
        Permission.objects.filter(group__name=roles.FINANCE, content_type__app_label="billing").values_list(
            "codename", flat=True
        )
    )
    assert {
        "view_invoice",
        "change_invoice",
        "issue_invoice",
        "void_invoice",
        "record_payment",
        "view_creditnote",
        "add_creditnote",
        "view_billingrun",
        "add_billingrun",
        "view_payment",
    } <= codenames
    assert "delete_invoice" not in codenames and "add_invoice" not in codenames


def test_changelist_shows_status_overdue_totals_and_queries_do_not_grow(
    finance_client, am, django_assert_max_num_queries
):
    _monthly_customers(am, 2)
    bill()
    with django_assert_max_num_queries(14) as small:
        assert finance_client.get(reverse(CHANGELIST)).status_code == 200
    _monthly_customers(am, 18, prefix="d")
    bill()
    with django_assert_max_num_queries(len(small.captured_queries)):
        page = finance_client.get(reverse(CHANGELIST))
    assert page.status_code == 200
    html = page.content.decode()
    assert html.count("Draft 草稿") >= 20 and "30000.00" in html


def test_overdue_filter_search_and_status_badge(finance_client, am):
    late = invoice_issue(
        invoice=metered_invoice(am, code="late"),
        now=ISSUED_AT - datetime.timedelta(days=60),
        early_reason="issued before November ended, to be overdue now",
    )
    metered_invoice(am, code="fresh")
    page = finance_client.get(reverse(CHANGELIST), {"overdue": "yes"})
    assert list(page.context["cl"].result_list) == [late]
    assert "Overdue 已逾期" in page.content.decode()
    page = finance_client.get(reverse(CHANGELIST), {"overdue": "no"})
    assert [i.customer.code for i in page.context["cl"].result_list] == ["fresh"]
    page = finance_client.get(reverse(CHANGELIST), {"q": "fresh"})
    assert [i.customer.code for i in page.context["cl"].result_list] == ["fresh"]
    page = finance_client.get(reverse(CHANGELIST), {"q": late.number})
    assert list(page.context["cl"].result_list) == [late]


def test_issue_selected_in_bulk(finance_client, am):
    _monthly_customers(am, 3)
    bill()
    ids = list(Invoice.objects.values_list("pk", flat=True))
    # first a confirmation page: the count and the total, nothing issued yet
    confirm = finance_client.post(reverse(CHANGELIST), {"action": "issue_selected", "_selected_action": ids})
    html = confirm.content.decode()
    total = sum(Invoice.objects.values_list("total_amount", flat=True))
    assert "Issue <b>3</b> draft invoice(s)" in html and f"<b>{total:,.2f} CNY</b>" in html, html
    assert "early_reason" not in html  # November has ended: no reason asked
    assert set(Invoice.objects.values_list("status", flat=True)) == {"draft"}
    response = finance_client.post(
        reverse(CHANGELIST), {"action": "issue_selected", "_selected_action": ids, "apply": "1"}, follow=True
    )
    assert (
        "Issued 3 invoice(s): INV-2026-000001, INV-2026-000002, INV-2026-000003." in response.content.decode()
    )
    assert set(Invoice.objects.values_list("status", flat=True)) == {"issued"}
    # again: nothing to issue, and the page says so; no number taken
    response = finance_client.post(
        reverse(CHANGELIST), {"action": "issue_selected", "_selected_action": ids[:1]}, follow=True
    )
    assert "None of the selected invoices is a draft: nothing to issue." in response.content.decode()
    assert NumberSeries.objects.get(prefix="INV").last_value == 3


def test_actions_need_their_permissions(client, make_staff, am):
    invoice = metered_invoice(am)
    viewer = make_staff(username="viewer")
    viewer.user_permissions.add(Permission.objects.get(codename="view_invoice"))
    client.force_login(viewer)
    page = client.get(reverse(CHANGELIST))
    assert page.status_code == 200
    assert page.context["action_form"] is None  # no action this user may take
    client.post(reverse(CHANGELIST), {"action": "issue_selected", "_selected_action": [invoice.pk]})
    assert Invoice.objects.get(pk=invoice.pk).status == "draft"
    assert client.post(reverse("admin:billing_invoice_issue", args=[invoice.pk])).status_code == 403
    assert client.get(reverse("admin:billing_invoice_payment", args=[invoice.pk])).status_code == 403
    assert client.get(reverse("admin:billing_invoice_credit_note", args=[invoice.pk])).status_code == 403
    assert client.get(reverse("admin:billing_invoice_pdf", args=[invoice.pk])).status_code == 200
    client.force_login(make_staff(roles.ACCOUNT_MANAGER, username="am2"))
    assert client.get(reverse(CHANGELIST)).status_code == 403


def test_void_selected_asks_for_a_reason_on_an_intermediate_page(finance_client, am):
    invoice = invoice_issue(invoice=metered_invoice(am), now=ISSUED_AT)
    data = {"action": "void_selected", "_selected_action": [invoice.pk]}
    page = finance_client.post(reverse(CHANGELIST), data)
    assert page.status_code == 200 and "Void invoices 作废发票" in page.content.decode()
    assert Invoice.objects.get(pk=invoice.pk).status == "issued"
    page = finance_client.post(reverse(CHANGELIST), {**data, "apply": "1", "reason": ""})
    assert page.status_code == 200 and "This field is required" in page.content.decode()
    response = finance_client.post(
        reverse(CHANGELIST), {**data, "apply": "1", "reason": "wrong buyer"}, follow=True
    )
    assert "Voided 1 invoice(s)." in response.content.decode()
    invoice.refresh_from_db()
    assert (invoice.status, invoice.void_reason) == ("void", "wrong buyer")


def test_change_page_buttons_pdf_issue_payment_credit_note_void(finance_client, am):
    invoice = metered_invoice(am, name="深圳大模型有限公司")
    change = reverse("admin:billing_invoice_change", args=[invoice.pk])
    html = finance_client.get(change).content.decode()
    for name in ("pdf", "issue"):
        assert reverse(f"admin:billing_invoice_{name}", args=[invoice.pk]) in html
    assert reverse("admin:billing_invoice_payment", args=[invoice.pk]) not in html  # drafts are not paid

    pdf = finance_client.get(reverse("admin:billing_invoice_pdf", args=[invoice.pk]))
    assert pdf["Content-Type"] == "application/pdf"
    assert "草稿DRAFT" in pdf_text(pdf.content) and "深圳大模型有限公司" in pdf_text(pdf.content)

    response = finance_client.post(reverse("admin:billing_invoice_issue", args=[invoice.pk]), follow=True)
    assert "Issued INV-2026-000001." in response.content.decode()
    html = finance_client.get(change).content.decode()
    for name in ("payment", "credit_note", "void"):
        assert reverse(f"admin:billing_invoice_{name}", args=[invoice.pk]) in html

    url = reverse("admin:billing_invoice_payment", args=[invoice.pk])
    form = finance_client.get(url)
    assert form.context["form"].initial["amount"] == Decimal("245.16")
    response = finance_client.post(
        url, {"amount": "100.00", "reference": "ICBC-20261202-01", "received_on": "2026-12-01"}
    )
    assert response.status_code == 302
    payment = Payment.objects.get()
    assert (payment.method, payment.amount, payment.reference) == (
        "bank_transfer",
        Decimal("100.00"),
        "ICBC-20261202-01",
    )
    assert payment.received_at == datetime.datetime(2026, 12, 1, 12, tzinfo=SH)

    url = reverse("admin:billing_invoice_credit_note", args=[invoice.pk])
    page = finance_client.post(url, {"mode": "amount", "amount": "", "reason": "x"})
    assert "Give the amount to credit" in page.content.decode()
    page = finance_client.post(url, {"mode": "amount", "amount": "500.00", "reason": "too much"})
    assert "At most 245.16 can still be credited" in page.content.decode()
    assert finance_client.post(url, {"mode": "amount", "amount": "45.16", "reason": "SLA"}).status_code == 302
    invoice.refresh_from_db()
    assert (invoice.credited_amount, invoice.paid_amount, invoice.amount_due) == (
        Decimal("45.16"),
        Decimal("100.00"),
        Decimal("100.00"),
    )
    html = finance_client.get(change).content.decode()
    assert "CN-2026-000001" in html and "ICBC-20261202-01" in html  # both inlines

    void = reverse("admin:billing_invoice_void", args=[invoice.pk])
    page = finance_client.post(void, {"reason": "duplicate"})
    assert "credit note" in page.content.decode()  # paid and credited: refused, stays issued
    assert Invoice.objects.get(pk=invoice.pk).status == "issued"


def test_full_credit_from_the_admin(finance_client, am):
    invoice = invoice_issue(invoice=metered_invoice(am), now=ISSUED_AT)
    url = reverse("admin:billing_invoice_credit_note", args=[invoice.pk])
    assert finance_client.post(url, {"mode": "full", "amount": "", "reason": "cancelled"}).status_code == 302
    note = CreditNote.objects.get()
    assert (note.total_amount, note.reason) == (Decimal("245.16"), "cancelled")
    page = finance_client.get(reverse("admin:billing_creditnote_changelist"))
    assert page.status_code == 200 and "CN-2026-000001" in page.content.decode()
    pdf = finance_client.get(reverse("admin:billing_creditnote_pdf", args=[note.pk]))
    assert "负贰佰肆拾伍元壹角陆分" in pdf_text(pdf.content)


def test_preview_this_month_so_far_saves_nothing(finance_client, am):
    customer, _ = metered_customer(am, code="acme")
    customer_page = finance_client.get(reverse("admin:customers_customer_change", args=[customer.pk]))
    preview_url = reverse("admin:billing_invoice_preview", args=[customer.pk])
    assert preview_url in customer_page.content.decode()
    counts = (Invoice.objects.count(), InvoiceLine.objects.count(), BillingRun.objects.count())
    with time_machine.travel(datetime.datetime(2026, 11, 30, 23, 0, tzinfo=SH), tick=False):
        page = finance_client.get(preview_url)
    assert page.status_code == 200
    (preview,) = page.context["previews"]
    assert (preview.period, preview.total_amount, preview.tax_amount) == (
        "2026-11",
        Decimal("245.16"),
        Decimal("13.88"),
    )
    assert "245.16" in page.content.decode() and "Nothing is saved" in page.content.decode()
    assert (
        (Invoice.objects.count(), InvoiceLine.objects.count(), BillingRun.objects.count())
        == counts
        == (0, 0, 0)
    )
    # December has no usage yet: the card line is there with nothing to bill so far
    december = finance_client.get(preview_url)
    assert [p.total_amount for p in december.context["previews"]] in ([], [Decimal("0")])


def test_run_billing_for_a_period_from_the_admin(
    finance_client, am, django_capture_on_commit_callbacks, django_assert_max_num_queries
):
    _monthly_customers(am, 2)
    add = reverse("admin:billing_billingrun_add")
    page = finance_client.get(add)
    assert page.status_code == 200 and page.context["form"]["period"].initial == "2026-11"
    page = finance_client.post(add, {"period": "2026-13"})
    assert "period must look like YYYY-MM" in page.content.decode()
    page = finance_client.post(add, {"period": "2026-11", "customer": "nope"})
    assert "Unknown customer" in page.content.decode()
    with django_capture_on_commit_callbacks(execute=True):
        response = finance_client.post(add, {"period": "2026-11"})
    run = BillingRun.objects.get()
    assert response.status_code == 302 and response["Location"].endswith(f"/{run.pk}/change/")
    run.refresh_from_db()
    assert (run.status, run.customers_done, run.invoices_created, run.requested_by.username) == (
        "done",
        2,
        2,
        "finance",
    )
    page = finance_client.get(reverse("admin:billing_billingrun_change", args=[run.pk]))
    html = page.content.decode()
    assert '<progress value="100"' in html and 'name="_save"' not in html
    with django_assert_max_num_queries(12):
        listing = finance_client.get(reverse("admin:billing_billingrun_changelist"))
    assert "Run billing for period" in listing.content.decode() and "2/2" in listing.content.decode()


def test_run_errors_are_shown_per_customer(finance_client):
    run = BillingRun.objects.create(
        period="2026-11",
        status="done_with_errors",
        as_of=ISSUED_AT,
        errors={"acme": "ValueError: broken data"},
    )
    html = finance_client.get(reverse("admin:billing_billingrun_change", args=[run.pk])).content.decode()
    assert "<td>acme</td><td>ValueError: broken data</td>" in html


def test_payments_and_credit_notes_are_read_only(finance_client, am, django_assert_max_num_queries):
    for code in ("a", "b", "c"):
        invoice = invoice_issue(invoice=metered_invoice(am, code=code), now=ISSUED_AT)
        payment = payment_record(
            invoice=invoice, amount=Decimal("1.00"), method="bank_transfer", now=ISSUED_AT
        )
        note = credit_note_create(invoice=invoice, reason="x", amount=Decimal("1.00"), now=ISSUED_AT)
    for changelist in ("admin:billing_payment_changelist", "admin:billing_creditnote_changelist"):
        with django_assert_max_num_queries(10):
            assert finance_client.get(reverse(changelist)).status_code == 200
    assert finance_client.get(reverse("admin:billing_payment_add")).status_code == 403
    html = finance_client.get(reverse("admin:billing_payment_change", args=[payment.pk])).content.decode()
    assert 'name="amount"' not in html
    html = finance_client.get(reverse("admin:billing_creditnote_change", args=[note.pk])).content.decode()
    assert (
        'name="total_amount"' not in html and reverse("admin:billing_creditnote_pdf", args=[note.pk]) in html
    )
    assert finance_client.get(reverse("admin:billing_invoice_add")).status_code == 403
    assert finance_client.get(reverse("admin:billing_invoice_delete", args=[invoice.pk])).status_code == 403


# -- issuing early ------------------------------------------------------------------------------

BEFORE_NOVEMBER_ENDS = datetime.datetime(2026, 11, 30, 23, 0, tzinfo=SH)


def test_issuing_a_draft_before_its_period_ends_asks_for_the_reason_first(finance_client, am):
    invoice = metered_invoice(am)
    url = reverse("admin:billing_invoice_issue", args=[invoice.pk])
    with time_machine.travel(BEFORE_NOVEMBER_ENDS, tick=False):
        page = finance_client.post(url)
        assert page.status_code == 200
        html = page.content.decode()
        assert "Issue early 提前开具" in html and "Reason to issue early 提前开具原因" in html
        invoice.refresh_from_db()
        assert invoice.status == "draft"
        page = finance_client.post(url, {"early_reason": "  "})
        assert "This field is required" in page.content.decode()
        response = finance_client.post(url, {"early_reason": "customer's year-end audit"}, follow=True)
    assert "Issued INV-2026-000001." in response.content.decode()
    invoice.refresh_from_db()
    assert (invoice.status, invoice.early_issue_reason) == ("issued", "customer's year-end audit")
    change = finance_client.get(reverse("admin:billing_invoice_change", args=[invoice.pk]))
    assert "customer&#x27;s year-end audit" in change.content.decode()


def test_bulk_issue_before_the_period_ends_needs_the_reason_on_the_confirmation_page(finance_client, am):
    _monthly_customers(am, 2)
    bill()
    data = {
        "action": "issue_selected",
        "_selected_action": list(Invoice.objects.values_list("pk", flat=True)),
    }
    with time_machine.travel(BEFORE_NOVEMBER_ENDS, tick=False):
        html = finance_client.post(reverse(CHANGELIST), data).content.decode()
        assert "Period(s) 2026-11 have not ended" in html and "Issue early 提前开具 2" in html
        html = finance_client.post(reverse(CHANGELIST), {**data, "apply": "1"}).content.decode()
        assert "This field is required" in html
        assert set(Invoice.objects.values_list("status", flat=True)) == {"draft"}
        response = finance_client.post(
            reverse(CHANGELIST), {**data, "apply": "1", "early_reason": "audit"}, follow=True
        )
    assert "Issued 2 invoice(s): INV-2026-000001, INV-2026-000002." in response.content.decode()
    assert set(Invoice.objects.values_list("early_issue_reason", flat=True)) == {"audit"}


# -- what a re-run changed ----------------------------------------------------------------------


def test_a_rerun_shows_per_draft_what_changed_since_the_last_run(finance_client, am):
    from apps.metering.models import UsageRecord
    from tests.factories.usage import usage

    acme, _ = metered_customer(am, code="acme")
    metered_customer(am, code="beta")
    first = bill()
    assert first.draft_changes == {
        "acme CNY": {"before": None, "after": "245.16"},
        "beta CNY": {"before": None, "after": "245.16"},
    }
    html = finance_client.get(reverse("admin:billing_billingrun_change", args=[first.pk])).content.decode()
    assert "<td>acme CNY</td><td>—</td><td>245.16</td><td>new 新建</td>" in html

    card = UsageRecord.objects.order_by("pk").first().card  # acme's first card (acme was made first)
    late = datetime.datetime(2026, 11, 20, 8, tzinfo=SH)
    usage(card=card, start=late, end=late + datetime.timedelta(hours=4), received_at=ISSUED_AT)
    second = bill(as_of=ISSUED_AT)
    after = Invoice.objects.get(customer=acme).total_amount
    assert second.draft_changes == {"acme CNY": {"before": "245.16", "after": str(after)}}  # beta unchanged
    html = finance_client.get(reverse("admin:billing_billingrun_change", args=[second.pk])).content.decode()
    assert "Drafts changed since the last run" in html
    assert f"<td>acme CNY</td><td>245.16</td><td>{after}</td><td>+{after - Decimal('245.16')}</td>" in html
    assert "beta CNY" not in html

    third = bill(as_of=ISSUED_AT)
    html = finance_client.get(reverse("admin:billing_billingrun_change", args=[third.pk])).content.decode()
    assert third.draft_changes == {} and "none: every draft is as the last run left it" in html
