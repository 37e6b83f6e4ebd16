"""One language per API response (docs/api.md#language): ``Accept-Language`` decides when the request
has one; without it partner keys and staff read English and a customer's portal user the customer's
language. The top-level message and every field entry are in that one language, the stable ``code``
is the same in both, and ``Content-Language`` says which."""

from __future__ import annotations

import datetime
import json
import re
from decimal import Decimal

import pytest
import time_machine
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from apps.accounts import roles
from apps.accounts.models import CustomerMembership
from apps.customers.models import Language
from tests.factories.catalogue import CustomerFactory, ServerFactory
from tests.factories.invoices import ISSUED_AT, SH, metered_invoice
from tests.factories.metering import partner_key

pytestmark = pytest.mark.django_db

CJK = re.compile(r"[\u3000-\u303f\u4e00-\u9fff\uff00-\uffef]")


@pytest.fixture(autouse=True)
def clock():
    with time_machine.travel(ISSUED_AT, tick=False):
        yield


def texts(body: dict) -> list[str]:
    """The message and every field entry of an error body (a usage batch's per-record ones too)."""
    found = [body["message"]]

    def walk(value):
        if isinstance(value, dict):
            for item in value.values():
                walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)
        else:
            found.append(str(value))

    walk(body["fields"])
    for entry in body.get("errors", []):
        walk(entry["errors"])
    return found


def assert_english(response) -> dict:
    body = response.json()
    assert response["Content-Language"] == "en"
    for text in texts(body):
        assert not CJK.search(text), text
    return body


def assert_chinese(response) -> dict:
    body = response.json()
    assert response["Content-Language"] == "zh-hans"
    for text in texts(body):
        assert CJK.search(text), text
    return body


@pytest.fixture
def admin(client_as):
    return client_as(superuser=True)


BAD_CUSTOMER = {"code": "Not a slug!", "tax_id": "123", "payment_terms_days": "soon"}


def test_a_bad_request_is_all_english_or_all_chinese_as_accept_language_asks(admin):
    english = admin.post("/api/v1/customers/", BAD_CUSTOMER, format="json", HTTP_ACCEPT_LANGUAGE="en")
    chinese = admin.post(
        "/api/v1/customers/", BAD_CUSTOMER, format="json", HTTP_ACCEPT_LANGUAGE="zh-CN,zh;q=0.9"
    )

    assert english.status_code == chinese.status_code == 400
    en, zh = assert_english(english), assert_chinese(chinese)
    assert en["code"] == zh["code"] == "invalid"
    assert set(en["fields"]) == set(zh["fields"]) >= {"code", "tax_id", "payment_terms_days", "name"}
    assert en["fields"]["name"] == ["This field is required."]
    assert zh["fields"]["name"] == ["该字段是必填项。"]
    assert "Accept-Language" in english["Vary"]


def test_english_is_the_default_for_staff_and_keys_and_any_other_language(admin):
    # no header: English for staff (the settings' default language is Chinese)
    response = admin.post("/api/v1/customers/", BAD_CUSTOMER, format="json")
    assert assert_english(response)["fields"]["name"] == ["This field is required."]
    # a language the API does not speak: English
    assert_english(
        admin.post("/api/v1/customers/", BAD_CUSTOMER, format="json", HTTP_ACCEPT_LANGUAGE="fr-FR")
    )


BAD_BATCH = [
    {"event_id": "e-1", "card": "GPU-nope", "start": "yesterday", "colour": "red"},
    {
        "event_id": "e-2",
        "server": "SRV-NOT-OURS",
        "start": "2026-12-01T08:00:00",
        "end": "2026-12-01T09:00:00+08:00",
    },
    {
        "event_id": "e-3",
        "card": "GPU-x",
        "server": "SRV-x",
        "telemetry": {"utilization_percent": 140, "bad key!": 1},
    },
]


def test_a_partner_key_without_header_reads_english_and_chinese_when_asked():
    key = partner_key(ServerFactory().provider)[1]
    client = APIClient()

    def post(body, **headers):
        return client.post(
            "/api/v1/usage/",
            json.dumps(body),
            content_type="application/json",
            HTTP_AUTHORIZATION=f"Api-Key {key}",
            **headers,
        )

    english, chinese = post(BAD_BATCH), post(BAD_BATCH, HTTP_ACCEPT_LANGUAGE="zh-Hans")
    assert english.status_code == chinese.status_code == 400
    en, zh = assert_english(english), assert_chinese(chinese)
    assert en["code"] == zh["code"] == "invalid_batch"
    assert [e["code"] for e in en["errors"]] == [e["code"] for e in zh["errors"]] == ["invalid"] * 3
    assert en["message"] == "3 records of the batch are invalid or conflicting; nothing was stored."
    assert zh["message"] == "本批有 3 条记录无效或冲突；未保存任何记录。"
    assert en["errors"][0]["errors"]["colour"] == ["Unknown field."]
    assert zh["errors"][0]["errors"]["colour"] == ["未知字段。"]
    # one record: its field errors are the top-level fields, in the same language
    single = post(BAD_BATCH[1], HTTP_ACCEPT_LANGUAGE="zh")
    assert assert_chinese(single)["code"] == "invalid"
    # not JSON: the parser's own words are translated too
    broken = client.post(
        "/api/v1/usage/",
        b"{oops",
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Api-Key {key}",
        HTTP_ACCEPT_LANGUAGE="zh",
    )
    assert broken.status_code == 400 and assert_chinese(broken)["code"] == "malformed_request"
    # a refused key: the authentication message follows the same rule
    refused = client.get("/api/v1/usage/", HTTP_AUTHORIZATION="Api-Key nope.nope", HTTP_ACCEPT_LANGUAGE="zh")
    assert refused.status_code == 401
    assert assert_chinese(refused)["message"] == "API 密钥无效。"
    assert assert_english(client.get("/api/v1/usage/", HTTP_AUTHORIZATION="Api-Key nope.nope"))[
        "message"
    ] == ("Invalid API key.")


def _portal_client(customer, username: str) -> APIClient:
    from django.contrib.auth import get_user_model

    user = get_user_model().objects.create_user(username=username, password="pw-Secret-123")
    CustomerMembership.objects.create(user=user, customer=customer)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    return client


def test_a_portal_user_without_header_reads_the_customers_language():
    chinese_customer = CustomerFactory(language=Language.ZH_HANS)
    english_customer = CustomerFactory(language=Language.EN)
    zh_user = _portal_client(chinese_customer, "zh-user")
    en_user = _portal_client(english_customer, "en-user")

    zh = assert_chinese(zh_user.get("/api/v1/invoices/999999/"))
    en = assert_english(en_user.get("/api/v1/invoices/999999/"))
    assert zh["code"] == en["code"] == "not_found"
    # the header still wins over the customer's language
    assert_english(zh_user.get("/api/v1/invoices/999999/", HTTP_ACCEPT_LANGUAGE="en-US"))
    assert_chinese(en_user.get("/api/v1/invoices/999999/", HTTP_ACCEPT_LANGUAGE="zh-CN"))


def test_a_refused_invoice_issue_in_both_languages(make_staff):
    invoice = metered_invoice(make_staff(roles.ACCOUNT_MANAGER, username="am1"))
    finance = APIClient()
    finance.force_authenticate(make_staff(roles.FINANCE))
    url = f"/api/v1/invoices/{invoice.pk}/issue/"
    with time_machine.travel(datetime.datetime(2026, 11, 30, 23, 0, tzinfo=SH), tick=False):
        english = finance.post(url, {}, format="json")
        chinese = finance.post(url, {}, format="json", HTTP_ACCEPT_LANGUAGE="zh-CN")

    assert english.status_code == chinese.status_code == 409
    en, zh = assert_english(english), assert_chinese(chinese)
    assert en["code"] == zh["code"] == "period_not_ended"
    assert en["message"] == "The period 2026-11 has not ended: issuing early needs a reason."
    assert zh["message"] == "账期 2026-11 尚未结束：提前开具须填写原因。"
    assert zh["fields"] == {"early_reason": [zh["message"]]}


def test_a_domain_error_of_a_state_change_in_both_languages(make_staff):
    invoice = metered_invoice(make_staff(roles.ACCOUNT_MANAGER, username="am1"))
    finance = APIClient()
    finance.force_authenticate(make_staff(roles.FINANCE))
    url = f"/api/v1/invoices/{invoice.pk}/void/"

    english = finance.post(url, {"reason": "wrong buyer"}, format="json")
    chinese = finance.post(url, {"reason": "wrong buyer"}, format="json", HTTP_ACCEPT_LANGUAGE="zh")

    assert english.status_code == chinese.status_code == 409
    en, zh = assert_english(english), assert_chinese(chinese)
    assert en["code"] == zh["code"] == "invalid_state"
    assert en["message"] == f"Invoice {invoice} is draft; only issued invoices can be voided."
    assert zh["message"] == f"发票 {invoice} 的状态为 draft；只有已开具的发票可以作废。"


def test_the_language_does_not_leak_into_the_next_request(admin):
    assert_chinese(admin.post("/api/v1/customers/", BAD_CUSTOMER, format="json", HTTP_ACCEPT_LANGUAGE="zh"))
    assert_english(admin.post("/api/v1/customers/", BAD_CUSTOMER, format="json"))


def test_a_contract_refusal_in_both_languages(make_staff):
    from tests.factories.contracts import NOW, draft, server_line

    am = make_staff(roles.ACCOUNT_MANAGER, username="am1")
    with time_machine.travel(NOW, tick=False):
        contract = draft(
            CustomerFactory(), am, [server_line(ServerFactory(), discount_percent=Decimal("30"))]
        )
        client = APIClient()
        client.force_authenticate(am)
        url = f"/api/v1/contracts/{contract.pk}/activate/"
        english = client.post(url, {}, format="json")
        chinese = client.post(url, {}, format="json", HTTP_ACCEPT_LANGUAGE="zh-CN")

    assert english.status_code == chinese.status_code == 409
    en, zh = assert_english(english), assert_chinese(chinese)
    assert en["code"] == zh["code"] == "approval_required"
    assert en["message"] == "Discounts above 20% need a sales manager's approval before activation."
    assert zh["message"] == "折扣超过 20% 的合同须经销售经理审批后才能生效。"
