"""The dashboard's admin pages: users, a project's members and roles, one's own tokens and
the audit log. Each calls the admin methods of the service as the signed-in user, so the
service makes every role check: a page a user may not use answers 403 (404 for a project
they are not a member of), exactly as the API's admin routes do."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import falcon

from ama_remote.dashboard.pages import SESSION_COOKIE, Page, _Request, drop_cookie, href
from ama_remote.errors import BadInput, Forbidden
from ama_remote.service.admin import ACTIONS, parse_moment

AUDIT_PER_PAGE = 50
# What the audit log names an asset's changes, beside the admin actions.
ASSET_ACTIONS = ("title", "description", "tags", "alias", "deleted")


def may_administer(service: Any, caller: Any) -> bool:
    """Whether ``caller`` may use any admin page beyond their own tokens: a server admin, or
    an admin of some project (what the header's Admin link is shown for)."""
    if caller.is_admin:
        return True
    return any(p["role"] == "admin" for p in service.list_projects(caller))


class AdminHome(Page):
    """What the user may administer: users, the members of each project they administer,
    the audit log and their tokens."""

    def get(self, request: _Request, resp: falcon.Response) -> None:
        caller = request.caller
        assert caller is not None
        projects = [p["name"] for p in self.service.list_projects(caller)
                    if p["role"] == "admin"]
        if not (caller.is_admin or projects):
            raise Forbidden(f"{caller.username} administers neither the server nor a project",
                            "ask a server admin or an admin of your project")
        self.dash.render(resp, "admin.html", request, server_admin=caller.is_admin,
                         projects=projects)


class Users(Page):
    """Every user, and activating or disabling one (server admins)."""

    def get(self, request: _Request, resp: falcon.Response) -> None:
        users = self.service.users(request.caller)
        self.dash.render(resp, "users.html", request, users=users)

    def post(self, request: _Request, resp: falcon.Response) -> None:
        action = request.form.get("action")
        if action not in ("activate", "disable"):
            raise BadInput(f"invalid action {str(action)[:40]!r}: use activate or disable")
        self.service.set_user_active(request.caller, request.form.get("username", ""),
                                     action == "activate")
        self.redirect(href("admin", "users"))


class Members(Page):
    """A project's members and their roles: grant, change and revoke (its admins)."""

    def get(self, request: _Request, resp: falcon.Response, project: str) -> None:
        members = self.service.members(request.caller, project)
        self.dash.render(resp, "members.html", request, project=project, members=members,
                         roles=("reader", "writer", "admin"))

    def post(self, request: _Request, resp: falcon.Response, project: str) -> None:
        form = request.form
        username = form.get("username", "").strip()
        if not username:
            raise BadInput("the form names no user", "type the user's name")
        action = form.get("action")
        if action == "revoke":
            self.service.remove_member(request.caller, project, username)
        elif action == "grant":
            self.service.set_role(request.caller, project, username, form.get("role", ""))
        else:
            raise BadInput(f"invalid action {str(action)[:40]!r}: use grant or revoke")
        self.redirect(href("p", project, "members"))


class Tokens(Page):
    """The user's own tokens (never their texts), and revoking one; revoking the session's
    own token signs the browser out."""

    def get(self, request: _Request, resp: falcon.Response) -> None:
        tokens = self.service.tokens(request.caller, current=request.session)
        self.dash.render(resp, "tokens.html", request, tokens=tokens[::-1])

    def post(self, request: _Request, resp: falcon.Response) -> None:
        sent = request.form.get("token", "")
        if not (sent.isascii() and sent.isdigit()) or len(sent) > 18:
            raise BadInput(f"invalid token id {sent[:40]!r}")
        current = [t for t in self.service.tokens(request.caller, current=request.session)
                   if t["current"]]
        self.service.revoke_token_id(request.caller, int(sent))
        if current and current[0]["id"] == int(sent):
            drop_cookie(request.req, resp, SESSION_COOKIE)
            self.redirect(href("login"))
        self.redirect(href("tokens"))


def _until(value: str) -> datetime | None:
    # A date alone ends with its day: "until 2026-12-01" includes that day's entries.
    moment = parse_moment(value, "until")
    if moment is not None and len(value) == 10:
        moment += timedelta(days=1, microseconds=-1)
    return moment


class Audit(Page):
    """The audit log, newest first, filtered by user, project, action and time."""

    def get(self, request: _Request, resp: falcon.Response) -> None:
        filters = {k: (request.param(k) or "").strip()
                   for k in ("user", "project", "action", "since", "until")}
        page = request.number("page")
        found = self.service.audit(
            request.caller, user=filters["user"] or None, project=filters["project"] or None,
            action=filters["action"] or None, since=parse_moment(filters["since"], "since"),
            until=_until(filters["until"]), page=page,
            per_page=AUDIT_PER_PAGE)
        self.dash.render(resp, "audit.html", request, found=found, filters=filters,
                         page=page, actions=ACTIONS + ASSET_ACTIONS)
