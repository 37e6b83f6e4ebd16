"""Assertions shared by the API tests."""

from __future__ import annotations


def assert_error(response, status: int, code: str, field: str | None = None) -> dict:
    """The response is the JSON error shape with ``code``, naming ``field`` when given."""
    assert response.status_code == status, response.content
    body = response.json()
    assert set(body) == {"code", "message", "fields"}, body
    assert body["code"] == code, body
    assert body["message"]
    if field is not None:
        assert field in body["fields"], body
    return body
