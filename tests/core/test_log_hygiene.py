"""No secrets or personal data in the logs (docs/security.md#logs): every logger at DEBUG through a
token login (a wrong password first), a usage ingestion with a partner key, a full billing run
and the invoice's issue with its e-mail — and no password, token, API key, e-mail address or
phone number in any line."""

from __future__ import annotations

import datetime
import logging
import re

import pytest
import time_machine
from rest_framework.test import APIClient

from apps.accounts import roles
from apps.accounts.models import CustomerMembership
from apps.billing.invoicing.services.runs import billing_run_create, billing_run_execute
from apps.billing.models import Invoice
from apps.metering.services import partner_key_create
from tests.factories.billing_flows import card_contract
from tests.factories.catalogue import CustomerFactory, ProviderFactory, ServerFactory, SiteFactory

pytestmark = pytest.mark.django_db

SH = datetime.timezone(datetime.timedelta(hours=8))
EMAIL = re.compile(r"[\w.+-]+@[\w-]+\.[\w.-]+")
# Chinese mobile numbers as people write them: +86 138 0013 8000, 138-0013-8000, 13800138000.
PHONE = re.compile(r"(?:\+86[\s-]?)?(?<!\d)1[3-9]\d[\s-]?\d{4}[\s-]?\d{4}(?!\d)")
PASSWORD = "Hyg1ene-Passw0rd!"


@pytest.fixture
def every_logger_at_debug(caplog):
    """caplog on the root logger, every known logger at DEBUG and propagating to it."""
    caplog.set_level(logging.DEBUG)
    changed = []
    for name in list(logging.root.manager.loggerDict):
        logger = logging.getLogger(name)
        changed.append((logger, logger.level, logger.propagate, logger.disabled))
        logger.setLevel(logging.DEBUG)
        logger.propagate = True
        logger.disabled = False
    yield caplog
    for logger, level, propagate, disabled in changed:
        logger.setLevel(level)
        logger.propagate = propagate
        logger.disabled = disabled


def lines(caplog) -> str:
    """Every record as a handler would write it, with its arguments and exception text."""
    out = []
    for record in caplog.records:
        out.append(record.getMessage())
        out.append(repr(record.args))
        if record.exc_info:
            out.append(logging.Formatter().formatException(record.exc_info))
    return "\n".join(out)


def test_login_ingestion_and_a_billing_run_log_no_secrets_or_personal_data(
    every_logger_at_debug, make_staff, django_user_model, django_capture_on_commit_callbacks, mailoutbox
):
    caplog = every_logger_at_debug
    am = make_staff(roles.ACCOUNT_MANAGER, username="am-hygiene")
    customer = CustomerFactory(
        code="hygiene",
        billing_email="ap.zhang@acme-hygiene.example.cn",
        phone="+86 138 0013 8000",
        payment_terms_days=30,
    )
    portal_user = django_user_model.objects.create_user(
        username="li.wei@acme-hygiene.example.cn",
        email="li.wei@acme-hygiene.example.cn",
        password=PASSWORD,
        phone="+86 139 1234 5678",
    )
    CustomerMembership.objects.create(user=portal_user, customer=customer, role=CustomerMembership.Role.ADMIN)
    provider = ProviderFactory(code="hyg-prov")
    server = ServerFactory(site=SiteFactory(provider=provider))
    card_contract(customer, am, server)
    secrets = {PASSWORD, "wrong-" + PASSWORD}

    # a token login, after one wrong password
    client = APIClient()
    refused = client.post(
        "/api/v1/auth/token/",
        {"username": portal_user.username, "password": "wrong-" + PASSWORD},
        format="json",
    )
    assert refused.status_code == 400
    token = client.post(
        "/api/v1/auth/token/", {"username": portal_user.username, "password": PASSWORD}, format="json"
    ).json()["token"]
    secrets.add(token)

    # a usage ingestion with a partner key, one batch refused and one accepted
    stored, key = partner_key_create(provider=provider, name="scheduler")
    secrets |= {key, key.partition(".")[2], stored.hashed_key}
    partner = APIClient()
    partner.credentials(HTTP_AUTHORIZATION=f"Api-Key {key}")
    card = server.cards.get(slot=0)
    record = {"event_id": "hyg-1", "card": card.uuid, "start": "2026-11-02T00:00:00+08:00"}
    assert (
        partner.post(
            "/api/v1/usage/", [{**record, "end": "2026-11-01T00:00:00+08:00"}], format="json"
        ).status_code
        == 400
    )
    ok = partner.post("/api/v1/usage/", [{**record, "end": "2026-11-02T10:00:00+08:00"}], format="json")
    assert ok.status_code in (200, 201), ok.content
    bad = APIClient()
    bad.credentials(HTTP_AUTHORIZATION=f"Api-Key {key[:-4]}abcd")
    assert bad.get("/api/v1/usage/").status_code == 401

    # a full billing run of the month, and the issue with its e-mail, as finance through the API
    as_of = datetime.datetime(2026, 12, 1, 3, tzinfo=SH)
    with time_machine.travel(as_of, tick=False), django_capture_on_commit_callbacks(execute=True):
        billing_run_execute(run=billing_run_create(period="2026-11", as_of=as_of, now=as_of), now=as_of)
        invoice = Invoice.objects.get(customer=customer)
        finance = APIClient()
        finance.force_authenticate(make_staff(roles.FINANCE, username="fin-hygiene"))
        issued = finance.post(f"/api/v1/invoices/{invoice.pk}/issue/", {}, format="json")
        assert issued.status_code == 200, issued.content
    assert mailoutbox and mailoutbox[0].to == ["ap.zhang@acme-hygiene.example.cn"]

    text = lines(caplog)
    assert len(caplog.records) > 5, "nothing was logged: the test would prove nothing"
    for secret in secrets:
        assert secret not in text
    assert EMAIL.findall(text) == []
    assert PHONE.findall(text) == []
    digits = re.sub(r"[\s-]", "", text)
    assert "13800138000" not in digits and "13912345678" not in digits
