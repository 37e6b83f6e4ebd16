"""Domain errors: services raise these; the API and admin turn them into messages users can read."""

from __future__ import annotations


class DomainError(Exception):
    """A business rule said no. ``code`` is stable (API clients match on it)."""

    code = "domain_error"
    http_status = 400

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        fields: dict | None = None,
        http_status: int | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        if code:
            self.code = code
        if http_status:
            self.http_status = http_status
        self.fields = fields or {}


class InvalidState(DomainError):
    """The object is not in a state that allows this action (409)."""

    code = "invalid_state"
    http_status = 409


class Conflict(DomainError):
    code = "conflict"
    http_status = 409
