"""The root of every error ama raises, and the exit codes of docs/design.md §6."""

from __future__ import annotations

OK = 0
FAILED = 1
BAD_INPUT = 2
NOT_FOUND = 3
NOT_ALLOWED = 4
UNREACHABLE = 5


class AmaError(Exception):
    """An error a user can act on: what went wrong, and (where there is one) what to do next.

    Subclasses set ``exit_code``; the command line prints ``ama: error: <message>`` and
    ``hint: <hint>`` once, and the remote maps the same classes to HTTP statuses once.
    """

    exit_code = FAILED

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message


def path_list(paths: list[str], most: int = 20) -> str:
    """Paths for an error message: one per line, indented, the first ``most`` of them and
    then how many more there are."""
    lines = "\n".join(f"  {p}" for p in paths[:most])
    more = f"\n  … and {len(paths) - most} more" if len(paths) > most else ""
    return lines + more


class BadInput(AmaError):
    """Input that can never be valid: a malformed id, name or object."""

    exit_code = BAD_INPUT


class NotFound(AmaError):
    """Something named does not exist."""

    exit_code = NOT_FOUND


# The errors of the remote protocol, raised alike by the service layer (in process, for a
# file:// remote) and by the HTTP transport (decoding a server's answer), so callers handle
# one set whatever the remote. The server maps each to its HTTP status in one place
# (ama_remote.errors.http_status).


class Unauthenticated(AmaError):
    """No token, or a token that is unknown, expired, revoked or belongs to a disabled user."""

    exit_code = NOT_ALLOWED


class Forbidden(AmaError):
    """The caller's role in the project does not allow this, or a transfer link was refused."""

    exit_code = NOT_ALLOWED


class Conflict(AmaError):
    """A compare-and-swap lost: ``latest`` is the asset's latest version now (or None)."""

    exit_code = FAILED

    def __init__(self, message: str, hint: str | None = None, latest: str | None = None) -> None:
        super().__init__(message, hint)
        self.latest = latest


class ValidationFailed(AmaError):
    """A well-formed request that breaks a rule: ``problems`` names each broken one."""

    exit_code = FAILED

    def __init__(self, message: str, hint: str | None = None,
                 problems: list[str] | None = None) -> None:
        super().__init__(message, hint)
        self.problems = list(problems or [])


class PayloadTooLarge(AmaError):
    """A request or object larger than the remote accepts."""

    exit_code = BAD_INPUT


class UnsupportedMediaType(AmaError):
    """A request body of a content type the endpoint does not take."""

    exit_code = BAD_INPUT
