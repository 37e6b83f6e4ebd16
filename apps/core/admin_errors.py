"""A service's refusal (``DomainError``) on an admin add or change page becomes a form error.

``save_model`` calls the service; when it refuses, ``refuse(exc)`` rolls the save back (the
admin's change view runs in one transaction) and the page is rendered again from the same POST
with the service's message on the form (on the fields it names, else above them), status 200, as
Django admin users expect of any invalid form — not a 403 page. A model admin opts in with::

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        return changeform_with_service_errors(super().changeform_view, request, object_id, form_url, extra_context)

    def get_form(self, request, obj=None, change=False, **kwargs):
        return form_with_service_errors(request, super().get_form(request, obj, change=change, **kwargs))
"""

from __future__ import annotations

from typing import NoReturn

from .errors import DomainError

_REFUSAL = "_service_refusal"


class ServiceRefused(Exception):
    def __init__(self, error: DomainError) -> None:
        super().__init__(error.message)
        self.error = error


def refuse(exc: DomainError) -> NoReturn:
    """Call from ``save_model`` with the service's error: nothing is saved, the form shows it."""
    raise ServiceRefused(exc) from exc


def changeform_with_service_errors(view, request, *args):
    """Run the admin's change view; on a refusal, run it again with the error on the form."""
    try:
        return view(request, *args)
    except ServiceRefused as refused:
        setattr(request, _REFUSAL, refused.error)
        return view(request, *args)


def form_with_service_errors(request, form_class):
    """``form_class``, or on the second run a subclass whose ``clean`` adds the service's error."""
    error: DomainError | None = getattr(request, _REFUSAL, None)
    if error is None:
        return form_class

    def clean(self):
        cleaned = super(refused_form, self).clean()
        on_fields = {k: v for k, v in error.fields.items() if k in self.fields and isinstance(v, list)}
        for name, messages in on_fields.items():
            self.add_error(name, messages)
        if not on_fields:
            self.add_error(None, error.message)
        return cleaned

    refused_form = type(form_class.__name__, (form_class,), {"clean": clean})
    return refused_form
