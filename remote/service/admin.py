"""Administration through the API: users, members and their roles, one's own tokens, and
reading the audit log.

Every check is made here, not by the HTTP app, so the embedded remote, the app and any
other front (a web dashboard) refuse the same callers: server admins manage users; a
project's admins (and server admins) manage its members and read its audit; everyone
manages their own tokens. Every change is recorded in the audit log with who made it.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, aliased

from ama.plumbing import wire
from ama_remote.errors import BadInput, Forbidden, NotFound
from ama_remote.models import (
    ROLES,
    AssetClass,
    AuditEntry,
    Membership,
    Project,
    Token,
    User,
)
from ama_remote.service.accounts import Accounts
from ama_remote.service.common import Caller, ServiceBase, _stamp

# Admin actions as the audit log names them; the others are the asset fields changed
# (alias, title, description, tags).
ACTIONS = ("user.add", "user.activate", "user.disable", "role.grant", "role.revoke",
           "token.issue", "token.revoke", "project.add")
MAX_PER_PAGE = 1000


def parse_moment(value: str | None, name: str) -> datetime | None:
    """The time ``value`` of parameter ``name`` (``2026-12-01`` or ``2026-12-01T16:00:00Z``,
    UTC unless it gives an offset) as naive UTC, None for none; BadInput naming it
    otherwise."""
    if value is None or value == "":
        return None
    try:
        moment = datetime.fromisoformat(value[:-1] + "+00:00" if value.endswith("Z")
                                        else value)
    except ValueError:
        raise BadInput(f"parameter '{name}' must be a date or time such as 2026-12-01 or "
                       f"2026-12-01T16:00:00Z, not {value[:40]!r}") from None
    if moment.tzinfo is not None:
        moment = moment.astimezone(timezone.utc).replace(tzinfo=None)
    return moment


def _moment(at: datetime) -> str:
    """``at`` (naive UTC, never None) as the API spells a time, as ``_stamp`` does."""
    return at.strftime("%Y-%m-%dT%H:%M:%SZ")


def _need_server_admin(caller: Caller, what: str) -> None:
    if not caller.is_admin:
        raise Forbidden(f"{caller.username} is not a server admin; {what} needs one",
                        "ask a server admin to do it")


def _check_page(page: int, per_page: int) -> None:
    if page < 1 or not 1 <= per_page <= MAX_PER_PAGE:
        raise BadInput(f"invalid page {page} of {per_page}: pages start at 1, and hold 1 "
                       f"to {MAX_PER_PAGE} items")


class Admin(ServiceBase):
    """Administration: users, members and roles, one's own tokens, the audit log."""

    # -- users (server admins) --

    def users(self, caller: Caller) -> list[wire.AdminUser]:
        """Return every user by name, each with ``active``, ``admin`` and ``projects``
        (``[{"name", "role"}]``); server admins only (Forbidden)."""
        _need_server_admin(caller, "listing every user")
        with self.db.read() as s:
            roles: dict[int, list[wire.ProjectRole]] = {}
            for user_id, name, role in s.execute(
                    select(Membership.user_id, Project.name, Membership.role)
                    .join(Project, Project.id == Membership.project_id)
                    .order_by(Project.name)):
                roles.setdefault(user_id, []).append({"name": name, "role": role})
            return [{"username": u.username, "email": u.email, "admin": u.is_admin,
                     "active": u.active, "created": _stamp(u.created),
                     "projects": roles.get(u.id, [])}
                    for u in s.scalars(select(User).order_by(User.username))]

    def set_user_active(self, caller: Caller, username: str, active: bool) -> wire.User:
        """Activate or disable ``username`` (server admins); a disabled user's tokens are
        refused at once. Audited when it changes anything. Returns the user; raises
        Forbidden, NotFound, or BadInput for a server admin disabling themselves."""
        _need_server_admin(caller, "activating or disabling a user")
        if not active and username == caller.username:
            raise BadInput(f"{username} cannot disable themselves",
                           "ask another server admin to do it")

        def work(s: Session) -> wire.User:
            user = self._user(s, username)
            if user.active != active:
                self._audit_admin(s, caller, "user.activate" if active else "user.disable",
                                  username, old=user.active, new=active)
                user.active = active
            return {"username": user.username, "email": user.email, "admin": user.is_admin,
                    "active": user.active, "created": _stamp(user.created)}

        return self.db.run(work)

    # -- members of a project (its admins, and server admins) --

    def members(self, caller: Caller, project: str) -> list[wire.Member]:
        """Return the members of ``project`` by name, each with ``role``, ``email`` and
        ``active`` (project admins; NotFound for a non-member, Forbidden below admin)."""
        with self.db.read() as s:
            proj = self._project(s, caller, project, "admin")
            rows = s.execute(select(User, Membership.role)
                             .join(Membership, Membership.user_id == User.id)
                             .where(Membership.project_id == proj.id)
                             .order_by(User.username))
            return [{"username": u.username, "email": u.email, "active": u.active,
                     "role": role} for u, role in rows]

    def set_role(self, caller: Caller, project: str, username: str,
                 role: str) -> wire.Role:
        """Make ``username`` a ``role`` of ``project``, adding them or changing their role
        (project admins); audited. Returns ``{"project","username","role"}``."""
        if role not in ROLES:
            raise BadInput(f"invalid role {role!r}: use one of {', '.join(ROLES)}")

        def work(s: Session) -> wire.Role:
            proj = self._project(s, caller, project, "admin")
            user = self._user(s, username)
            member = s.get(Membership, (proj.id, user.id))
            old = None if member is None else member.role
            if old != role:
                self._audit_admin(s, caller, "role.grant", username, proj.id, old=old,
                                  new=role)
                if member is None:
                    s.add(Membership(project_id=proj.id, user_id=user.id, role=role))
                else:
                    member.role = role
            return {"project": proj.name, "username": username, "role": role}

        return self.db.run(work)

    def remove_member(self, caller: Caller, project: str, username: str) -> None:
        """Take ``username``'s role in ``project`` away (project admins); audited. Raises
        NotFound when they are not a member."""
        def work(s: Session) -> None:
            proj = self._project(s, caller, project, "admin")
            user = self._user(s, username)
            member = s.get(Membership, (proj.id, user.id))
            if member is None:
                raise NotFound(f"{username} is not a member of project {project!r}",
                               f"run 'ama admin user list --project {project}' to see them")
            self._audit_admin(s, caller, "role.revoke", username, proj.id, old=member.role,
                              new=None)
            s.delete(member)

        self.db.run(work)

    # -- tokens (one's own; a server admin's of anyone) --

    def _token_owner(self, s: Session, caller: Caller, username: str | None) -> User:
        if username is None or username == caller.username:
            return self._user(s, caller.username)
        _need_server_admin(caller, "another user's tokens")
        return self._user(s, username)

    def tokens(self, caller: Caller, current: str | None = None,
               username: str | None = None) -> list[wire.TokenInfo]:
        """Return the caller's tokens (a server admin may name another ``username``), oldest
        first: ``{"id","created","expires","revoked","current"}``; ``current`` marks the
        token ``current`` (the one the request came with). Token texts are never kept."""
        mine = Accounts._token_hash(current) if current else None
        with self.db.read() as s:
            user = self._token_owner(s, caller, username)
            return [{"id": t.id, "created": _moment(t.created), "expires": _moment(t.expires),
                     "revoked": _stamp(t.revoked), "current": t.token_hash == mine}
                    for t in s.scalars(select(Token).where(Token.user_id == user.id)
                                       .order_by(Token.id))]

    def revoke_token_id(self, caller: Caller, token_id: int,
                        username: str | None = None) -> None:
        """Revoke the caller's token ``token_id`` (a server admin may revoke anyone's);
        audited. Raises NotFound for a token that is not theirs (whether or not it exists);
        a token already revoked is left as it is."""
        def work(s: Session) -> None:
            token = s.get(Token, token_id)
            if token is None or (not caller.is_admin and token.user_id != caller.user_id):
                raise NotFound(f"no token {token_id} of {username or caller.username}",
                               "run 'ama admin token list' to see your tokens")
            if token.revoked is None:
                owner = s.get(User, token.user_id)
                token.revoked = self._now()
                self._audit_admin(s, caller, "token.revoke",
                                  owner.username if owner else "", new=token_id)

        self.db.run(work)

    def audit_console(self, action: str, target: str, project: str | None = None,
                      new: Any = None) -> None:
        """Record an admin action made on the server's console (``ama-server user add``,
        ``project add``, ``token issue``): no caller is checked, and the entry has no user."""
        def work(s: Session) -> None:
            project_id = None if project is None else s.scalar(
                select(Project.id).where(Project.name == project))
            self._audit_admin(s, None, action, target, project_id, new=new)

        self.db.run(work)

    # -- the audit log --

    def audit(self, caller: Caller, user: str | None = None, project: str | None = None,
              action: str | None = None, since: datetime | None = None,
              until: datetime | None = None, page: int = 1,
              per_page: int = 100) -> wire.AuditPage:
        """Return one page of the audit log, newest first: ``{"items", "next_page"}``, each
        item ``{"id","at","user","project","class","ordinal","action","target","old",
        "new"}`` (``user`` None for the server's console).

        Server admins read every entry; a project's admins read that project's entries
        (without ``project``, those of every project they administer); anyone else is
        Forbidden. ``user``, ``project`` and ``action`` match exactly; ``since`` and
        ``until`` (naive UTC) bound ``at``, inclusive.
        """
        _check_page(page, per_page)
        if since is not None and until is not None and since > until:
            raise BadInput(f"the audit range starts ({_stamp(since)}) after it ends "
                           f"({_stamp(until)})")
        with self.db.read() as s:
            actor = aliased(User)
            klass = aliased(AssetClass)
            query = (select(AuditEntry, actor.username, Project.name, klass.name)
                     .outerjoin(actor, actor.id == AuditEntry.user_id)
                     .outerjoin(Project, Project.id == AuditEntry.project_id)
                     .outerjoin(klass, klass.id == AuditEntry.class_id))
            if project is not None:
                query = query.where(AuditEntry.project_id
                                    == self._project(s, caller, project, "admin").id)
            elif not caller.is_admin:
                administered = s.scalars(select(Membership.project_id).where(
                    Membership.user_id == caller.user_id, Membership.role == "admin")).all()
                if not administered:
                    raise Forbidden(f"{caller.username} administers no project; reading the "
                                    "audit log needs a project admin",
                                    "ask an admin of your project to read it for you")
                query = query.where(AuditEntry.project_id.in_(administered))
            if user is not None:
                query = query.where(actor.username == user)
            if action is not None:
                query = query.where(AuditEntry.field == action)
            if since is not None:
                query = query.where(AuditEntry.at >= since)
            if until is not None:
                query = query.where(AuditEntry.at <= until)
            rows = s.execute(query.order_by(AuditEntry.id.desc())
                             .offset((page - 1) * per_page).limit(per_page + 1)).all()
            items: list[wire.AuditEntry] = [
                {"id": e.id, "at": _moment(e.at), "user": who, "project": proj,
                 "class": cls, "ordinal": e.ordinal, "action": e.field,
                 "target": e.target, "old": e.old, "new": e.new}
                for e, who, proj, cls in rows[:per_page]]
            return {"items": items, "next_page": page + 1 if len(rows) > per_page else None}
