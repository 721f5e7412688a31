"""The root of every error ama raises, and the exit codes of DESIGN §6."""

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


class BadInput(AmaError):
    """Input that can never be valid: a malformed id, name or object."""

    exit_code = BAD_INPUT


class NotFound(AmaError):
    """Something named does not exist."""

    exit_code = NOT_FOUND
