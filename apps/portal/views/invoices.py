"""Invoices: list, detail, PDFs, and paying by card through Stripe Checkout."""

from __future__ import annotations

from itertools import groupby

from django.conf import settings
from django.contrib import messages
from django.core.paginator import Paginator
from django.db.models import Prefetch
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from apps.billing.invoicing.models import InvoiceStatus
from apps.billing.invoicing.pdf import credit_note_pdf, invoice_pdf
from apps.billing.invoicing.selectors import (
    billing_today,
    credit_note_for_pdf,
    credit_note_list,
    invoice_for_pdf,
    invoice_list,
    overdue_q,
)
from apps.billing.payments.services.stripe import stripe_checkout_create, stripe_configured
from apps.core.db_router import replica_view
from apps.core.errors import DomainError
from apps.portal.access import PAYING_ROLES, follow_customer, portal_view
from apps.portal.forms import InvoiceFilterForm
from apps.portal.selectors import PORTAL_INVOICE_STATUSES

PAGE_SIZE = 20


def _visible(request):
    """The user's invoices the portal shows: issued, paid or void (never drafts)."""
    return invoice_list(user=request.user, with_lines=False).filter(status__in=PORTAL_INVOICE_STATUSES)


def _invoice(request, pk: int, queryset=None):
    invoice = get_object_or_404(queryset if queryset is not None else _visible(request), pk=pk)
    follow_customer(request, invoice.customer_id)
    return invoice


@portal_view
@replica_view
def invoice_list_view(request):
    form = InvoiceFilterForm(request.GET or None)
    invoices = _visible(request).filter(customer=request.portal.customer).order_by("-period", "-pk")
    today = billing_today(timezone.now())
    if form.is_valid():
        if form.cleaned_data["period"]:
            invoices = invoices.filter(period=str(form.cleaned_data["period"]))
        status = form.cleaned_data["status"]
        if status == "overdue":
            invoices = invoices.filter(overdue_q(today))
        elif status:
            invoices = invoices.filter(status=status)
    page = Paginator(invoices, PAGE_SIZE).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    return render(
        request,
        "portal/invoice_list.html",
        {"form": form, "page": page, "today": today, "query": query.urlencode()},
    )


@portal_view
@replica_view
def invoice_detail(request, pk: int):
    queryset = _visible(request).prefetch_related(
        "lines__contract",
        "payments",
        Prefetch("credit_notes", queryset=credit_note_list(user=request.user).order_by("issued_at", "pk")),
    )
    invoice = _invoice(request, pk, queryset)
    lines = sorted(
        invoice.lines.all(), key=lambda line: (line.contract.number, line.contract.version, line.position)
    )
    groups = [(contract, list(items)) for contract, items in groupby(lines, key=lambda line: line.contract)]
    today = billing_today(timezone.now())
    payable = invoice.status == InvoiceStatus.ISSUED and invoice.amount_due > 0
    return render(
        request,
        "portal/invoice_detail.html",
        {
            "invoice": invoice,
            "groups": groups,
            "credit_notes": invoice.credit_notes.all(),
            "payments": invoice.payments.all(),
            "overdue": invoice.is_overdue(today),
            "show_pay": payable and request.portal.may_pay and stripe_configured(),
            # Admins and billing members pay; they get the seller's account and the reference to quote.
            "bank_transfer": settings.SELLER if payable and request.portal.may_pay else None,
        },
    )


def _pdf(content: bytes, filename: str) -> HttpResponse:
    response = HttpResponse(content, content_type="application/pdf")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


@portal_view
def invoice_pdf_view(request, pk: int):
    invoice = _invoice(request, pk)
    return _pdf(invoice_pdf(invoice_for_pdf(invoice.pk)), f"{invoice.number}.pdf")


@portal_view
def credit_note_pdf_view(request, pk: int):
    note = get_object_or_404(credit_note_list(user=request.user), pk=pk)
    follow_customer(request, note.invoice.customer_id)
    return _pdf(credit_note_pdf(credit_note_for_pdf(note.pk)), f"{note.number}.pdf")


@require_POST
@portal_view(roles=PAYING_ROLES)
def invoice_pay(request, pk: int):
    """Start a Stripe Checkout for the amount due and send the browser there."""
    invoice = _invoice(request, pk)
    detail = reverse("portal:invoice_detail", args=[invoice.pk])
    if not stripe_configured():
        raise Http404("Card payments are not available.")
    if invoice.status != InvoiceStatus.ISSUED or invoice.amount_due <= 0:
        messages.info(request, _("Invoice %(number)s has nothing left to pay.") % {"number": invoice.number})
        return redirect(detail)
    back = f"?invoice={invoice.pk}"
    try:
        url = stripe_checkout_create(
            invoice=invoice,
            success_url=request.build_absolute_uri(reverse("portal:payment_success")) + back,
            cancel_url=request.build_absolute_uri(reverse("portal:payment_cancel")) + back,
            actor=request.user,
        )
    except DomainError as exc:
        messages.error(request, exc.message)
        return redirect(detail)
    return redirect(url)


def _returning_invoice(request):
    try:
        pk = int(request.GET.get("invoice", ""))
    except ValueError:
        return None
    return _visible(request).filter(pk=pk).first()


@portal_view
def payment_success(request):
    """Back from Stripe: the payment is recorded when Stripe's webhook arrives, not here."""
    return render(request, "portal/payment_success.html", {"invoice": _returning_invoice(request)})


@portal_view
def payment_cancel(request):
    return render(request, "portal/payment_cancel.html", {"invoice": _returning_invoice(request)})
