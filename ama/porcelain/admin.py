"""``ama admin``: users, roles, tokens and the audit log of a remote, as its admins see
them. The remote checks every request (ama-protocol(7), ADMINISTRATION); this module only
names the project and turns times into what the remote reads."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from typing import TypedDict

from ama.plumbing import wire
from ama.plumbing.errors import BadInput
from ama.porcelain.config import Config
from ama.porcelain.remotes import open_remote

_AGO = re.compile(r"^(\d{1,6})([smhdw])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def moment(text: str | None, name: str,
           now: datetime | None = None) -> str | None:
    """Return the time ``text`` names as the remote reads it (``2026-12-01T16:00:00Z``):
    an age such as ``7d``, ``12h``, ``30m``, ``90s`` or ``2w`` before ``now``, or a date or
    time given as such (passed on). Raises BadInput naming option ``name``."""
    if text is None:
        return None
    found = _AGO.match(text.strip())
    if found:
        ago = timedelta(**{_UNITS[found.group(2)]: int(found.group(1))})
        at = (now or datetime.now(timezone.utc)) - ago
        return at.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    try:
        datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith("Z") else text)
    except ValueError:
        raise BadInput(f"--{name} {text!r} is neither an age (7d, 12h, 30m) nor a date or "
                       "time (2026-12-01, 2026-12-01T16:00:00Z)",
                       f"run 'ama admin audit --help' for the forms --{name} takes") from None
    return text


def users(config: Config, remote: str | None = None) -> list[wire.AdminUser]:
    """Every user of the remote, with their roles (server admins)."""
    transport, _info = open_remote(config, remote)
    return transport.users()


def members(config: Config, project: str, remote: str | None = None) -> list[wire.Member]:
    """The members of ``project`` with their role (its admins)."""
    transport, _info = open_remote(config, remote)
    return transport.members(project)


def set_active(config: Config, username: str, active: bool,
               remote: str | None = None) -> wire.User:
    """Activate or disable ``username`` (server admins); return the user."""
    transport, _info = open_remote(config, remote)
    return transport.set_user_active(username, active)


class Membership(TypedDict):
    """A user of a project: whose role ``ama admin revoke`` took away, and where."""

    project: str
    username: str


def grant(config: Config, username: str, role: str, project: str | None = None,
          remote: str | None = None) -> wire.Role:
    """Give ``username`` ``role`` in ``project`` (default: the active project); return
    ``{"project","username","role"}``."""
    transport, info = open_remote(config, remote, project)
    return transport.set_role(info.project, username, role)


def revoke(config: Config, username: str, project: str | None = None,
           remote: str | None = None) -> Membership:
    """Take ``username``'s role in ``project`` (default: the active project) away; return
    ``{"project","username"}``."""
    transport, info = open_remote(config, remote, project)
    transport.remove_member(info.project, username)
    return {"project": info.project, "username": username}


def audit(config: Config, user: str | None = None, project: str | None = None,
          action: str | None = None, since: str | None = None, until: str | None = None,
          limit: int | None = None, remote: str | None = None) -> list[wire.AuditEntry]:
    """The audit log entries matching the filters, newest first (at most ``limit``)."""
    transport, _info = open_remote(config, remote)
    found: list[wire.AuditEntry] = []
    for entry in transport.audit(user=user, project=project, action=action,
                                 since=moment(since, "since"), until=moment(until, "until")):
        if limit is not None and len(found) >= limit:
            break
        found.append(entry)
    return found


def tokens(config: Config, remote: str | None = None) -> list[wire.TokenInfo]:
    """The caller's tokens on the remote, oldest first."""
    transport, _info = open_remote(config, remote)
    return transport.tokens()


def revoke_token(config: Config, token_id: int, remote: str | None = None) -> None:
    """Revoke the caller's token ``token_id`` on the remote."""
    transport, _info = open_remote(config, remote)
    transport.revoke_token_id(token_id)
