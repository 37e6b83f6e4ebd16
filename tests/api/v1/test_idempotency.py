"""``Idempotency-Key`` on API POSTs (docs/api.md#idempotency-keys): a replay gets the first answer
and does nothing again; another request under the same key is refused; keys live 24 hours."""

from __future__ import annotations

import datetime
import threading
from collections import Counter
from decimal import Decimal

import orjson
import pytest
import time_machine
from django.core.cache import cache
from django.db import connection
from django.test import Client, override_settings
from django_celery_beat.models import PeriodicTask
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from apps.accounts import roles
from apps.api.models import IdempotencyKey
from apps.api.tasks import purge_idempotency_keys_task
from apps.billing.invoicing.models import Payment
from apps.billing.invoicing.services.issuing import invoice_issue
from apps.customers.models import Customer
from apps.metering import services as metering_services
from apps.metering.models import UsageRecord
from tests.api.helpers import assert_error
from tests.factories.catalogue import ServerFactory, valid_uscc
from tests.factories.invoices import ISSUED_AT, metered_invoice
from tests.factories.metering import MINUTE, NOW, card_record, partner_key

pytestmark = pytest.mark.django_db

USAGE = "/api/v1/usage/"
CUSTOMERS = "/api/v1/customers/"
START = NOW - 10 * MINUTE


@pytest.fixture(autouse=True)
def frozen_clock():
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller


@pytest.fixture
def server():
    return ServerFactory(serial="SRV-BJ-0001")


@pytest.fixture
def key(server) -> str:
    return partner_key(server.provider)[1]


def records(server, count: int = 3) -> list[dict]:
    uuids = list(server.cards.order_by("slot").values_list("uuid", flat=True))
    return [card_record(uuids[i], START) for i in range(count)]


def post_usage(body, api_key: str, idempotency_key: str | None, client: Client | None = None):
    headers = {"HTTP_AUTHORIZATION": f"Api-Key {api_key}"}
    if idempotency_key is not None:
        headers["HTTP_IDEMPOTENCY_KEY"] = idempotency_key
    return (client or Client()).post(
        USAGE, data=orjson.dumps(body), content_type="application/json", **headers
    )


def customer(code: str = "acme", number: int = 424242) -> dict:
    return {
        "code": code,
        "name": "Acme AI 有限公司",
        "tax_id": valid_uscc(number),
        "billing_email": "ap@acme.example",
    }


@pytest.fixture
def manager(make_staff):
    return make_staff(roles.ACCOUNT_MANAGER)


@pytest.fixture
def manager_client(manager) -> APIClient:
    client = APIClient()
    token, _ = Token.objects.get_or_create(user=manager)
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    return client


# -- replays -------------------------------------------------------------------------------------
def test_a_usage_batch_replayed_with_its_key_gets_the_first_answer_and_stores_nothing_new(server, key):
    batch = records(server)

    first = post_usage(batch, key, "batch-2026-11-20T01:50")
    again = post_usage(batch, key, "batch-2026-11-20T01:50")

    assert first.status_code == 201, first.content
    assert first.json() == {"accepted": 3, "duplicates": 0}
    assert "Idempotent-Replayed" not in first
    # Without the key the repeat would answer 200 {"accepted": 0, "duplicates": 3}.
    assert again.status_code == 201
    assert again.content == first.content
    assert again["Content-Type"] == "application/json"
    assert again["Idempotent-Replayed"] == "true"
    assert UsageRecord.objects.count() == 3
    assert IdempotencyKey.objects.count() == 1


def test_without_a_key_a_repeat_runs_again(server, key):
    batch = records(server)
    post_usage(batch, key, None)

    again = post_usage(batch, key, None)

    assert again.status_code == 200
    assert again.json() == {"accepted": 0, "duplicates": 3}
    assert IdempotencyKey.objects.count() == 0


def test_a_created_customer_replayed_gets_the_same_201_and_no_second_customer(manager_client):
    first = manager_client.post(CUSTOMERS, customer(), format="json", HTTP_IDEMPOTENCY_KEY="crm-7f3a")
    again = manager_client.post(CUSTOMERS, customer(), format="json", HTTP_IDEMPOTENCY_KEY="crm-7f3a")

    assert first.status_code == 201, first.content
    assert again.status_code == 201  # not 400 "code taken": the first answer
    assert again.json() == first.json()
    assert again.json()["code"] == "acme"
    assert again["Idempotent-Replayed"] == "true"
    assert Customer.objects.count() == 1


def test_a_payment_replayed_with_its_key_is_recorded_once(client_as, make_staff):
    account_manager = make_staff(roles.ACCOUNT_MANAGER, username="am1")
    with time_machine.travel(ISSUED_AT, tick=False):
        invoice = invoice_issue(invoice=metered_invoice(account_manager), now=ISSUED_AT)  # 245.16
        finance = client_as(roles.FINANCE)
        url = f"/api/v1/invoices/{invoice.pk}/payments/"
        body = {"amount": "100.00", "reference": "ICBC-9"}

        first = finance.post(url, body, format="json", HTTP_IDEMPOTENCY_KEY="erp-pay-9")
        again = finance.post(url, body, format="json", HTTP_IDEMPOTENCY_KEY="erp-pay-9")

    assert first.status_code == 201, first.content
    assert again.status_code == 201
    assert again.json() == first.json()
    assert again["Idempotent-Replayed"] == "true"
    assert Payment.objects.filter(invoice=invoice).count() == 1
    invoice.refresh_from_db()
    assert invoice.amount_due == Decimal("145.16")


def test_a_client_error_is_stored_and_replayed_too(manager_client):
    bad = customer(number=1) | {"tax_id": "not-a-tax-id"}

    first = manager_client.post(CUSTOMERS, bad, format="json", HTTP_IDEMPOTENCY_KEY="crm-bad")
    again = manager_client.post(CUSTOMERS, bad, format="json", HTTP_IDEMPOTENCY_KEY="crm-bad")

    assert_error(first, 400, "invalid", "tax_id")
    assert again.status_code == 400
    assert again.json() == first.json()
    assert again["Idempotent-Replayed"] == "true"
    assert Customer.objects.count() == 0


def test_a_server_error_is_not_stored_so_the_same_key_can_be_retried(server, key, monkeypatch):
    batch = records(server)
    real_ingest = metering_services.usage_ingest
    calls = []

    def failing_once(**kwargs):
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("database went away")
        return real_ingest(**kwargs)

    monkeypatch.setattr(metering_services, "usage_ingest", failing_once)

    failed = post_usage(batch, key, "retry-me", client=Client(raise_request_exception=False))
    assert failed.status_code == 500
    assert IdempotencyKey.objects.count() == 0

    retried = post_usage(batch, key, "retry-me")
    assert retried.status_code == 201, retried.content
    assert retried.json() == {"accepted": 3, "duplicates": 0}
    assert "Idempotent-Replayed" not in retried
    assert UsageRecord.objects.count() == 3


def test_a_throttled_answer_is_not_stored_so_the_key_works_after_the_wait(manager_client, frozen_clock):
    cache.clear()
    with override_settings(API_THROTTLE_RATES={"user": "1/min"}):
        assert manager_client.get(CUSTOMERS).status_code == 200  # the minute's one request
        throttled = manager_client.post(CUSTOMERS, customer(), format="json", HTTP_IDEMPOTENCY_KEY="crm-slow")
        assert_error(throttled, 429, "throttled")
        assert IdempotencyKey.objects.count() == 0

        frozen_clock.shift(61)
        created = manager_client.post(CUSTOMERS, customer(), format="json", HTTP_IDEMPOTENCY_KEY="crm-slow")
    cache.clear()

    assert created.status_code == 201, created.content
    assert "Idempotent-Replayed" not in created
    assert Customer.objects.count() == 1


# -- the same key for something else -------------------------------------------------------------
def test_the_same_key_with_another_body_answers_422_and_stores_nothing(server, key):
    batch = records(server)
    post_usage(batch[:1], key, "k-1")

    other = post_usage(batch, key, "k-1")

    body = assert_error(other, 422, "idempotency_key_reused")
    assert "Idempotency-Key" in body["message"]
    assert UsageRecord.objects.count() == 1


def test_the_same_key_on_another_endpoint_answers_422(manager_client):
    manager_client.post(CUSTOMERS, customer(), format="json", HTTP_IDEMPOTENCY_KEY="k-2")

    other = manager_client.post(
        "/api/v1/price-lists/", {"name": "x"}, format="json", HTTP_IDEMPOTENCY_KEY="k-2"
    )

    assert_error(other, 422, "idempotency_key_reused")


def test_the_422_speaks_chinese_when_asked(server, key):
    post_usage(records(server)[:1], key, "k-zh")

    other = Client().post(
        USAGE,
        data=orjson.dumps(records(server)),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Api-Key {key}",
        HTTP_IDEMPOTENCY_KEY="k-zh",
        HTTP_ACCEPT_LANGUAGE="zh-CN",
    )

    body = assert_error(other, 422, "idempotency_key_reused")
    assert other["Content-Language"] == "zh-hans"
    assert "幂等" in body["message"]


@pytest.mark.parametrize("bad_key", ["", "   ", "x" * 256, "with space", "密钥"])
def test_a_malformed_key_answers_400(server, key, bad_key):
    response = Client().post(
        USAGE,
        data=orjson.dumps(records(server)),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Api-Key {key}",
        HTTP_IDEMPOTENCY_KEY=bad_key,
    )

    assert_error(response, 400, "invalid_idempotency_key")
    assert UsageRecord.objects.count() == 0


# -- principals ----------------------------------------------------------------------------------
def test_two_partner_keys_may_use_the_same_key_independently(server, key):
    other_server = ServerFactory(serial="SRV-SH-0001")
    other_key = partner_key(other_server.provider)[1]

    mine = post_usage(records(server), key, "daily-1")
    theirs = post_usage(records(other_server, 2), other_key, "daily-1")

    assert (mine.status_code, mine.json()) == (201, {"accepted": 3, "duplicates": 0})
    assert (theirs.status_code, theirs.json()) == (201, {"accepted": 2, "duplicates": 0})
    assert "Idempotent-Replayed" not in theirs
    assert UsageRecord.objects.count() == 5
    assert IdempotencyKey.objects.filter(key="daily-1").count() == 2


def test_a_user_and_a_partner_key_may_use_the_same_key_independently(server, key, manager_client):
    usage = post_usage(records(server), key, "shared")
    created = manager_client.post(CUSTOMERS, customer(), format="json", HTTP_IDEMPOTENCY_KEY="shared")

    assert usage.status_code == 201
    assert created.status_code == 201, created.content
    assert "Idempotent-Replayed" not in created
    assert Customer.objects.count() == 1


def test_a_request_without_valid_credentials_ignores_the_key(server):
    response = post_usage(records(server), "wrong.key", "k-anon")

    assert_error(response, 401, "authentication_failed")
    assert IdempotencyKey.objects.count() == 0


# -- in progress, expiry, cleanup ---------------------------------------------------------------
@override_settings(API_IDEMPOTENCY_WAIT_SECONDS=0)
def test_a_key_whose_first_request_is_still_running_answers_409(server, key):
    batch = records(server)
    post_usage(batch, key, "busy")
    IdempotencyKey.objects.update(response_status=None, response_body=b"", completed_at=None)

    response = post_usage(batch, key, "busy")

    assert_error(response, 409, "idempotency_request_in_progress")
    assert response["Retry-After"] == "1"
    assert UsageRecord.objects.count() == 3


def test_a_key_held_by_a_request_that_died_is_taken_over_after_the_lock_time(server, key, frozen_clock):
    batch = records(server)
    post_usage(batch[:1], key, "orphan")
    UsageRecord.objects.all().delete()
    IdempotencyKey.objects.update(response_status=None, response_body=b"", completed_at=None)

    frozen_clock.shift(datetime.timedelta(seconds=301))
    response = post_usage(batch[:1], key, "orphan")

    assert response.status_code == 201, response.content
    assert "Idempotent-Replayed" not in response
    assert UsageRecord.objects.count() == 1


def test_a_key_is_forgotten_after_24_hours(server, key, frozen_clock):
    batch = records(server)
    post_usage(batch[:1], key, "day-key")

    frozen_clock.shift(datetime.timedelta(hours=23, minutes=59))
    assert_error(post_usage(batch, key, "day-key"), 422, "idempotency_key_reused")

    frozen_clock.shift(datetime.timedelta(minutes=1))
    response = post_usage(batch, key, "day-key")

    assert response.status_code == 201, response.content
    assert response.json() == {"accepted": 2, "duplicates": 1}
    assert UsageRecord.objects.count() == 3
    assert IdempotencyKey.objects.get().request_hash != ""


def test_the_hourly_cleanup_deletes_keys_older_than_24_hours(server, key, frozen_clock):
    batch = records(server)
    post_usage(batch[:1], key, "old")
    frozen_clock.shift(datetime.timedelta(hours=20))
    post_usage(batch[:2], key, "young")

    frozen_clock.shift(datetime.timedelta(hours=4, seconds=1))
    deleted = purge_idempotency_keys_task.delay().get()

    assert deleted == 1
    assert list(IdempotencyKey.objects.values_list("key", flat=True)) == ["young"]
    assert purge_idempotency_keys_task.delay().get() == 0  # safe to run twice


def test_the_cleanup_is_in_the_beat_schedule():
    task = PeriodicTask.objects.get(task="api.purge_idempotency_keys")

    assert task.enabled
    assert task.name == "Hourly idempotency-key cleanup 幂等键清理"
    assert (task.crontab.minute, task.crontab.hour) == ("17", "*")


# -- races on real transactions ------------------------------------------------------------------
def race(send, count: int = 2) -> list:
    barrier = threading.Barrier(count)
    outcomes: list = []
    lock = threading.Lock()

    def run():
        try:
            barrier.wait(timeout=30)
            response = send()
            with lock:
                outcomes.append(response)
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert len(outcomes) == count
    return outcomes


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
@override_settings(API_IDEMPOTENCY_WAIT_SECONDS=20)
def test_two_identical_usage_posts_racing_with_one_key_store_once_and_both_get_the_first_answer():
    server = ServerFactory()
    api_key = partner_key(server.provider)[1]
    body = records(server, 8)

    outcomes = race(lambda: post_usage(body, api_key, "race-1"))

    # Without the key the loser would answer 200 {"accepted": 0, "duplicates": 8}.
    assert [(r.status_code, r.json()) for r in outcomes] == [(201, {"accepted": 8, "duplicates": 0})] * 2
    assert sorted(r.get("Idempotent-Replayed", "") for r in outcomes) == ["", "true"]
    assert UsageRecord.objects.count() == 8
    assert IdempotencyKey.objects.count() == 1


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_six_identical_customer_posts_racing_with_one_key_create_one_customer(make_staff):
    user = make_staff(roles.ACCOUNT_MANAGER)
    token = Token.objects.create(user=user).key

    def send():
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
        return client.post(CUSTOMERS, customer(), format="json", HTTP_IDEMPOTENCY_KEY="crm-race")

    outcomes = race(send, count=6)

    statuses = Counter(r.status_code for r in outcomes)
    assert set(statuses) <= {201, 409}, [(r.status_code, r.content) for r in outcomes]
    created = [r.json() for r in outcomes if r.status_code == 201]
    assert created and all(body == created[0] for body in created)
    assert all(
        r.json()["code"] == "idempotency_request_in_progress" for r in outcomes if r.status_code == 409
    )
    assert sum(1 for r in outcomes if r.status_code == 201 and "Idempotent-Replayed" not in r) == 1
    assert Customer.objects.count() == 1


# -- the OpenAPI document ------------------------------------------------------------------------
def test_the_schema_documents_the_header_and_its_answers_on_every_authenticated_post(api_client):
    schema = api_client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()

    posts = {path: methods["post"] for path, methods in schema["paths"].items() if "post" in methods}
    documented = {
        path
        for path, operation in posts.items()
        if any(
            p["in"] == "header" and p["name"] == "Idempotency-Key" for p in operation.get("parameters", [])
        )
    }
    assert documented == set(posts) - {"/api/v1/auth/token/"}
    assert {"/api/v1/usage/", "/api/v1/customers/", "/api/v1/contracts/{id}/activate/"} <= documented
    for path in documented:
        assert {"409", "422"} <= set(posts[path]["responses"]), path
    assert posts["/api/v1/customers/"]["responses"]["422"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/Error"
    }
