"""The root of every error ama raises, and the exit codes of docs/design.md §6."""

from __future__ import annotations

import errno
import os

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


class EnvironmentFailed(AmaError):
    """The machine refused what a command needs of it: a full disk, a read-only or
    forbidden folder, no file descriptors left. Not a bug of ama's: the fix is the machine's."""

    exit_code = FAILED


# errno -> (what the machine said, what to do about it); {path} is the file it was about.
_ENVIRONMENT: dict[int, tuple[str, str]] = {
    errno.ENOSPC: ("no space left on the disk holding {path}",
                   "free space on that disk and run the command again{store}"),
    errno.EDQUOT: ("your disk quota is used up, writing {path}",
                   "free space within your quota and run the command again{store}"),
    errno.EROFS: ("{path} is on a read-only file system",
                  "run the command where it may write, or remount that file system"),
    errno.EACCES: ("permission denied: {path}",
                   "check who owns {path} and its folder (ls -ld), or run as that user"),
    errno.EPERM: ("operation not permitted: {path}",
                  "check who owns {path} and its folder (ls -ld), or run as that user"),
    errno.EMFILE: ("too many files open at once in this process",
                   "raise the limit (ulimit -n 4096) and run the command again"),
    errno.ENFILE: ("too many files open on this machine",
                   "close other programs' files, or raise fs.file-max, and run the command "
                   "again"),
    errno.EIO: ("the disk failed to read or write {path}",
                "check the disk (dmesg); the file may be damaged"),
}
# The errnos of a disk (or a quota) with no room left: what a write of any size meets.
DISK_FULL = frozenset({errno.ENOSPC, errno.EDQUOT})
# The same, where the error names no file.
_NO_PATH = {errno.ENOSPC: "no space left on a disk the command writes to",
            errno.EDQUOT: "your disk quota is used up"}


def environment_error(error: OSError, store: str | None = None) -> EnvironmentFailed | None:
    """Return ``error`` as an :class:`EnvironmentFailed` naming its file and the fix, or None
    when it is not one the machine's state explains (a bug, to be shown as one). ``store``
    is the asset store's folder: a full disk under it gets ``ama store gc`` as a way out."""
    # The file system's own errors only: an SSL or a resolver error carries an errno of
    # another meaning, and a ConnectionError is the network's.
    if type(error) not in (OSError, PermissionError) or error.errno not in _ENVIRONMENT:
        return None
    message, hint = _ENVIRONMENT[error.errno]
    full = error.errno in DISK_FULL
    # A copy's or a rename's second name is the one written: what a full disk is about.
    path = os.fsdecode((error.filename2 if full else None) or error.filename or "")
    if full and path and not os.path.lexists(path):
        path = os.path.dirname(path)  # a temp file, removed: its folder says where
    way_out = ""
    where, home = os.path.abspath(path), os.path.abspath(store or "/")
    if full and store and path and (where == home or where.startswith(home + os.sep)):
        path = f"the asset store {store}"  # which of its files says nothing to the user
        way_out = ("; `ama store gc` removes what no version in this store needs, and "
                   "AMA_HOME can name a store on a larger disk")
    if not path and "{path}" in message:
        if not full:
            return None  # no file to name: nothing a user can check, so shown as a bug
        message = _NO_PATH[error.errno]
    return EnvironmentFailed(message.format(path=path),
                             hint.format(path=path, store=way_out))
