"""What the OpenAPI document says about every operation, added after drf-spectacular built it
(``SPECTACULAR_SETTINGS["POSTPROCESSING_HOOKS"]``; docs/api.md#schema-testing).

Each view documents its own success and domain answers; the answers every operation can give
for reasons outside the view are added here, all with the error body ``{code, message, fields}``:

- 400 on every read with query parameters (a junk filter value, a NUL character in a search);
- 401 and 403 everywhere (no valid credentials, or not allowed);
- 404 on every operation with a path parameter or a page (an unknown id, a page past the end);
- 413 and 415 wherever a request body is taken (over the size limit, not JSON);
- 429 wherever throttling is configured (``Retry-After`` says when to come back).

Fields that some callers do not get (``Contract.notes`` is staff-only) are not ``required``.
"""

from __future__ import annotations

from django.conf import settings

ERROR_REF = {"$ref": "#/components/schemas/Error"}
# Component → fields the response omits for some callers.
OMITTED_FOR_SOME_CALLERS = {"Contract": ["notes"]}
_DESCRIPTIONS = {
    "400": "Invalid input (a filter value, a field).",
    "401": "No valid credentials.",
    "403": "Not allowed for this caller.",
    "404": "No such object (or not the caller's), or no such page.",
    "413": "The request body is too large.",
    "415": "The body is not JSON.",
    "429": "Too many requests; `Retry-After` says when to come back.",
}
_RETRY_AFTER = {"Retry-After": {"schema": {"type": "integer"}, "description": "Seconds to wait."}}
_METHODS = {"get", "post", "put", "patch", "delete"}


def _error(status: str) -> dict:
    response = {"description": _DESCRIPTIONS[status], "content": {"application/json": {"schema": ERROR_REF}}}
    if status == "429":
        response["headers"] = _RETRY_AFTER
    return response


def _statuses(method: str, operation: dict, *, throttled: bool) -> list[str]:
    parameters = operation.get("parameters", [])
    statuses = []
    if method == "get" and any(p.get("in") == "query" for p in parameters):
        statuses.append("400")
    statuses += ["401", "403"]
    if any(p.get("in") == "path" for p in parameters) or any(
        p.get("name") in ("page", "cursor") for p in parameters
    ):
        statuses.append("404")
    if "requestBody" in operation:
        statuses += ["400", "413", "415"]
    if throttled:
        statuses.append("429")
    return statuses


def add_common_answers(result, generator, request, public):
    """drf-spectacular postprocessing hook (see the module doc)."""
    schemas = result.setdefault("components", {}).setdefault("schemas", {})
    if "Error" not in schemas:
        return result
    throttled = bool(settings.REST_FRAMEWORK.get("DEFAULT_THROTTLE_CLASSES"))
    for methods in result.get("paths", {}).values():
        for method, operation in methods.items():
            if method not in _METHODS:
                continue
            responses = operation.setdefault("responses", {})
            for status in _statuses(method, operation, throttled=throttled):
                responses.setdefault(status, _error(status))
    for name, fields in OMITTED_FOR_SOME_CALLERS.items():
        component = schemas.get(name)
        if component and "required" in component:
            component["required"] = [f for f in component["required"] if f not in fields]
    return result
