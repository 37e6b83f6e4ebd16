"""``/api/v1/customers/``: account managers register customers; portal users see only their own."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from apps.accounts import roles
from apps.accounts.models import CustomerMembership
from apps.core.validators import uscc_check_character
from apps.customers.models import Customer
from tests.api.helpers import assert_error
from tests.factories.catalogue import CustomerFactory, ServerFactory, valid_uscc

pytestmark = pytest.mark.django_db

URL = "/api/v1/customers/"
TAX_ID = valid_uscc(424242)


def payload(**overrides) -> dict:
    body = {
        "code": "acme",
        "name": "Acme AI 有限公司",
        "tax_id": TAX_ID,
        "invoice_type": "vat_special",
        "currency": "CNY",
        "payment_terms_days": 30,
        "auto_issue": False,
        "billing_address": "北京市海淀区 1 号 010-12345678",
        "bank_name": "中国银行北京分行",
        "bank_account": "1234 5678 9012",
        "billing_email": "ap@acme.example",
    }
    body.update(overrides)
    return body


@pytest.fixture
def manager_client(client_as) -> APIClient:
    return client_as(roles.ACCOUNT_MANAGER)


def test_an_account_manager_registers_a_customer(manager_client):
    response = manager_client.post(URL, payload(), format="json")

    assert response.status_code == 201, response.content
    body = response.json()
    assert body["code"] == "acme"
    assert body["tax_id"] == TAX_ID
    assert body["invoice_type"] == "vat_special"
    assert body["payment_terms_days"] == 30
    assert body["account_manager"] == "account_manager"  # the creating account manager by default
    customer = Customer.objects.get(code="acme")
    assert customer.bank_account == "1234 5678 9012"
    assert customer.history.get().history_user.username == "account_manager"


def test_defaults_apply_when_left_out(manager_client):
    body = payload()
    for field in ("invoice_type", "currency", "payment_terms_days", "auto_issue"):
        del body[field]
    response = manager_client.post(URL, body, format="json")

    assert response.status_code == 201, response.content
    data = response.json()
    assert (data["invoice_type"], data["currency"], data["payment_terms_days"], data["auto_issue"]) == (
        "vat_special",
        "CNY",
        30,
        False,
    )


def test_a_tax_id_is_normalised_before_it_is_checked(manager_client):
    lower = TAX_ID.lower()[:9] + " " + TAX_ID.lower()[9:]
    response = manager_client.post(URL, payload(tax_id=lower), format="json")

    assert response.status_code == 201, response.content
    assert Customer.objects.get().tax_id == TAX_ID


def test_a_wrong_check_character_names_the_expected_one(manager_client):
    expected = uscc_check_character(TAX_ID[:17])
    wrong = "0" if expected != "0" else "1"
    response = manager_client.post(URL, payload(tax_id=TAX_ID[:17] + wrong), format="json")

    body = assert_error(response, 400, "invalid", "tax_id")
    assert body["fields"]["tax_id"] == [
        f"Invalid unified social credit code: check character is wrong: expected {expected}, got {wrong}."
    ]
    assert Customer.objects.count() == 0


@pytest.mark.parametrize(
    ("tax_id", "problem"),
    [("91110108", "must be 18 characters, got 8"), ("91110108MA01XXXXXI", "may contain only")],
)
def test_a_malformed_tax_id_says_what_is_wrong(manager_client, tax_id, problem):
    body = assert_error(
        manager_client.post(URL, payload(tax_id=tax_id), format="json"), 400, "invalid", "tax_id"
    )
    assert problem in body["fields"]["tax_id"][0]


@pytest.mark.parametrize(
    ("override", "field"),
    [
        ({"code": "taken"}, "code"),
        ({"tax_id": valid_uscc(1)}, "tax_id"),
    ],
)
def test_taken_code_or_tax_id_is_refused_naming_the_field(manager_client, override, field):
    CustomerFactory(code="taken", tax_id=valid_uscc(1))
    response = manager_client.post(URL, payload(**override), format="json")

    assert_error(response, 400, "invalid", field)
    assert Customer.objects.count() == 1


@pytest.mark.parametrize(
    ("override", "field"),
    [
        ({"payment_terms_days": 366}, "payment_terms_days"),
        ({"payment_terms_days": -1}, "payment_terms_days"),
        ({"invoice_type": "receipt"}, "invoice_type"),
        ({"currency": "EUR"}, "currency"),
        ({"code": "has spaces"}, "code"),
        ({"billing_email": "not-an-email"}, "billing_email"),
        ({"account_manager": "nobody"}, "account_manager"),
    ],
)
def test_bad_values_name_the_field(manager_client, override, field):
    assert_error(manager_client.post(URL, payload(**override), format="json"), 400, "invalid", field)
    assert Customer.objects.count() == 0


def test_a_lost_race_on_the_tax_id_answers_409_naming_it(manager_client, monkeypatch):
    """Both checks passed, then another request took the tax id: the unique constraint decides."""
    CustomerFactory(tax_id=TAX_ID)
    monkeypatch.setattr("rest_framework.validators.qs_exists", lambda queryset: False)
    monkeypatch.setattr(Customer, "validate_unique", lambda self, exclude=None: None)

    response = manager_client.post(URL, payload(), format="json")

    assert_error(response, 409, "conflict", "tax_id")
    assert Customer.objects.count() == 1


def test_finance_corrects_fapiao_details_but_not_the_code(client_as):
    customer = CustomerFactory(code="acme")
    client = client_as(roles.FINANCE)

    response = client.patch(f"{URL}{customer.pk}/", {"bank_account": "6222 0000"}, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["bank_account"] == "6222 0000"

    assert_error(
        client.patch(f"{URL}{customer.pk}/", {"code": "other"}, format="json"), 400, "invalid", "code"
    )
    assert client.patch(f"{URL}{customer.pk}/", {"code": "acme"}, format="json").status_code == 200
    customer.refresh_from_db()
    assert customer.code == "acme" and customer.bank_account == "6222 0000"


@pytest.mark.parametrize("role", [roles.OPERATIONS, roles.SALES_MANAGER, roles.FINANCE])
def test_roles_without_add_customer_cannot_register(client_as, role):
    assert_error(client_as(role).post(URL, payload(), format="json"), 403, "permission_denied")
    assert Customer.objects.count() == 0


def test_customers_are_not_deleted_through_the_api(client_as):
    customer = CustomerFactory()
    response = client_as(superuser=True).delete(f"{URL}{customer.pk}/")
    assert_error(response, 405, "method_not_allowed")
    assert Customer.objects.count() == 1


# Customer portal users


def test_a_portal_user_sees_only_their_own_customer(portal_client):
    own, foreign = CustomerFactory(code="own"), CustomerFactory(code="foreign")
    client = portal_client(own)

    listed = client.get(URL)
    assert listed.status_code == 200
    assert [c["code"] for c in listed.json()["results"]] == ["own"]
    assert client.get(f"{URL}{own.pk}/").json()["code"] == "own"
    assert_error(client.get(f"{URL}{foreign.pk}/"), 404, "not_found")
    assert client.get(URL + "?code=foreign").json()["count"] == 0


def test_a_portal_user_writes_nothing_and_sees_no_hardware(portal_client):
    own = CustomerFactory()
    server = ServerFactory()
    client = portal_client(own)

    assert_error(
        client.patch(f"{URL}{own.pk}/", {"name": "Renamed"}, format="json"), 403, "permission_denied"
    )
    assert_error(client.post(URL, payload(), format="json"), 403, "permission_denied")
    for url in (
        "/api/v1/servers/",
        f"/api/v1/servers/{server.pk}/",
        "/api/v1/providers/",
        "/api/v1/sites/",
        "/api/v1/gpu-models/",
        "/api/v1/price-lists/",
    ):
        assert_error(client.get(url), 403, "permission_denied")
    own.refresh_from_db()
    assert own.name != "Renamed"


def test_a_user_of_no_customer_is_refused(portal_client):
    CustomerFactory()
    assert_error(portal_client(None).get(URL), 403, "permission_denied")


def test_anonymous_callers_are_asked_to_authenticate(api_client):
    assert_error(api_client.get(URL), 401, "not_authenticated")


# Lists


def test_list_filters(client_as):
    CustomerFactory(code="a", invoice_type="vat_special", currency="CNY")
    CustomerFactory(code="b", invoice_type="vat_general", currency="USD", name="Bravo Robotics")
    client = client_as(roles.FINANCE)

    def codes(query: str) -> list[str]:
        response = client.get(URL + query)
        assert response.status_code == 200, response.content
        return [c["code"] for c in response.json()["results"]]

    assert codes("") == ["a", "b"]
    assert codes("?code=b") == ["b"]
    assert codes("?invoice_type=vat_general") == ["b"]
    assert codes("?currency=CNY") == ["a"]
    assert codes("?search=bravo") == ["b"]
    assert_error(client.get(URL + "?currency=XYZ"), 400, "invalid", "currency")


@pytest.mark.parametrize("staff", [True, False])
def test_list_has_no_n_plus_one(client_as, portal_client, make_staff, django_assert_max_num_queries, staff):
    manager = make_staff(roles.ACCOUNT_MANAGER, username="am")
    first = CustomerFactory(account_manager=manager)
    client = client_as(roles.FINANCE) if staff else portal_client(first)
    with django_assert_max_num_queries(5):
        small = client.get(URL)
    portal_user = first.memberships.get().user if not staff else None
    for _ in range(20):
        customer = CustomerFactory(account_manager=manager)
        if portal_user is not None:
            CustomerMembership.objects.create(user=portal_user, customer=customer)
    with django_assert_max_num_queries(5):
        large = client.get(URL)

    assert small.json()["count"] == 1
    assert large.json()["count"] == 21
    assert large.json()["results"][0]["account_manager"] == "am"
