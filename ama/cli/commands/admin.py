"""ama admin: users, roles, tokens and the audit log of a remote, for its admins."""

from __future__ import annotations

import json

import click

from ama.cli.command import group
from ama.cli.commands._metadata import remote_option
from ama.cli.commands._porcelain import emit_json, json_array_option, json_option, note

ROLES = ("reader", "writer", "admin")
ADMIN_EXIT_CODES = {0: "success", 2: "bad usage or bad input (a role, a time)",
                    3: "no such user, member, token or project (or not a member of it)",
                    4: "not logged in, or not an admin of what the command changes",
                    5: "the remote cannot be reached"}


@group(
    "admin",
    examples=[
        ("List every user of the server, their state and their roles:", "ama admin user list"),
        ("Let bob read the project vision:", "ama admin grant bob reader --project vision"),
        ("See what bob changed in the last week:", "ama admin audit --user bob --since 7d"),
    ],
    see_also=["ama-project(1)", "ama-auth(1)", "ama-server(1)", "ama-protocol(7)"],
    exit_codes=ADMIN_EXIT_CODES,
)
def command() -> None:
    """Administer the default remote: users (server admins), the roles of a project's
    members (its admins), your own tokens, and the audit log.

    The remote checks every request: a server admin may do everything; a project's admins
    manage its members and read its audit log; everyone lists and revokes their own
    tokens. Each change is recorded in the remote's audit log. On a file:// remote you are
    its server admin.
    """


@command.group("user", examples=[("List every user:", "ama admin user list")],
               exit_codes=ADMIN_EXIT_CODES)
def user() -> None:
    """List users, and activate or disable them (server admins)."""


@user.command("list", examples=[
    ("List every user of the server:", "ama admin user list"),
    ("List the members of the project vision and their roles:",
     "ama admin user list --project vision")])
@click.option("--project", metavar="NAME",
              help="List the members of this project (its admins may) instead of every "
                   "user (server admins).")
@remote_option
@json_array_option
def user_list(project: str | None, remote: str | None, as_json: bool) -> None:
    """List users, one per line: name, email, 'active' or 'disabled', then 'admin' for a
    server admin and each project's role as PROJECT:ROLE (or, with --project, the role
    in that project), separated by tabs."""
    from ama.porcelain.admin import members, users
    from ama.porcelain.config import Config

    if project is not None:
        found_members = members(Config.open(), project, remote)
        if as_json:
            emit_json(found_members)
            return
        for m in found_members:
            state = "active" if m["active"] else "disabled"
            click.echo("\t".join([m["username"], m["email"], state, m["role"]]))
        return
    found = users(Config.open(), remote=remote)
    if as_json:
        emit_json(found)
        return
    for u in found:
        state = "active" if u["active"] else "disabled"
        roles = (["admin"] if u["admin"] else []) + [f"{p['name']}:{p['role']}"
                                                      for p in u["projects"]]
        click.echo("\t".join([u["username"], u["email"], state, *roles]))


def _set_active(username: str, active: bool, remote: str | None, as_json: bool) -> None:
    from ama.porcelain.admin import set_active
    from ama.porcelain.config import Config

    found = set_active(Config.open(), username, active, remote)
    if as_json:
        emit_json(found)
    else:
        click.echo(f"{'Activated' if active else 'Disabled'} user {username}")


@user.command("activate", examples=[
    ("Let bob, who signed up or was disabled, in again:", "ama admin user activate bob")])
@click.argument("username")
@remote_option
@json_option
def user_activate(username: str, remote: str | None, as_json: bool) -> None:
    """Activate USERNAME: their tokens work again (server admins)."""
    _set_active(username, True, remote, as_json)


@user.command("disable", examples=[
    ("Lock bob out; his tokens stop working at once:", "ama admin user disable bob")])
@click.argument("username")
@remote_option
@json_option
def user_disable(username: str, remote: str | None, as_json: bool) -> None:
    """Disable USERNAME: every one of their tokens is refused until they are activated
    again (server admins; not yourself)."""
    _set_active(username, False, remote, as_json)


@command.command("grant", examples=[
    ("Let bob upload to the active project:", "ama admin grant bob writer"),
    ("Make bob an admin of the project vision:", "ama admin grant bob admin --project vision")])
@click.argument("username", metavar="USER")
@click.argument("role", type=click.Choice(ROLES))
@click.option("--project", metavar="NAME", help="The project (default: the active one).")
@remote_option
@json_option
def grant(username: str, role: str, project: str | None, remote: str | None,
          as_json: bool) -> None:
    """Give USER the ROLE in the project, adding them or changing their role: reader
    (read), writer (also upload, commit, set aliases and titles) or admin (also edit
    classes and manage members). The project's admins and server admins may."""
    from ama.porcelain.admin import grant as grant_role
    from ama.porcelain.config import Config

    found = grant_role(Config.open(), username, role, project, remote)
    if as_json:
        emit_json(found)
    else:
        click.echo(f"{found['username']} is now {found['role']} of {found['project']}")


@command.command("revoke", examples=[
    ("Take bob's role in the project vision away:", "ama admin revoke bob --project vision")])
@click.argument("username", metavar="USER")
@click.option("--project", metavar="NAME", help="The project (default: the active one).")
@remote_option
@json_option
def revoke(username: str, project: str | None, remote: str | None, as_json: bool) -> None:
    """Take USER's role in the project away: they no longer see it. The project's admins
    and server admins may."""
    from ama.porcelain.admin import revoke as revoke_role
    from ama.porcelain.config import Config

    found = revoke_role(Config.open(), username, project, remote)
    if as_json:
        emit_json(found)
    else:
        click.echo(f"{found['username']} is no longer a member of {found['project']}")


def _value(value: object) -> str:
    return "-" if value is None else json.dumps(value, ensure_ascii=False)


@command.command("audit", examples=[
    ("Everything changed in the last day:", "ama admin audit --since 1d"),
    ("Who changed roles in the project vision:",
     "ama admin audit --project vision --action role.grant"),
    ("What bob did in November, for a script:",
     "ama admin audit --user bob --since 2026-11-01 --until 2026-11-30T23:59:59Z --json")])
@click.option("--user", metavar="NAME", help="Only changes made by this user.")
@click.option("--project", metavar="NAME", help="Only changes in this project.")
@click.option("--action", metavar="ACTION",
              help="Only this action: alias, title, description, tags (asset changes), or "
                   "user.activate, user.disable, role.grant, role.revoke, token.revoke, and "
                   "on the server's console user.add, project.add, token.issue.")
@click.option("--since", metavar="WHEN",
              help="Only changes at or after WHEN: an age (7d, 12h, 30m, 2w) or a date or "
                   "time (2026-12-01, 2026-12-01T16:00:00Z; UTC unless an offset is given).")
@click.option("--until", metavar="WHEN", help="Only changes at or before WHEN (as --since).")
@click.option("-n", "--limit", type=click.IntRange(min=1), metavar="N",
              help="Show at most N entries (the newest).")
@remote_option
@json_array_option
def audit(user: str | None, project: str | None, action: str | None, since: str | None,
          until: str | None, limit: int | None, remote: str | None, as_json: bool) -> None:
    """Show the audit log, newest first, one entry per line: time, user ('-' for the
    server's console), project (or '-'), action, what changed (an asset or a user), old
    value and new value (JSON, '-' for none), separated by tabs. Server admins see every
    entry; a project's admins see that project's."""
    from ama.porcelain.admin import audit as read_audit
    from ama.porcelain.config import Config

    found = read_audit(Config.open(), user, project, action, since, until, limit, remote)
    if as_json:
        emit_json(found)
        return
    for e in found:
        click.echo("\t".join([e["at"], e["user"] or "-", e["project"] or "-", e["action"],
                              e["target"], _value(e["old"]), _value(e["new"])]))


@command.group("token", examples=[("List your tokens:", "ama admin token list")],
               exit_codes=ADMIN_EXIT_CODES)
def token() -> None:
    """List and revoke your own tokens on the remote."""


@token.command("list", examples=[("List your tokens on the remote:", "ama admin token list")])
@remote_option
@json_array_option
def token_list(remote: str | None, as_json: bool) -> None:
    """List your tokens, oldest first, one per line: id, created, expires, then 'revoked
    AT' or 'valid', and '*' for the one this command used, separated by tabs."""
    from ama.porcelain.admin import tokens
    from ama.porcelain.config import Config

    found = tokens(Config.open(), remote)
    if as_json:
        emit_json(found)
        return
    for t in found:
        state = f"revoked {t['revoked']}" if t["revoked"] else "valid"
        click.echo("\t".join([str(t["id"]), t["created"], t["expires"], state]
                             + (["*"] if t["current"] else [])))


@token.command("revoke", examples=[
    ("Revoke token 1 (the id 'ama admin token list' shows):", "ama admin token revoke 1")])
@click.argument("token_id", metavar="ID", type=click.IntRange(min=1))
@remote_option
@click.option("-q", "--quiet", is_flag=True, help="Print nothing on success.")
def token_revoke(token_id: int, remote: str | None, quiet: bool) -> None:
    """Revoke your token ID: it stops working at once (revoking the one you are logged in
    with logs you out)."""
    from ama.porcelain.admin import revoke_token
    from ama.porcelain.config import Config

    revoke_token(Config.open(), token_id, remote)
    note(f"Revoked token {token_id}", quiet)
