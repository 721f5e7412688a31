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
    "DatabaseFull",
    "NotStored",
    "Forbidden",
    "NotFound",
    "ObjectCorrupt",
    "PayloadTooLarge",
    "StillVerifying",
    "Unauthenticated",
    "UnsupportedMediaType",
    "ValidationFailed",
    "http_status",
]


class ObjectCorrupt(NotFound):
    """A stored object whose bytes no longer hash to its id: the project no longer holds a
    good copy, so it is answered (404) and recorded as not held until it is uploaded again."""

    def __init__(self, oid: str, project: str, detail: str) -> None:
        super().__init__(
            f"object {oid} of project {project!r} is corrupt in the server's storage "
            f"({detail}); it is no longer served",
            "upload it again if you have it ('ama upload'), and tell the server's "
            "administrator to run 'ama-server fsck'")
        self.oid = oid


class DatabaseFull(AmaError):
    """The disk (or quota) of the remote's database is full: the request's transaction was
    rolled back, so nothing of it was recorded. Answered 507, not retried: asking again at
    once cannot succeed. Names no path or URL (a database URL may hold a password)."""

    http_status = 507

    def __init__(self) -> None:
        super().__init__(
            "the remote's database is full: no space is left on its disk, so nothing of "
            "this was recorded",
            "free space on the disk of the remote's database (its administrator can), then "
            "run the command again")


class NotStored(AmaError):
    """Objects a commit names that their storage could not hold (it filled while their
    parts were joined; the parts are kept): answered 507, as the verify of them was."""

    http_status = 507

    def __init__(self, count: int, manifest: str, why: str) -> None:
        super().__init__(
            f"{count} object(s) reachable from manifest {manifest} could not be stored: {why}",
            "free space where the remote stores (its administrator can), then run the upload "
            "again: it sends nothing again")


class StillVerifying(AmaError):
    """A commit names objects whose bytes the server is still hashing (uploads in parts are
    verified after their last request): answered 503 with a Retry-After, which clients
    retry with backoff; the version is never recorded before they are verified."""

    http_status = 503
    retry_after = 2

    def __init__(self, ids: list[str], manifest: str) -> None:
        super().__init__(
            f"{len(ids)} object(s) reachable from manifest {manifest} are still being "
            f"verified by the server, such as {ids[0]}; retry in a moment",
            "run the upload again in a moment: it sends nothing again")
        self.problems = [f"verifying object {oid}" for oid in ids]


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
