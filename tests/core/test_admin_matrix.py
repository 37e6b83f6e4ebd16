"""Every registered admin model × every admin URL it exposes × every role and a customer user.

The test enumerates ``admin.site._registry`` and each admin's own URLs, so a model admin or a
custom view added later is walked without touching this file. Against the demo it asserts, for
GET and POST:

- no write without the permission: a POST that the user's role does not allow, or that targets a
  row outside the user's scope, or a state-guarded row (a contract past drafting, its lines and
  allocations), writes nothing — measured by PostgreSQL's own per-transaction write counters
  (``pg_stat_xact_user_tables``), so even a write that is undone later in the request shows;
- no view of rows outside the user's scope: changelists list only rows in scope, and every
  object URL (change, delete, history, a past version, custom views) of a row out of scope
  answers 404 or sends the user away;
- a past version is never written (history revert is off for everyone);
- no answer is a 500, and users who are not staff are sent to the login page.

The scope is stated here, independently of the code under test: rows that belong to a contract
are visible to an account manager only on the contracts they manage; sales managers, finance
and operations see every row their role may view.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

import pytest
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.contrib.contenttypes.models import ContentType
from django.db import connection, models
from django.urls import reverse
from simple_history.admin import SimpleHistoryAdmin

from apps.accounts import roles
from apps.contracts.models import Contract, ContractLine, ContractStatus
from apps.customers.models import Customer
from tests.admin_forms import form_fields

pytestmark = pytest.mark.django_db

USERS = ("am1", "sales1", "finance1", "ops1", "acme-user")
STANDARD_VIEWS = {"changelist", "add", "change", "delete", "history", "simple_history"}
ALL_ROWS_ROLES = {roles.SALES_MANAGER, roles.FINANCE, roles.OPERATIONS}


def registered_models():
    return sorted(admin.site._registry, key=lambda model: model._meta.label)


# -- the oracle ---------------------------------------------------------------------------------


def contract_of(obj) -> Contract | None:
    """The contract a row belongs to, found through its fields (so new models are covered)."""
    if isinstance(obj, Contract):
        return obj
    for field in obj._meta.concrete_fields:
        if field.is_relation and field.related_model in (Contract, ContractLine):
            related = getattr(obj, field.name)
            if related is not None:
                return related if isinstance(related, Contract) else related.contract
    return None


def in_scope(user, obj) -> bool:
    contract = contract_of(obj)
    if contract is None or user.is_superuser:
        return True
    if set(user.groups.values_list("name", flat=True)) & ALL_ROWS_ROLES:
        return True
    return contract.account_manager_id == user.pk


def guarded(obj) -> bool:
    contract = contract_of(obj)
    return contract is not None and contract.status != ContractStatus.DRAFT


def model_perms(user, model) -> set[str]:
    """The actions the user's roles grant on ``model`` (view, add, change, delete, custom ones)."""
    content_type = ContentType.objects.get_for_model(model, for_concrete_model=False)
    codenames = Permission.objects.filter(content_type=content_type).values_list("codename", flat=True)
    label = model._meta.app_label
    return {codename for codename in codenames if user.has_perm(f"{label}.{codename}")}


def may_write(perms: set[str], model) -> bool:
    return bool(perms - {f"view_{model._meta.model_name}"})


# -- the world ----------------------------------------------------------------------------------


def sample_rows(model) -> list:
    """Rows to aim at: for contract rows, am1's, am2's active one and a draft; else the first."""
    qs = model._default_manager.order_by("pk")
    if contract_of_model(model):
        path = contract_path(model)
        picks = [
            qs.filter(**{f"{path}account_manager__username": "am1"}).first(),
            qs.filter(
                **{f"{path}account_manager__username": "am2", f"{path}status": ContractStatus.ACTIVE}
            ).first(),
            qs.filter(**{f"{path}status": ContractStatus.DRAFT}).first(),
        ]
        return [row for row in dict.fromkeys(picks) if row is not None]
    history = getattr(model, "history", None)
    with_history = qs.filter(pk__in=history.values(model._meta.pk.attname)) if history is not None else qs
    first = with_history.first() or qs.first()
    return [first] if first is not None else []


def contract_path(model) -> str:
    if model is Contract:
        return ""
    for field in model._meta.concrete_fields:
        if field.is_relation and field.related_model is Contract:
            return f"{field.name}__"
        if field.is_relation and field.related_model is ContractLine:
            return f"{field.name}__contract__"
    return ""


def contract_of_model(model) -> bool:
    return model is Contract or bool(contract_path(model))


def writes() -> dict[str, int]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT relname, n_tup_ins + n_tup_upd + n_tup_del FROM pg_stat_xact_user_tables "
            "WHERE relname <> 'django_session'"
        )
        return dict(cursor.fetchall())


def written(before: dict[str, int]) -> list[str]:
    after = writes()
    return sorted(table for table, count in after.items() if count != before.get(table, 0))


def mutated(payload: dict, model) -> dict:
    """The payload with one of the model's own fields changed, so an allowed save would write."""
    data = dict(payload)
    for field in model._meta.concrete_fields:
        value = data.get(field.name)
        if not isinstance(value, str) or field.is_relation or field.choices:
            continue
        if isinstance(field, models.DecimalField | models.IntegerField):
            try:
                data[field.name] = str(Decimal(value or "0") + 1)
            except InvalidOperation:
                continue
            return data
        if isinstance(field, models.CharField | models.TextField):
            data[field.name] = f"{value}-probe"
            return data
    return data


class Walk:
    """One model admin walked by one user; problems collected as readable lines."""

    def __init__(self, client, model, username: str, superuser_client) -> None:
        self.client = client
        self.model = model
        self.model_admin = admin.site._registry[model]
        self.user = get_user_model().objects.get(username=username)
        self.perms = model_perms(self.user, model)
        self.opts = model._meta
        self.prefix = f"admin:{self.opts.app_label}_{self.opts.model_name}"
        self.superuser_client = superuser_client
        self.problems: list[str] = []
        client.force_login(self.user)

    def fail(self, what: str) -> None:
        self.problems.append(f"{self.user.username} {self.opts.label}: {what}")

    def can(self, action: str) -> bool:
        return f"{action}_{self.opts.model_name}" in self.perms

    def request(self, method: str, url: str, data=None):
        response = getattr(self.client, method)(url, data or {})
        if response.status_code >= 500:
            self.fail(f"{method.upper()} {url} answered {response.status_code}")
        if not self.user.is_staff and not (response.status_code == 302 and "/admin/login/" in response.url):
            self.fail(f"{method.upper()} {url} answered {response.status_code} to a non-staff user")
        return response

    def post_writes_nothing(self, url: str, data: dict, why: str) -> None:
        before = writes()
        response = self.request("post", url, data)
        tables = written(before)
        if tables:
            self.fail(f"POST {url} ({why}) answered {response.status_code} and wrote {tables}")

    def custom_urls(self):
        for pattern in self.model_admin.get_urls():
            name = getattr(pattern, "name", None)
            if not name or name.removeprefix(f"{self.opts.app_label}_{self.opts.model_name}_") in (
                STANDARD_VIEWS
            ):
                continue
            yield name, set(getattr(pattern.pattern, "converters", {}))

    # -- the walk --

    def run(self) -> None:
        self.walk_model_urls()
        for row in sample_rows(self.model):
            self.walk_row(row)

    def walk_model_urls(self) -> None:
        changelist = reverse(f"{self.prefix}_changelist")
        response = self.request("get", changelist)
        if self.user.is_staff:
            if not (self.can("view") or self.can("change")):
                if response.status_code != 403:
                    self.fail(f"changelist answered {response.status_code} without view permission")
            elif response.status_code == 200:
                outside = [row for row in response.context["cl"].result_list if not in_scope(self.user, row)]
                if outside:
                    self.fail(f"changelist lists rows out of scope: {outside[:3]}")
        if not self.can("add"):
            add = reverse(f"{self.prefix}_add")
            if self.request("get", add).status_code == 200:
                self.fail("add page shown without add permission")
            self.post_writes_nothing(add, {}, "add without permission")
        for name, params in self.custom_urls():
            if params - {"customer_pk"}:
                continue
            kwargs = {"customer_pk": Customer.objects.order_by("pk").first().pk} if params else {}
            url = reverse(f"admin:{name}", kwargs=kwargs)
            self.request("get", url)
            if not may_write(self.perms, self.model):
                self.post_writes_nothing(url, {}, "custom view without write permission")

    def walk_row(self, row) -> None:
        scoped = in_scope(self.user, row)
        readable = self.can("view") or self.can("change")
        object_urls = [
            reverse(f"{self.prefix}_change", args=[row.pk]),
            reverse(f"{self.prefix}_delete", args=[row.pk]),
            reverse(f"{self.prefix}_history", args=[row.pk]),
        ]
        version = self.past_version(row)
        if version is not None:
            object_urls.append(reverse(f"{self.prefix}_simple_history", args=[row.pk, version]))
        object_urls += [
            reverse(f"admin:{name}", kwargs={"pk": row.pk})
            for name, params in self.custom_urls()
            if params == {"pk"}
        ]
        for url in object_urls:
            response = self.request("get", url)
            if not self.user.is_staff:
                continue
            if not scoped and response.status_code == 200:
                self.fail(f"GET {url} shows a row out of scope")
            if scoped and not readable and response.status_code == 200 and "/delete/" not in url:
                self.fail(f"GET {url} answered 200 without view permission")

        payload = self.change_payload(row)
        reasons = []
        if not scoped:
            reasons.append("row out of scope")
        if guarded(row):
            reasons.append("contract past drafting")
        if not self.can("change"):
            reasons.append("no change permission")
        if reasons:
            self.post_writes_nothing(object_urls[0], payload, ", ".join(reasons))
        if version is not None:
            self.post_writes_nothing(object_urls[3], payload, "revert from history")

        delete_reasons = [r for r in reasons if r != "no change permission"]
        if not self.can("delete"):
            delete_reasons.append("no delete permission")
        if delete_reasons:
            why = ", ".join(delete_reasons)
            self.post_writes_nothing(object_urls[1], {"post": "yes"}, f"delete: {why}")
            self.post_writes_nothing(
                reverse(f"{self.prefix}_changelist"),
                {"action": "delete_selected", "_selected_action": [row.pk], "post": "yes"},
                f"delete selected: {why}",
            )
        if not scoped or not may_write(self.perms, self.model):
            why = "row out of scope" if not scoped else "no write permission"
            for url in object_urls[4 if version is not None else 3 :]:
                self.post_writes_nothing(url, payload, f"custom view: {why}")
            for action in self.action_names():
                self.post_writes_nothing(
                    reverse(f"{self.prefix}_changelist"),
                    {"action": action, "_selected_action": [row.pk], "post": "yes"},
                    f"action {action}: {why}",
                )

    def past_version(self, row):
        if not isinstance(self.model_admin, SimpleHistoryAdmin):
            return None
        first = self.model.history.filter(**{self.opts.pk.attname: row.pk}).order_by("history_id").first()
        return None if first is None else first.history_id

    def change_payload(self, row) -> dict:
        page = self.superuser_client.get(reverse(f"{self.prefix}_change", args=[row.pk]))
        if page.status_code >= 500:
            self.fail(f"the change page of {row!r} answered {page.status_code} to the platform admin")
        if page.status_code != 200:
            return {}
        return mutated(form_fields(page.content.decode(), f"{self.opts.model_name}_form"), self.model)

    def action_names(self):
        request = type("R", (), {"user": get_user_model().objects.get(username="admin"), "GET": {}})()
        return sorted(self.model_admin.get_actions(request))


@pytest.fixture
def superuser_client(client_class):
    superuser = client_class()
    superuser.force_login(get_user_model().objects.get(username="admin"))
    return superuser


@pytest.fixture
def client_class():
    from django.test import Client

    return Client


@pytest.mark.parametrize("model", registered_models(), ids=lambda model: model._meta.label)
def test_admin_model_for_every_role(model, client, superuser_client, demo):
    problems = []
    for username in USERS:
        walk = Walk(client, model, username, superuser_client)
        walk.run()
        problems += walk.problems
    assert not problems, "\n".join(problems)


def test_the_matrix_sees_a_write_that_is_allowed(client, superuser_client, demo):
    """The harness's own control: the platform admin's change of a draft writes, and is seen."""
    draft = Contract.objects.filter(status=ContractStatus.DRAFT).order_by("pk").first()
    walk = Walk(superuser_client, Contract, "admin", superuser_client)
    payload = walk.change_payload(draft)
    before_values = (draft.notes, draft.minimum_monthly_amount)
    before = writes()
    response = superuser_client.post(reverse("admin:contracts_contract_change", args=[draft.pk]), payload)
    assert response.status_code == 302
    assert "contracts_contract" in written(before)
    draft.refresh_from_db()
    assert (draft.notes, draft.minimum_monthly_amount) != before_values


def test_the_matrix_covers_every_registered_admin():
    covered = registered_models()
    assert len(covered) == len(admin.site._registry) >= 30
    assert {model._meta.label for model in covered} >= {
        "contracts.Contract",
        "contracts.ContractLine",
        "contracts.Allocation",
        "billing.Invoice",
        "customers.Customer",
        "providers.SupplyAgreement",
    }
