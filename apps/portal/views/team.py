"""The customer's portal users; admins invite more."""

from __future__ import annotations

from django.contrib import messages
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _

from apps.accounts.selectors import membership_list
from apps.accounts.services import membership_invite
from apps.core.errors import DomainError
from apps.portal.access import INVITING_ROLES, portal_view
from apps.portal.forms import InviteForm


@portal_view
def team(request):
    form = InviteForm()
    if request.method == "POST":
        if request.portal.role not in INVITING_ROLES:
            return render(request, "portal/forbidden.html", status=403)
        form = InviteForm(request.POST)
        if form.is_valid():
            try:
                membership = membership_invite(
                    customer=request.portal.customer,
                    actor=request.user,
                    site_url=request.build_absolute_uri("/"),
                    **form.cleaned_data,
                )
            except DomainError as exc:
                form.add_error("email", exc.message)
            else:
                messages.success(
                    request, _("Invitation sent to %(email)s.") % {"email": membership.user.email}
                )
                return redirect("portal:team")
    members = membership_list(customer=request.portal.customer)
    return render(request, "portal/team.html", {"members": members, "form": form})
