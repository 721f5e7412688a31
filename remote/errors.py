"""The errors the remote raises, each with its HTTP status and its command-line exit code.

``ama.plumbing.errors.NotFound`` (404, exit 3) and ``BadInput`` (400, exit 2) are reused as
they are; the app maps every class here to its ``http_status`` in one place.
"""

from __future__ import annotations

from ama.plumbing.errors import (
    AmaError,
    BadInput,
    Conflict,
    Forbidden,
    NotFound,
    PayloadTooLarge,
    Unauthenticated,
    UnsupportedMediaType,
    ValidationFailed,
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


_STATUS: dict[type[AmaError], int] = {
    Unauthenticated: 401,
    Forbidden: 403,
    Conflict: 409,
    ValidationFailed: 422,
    PayloadTooLarge: 413,
    UnsupportedMediaType: 415,
    NotFound: 404,
    BadInput: 400,
}


def http_status(error: AmaError) -> int:
    """Return the HTTP status for ``error``: its own, or 404/400 for the reused plumbing errors."""
    status = getattr(error, "http_status", None)
    if isinstance(status, int):
        return status
    for cls, code in _STATUS.items():
        if isinstance(error, cls):
            return code
    return 500
