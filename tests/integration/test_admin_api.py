"""The admin routes of ama-protocol(7) under a real gunicorn, on SQLite and PostgreSQL: who
may call each one (server admin, project admin, writer, reader, a member of another
project), and the audit log they fill and its filters."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.services.server import RunningServer

ROLES = ("admin", "padmin", "writer", "reader", "stranger")


class Team:
    """A server whose project demo has a project admin, a writer and a reader, and whose
    project other has the stranger as its admin; a token for each."""

    def __init__(self, server: RunningServer, tmp_path: Path) -> None:
        self.server = server
        self.tokens = {"admin": server.token}
        self.other = tmp_path / "other"
        server.setup("project", "add", "other", "--storage", f"file://{self.other}",
                     "--no-check")
        for name, project, role in (("padmin", "demo", "admin"), ("writer", "demo", "writer"),
                                    ("reader", "demo", "reader"),
                                    ("stranger", "other", "admin"), ("victim", "demo", "reader")):
            server.setup("user", "add", name, "--email", f"{name}@example.org")
            server.setup("project", "grant", project, name, role)
            self.tokens[name] = server.setup("token", "issue", name).strip()

    def call(self, who: str, method: str, path: str, body: Any = None,
             params: dict[str, str] | None = None) -> requests.Response:
        return requests.request(method, self.server.url + path, json=body, params=params,
                                headers={"Authorization": f"Bearer {self.tokens[who]}"},
                                timeout=30)


@pytest.fixture
def team(start_ama_server: Callable[..., RunningServer], server_database_url: str,
         tmp_path: Path) -> Team:
    return Team(start_ama_server(server_database_url), tmp_path)


def statuses(team: Team, method: str, path: str, body: Any = None,
             before: Callable[[], None] | None = None) -> dict[str, int]:
    found = {}
    for who in ROLES:
        if before is not None:
            before()
        answer = team.call(who, method, path, body)
        found[who] = answer.status_code
        if answer.status_code >= 400:
            error = answer.json()["error"]
            assert error["message"] and error["code"] in ("forbidden", "not_found"), error
    return found


def test_each_admin_route_answers_each_role_as_documented(team: Team) -> None:
    server_only = {"admin": 200, "padmin": 403, "writer": 403, "reader": 403,
                   "stranger": 403}
    project_admins = {"admin": 200, "padmin": 200, "writer": 403, "reader": 403,
                      "stranger": 404}
    assert statuses(team, "GET", "/v1/admin/users") == server_only
    assert statuses(team, "PATCH", "/v1/admin/users/victim", {"active": True}) == server_only
    assert statuses(team, "GET", "/v1/projects/demo/members") == project_admins
    refused = team.call("writer", "GET", "/v1/projects/demo/members").json()["error"]
    assert refused["hint"] == ("ask an admin of 'demo' to run "
                               "'ama admin grant writer admin --project demo'")
    assert statuses(team, "PUT", "/v1/projects/demo/members/victim",
                    {"role": "reader"}) == project_admins

    def regrant() -> None:
        team.server.setup("project", "grant", "demo", "victim", "reader")

    assert statuses(team, "DELETE", "/v1/projects/demo/members/victim", before=regrant) == {
        **project_admins, "admin": 204, "padmin": 204}
    assert statuses(team, "GET", "/v1/admin/audit?project=demo") == project_admins
    # Without a project: each admin reads what they administer; others read nothing.
    assert statuses(team, "GET", "/v1/admin/audit") == {**project_admins, "stranger": 200}
    assert statuses(team, "GET", "/v1/auth/tokens") == dict.fromkeys(ROLES, 200)


def test_tokens_are_listed_and_revoked_by_their_owner_only(team: Team) -> None:
    mine = team.call("writer", "GET", "/v1/auth/tokens").json()["items"]
    assert [t["current"] for t in mine] == [True] and mine[0]["revoked"] is None
    theirs = team.call("reader", "GET", "/v1/auth/tokens").json()["items"]
    assert theirs[0]["id"] != mine[0]["id"]
    assert team.call("reader", "DELETE", f"/v1/auth/tokens/{mine[0]['id']}").status_code == 404
    assert team.call("writer", "GET", "/v1/auth/me").status_code == 200
    assert team.call("writer", "DELETE", f"/v1/auth/tokens/{mine[0]['id']}").status_code == 204
    assert team.call("writer", "GET", "/v1/auth/me").status_code == 401
    assert team.call("admin", "DELETE", f"/v1/auth/tokens/{theirs[0]['id']}").status_code == 204
    assert team.call("reader", "GET", "/v1/auth/me").status_code == 401
    assert team.call("admin", "DELETE", "/v1/auth/tokens/0").status_code == 400


def test_a_disabled_user_is_locked_out_and_every_change_is_audited(team: Team) -> None:
    assert team.call("admin", "PATCH", "/v1/admin/users/writer",
                     {"active": False}).json()["active"] is False
    assert team.call("writer", "GET", "/v1/auth/me").status_code == 401
    assert team.call("admin", "PATCH", "/v1/admin/users/admin",
                     {"active": False}).status_code == 400
    assert team.call("admin", "PATCH", "/v1/admin/users/writer",
                     {"active": True}).status_code == 200
    assert team.call("writer", "GET", "/v1/auth/me").status_code == 200
    assert team.call("padmin", "PUT", "/v1/projects/demo/members/writer",
                     {"role": "admin"}).json() == {"project": "demo", "username": "writer",
                                                   "role": "admin"}
    assert team.call("padmin", "PUT", "/v1/projects/demo/members/writer",
                     {"role": "boss"}).status_code == 400
    assert team.call("padmin", "DELETE", "/v1/projects/demo/members/stranger").status_code \
        == 404
    assert team.call("padmin", "DELETE", "/v1/projects/demo/members/victim").status_code == 204
    users = {u["username"]: u for u in team.call("admin", "GET", "/v1/admin/users")
             .json()["items"]}
    assert users["writer"]["projects"] == [{"name": "demo", "role": "admin"}]
    assert users["victim"]["projects"] == [] and users["admin"]["admin"] is True

    def audit(who: str = "admin", **params: str) -> list[tuple[Any, ...]]:
        answer = team.call(who, "GET", "/v1/admin/audit", params=params)
        assert answer.status_code == 200, answer.text
        return [(e["user"], e["project"], e["action"], e["target"], e["old"], e["new"])
                for e in answer.json()["items"]]

    by_api = [("padmin", "demo", "role.revoke", "victim", "reader", None),
              ("padmin", "demo", "role.grant", "writer", "writer", "admin"),
              ("admin", None, "user.activate", "writer", False, True),
              ("admin", None, "user.disable", "writer", True, False)]
    assert audit()[:4] == by_api
    # The grants ama-server made on its console are there too, without a user.
    assert (None, "demo", "role.grant", "reader", None, "reader") in audit()
    assert audit(user="padmin") == by_api[:2]
    assert audit(action="user.disable") == [by_api[3]]
    assert audit(project="other") == [
        (None, "other", "role.grant", "stranger", None, "admin"),
        (None, "other", "project.add", "other", None, f"file://{team.other}")]
    assert audit(action="token.issue", user="padmin") == []
    issued = [e[3] for e in audit(action="token.issue")]
    assert sorted(issued) == ["padmin", "reader", "stranger", "victim", "writer"]
    assert (None, None, "user.add", "writer", None,
            {"email": "writer@example.org", "admin": False, "active": True}) in audit()
    assert audit("stranger") == audit(project="other")
    assert all(e[1] == "demo" for e in audit("padmin"))
    assert audit(since="2000-01-01", until="2000-12-31T23:59:59Z") == []
    assert audit(since="2000-01-01T00:00:00+02:00")[:4] == by_api
    bad = team.call("admin", "GET", "/v1/admin/audit", params={"since": "yesterday"})
    assert bad.status_code == 400 and "'since'" in bad.json()["error"]["message"]
    first = team.call("admin", "GET", "/v1/admin/audit", params={"per_page": "1"}).json()
    second = team.call("admin", "GET", "/v1/admin/audit",
                       params={"per_page": "1", "page": "2"}).json()
    assert first["next_page"] == 2 and first["items"][0]["action"] == "role.revoke"
    assert second["items"][0]["action"] == "role.grant"
