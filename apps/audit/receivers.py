"""What feeds the audit trail (docs/security.md#audit-trail).

- Models with django-simple-history (contracts, lines, allocations, price lists and their items,
  supply agreements, voucher programmes): each historical record becomes an event, with the
  history's user and change reason.
- Other money-relevant models (invoices, payments, credit notes, the credit ledger, vouchers and
  their ledger, settlements, billing runs, line tiers, partner API keys, customer memberships,
  webhook endpoints when ``apps.webhooks`` is installed): their saves and deletes, the old values
  read just before the save.
- Staff roles: a user's groups changing, and ``is_staff`` / ``is_superuser`` / ``is_active``.

``QuerySet.update`` and ``bulk_create`` send no signals: code that changes an audited row that way
calls ``apps.audit.services.audit_record`` itself. One such change is caught from the admin's own
log: revoking partner API keys (an admin action over ``QuerySet.update``) writes a log entry per
key, and that entry becomes the audit event.
"""

from __future__ import annotations

from django.apps import apps
from django.contrib.auth import get_user_model
from django.db.models.signals import m2m_changed, post_delete, post_save, pre_save
from simple_history.signals import post_create_historical_record

from apps.audit.models import AuditAction
from apps.audit.services import HIDDEN, audit_record, is_secret

HISTORY_MODELS = (
    "contracts.Contract",
    "contracts.ContractLine",
    "contracts.Allocation",
    "contracts.PriceList",
    "contracts.PriceListItem",
    "providers.SupplyAgreement",
    "billing.VoucherProgramme",
)
SAVED_MODELS = (
    "contracts.LineTier",
    "billing.Invoice",
    "billing.Payment",
    "billing.CreditNote",
    "billing.CreditEntry",
    "billing.Voucher",
    "billing.VoucherLedgerEntry",
    "billing.SettlementStatement",
    "billing.BillingRun",
    "metering.PartnerAPIKey",
    "metering.AgentAPIKey",
    "inventory.CardIncident",  # changes by hand (agent reports are bulk-written, with reported_at)
    "accounts.CustomerMembership",
)
# Written by another app that may not be installed yet: audited once it is.
OPTIONAL_MODELS = ("webhooks.WebhookEndpoint", "webhooks.Endpoint")
USER_ROLE_FIELDS = ("is_staff", "is_superuser", "is_active")
# Fields whose new value says why (the reason a service stores on the row itself).
REASON_FIELDS = ("reason", "void_reason", "early_issue_reason", "change_reason", "note")

_history_labels: set[str] = set()
_tracked: dict[type, tuple[str, ...] | None] = {}  # model → the only fields tracked (None: all)


def _fields(model, only: tuple[str, ...] | None):
    for field in model._meta.concrete_fields:
        if field.primary_key or getattr(field, "auto_now", False):
            continue
        if only is not None and field.name not in only:
            continue
        yield field


def _shown(name: str, value):
    return HIDDEN if is_secret(name) and value not in (None, "") else value


def _row(instance, only) -> dict:
    return {f.name: _shown(f.name, getattr(instance, f.attname)) for f in _fields(type(instance), only)}


def _before_save(sender, instance, raw=False, update_fields=None, **kwargs):
    instance._audit_old = None
    if raw or sender not in _tracked or instance._state.adding or instance.pk is None:
        return
    only = _tracked[sender]
    fields = list(_fields(sender, only))
    if update_fields is not None:
        fields = [f for f in fields if f.name in update_fields or f.attname in update_fields]
        if not fields:
            instance._audit_skip = True
            return
    instance._audit_skip = False
    old = sender._base_manager.filter(pk=instance.pk).values(*(f.attname for f in fields)).first()
    instance._audit_old = old


def _same(field, old, new) -> bool:
    try:
        return field.to_python(old) == field.to_python(new)
    except Exception:
        return old == new


def _actor_from_fields(instance, fields, old) -> object | None:
    """A ``*_by`` user this save sets (``issued_by``, ``recorded_by``, ``confirmed_by``…)."""
    for field in fields:
        if field.is_relation and field.name.endswith("_by"):
            value = getattr(instance, field.attname)
            if value is not None and (old is None or old.get(field.attname) != value):
                return getattr(instance, field.name)
    return None


def _reason(instance, changed: dict) -> str:
    given = getattr(instance, "_change_reason", None)
    if given:
        return str(given)
    return "; ".join(str(changed[name]) for name in REASON_FIELDS if changed.get(name))


def _after_save(sender, instance, created, raw=False, **kwargs):
    if raw or sender not in _tracked:
        return
    only = _tracked[sender]
    fields = list(_fields(sender, only))
    if getattr(instance, "_audit_skip", False):
        instance._audit_skip = False
        return
    old = getattr(instance, "_audit_old", None)
    instance._audit_old = None
    if created or old is None:
        if only is not None:
            return  # users: only role changes are money-relevant, not new accounts
        changes = _row(instance, only)
        action = AuditAction.CREATED
    else:
        changes = {}
        # a save with update_fields read (and wrote) only those: the others are not compared, so a
        # deferred field is not loaded and an unsaved one is not recorded as changed
        for field in (f for f in fields if f.attname in old):
            before, after = old[field.attname], getattr(instance, field.attname)
            if not _same(field, before, after):
                changes[field.name] = [_shown(field.name, before), _shown(field.name, after)]
        if not changes:
            return
        action = AuditAction.CHANGED
    # A change is [before, after]; a created row's values are as they are (a list value too).
    reason_source = {k: v[1] for k, v in changes.items()} if action == AuditAction.CHANGED else changes
    audit_record(
        obj=instance,
        action=action,
        changes=changes,
        actor=getattr(instance, "_history_user", None) or _actor_from_fields(instance, fields, old),
        reason=_reason(instance, reason_source),
    )


def _after_delete(sender, instance, **kwargs):
    if sender not in _tracked or _tracked[sender] is not None:
        return
    audit_record(
        obj=instance,
        action=AuditAction.DELETED,
        changes=_row(instance, None),
        actor=getattr(instance, "_history_user", None),
        reason=str(getattr(instance, "_change_reason", "") or ""),
    )


def _after_history(
    sender, instance, history_instance, history_user=None, history_change_reason=None, **kwargs
):
    if instance._meta.label not in _history_labels:
        return
    kind = history_instance.history_type
    action = {"+": AuditAction.CREATED, "-": AuditAction.DELETED}.get(kind, AuditAction.CHANGED)
    changes: dict = {}
    if kind == "~":
        # The record before this one by id: under a frozen clock every record has the same date.
        previous = (
            type(history_instance)
            ._default_manager.filter(
                **{instance._meta.pk.attname: instance.pk}, history_id__lt=history_instance.history_id
            )
            .order_by("-history_id")
            .first()
        )
        if previous is None:  # a row made without history (data migration, bulk): how it is now
            changes = _row(instance, None)
        else:  # every tracked field, editable or not (status, approved by…), but save timestamps
            for field in history_instance.tracked_fields:
                if getattr(field, "auto_now", False) or field.primary_key:
                    continue
                before, after = getattr(previous, field.attname), getattr(history_instance, field.attname)
                if before != after:
                    changes[field.name] = [_shown(field.name, before), _shown(field.name, after)]
    else:
        changes = _row(instance, None)
    audit_record(
        obj=instance,
        action=action,
        changes=changes,
        actor=history_user,
        reason=history_change_reason or "",
        model=type(instance),
    )


def _groups_changed(sender, instance, action, reverse, model, pk_set, **kwargs):
    if action not in ("post_add", "post_remove", "post_clear"):
        return
    user_model = get_user_model()
    if reverse:  # group.user_set.add(user…): one event per user
        users = user_model._base_manager.filter(pk__in=pk_set or ())
        group_names = [instance.name]
    else:
        users = [instance]
        group_names = sorted(model._base_manager.filter(pk__in=pk_set or ()).values_list("name", flat=True))
    verb = {"post_add": "added", "post_remove": "removed", "post_clear": "cleared"}[action]
    for user in users:
        audit_record(
            obj=user,
            action=AuditAction.ROLES_CHANGED,
            changes={"groups": {verb: group_names}},
            model=user_model,
        )


# Admin actions that change rows with QuerySet.update and log each row: model label → field set.
ADMIN_LOGGED = {
    "metering.partnerapikey": {"Revoked.": {"revoked": [False, True]}},
    "metering.agentapikey": {"Revoked.": {"revoked": [False, True]}},
}


def _admin_logged(sender, instance, created, raw=False, **kwargs):
    if raw or not created or instance.content_type_id is None:
        return
    label = f"{instance.content_type.app_label}.{instance.content_type.model}"
    changes = ADMIN_LOGGED.get(label, {}).get(instance.change_message)
    if changes is None:
        return
    obj = instance.get_edited_object()
    audit_record(
        obj=obj,
        action=AuditAction.CHANGED,
        changes=changes,
        actor=instance.user,
        reason=instance.change_message,
    )


def connect() -> None:
    for label in HISTORY_MODELS:
        _history_labels.add(label)
    for label in (*SAVED_MODELS, *OPTIONAL_MODELS):
        try:
            model = apps.get_model(label)
        except LookupError:
            continue
        _tracked[model] = None
    user_model = get_user_model()
    _tracked[user_model] = USER_ROLE_FIELDS
    for model in _tracked:
        pre_save.connect(_before_save, sender=model, dispatch_uid=f"audit-pre-{model._meta.label}")
        post_save.connect(_after_save, sender=model, dispatch_uid=f"audit-post-{model._meta.label}")
        post_delete.connect(_after_delete, sender=model, dispatch_uid=f"audit-del-{model._meta.label}")
    post_create_historical_record.connect(_after_history, dispatch_uid="audit-history")
    post_save.connect(_admin_logged, sender=apps.get_model("admin.LogEntry"), dispatch_uid="audit-admin-log")
    m2m_changed.connect(_groups_changed, sender=user_model.groups.through, dispatch_uid="audit-groups")
