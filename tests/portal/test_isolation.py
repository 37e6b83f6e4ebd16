"""Isolation: a portal user sees only their customers' objects. Every portal URL pattern is walked
(apps.portal.urls.urlpatterns, so a new page is covered without changing this test): with another
customer's id it answers 404; anonymous, it sends to the login page."""

from __future__ import annotations

import pytest
from django.urls import reverse

from apps.billing.vouchers.models import Voucher
from apps.portal import urls as portal_urls

pytestmark = pytest.mark.django_db

# Pages anyone may open: signing in and resetting a password.
PUBLIC = {
    "login",
    "logout",
    "password_reset",
    "password_reset_done",
    "password_reset_confirm",
    "password_reset_complete",
}
POST_ONLY = {"invoice_pay", "voucher_claim_pack", "customer_switch"}


def foreign_ids(world) -> dict[str, int]:
    """A foreign object of the kind each ``<int:pk>`` pattern takes."""
    from apps.billing.invoicing.models import CreditNote

    note = CreditNote.objects.create(
        invoice=world.other_invoice,
        number="CN-2026-999999",
        reason="test",
        net_amount="1.00",
        tax_amount="0.06",
        total_amount="1.06",
        issued_at=world.other_invoice.issued_at,
    )
    voucher = Voucher.objects.filter(customer=world.other).first()
    return {
        "invoice_detail": world.other_invoice.pk,
        "invoice_pdf": world.other_invoice.pk,
        "invoice_pay": world.other_invoice.pk,
        "credit_note_pdf": note.pk,
        "contract_detail": world.other_contract.pk,
        "voucher_claim_pack": voucher.pk if voucher else 999_999,
    }


def patterns():
    return [(p.name, p.pattern.converters) for p in portal_urls.urlpatterns]


def test_every_pattern_is_known_to_this_test():
    for name, converters in patterns():
        assert (
            name in PUBLIC
            or not converters
            or name
            in {
                "invoice_detail",
                "invoice_pdf",
                "invoice_pay",
                "credit_note_pdf",
                "contract_detail",
                "voucher_claim_pack",
            }
        ), f"portal:{name} takes an id this test does not know how to make foreign"


def test_every_portal_url_with_a_foreign_id_answers_404(portal_client, world):
    ids = foreign_ids(world)
    walked = 0
    for name, converters in patterns():
        if not converters or name in PUBLIC:
            continue
        url = reverse(f"portal:{name}", args=[ids[name]])
        response = portal_client.post(url) if name in POST_ONLY else portal_client.get(url)
        assert response.status_code == 404, (name, response.status_code)
        walked += 1
    assert walked == 6


def test_foreign_customer_in_the_switcher_answers_404(portal_client, world):
    assert portal_client.post("/portal/customer/", {"customer": world.other.pk}).status_code == 404
    assert portal_client.post("/portal/customer/", {"customer": "x"}).status_code == 404


def test_anonymous_is_sent_to_login_from_every_non_public_url(client, world):
    ids = foreign_ids(world)
    for name, converters in patterns():
        if name in PUBLIC:
            continue
        url = reverse(f"portal:{name}", args=[ids[name]] if converters else [])
        response = client.post(url) if name in POST_ONLY else client.get(url)
        assert response.status_code == 302, name
        assert response["Location"].startswith("/portal/login/?next="), name


def test_lists_show_only_the_current_customers_rows(portal_client, world):
    body = portal_client.get("/portal/invoices/").content.decode()
    assert world.acme_invoice.number in body and world.other_invoice.number not in body
    body = portal_client.get("/portal/contracts/").content.decode()
    assert world.acme_contract.number in body and world.other_contract.number not in body
    body = portal_client.get("/portal/usage/").content.decode()
    assert world.acme_server.cards.get(slot=0).uuid in body
    assert world.other_server.cards.get(slot=0).uuid not in body


def test_a_member_of_two_customers_switches_between_them(portal_client, world):
    from apps.accounts.models import CustomerMembership

    CustomerMembership.objects.create(user=world.admin, customer=world.other, role="viewer")
    first = portal_client.get("/portal/invoices/").content.decode()
    assert 'data-testid="customer-select"' in first
    assert world.acme_invoice.number in first  # "Acme Test" sorts first
    response = portal_client.post("/portal/customer/", {"customer": world.other.pk})
    assert response.status_code == 302
    switched = portal_client.get("/portal/invoices/").content.decode()
    assert world.other_invoice.number in switched and world.acme_invoice.number not in switched
    # Opening a document of the other customer the user also belongs to shows that customer.
    portal_client.get(reverse("portal:invoice_detail", args=[world.acme_invoice.pk]))
    assert world.acme_invoice.number in portal_client.get("/portal/invoices/").content.decode()
