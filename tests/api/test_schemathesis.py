"""Generated requests against the live OpenAPI document (docs/api.md#schema-testing).

schemathesis reads the schema drf-spectacular builds from the code, generates valid requests for
every operation (path ids, filters, bodies; random ids, and ids 1 and 2 that reach demo rows) and
invalid ones (wrong types, missing fields, out-of-range values), and sends them in-process through
Django's WSGI application as a staff user (the demo's superuser) and as a customer user
(acme-user), each with a token. Every answer must:

- never be a 5xx;
- have a status the schema documents for the operation, a documented content type, and a body
  that matches the documented shape (nullable where null comes back, required where it is always
  there);
- for an error (4xx), be the error shape ``{"code", "message", "fields"}`` (the usage batch error
  adds ``errors``).

Hypothesis is derandomized (the same cases on every run) and keeps no example database. Each call
runs in a savepoint that is rolled back, so the demo data every case sees is the same and a
request that leaves the transaction unusable cannot spoil the next one.
"""

from __future__ import annotations

import json
import time

import pytest
import schemathesis
from django.core.handlers.wsgi import WSGIHandler
from django.core.signals import request_finished, request_started
from django.db import DatabaseError, close_old_connections, transaction
from drf_spectacular.generators import SchemaGenerator
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from rest_framework.authtoken.models import Token
from schemathesis import GenerationMode
from schemathesis import checks as st_checks

from apps.accounts.models import User

pytestmark = pytest.mark.django_db

EXAMPLES_PER_OPERATION = 4  # × ~95 operations × 2 users; operations with few inputs draw fewer
# Random ids mostly miss; these reach the demo's first rows (most tables have ids 1 and 2).
KNOWN_IDS = (1, 2)
EXAMPLES_PER_KNOWN_ID = 2
# Invalid inputs (wrong types, missing fields, out-of-range values): a 4xx in the error shape.
NEGATIVE_EXAMPLES_PER_OPERATION = 2
MIN_CASES = 1000
CHECKS = [
    st_checks.not_a_server_error,
    st_checks.status_code_conformance,
    st_checks.content_type_conformance,
    st_checks.response_schema_conformance,
]
ERROR_KEYS = {"code", "message", "fields"}
USAGE_BATCH_ERROR_KEYS = ERROR_KEYS | {"errors"}


def _schema() -> schemathesis.BaseSchema:
    document = SchemaGenerator().get_schema(request=None, public=True)
    document = json.loads(json.dumps(document, default=str))  # lazy strings and the like, as served
    schema = schemathesis.openapi.from_dict(document)
    schema.app = WSGIHandler()
    return schema


def _error_shape_problem(response) -> str | None:
    """Why a 4xx body is not ``{"code", "message", "fields"}`` (None when it is)."""
    if response.status_code < 400:
        return None
    try:
        body = json.loads(response.content or b"null")
    except ValueError:
        return f"not JSON: {response.content[:200]!r}"
    if not isinstance(body, dict):
        return f"not an object: {body!r}"
    allowed = USAGE_BATCH_ERROR_KEYS if "errors" in body else ERROR_KEYS
    if not ERROR_KEYS <= set(body) <= allowed:
        return f"keys {sorted(body)}"
    if not (isinstance(body["code"], str) and body["code"] and isinstance(body["message"], str)):
        return f"code/message {body!r}"
    if not isinstance(body["fields"], dict):
        return f"fields {body['fields']!r}"
    return None


def _summary(failure: BaseException) -> str:
    """The checks that failed, in a line each (schemathesis groups them)."""
    parts = getattr(failure, "exceptions", None) or [failure]
    return " | ".join(" ".join(str(part).split())[:400] for part in parts)


def _run(schema, token: str) -> tuple[int, list[str]]:
    """Every operation's generated cases with ``token``: (cases sent, problems found)."""
    headers = {"Authorization": f"Token {token}"}
    sent = 0
    problems: list[str] = []

    def run_operation(operation, path_parameters, examples, mode=GenerationMode.POSITIVE):
        @settings(
            max_examples=examples,
            derandomize=True,
            database=None,
            deadline=None,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        @given(case=operation.as_strategy(mode, path_parameters=path_parameters))
        def send(case):
            nonlocal sent
            sent += 1
            savepoint = transaction.savepoint()
            try:
                response = case.call(headers=headers)
            finally:
                try:
                    transaction.savepoint_rollback(savepoint)
                except DatabaseError:  # pragma: no cover - a broken savepoint is itself a finding
                    problems.append(f"{operation.label}: the transaction was left unusable")
            label = f"{case.method} {case.formatted_path} {case.query or ''} -> {response.status_code}"
            try:
                case.validate_response(response, checks=CHECKS, headers=headers)
            except (Exception, BaseExceptionGroup) as failure:  # every failure is collected
                problems.append(f"{label}: {_summary(failure)}")
                return
            problem = _error_shape_problem(response)
            if problem:
                problems.append(f"{label}: error body {problem}")

        try:
            send()
        except Unsatisfiable:  # nothing in the operation can be made invalid (no parameters, no body)
            assert mode == GenerationMode.NEGATIVE, operation.label

    for result in schema.get_all_operations():
        operation = result.ok()
        run_operation(operation, None, EXAMPLES_PER_OPERATION)
        run_operation(operation, None, NEGATIVE_EXAMPLES_PER_OPERATION, GenerationMode.NEGATIVE)
        ids = [
            p.name
            for p in operation.path_parameters
            if p.definition.get("schema", {}).get("type") == "integer"
        ]
        if ids and len(ids) == len(operation.path_parameters):
            for known in KNOWN_IDS:
                run_operation(operation, dict.fromkeys(ids, known), EXAMPLES_PER_KNOWN_ID)
    return sent, problems


@pytest.fixture
def keep_connection():
    """The test's transaction must outlive each request: Django closes the connection when a
    request ends (as its test client, the WSGI handler is kept from doing so)."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.fixture
def tokens(demo, keep_connection):
    staff = User.objects.get(username="admin")
    customer = User.objects.get(username="acme-user")
    return {
        "staff": Token.objects.get_or_create(user=staff)[0].key,
        "customer": Token.objects.get_or_create(user=customer)[0].key,
    }


def test_generated_requests_as_staff_and_customer_get_documented_answers(tokens):
    schema = _schema()
    started = time.monotonic()
    sent_staff, problems_staff = _run(schema, tokens["staff"])
    sent_customer, problems_customer = _run(schema, tokens["customer"])
    elapsed = time.monotonic() - started

    problems = [f"staff: {p}" for p in problems_staff] + [f"customer: {p}" for p in problems_customer]
    assert not problems, f"{len(problems)} problems:\n" + "\n".join(problems[:60])
    assert sent_staff + sent_customer >= MIN_CASES, (sent_staff, sent_customer)
    print(f"schemathesis: {sent_staff} staff + {sent_customer} customer cases in {elapsed:.1f} s")
