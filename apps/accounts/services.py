"""Writes of portal users: a customer admin invites a colleague (docs/portal.md#team)."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.tokens import default_token_generator
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode
from django.utils.translation import gettext as _

from apps.core.errors import Conflict, DomainError

from .models import CustomerMembership, User


def _set_password_url(user: User, site_url: str) -> str:
    """The link that sets the invited user's first password: Django's password-reset token for the
    user (valid ``PASSWORD_RESET_TIMEOUT``, void once a password is set)."""
    path = reverse(
        "portal:password_reset_confirm",
        kwargs={
            "uidb64": urlsafe_base64_encode(force_bytes(user.pk)),
            "token": default_token_generator.make_token(user),
        },
    )
    return site_url.rstrip("/") + path


@transaction.atomic
def membership_invite(
    *,
    customer,
    email: str,
    display_name: str,
    role: str,
    actor: User,
    site_url: str,
) -> CustomerMembership:
    """Give ``email`` access to ``customer``'s portal with ``role``, on behalf of ``actor`` (an
    admin member of the customer).

    A new address becomes a user (username = the address, no usable password) and gets an e-mail
    with a link to set a password; a known portal user is added and told by e-mail. Staff
    accounts are never invited; a member already in the customer is a conflict. The e-mail is
    sent after commit.
    """
    actor_role = (
        CustomerMembership.objects.filter(user=actor, customer=customer)
        .values_list("role", flat=True)
        .first()
    )
    if actor_role != CustomerMembership.Role.ADMIN:
        raise DomainError(
            _("Only an admin of the customer may invite users."), code="forbidden", http_status=403
        )
    if role not in CustomerMembership.Role.values:
        raise DomainError(_("Unknown role."), fields={"role": [_("Unknown role.")]})
    email = email.strip().lower()
    user = User.objects.select_for_update().filter(username__iexact=email).first()
    created = user is None
    if created:
        user = User(username=email, email=email, display_name=display_name.strip())
        user.set_unusable_password()
        user.save()
    elif user.is_staff:
        raise DomainError(
            _("This address belongs to a staff account; it cannot be invited."), fields={"email": ["staff"]}
        )
    try:
        with transaction.atomic():
            membership = CustomerMembership.objects.create(user=user, customer=customer, role=role)
    except IntegrityError:
        raise Conflict(
            _("%(email)s is already a member of %(customer)s.") % {"email": email, "customer": customer.name},
            fields={"email": ["already_member"]},
        ) from None
    context = {
        "customer": customer,
        "inviter": actor,
        "user": user,
        "role": membership.get_role_display(),
        "link": _set_password_url(user, site_url)
        if created
        else site_url.rstrip("/") + reverse("portal:login"),
        "new_user": created,
        "hours": settings.PASSWORD_RESET_TIMEOUT // 3600,
    }
    subject = _("You are invited to the %(customer)s billing portal") % {"customer": customer.name}
    body = render_to_string("portal/email/invite.txt", context)
    transaction.on_commit(
        lambda: send_mail(subject, body, settings.DEFAULT_FROM_EMAIL, [email], fail_silently=False)
    )
    return membership
