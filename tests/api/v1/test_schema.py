"""The OpenAPI document says what the API does (docs/api.md#schema-testing): the usage body with an
example, nullable fields, list answers, error statuses; junk filter values and too-old usage refused."""

from __future__ import annotations

import datetime

import orjson
import pytest
import time_machine
from django.test import Client
from drf_spectacular.generators import SchemaGenerator
from rest_framework.test import APIClient

from apps.metering.models import UsageRecord
from tests.api.helpers import assert_error
from tests.factories.catalogue import ServerFactory, valid_uscc
from tests.factories.metering import MINUTE, NOW, SHANGHAI, card_record, partner_key

ERROR_REF = "#/components/schemas/Error"


@pytest.fixture(scope="module")
def document():
    return SchemaGenerator().get_schema(request=None, public=True)


def _component(document, name):
    return document["components"]["schemas"][name]


def test_the_usage_post_documents_its_body_with_an_example(document):
    body = document["paths"]["/api/v1/usage/"]["post"]["requestBody"]["content"]["application/json"]

    assert body["schema"] == {"type": "array", "items": {"$ref": "#/components/schemas/UsageRecordIn"}}
    (example,) = body["examples"].values()
    assert example["value"][0]["card"].startswith("GPU-")
    record = _component(document, "UsageRecordIn")
    assert set(record["required"]) == {"event_id", "start", "end"}
    assert "utilization_percent" in _component(document, "UsageTelemetry")["properties"]


def test_the_usage_list_is_documented_with_its_filters_and_cursor(document):
    get = document["paths"]["/api/v1/usage/"]["get"]

    names = {p["name"] for p in get["parameters"]}
    assert {"period", "provider", "card", "server", "contract", "rated", "voided", "cursor"} <= names
    page = get["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
    assert page == "#/components/schemas/PaginatedUsageRecordList"


@pytest.mark.parametrize(
    "component, field",
    [
        ("BillingRun", "customer"),
        ("BillingRun", "requested_by"),
        ("Settlement", "confirmed_by"),
        ("Settlement", "paid_by"),
        ("BankTransfer", "recorded_by"),
        ("CreditEntry", "created_by"),
        ("UsageRecord", "provider"),
        ("UsageRecord", "card"),
    ],
)
def test_fields_that_can_be_null_are_nullable(document, component, field):
    assert _component(document, component)["properties"][field].get("nullable") is True


def test_strings_that_refuse_an_empty_value_say_so(document):
    customer = _component(document, "Customer")["properties"]
    assert customer["name"]["minLength"] == 1
    assert customer["billing_address"].get("minLength") is None  # may be left empty
    line = _component(document, "LineInput")["properties"]
    assert line["gpu_model"]["minLength"] == 1
    assert _component(document, "AllocationInput")["properties"]["card"]["minLength"] == 1


@pytest.mark.django_db
def test_an_empty_string_is_refused_only_where_the_schema_says_min_length_1(make_staff):
    client = APIClient()
    client.force_authenticate(make_staff(superuser=True))
    body = {
        "code": "blank-test",
        "name": "",
        "tax_id": valid_uscc(515151),
        "invoice_type": "vat_special",
        "currency": "CNY",
        "billing_address": "",
        "phone": "",
        "billing_email": "",
    }
    assert_error(client.post("/api/v1/customers/", body, format="json"), 400, "invalid", "name")
    response = client.post("/api/v1/customers/", {**body, "name": "Blank Test"}, format="json")
    assert response.status_code == 201, response.content
    assert (response.json()["billing_address"], response.json()["billing_email"]) == ("", "")


def test_contract_notes_are_not_required_since_customers_do_not_get_them(document):
    contract = _component(document, "Contract")
    assert "notes" in contract["properties"]
    assert "notes" not in contract["required"]
    assert "number" in contract["required"]


def test_a_voucher_claim_answers_a_plain_list_of_ledger_entries(document):
    created = document["paths"]["/api/v1/vouchers/{id}/claims/"]["post"]["responses"]["201"]
    schema = created["content"]["application/json"]["schema"]
    assert schema == {"type": "array", "items": {"$ref": "#/components/schemas/VoucherLedgerEntry"}}


def test_every_operation_documents_its_error_answers_with_the_error_body(document):
    missing = []
    for path, methods in document["paths"].items():
        for method, operation in methods.items():
            responses = operation["responses"]
            expected = {"401", "403"}
            if method == "get" and any(p["in"] == "query" for p in operation.get("parameters", [])):
                expected.add("400")
            if "{" in path:
                expected.add("404")
            if "requestBody" in operation:
                expected |= {"400", "413", "415"}
            for status in sorted(expected - set(responses)):
                missing.append(f"{method.upper()} {path} {status}")
            for status in expected & set(responses):
                content = responses[status].get("content", {}).get("application/json", {})
                ref = content.get("schema", {}).get("$ref")
                if ref not in (ERROR_REF, "#/components/schemas/UsageBatchError"):
                    missing.append(f"{method.upper()} {path} {status} body {ref}")
    assert missing == []


@pytest.mark.django_db
@pytest.mark.parametrize(
    "url, field",
    [
        ("/api/v1/gpu-models/?verified=maybe", "verified"),
        ("/api/v1/invoices/?overdue=perhaps", "overdue"),
        ("/api/v1/customers/?auto_issue=2", "auto_issue"),
        ("/api/v1/usage/?voided=yes-please", "voided"),
        ("/api/v1/invoices/?period=last-month", "period"),
        ("/api/v1/settlements/?period=2026-13", "period"),
        ("/api/v1/usage/?period=2026-1", "period"),
    ],
)
def test_a_junk_filter_value_answers_400(make_staff, url, field):
    client = APIClient()
    client.force_authenticate(make_staff(superuser=True))
    assert_error(client.get(url), 400, "invalid", field)
    good = "2026-11" if field == "period" else "true"
    assert client.get(url.split("=")[0] + "=" + good).status_code == 200


# -- usage older than billing looks back ------------------------------------------------------------
@pytest.mark.django_db
class TestUsageHorizon:
    URL = "/api/v1/usage/"

    @pytest.fixture(autouse=True)
    def clock(self):
        with time_machine.travel(NOW, tick=False):  # 2026-11-20 10:00 in Shanghai
            yield

    @pytest.fixture
    def server(self):
        return ServerFactory(serial="SRV-OLD-1")

    def post(self, server, body):
        key = partner_key(server.provider)[1]
        return Client().post(
            self.URL,
            data=orjson.dumps(body),
            content_type="application/json",
            HTTP_AUTHORIZATION=f"Api-Key {key}",
        )

    @pytest.mark.parametrize(
        "start",
        [
            datetime.datetime(1, 1, 1, tzinfo=datetime.UTC),
            datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC),
            datetime.datetime(2025, 10, 31, 23, 58, tzinfo=SHANGHAI),  # ends 23:59 on the last day before
        ],
    )
    def test_a_record_older_than_the_look_back_is_refused_with_its_own_code(self, server, start):
        uuid = server.cards.get(slot=0).uuid

        response = self.post(server, card_record(uuid, start))

        assert response.status_code == 400, response.content
        body = response.json()
        assert body["code"] == "usage_too_old"
        assert body["message"].startswith(
            "end: Too old: billing does not look back before 2025-10-31T16:00:00+00:00"
        )
        assert body["errors"][0]["code"] == "usage_too_old"
        assert not UsageRecord.objects.exists()

    def test_in_a_batch_the_old_record_is_named_and_nothing_is_stored(self, server):
        uuid = server.cards.get(slot=0).uuid
        old = card_record(uuid, datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC))
        fresh = card_record(uuid, NOW - 10 * MINUTE)

        response = self.post(server, [fresh, old])

        assert response.status_code == 400
        body = response.json()
        assert body["code"] == "invalid_batch"
        assert [(e["index"], e["code"]) for e in body["errors"]] == [(1, "usage_too_old")]
        assert not UsageRecord.objects.exists()

    def test_the_first_month_billing_still_looks_at_is_accepted(self, server, settings):
        uuid = server.cards.get(slot=0).uuid
        first = datetime.datetime(2025, 11, 1, 0, 0, tzinfo=SHANGHAI)  # November 2025: 12 months back
        assert self.post(server, card_record(uuid, first)).status_code == 201

        settings.USAGE_MAX_AGE_MONTHS = 0  # only the current period
        response = self.post(
            server, card_record(uuid, datetime.datetime(2026, 10, 31, 12, 0, tzinfo=SHANGHAI))
        )
        assert response.json()["code"] == "usage_too_old"
        assert (
            self.post(server, card_record(uuid, datetime.datetime(2026, 11, 1, tzinfo=SHANGHAI))).status_code
            == 201
        )


@pytest.mark.django_db
def test_the_new_refusals_speak_chinese_when_asked(make_staff):
    client = APIClient()
    client.force_authenticate(make_staff(superuser=True))

    boolean = client.get("/api/v1/gpu-models/?verified=maybe", HTTP_ACCEPT_LANGUAGE="zh-CN")
    period = client.get("/api/v1/invoices/?period=last-month", HTTP_ACCEPT_LANGUAGE="zh-CN")

    assert assert_error(boolean, 400, "invalid")["fields"] == {"verified": ["应为 true 或 false。"]}
    assert assert_error(period, 400, "invalid")["fields"] == {"period": ["账期格式应为 YYYY-MM。"]}
