"""Roles in the portal (docs/security.md#roles), every membership role × every surface: viewers
read; billing members also pay (Stripe Checkout, the bank-transfer details); admins also invite
portal users. Drafts are invisible to all of them (404, PDF too); the month so far is the
dashboard's preview."""

from __future__ import annotations

import datetime

import pytest
from django.test import override_settings
from django.urls import reverse

from apps.accounts.models import CustomerMembership
from apps.billing.invoicing.services.runs import billing_run_create, billing_run_execute
from apps.billing.models import Invoice, InvoiceStatus
from tests.factories.billing_flows import use
from tests.fakes.stripe import SECRET_KEY, WEBHOOK_SECRET, FakeStripe

pytestmark = pytest.mark.django_db

SH = datetime.timezone(datetime.timedelta(hours=8))
ROLES = ("admin", "billing", "viewer")
READ_PAGES = ("dashboard", "invoice_list", "contract_list", "usage_list", "usage_csv", "voucher_list", "team")


@pytest.fixture
def draft(world):
    """Acme's December invoice, drafted by a billing run and not issued."""
    use(world.acme_server, 10, day=3, month=12)
    as_of = datetime.datetime(2027, 1, 1, 3, tzinfo=SH)
    billing_run_execute(
        run=billing_run_create(period="2026-12", customer=world.acme, as_of=as_of, now=as_of), now=as_of
    )
    invoice = Invoice.objects.get(customer=world.acme, period="2026-12")
    assert invoice.status == InvoiceStatus.DRAFT
    return invoice


@pytest.fixture
def fake_stripe():
    fake = FakeStripe().start()
    with override_settings(
        STRIPE_SECRET_KEY=SECRET_KEY, STRIPE_WEBHOOK_SECRET=WEBHOOK_SECRET, STRIPE_API_BASE=fake.url
    ):
        yield fake
    fake.stop()


@pytest.mark.parametrize("role", ROLES)
def test_every_role_reads_every_page(client, world, role):
    client.force_login(getattr(world, role))
    for name in READ_PAGES:
        assert client.get(reverse(f"portal:{name}")).status_code == 200, name
    invoice = world.acme_invoice
    assert client.get(reverse("portal:invoice_detail", args=[invoice.pk])).status_code == 200
    assert client.get(reverse("portal:invoice_pdf", args=[invoice.pk])).status_code == 200
    assert client.get(reverse("portal:contract_detail", args=[world.acme_contract.pk])).status_code == 200


@pytest.mark.parametrize("role", ROLES)
def test_no_role_sees_a_draft_or_its_pdf(client, world, draft, role):
    client.force_login(getattr(world, role))
    listing = client.get(reverse("portal:invoice_list")).content.decode()
    assert world.acme_invoice.number in listing
    assert reverse("portal:invoice_detail", args=[draft.pk]) not in listing
    assert client.get(reverse("portal:invoice_detail", args=[draft.pk])).status_code == 404
    assert client.get(reverse("portal:invoice_pdf", args=[draft.pk])).status_code == 404
    assert client.post(reverse("portal:invoice_pay", args=[draft.pk])).status_code in (403, 404)
    # the preview the portal offers instead: the month so far on the dashboard
    assert 'data-testid="month-so-far"' in client.get(reverse("portal:dashboard")).content.decode()


@pytest.mark.parametrize(("role", "pays"), [("admin", True), ("billing", True), ("viewer", False)])
def test_admins_and_billing_pay_by_card_viewers_do_not(client, world, fake_stripe, role, pays):
    client.force_login(getattr(world, role))
    detail = client.get(reverse("portal:invoice_detail", args=[world.acme_invoice.pk])).content.decode()
    assert ('data-testid="pay-button"' in detail) is pays
    response = client.post(reverse("portal:invoice_pay", args=[world.acme_invoice.pk]))
    if pays:
        assert response.status_code == 302 and response["Location"].startswith(fake_stripe.url + "/pay/")
        assert len(fake_stripe.requests) == 1
    else:
        assert response.status_code == 403
        assert fake_stripe.requests == []


@pytest.mark.parametrize(("role", "pays"), [("admin", True), ("billing", True), ("viewer", False)])
def test_the_bank_transfer_reference_is_shown_to_those_who_pay(client, world, role, pays):
    client.force_login(getattr(world, role))
    detail = client.get(reverse("portal:invoice_detail", args=[world.acme_invoice.pk])).content.decode()
    assert ('data-testid="bank-transfer"' in detail) is pays
    if pays:
        assert f'data-testid="bank-transfer-reference"><strong>{world.acme_invoice.number}</strong>' in detail
        assert "CNY 1,000.00" in detail


@pytest.mark.parametrize(("role", "claims"), [("admin", True), ("billing", True), ("viewer", False)])
def test_only_paying_roles_ask_for_a_voucher_claim_pack(client, world, role, claims):
    client.force_login(getattr(world, role))
    response = client.post(reverse("portal:voucher_claim_pack", args=[999999]))
    assert response.status_code == (404 if claims else 403)  # no such voucher / not for viewers


@pytest.mark.parametrize(("role", "invites"), [("admin", True), ("billing", False), ("viewer", False)])
def test_only_admins_invite_portal_users(
    client, world, mailoutbox, django_capture_on_commit_callbacks, role, invites
):
    client.force_login(getattr(world, role))
    page = client.get(reverse("portal:team")).content.decode()
    assert ('name="email"' in page) is invites
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            reverse("portal:team"),
            {"email": f"new-{role}@acme.example", "display_name": "New", "role": "viewer"},
        )
    made = CustomerMembership.objects.filter(user__email=f"new-{role}@acme.example", customer=world.acme)
    if invites:
        assert response.status_code == 302
        assert made.get().role == CustomerMembership.Role.VIEWER
        assert len(mailoutbox) == 1
    else:
        assert response.status_code == 403
        assert not made.exists() and mailoutbox == []


def test_a_staff_user_without_a_membership_gets_no_portal(client, world):
    client.force_login(world.am)
    assert client.get(reverse("portal:invoice_list")).status_code == 403
