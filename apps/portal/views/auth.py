"""Signing in and out, password reset, the language and customer switches."""

from __future__ import annotations

from django.contrib.auth import views as auth_views
from django.http import Http404
from django.shortcuts import redirect
from django.urls import reverse_lazy
from django.views.decorators.http import require_POST

from apps.portal.access import portal_switch, portal_view


class LoginView(auth_views.LoginView):
    """The portal's sign-in; django-axes counts the failures (locked after
    ``AXES_FAILURE_LIMIT`` per username and IP for ``AXES_COOLOFF_TIME``)."""

    template_name = "portal/login.html"
    redirect_authenticated_user = True
    next_page = reverse_lazy("portal:dashboard")


class LogoutView(auth_views.LogoutView):
    next_page = reverse_lazy("portal:login")


class PasswordResetView(auth_views.PasswordResetView):
    template_name = "portal/password_reset.html"
    email_template_name = "portal/email/password_reset.txt"
    subject_template_name = "portal/email/password_reset_subject.txt"
    success_url = reverse_lazy("portal:password_reset_done")


class PasswordResetDoneView(auth_views.PasswordResetDoneView):
    template_name = "portal/password_reset_done.html"


class PasswordResetConfirmView(auth_views.PasswordResetConfirmView):
    """Sets a forgotten password, and an invited user's first one (docs/portal.md#team)."""

    template_name = "portal/password_reset_confirm.html"
    success_url = reverse_lazy("portal:password_reset_complete")


class PasswordResetCompleteView(auth_views.PasswordResetCompleteView):
    template_name = "portal/password_reset_complete.html"


@require_POST
@portal_view
def customer_switch(request):
    """Show another of the user's customers; 404 for a customer the user is not a member of."""
    try:
        customer_id = int(request.POST.get("customer", ""))
    except ValueError:
        raise Http404("No such customer.") from None
    portal_switch(request, customer_id)
    return redirect("portal:dashboard")
