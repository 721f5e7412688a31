"""The errors the remote raises, each with its HTTP status and its command-line exit code.

``ama.plumbing.errors.NotFound`` (404, exit 3) and ``BadInput`` (400, exit 2) are reused as
they are; the app maps every class here to its ``http_status`` in one place.
"""

from __future__ import annotations

from ama.plumbing.errors import (
    BAD_INPUT,
    FAILED,
    NOT_ALLOWED,
    AmaError,
    BadInput,
    NotFound,
)

__all__ = [
    "AmaError",
    "BadInput",
    "Conflict",
    "Forbidden",
    "NotFound",
    "PayloadTooLarge",
    "Unauthenticated",
    "UnsupportedMediaType",
    "ValidationFailed",
    "http_status",
]


class Unauthenticated(AmaError):
    """No token, or a token that is unknown, expired, revoked or belongs to a disabled user."""

    exit_code = NOT_ALLOWED
    http_status = 401


class Forbidden(AmaError):
    """The caller is a member of the project but their role does not allow this."""

    exit_code = NOT_ALLOWED
    http_status = 403


class Conflict(AmaError):
    """A compare-and-swap lost: ``latest`` is the asset's latest version now (or None)."""

    exit_code = FAILED
    http_status = 409

    def __init__(self, message: str, hint: str | None = None, latest: str | None = None) -> None:
        super().__init__(message, hint)
        self.latest = latest


class ValidationFailed(AmaError):
    """A request that is well formed but breaks a rule: ``problems`` names each broken one."""

    exit_code = FAILED
    http_status = 422

    def __init__(
        self, message: str, hint: str | None = None, problems: list[str] | None = None
    ) -> None:
        super().__init__(message, hint)
        self.problems = list(problems or [])


class PayloadTooLarge(AmaError):
    """A request body larger than the server accepts."""

    exit_code = BAD_INPUT
    http_status = 413


class UnsupportedMediaType(AmaError):
    """A request body of a content type the endpoint does not take."""

    exit_code = BAD_INPUT
    http_status = 415


_STATUS: dict[type[AmaError], int] = {NotFound: 404, BadInput: 400}


def http_status(error: AmaError) -> int:
    """Return the HTTP status for ``error``: its own, or 404/400 for the reused plumbing errors."""
    status = getattr(error, "http_status", None)
    if isinstance(status, int):
        return status
    for cls, code in _STATUS.items():
        if isinstance(error, cls):
            return code
    return 500
