"""The contract quote over the whole term (docs/quotes.md): values by month and contract year,
saved versions with their terms, sent and accepted, recorded in the contract's history, and the
printed quote."""

from __future__ import annotations

import datetime
import io
import time
from decimal import Decimal

import pytest
import time_machine
from django.db import IntegrityError, transaction
from django.urls import reverse
from pypdf import PdfReader

from apps.accounts import roles
from apps.contracts import quote_services, services
from apps.contracts.models import ContractLine, ContractQuote, QuoteStatus
from apps.contracts.quotes import contract_quote
from apps.core.errors import DomainError
from apps.providers.models import SupplyAgreement
from tests.factories.catalogue import CustomerFactory, ServerFactory, gpu_model
from tests.factories.contracts import SHANGHAI, card_line, draft, p_line, server_line

pytestmark = pytest.mark.django_db

NOW = datetime.datetime(2026, 12, 10, 10, 0, tzinfo=SHANGHAI)
JAN_2027 = datetime.datetime(2027, 1, 1, tzinfo=SHANGHAI)
JAN_16 = datetime.datetime(2027, 1, 16, tzinfo=SHANGHAI)
JAN_2028 = datetime.datetime(2028, 1, 1, tzinfo=SHANGHAI)
JAN_2029 = datetime.datetime(2029, 1, 1, tzinfo=SHANGHAI)


@pytest.fixture(autouse=True)
def frozen():
    with time_machine.travel(NOW, tick=False):
        yield


@pytest.fixture
def customer():
    return CustomerFactory(code="acme", name="Acme 算力有限公司")


def quote_url(contract):
    return reverse("admin:contracts_contract_quote", args=[contract.pk])


def pdf_text(content: bytes) -> str:
    return "".join(page.extract_text() for page in PdfReader(io.BytesIO(content)).pages)


def year_contract(am, customer, *, with_cost=False):
    """12 months of 2027: 2 A100-40G cards by the hour (list 22.70, negotiated 10 %) and an
    A100-80G server by the month (list 144,000, yearly term discount 15 %) from 16 January."""
    card_server = ServerFactory()
    big = ServerFactory(gpu_model=gpu_model("A100-SXM4-80GB"))
    if with_cost:
        SupplyAgreement.objects.create(
            provider=big.provider,
            gpu_model=big.gpu_model,
            resource="server",
            term="monthly",
            cost_unit_price=Decimal("90000.00"),
            valid_from=datetime.date(2026, 1, 1),
        )
    return draft(
        customer,
        am,
        [card_line(card_server), server_line(big, term_discount="15", start_at=JAN_16)],
        start=JAN_2027,
        end_at=JAN_2028,
    )


# -- the value over the term -------------------------------------------------------------------


def test_twelve_month_contract_hourly_cards_and_a_server_from_mid_january(am, customer):
    contract = year_contract(am, customer, with_cost=True)
    quote = contract_quote(contract=contract, utilisation_percent=Decimal(100), over_term=True)
    term = quote.term
    assert not term.open_ended and term.label == "whole term 合同全期"
    assert [str(p) for p, _ in term.months] == [f"2027-{m:02d}" for m in range(1, 13)]
    cards, server = term.lines

    # cards: 8,760 h × 2 cards × 22.70 × 0.9 = 17,520 card-hours × 20.43
    assert cards.figures.amount == Decimal("357933.60")
    # VAT 6 % included, per month: 7 × 1,720.75 (744 h) + 4 × 1,665.24 (720 h) + 1,554.22 (February)
    assert cards.figures.tax_amount == Decimal("20260.43")
    assert cards.figures.cost_amount is None  # no supply price for cards

    # server: 122,400 a month; January 16–31 is 16 of 31 days = 63,174.19; then 11 whole months
    assert server.figures.amount == Decimal("63174.19") + 11 * Decimal("122400.00") == Decimal("1409574.19")
    assert server.figures.list_amount == Decimal("74322.58") + 11 * Decimal("144000.00")
    # VAT 13 % included: 7,267.83 + 11 × 14,081.42
    assert server.figures.tax_amount == Decimal("162163.45")
    assert server.figures.net_amount == Decimal("1247410.74")
    # cost 90,000 a month at the provider's price: 46,451.61 + 11 × 90,000
    assert server.figures.cost_amount == Decimal("1036451.61")
    assert server.figures.margin_amount == Decimal("210959.13")

    january = dict(term.months)[quote.period]
    assert january.amount == Decimal("30399.84") + Decimal("63174.19")
    assert len(term.years) == 1 and term.years[0].figures.amount == Decimal("1767507.79")
    assert term.total.amount == Decimal("1767507.79")
    assert term.total.gross_amount == Decimal("1767507.79")  # prices include VAT
    assert term.total.tax_amount == Decimal("182423.88")
    assert term.total.cost_amount is None and term.total.margin_amount is None

    # the monthly value stays one full month, the server as if active all January
    assert quote.amount == Decimal("30399.84") + Decimal("122400.00")


def test_the_quote_page_shows_month_term_and_year_tables(am, am_client, customer):
    contract = year_contract(am, customer)
    page = am_client.get(quote_url(contract))
    assert page.status_code == 200
    html = page.content.decode()
    assert "Total contract value over the term 合同期总价" in html
    assert 'id="quote-term-amount">1,767,507.79<' in html
    assert 'id="quote-amount">152,799.84<' in html
    assert "Year 1 第1年" in html and "Year 2" not in html
    assert 'id="quote-save"' in html and "Save as version 1 保存为第1版" in html
    assert 'id="quote-mark-sent"' not in html  # nothing saved yet


@pytest.mark.parametrize(
    ("billing", "year_1", "year_2", "months_billed"),
    [
        # 2.5 P × 200,000 × 0.85 / 12 = 35,416.67 a month, rounded each month
        ("monthly_instalments", Decimal("425000.04"), Decimal("425000.04"), 24),
        # the whole year, 425,000.00, in the month each contract year starts
        ("upfront", Decimal("425000.00"), Decimal("425000.00"), 2),
    ],
)
def test_two_year_p_unit_line_by_contract_year(am, customer, billing, year_1, year_2, months_billed):
    server = ServerFactory(gpu_model=gpu_model("A100-SXM4-80GB"))
    contract = draft(
        customer, am, [p_line(server, "2.5", yearly_billing=billing)], start=JAN_2027, end_at=JAN_2029
    )
    term = contract_quote(contract=contract, over_term=True).term
    assert [y.number for y in term.years] == [1, 2]
    assert [y.figures.amount for y in term.years] == [year_1, year_2]
    assert term.lines[0].years[0].amount == year_1
    assert term.total.amount == year_1 + year_2
    billed = [str(p) for p, f in term.months if f.amount]
    assert len(billed) == months_billed
    if billing == "upfront":
        assert billed == ["2027-01", "2028-01"]


def test_graduated_tiers_of_an_hourly_line_apply_to_each_month(am, customer):
    tiers = [(Decimal(100), Decimal("20.00")), (Decimal(200), Decimal("15.00")), (None, Decimal("10.00"))]
    line = card_line(ServerFactory(), 2, tiers=tiers)  # negotiated 10 %
    contract = draft(customer, am, [line], start=JAN_2027, end_at=JAN_2028)
    quote = contract_quote(contract=contract, over_term=True)
    # January: 1,488 card-hours = 100 × 20 + 100 × 15 + 1,288 × 10 = 16,380.00 list, × 0.9
    assert quote.lines[0].amount == Decimal("14742.00")
    months = dict(quote.term.months)
    assert months[quote.period].amount == Decimal("14742.00")
    # 7 months of 744 h, 4 of 720 h (1,440 card-hours: 14,310.00), February 672 h (13,446.00)
    assert quote.term.total.amount == 7 * Decimal("14742.00") + 4 * Decimal("14310.00") + Decimal("13446.00")


def test_open_ended_contract_prices_its_first_twelve_months_with_that_label(am, am_client, customer):
    big = ServerFactory(gpu_model=gpu_model("A100-SXM4-80GB"))
    contract = draft(customer, am, [server_line(big, term_discount="15")], start=JAN_2027)
    term = contract_quote(contract=contract, over_term=True).term
    assert term.open_ended and term.label == "first 12 months 前12个月"
    assert term.end == JAN_2028
    assert term.total.amount == 12 * Decimal("122400.00") == Decimal("1468800.00")
    html = am_client.get(quote_url(contract)).content.decode()
    assert "Value of the first 12 months 前12个月报价" in html
    assert "Total contract value over the term" not in html
    pdf = pdf_text(am_client.get(reverse("admin:contracts_contract_quote_pdf", args=[contract.pk])).content)
    assert "前12个月合计 First 12 months total" in pdf and "1,468,800.00" in pdf
    assert "合同期总价" not in pdf


def test_an_anniversary_inside_a_month_splits_it_between_the_contract_years(am, customer):
    big = ServerFactory(gpu_model=gpu_model("A100-SXM4-80GB"))
    end = datetime.datetime(2029, 1, 16, tzinfo=SHANGHAI)
    contract = draft(customer, am, [server_line(big, term_discount="15")], start=JAN_16, end_at=end)
    term = contract_quote(contract=contract, over_term=True).term
    # year 1: 16 of 31 days of January 2027, 11 months, 15 of 31 days of January 2028
    first, second = term.years
    assert first.figures.amount == Decimal("63174.19") + 11 * Decimal("122400.00") + Decimal("59225.81")
    assert second.figures.amount == first.figures.amount
    assert len(term.months) == 25


# -- versions, marks and the history ---------------------------------------------------------


def post(client, contract, op, **data):
    return client.post(quote_url(contract), {"op": op, **data})


def test_save_send_supersede_and_accept_through_the_page_recorded_in_history(am, am_client, customer):
    contract = year_contract(am, customer)
    response = post(am_client, contract, "save")
    assert response.status_code == 302
    v1 = ContractQuote.objects.get(contract=contract)
    assert (v1.version, v1.status, v1.created_by) == (1, QuoteStatus.DRAFT, am)
    assert v1.term_gross_amount == Decimal("1767507.79") and v1.monthly_gross_amount == Decimal("152799.84")
    assert "Payment terms: 30 days" in v1.terms and "Validity: 30 days" in v1.terms

    page = am_client.get(quote_url(contract)).content.decode()
    assert "Save as version 2 保存为第2版" in page and 'id="quote-mark-sent"' in page
    assert 'id="quote-mark-accepted"' not in page

    # accepting before sending is refused, with the reason on the page
    refused = am_client.post(quote_url(contract), {"op": "accepted", "version": "1"}, follow=True)
    assert "mark it sent before accepted" in refused.content.decode()
    post(am_client, contract, "sent", version="1")
    v1.refresh_from_db()
    assert (v1.status, v1.sent_by, v1.sent_at) == (QuoteStatus.SENT, am, NOW)

    post(am_client, contract, "save", utilisation="50")
    v1.refresh_from_db()
    v2 = ContractQuote.objects.get(contract=contract, version=2)
    assert v1.status == QuoteStatus.SUPERSEDED and v2.status == QuoteStatus.DRAFT
    assert v2.utilisation_percent == Decimal("50")
    # v1 can no longer be marked: only the latest version
    stale = am_client.post(quote_url(contract), {"op": "sent", "version": "1"}, follow=True)
    assert "Quote v1 is not the latest version (v2)" in stale.content.decode()

    post(am_client, contract, "sent", version="2")
    page = am_client.get(quote_url(contract)).content.decode()
    assert 'id="quote-mark-accepted"' in page and "Mark accepted 标记已接受" in page
    post(am_client, contract, "accepted", version="2")
    v2.refresh_from_db()
    assert (v2.status, v2.accepted_by, v2.accepted_at) == (QuoteStatus.ACCEPTED, am, NOW)

    reasons = list(
        contract.history.order_by("history_id").values_list("history_change_reason", "history_user")
    )
    assert reasons[-5:] == [
        ("Quote v1 saved 报价已保存 (1767507.79 CNY)", am.pk),
        ("Quote v1 sent 报价已发送", am.pk),
        ("Quote v2 saved 报价已保存 (1588540.99 CNY)", am.pk),  # cards at 50 %: 178,966.80
        ("Quote v2 sent 报价已发送", am.pk),
        ("Quote v2 accepted 报价已接受", am.pk),
    ]
    history = am_client.get(reverse("admin:contracts_contract_history", args=[contract.pk])).content.decode()
    assert "Quote v2 sent 报价已发送" in history and "Quote v2 accepted 报价已接受" in history

    # with an accepted quote, no new version and no second acceptance
    with pytest.raises(DomainError) as refused_save:
        quote_services.quote_save(contract=contract, actor=am, now=NOW)
    assert refused_save.value.code == "quote_already_accepted"
    page = am_client.get(quote_url(contract)).content.decode()
    assert "v2.pdf" in page and "v1.pdf" in page
    assert 'id="quote-save"' not in page and "Quote v2 was accepted: no further versions" in page


def test_refusals_have_stable_codes(am, customer):
    contract = year_contract(am, customer)
    with pytest.raises(DomainError) as nothing_saved:
        quote_services.quote_mark_sent(contract=contract, actor=am, now=NOW)
    assert nothing_saved.value.code == "quote_not_saved"
    quote_services.quote_save(contract=contract, actor=am, now=NOW)
    with pytest.raises(DomainError) as not_sent:
        quote_services.quote_mark_accepted(contract=contract, actor=am, now=NOW)
    assert not_sent.value.code == "quote_not_sent"
    assert ContractQuote.objects.get().status == QuoteStatus.DRAFT

    services.contract_activate(contract=contract, actor=am, now=NOW)
    for mark in (quote_services.quote_mark_sent, quote_services.quote_save):
        with pytest.raises(DomainError) as active:
            mark(contract=contract, actor=am, now=NOW)
        assert active.value.code == "contract_not_draft" and active.value.http_status == 409
    assert ContractQuote.objects.get().status == QuoteStatus.DRAFT


def test_the_database_refuses_a_version_twice_accepted_unsent_and_two_accepted(am, customer):
    contract = year_contract(am, customer)
    v1 = quote_services.quote_save(contract=contract, actor=am, now=NOW)
    fields = {
        f.attname: getattr(v1, f.attname) for f in ContractQuote._meta.concrete_fields if f.name != "id"
    }

    def attempt(query):
        with pytest.raises(IntegrityError), transaction.atomic():
            query()

    attempt(lambda: ContractQuote.objects.create(**fields))  # version 1 again
    accepted = {"status": QuoteStatus.ACCEPTED, "accepted_at": NOW, "accepted_by": am}
    attempt(lambda: ContractQuote.objects.filter(pk=v1.pk).update(**accepted))  # never sent
    sent = {"sent_at": NOW, "sent_by_id": am.pk}
    ContractQuote.objects.filter(pk=v1.pk).update(**accepted, **sent)
    second = {**fields, **sent, "version": 2, "status": QuoteStatus.ACCEPTED, "accepted_at": NOW}
    attempt(lambda: ContractQuote.objects.create(**{**second, "accepted_by_id": am.pk}))


def test_an_active_contract_shows_read_only_and_refuses_marks_in_the_admin(am, am_client, customer):
    contract = year_contract(am, customer)
    quote_services.quote_save(contract=contract, actor=am, now=NOW)
    services.contract_activate(contract=contract, actor=am, now=NOW)
    page = am_client.get(quote_url(contract)).content.decode()
    assert 'id="quote-save"' not in page and 'id="quote-mark-sent"' not in page
    assert "quotes are for drafts" in page
    refused = am_client.post(quote_url(contract), {"op": "sent", "version": "1"}, follow=True)
    assert "quotes are for draft or pending-approval contracts only" in refused.content.decode()
    assert ContractQuote.objects.get().status == QuoteStatus.DRAFT


def test_someone_elses_contract_answers_404_or_403_and_writes_nothing(am, customer, client, make_staff):
    contract = year_contract(am, customer)
    other_am = make_staff(roles.ACCOUNT_MANAGER, username="am2")
    sales = make_staff(roles.SALES_MANAGER, username="sales1")
    client.force_login(other_am)
    assert client.get(quote_url(contract)).status_code == 404
    assert post(client, contract, "save").status_code == 404
    client.force_login(sales)
    page = client.get(quote_url(contract))
    assert page.status_code == 200 and 'id="quote-save"' not in page.content.decode()
    assert "only the contract's account manager saves and marks quotes" in page.content.decode()
    assert post(client, contract, "save").status_code == 403
    with pytest.raises(DomainError) as refused:
        quote_services.quote_save(contract=contract, actor=sales, now=NOW)
    assert refused.value.code == "permission_denied"
    assert not ContractQuote.objects.exists()


def test_a_saved_version_never_changes_when_the_draft_does(am, am_client, customer):
    contract = year_contract(am, customer)
    v1 = quote_services.quote_save(contract=contract, actor=am, now=NOW)
    frozen = dict(v1.snapshot)
    ContractLine.objects.filter(contract=contract, resource="server").update(
        list_unit_price=Decimal("100000")
    )
    contract.lines.filter(resource="card").delete()

    live = contract_quote(contract=contract, over_term=True)
    assert live.term.total.amount != Decimal("1767507.79")
    v1.refresh_from_db()
    assert v1.snapshot == frozen
    assert v1.snapshot["term"]["total"]["amount"] == "1767507.79"
    assert len(v1.snapshot["lines"]) == 2
    pdf = am_client.get(reverse("admin:contracts_contract_quote_version_pdf", args=[contract.pk, 1]))
    assert pdf.status_code == 200 and pdf["Content-Type"] == "application/pdf"
    assert "1,767,507.79" in pdf_text(pdf.content)
    missing = am_client.get(reverse("admin:contracts_contract_quote_version_pdf", args=[contract.pk, 9]))
    assert missing.status_code == 404


def test_version_pdf_prints_version_date_utilisation_total_and_terms(am, am_client, customer):
    contract = year_contract(am, customer)
    quote_services.quote_save(contract=contract, actor=am, now=NOW)
    content = am_client.get(
        reverse("admin:contracts_contract_quote_version_pdf", args=[contract.pk, 1])
    ).content
    text = pdf_text(content)
    assert f"报价单 Quotation · {contract.number} · 第1版 Version 1" in text
    assert "2026-12-10 10:00 CST (UTC+08:00)" in text
    assert "Expected utilisation: 100%" in text and "1E+2" not in text
    assert "合同期总价 Total over the term (incl. VAT 含税): 1,767,507.79 CNY" in text
    assert "壹佰柒拾陆万柒仟伍佰零柒元柒角玖分" in text
    assert "Payment terms: 30 days from the invoice date" in text
    assert "the signed contract governs" in text
    assert "第1年 Year 1" in text


# -- speed --------------------------------------------------------------------------------------


def test_a_three_year_twenty_line_contract_renders_fast_with_bounded_queries(
    am, am_client, customer, django_assert_max_num_queries
):
    lines = []
    for index in range(20):
        kind = index % 4
        server = ServerFactory()
        big = ServerFactory(gpu_model=gpu_model("A100-SXM4-80GB"))
        if kind == 0:
            lines.append(card_line(server, 8))
        elif kind == 1:
            lines.append(server_line(big, term_discount="15"))
        elif kind == 2:
            lines.append(p_line(big, yearly_billing="upfront"))
        else:
            lines.append(card_line(server, 4, term="monthly", price="9000"))
    end = datetime.datetime(2030, 1, 1, tzinfo=SHANGHAI)
    contract = draft(customer, am, lines, start=JAN_2027, end_at=end)

    started = time.perf_counter()
    quote = contract_quote(contract=contract, over_term=True)
    elapsed = time.perf_counter() - started
    assert len(quote.term.months) == 36 and len(quote.term.lines) == 20
    assert elapsed < 1.0, f"3-year, 20-line quote took {elapsed:.3f} s"

    with django_assert_max_num_queries(15):
        page = am_client.get(quote_url(contract))
    assert page.status_code == 200
    assert page.content.decode().count("Year 3 第3年") == 2
