"""``ama admin`` against a real ama-server under gunicorn (SQLite and PostgreSQL), and
against the embedded file:// remote, through the installed ``ama``."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.integration.test_admin_api import Team
from tests.services.server import RunningServer

AMA = shutil.which("ama", path=os.path.dirname(sys.executable)) or "ama"


@pytest.fixture
def team(start_ama_server: Callable[..., RunningServer], server_database_url: str,
         tmp_path: Path) -> Team:
    return Team(start_ama_server(server_database_url), tmp_path)


def ama(*args: str, cwd: Path, code: int = 0) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([AMA, *args], cwd=cwd, capture_output=True, text=True, timeout=120)
    assert done.returncode == code, (args, done.returncode, done.stdout, done.stderr)
    return done


def test_ama_admin_against_the_server(team: Team, tmp_path: Path) -> None:
    ama("remote", "add", "team", team.server.url, cwd=tmp_path)
    ama("remote", "default", "team", cwd=tmp_path)
    ama("auth", "login", "--token", team.tokens["padmin"], cwd=tmp_path)
    ama("project", "activate", "demo", cwd=tmp_path)

    assert ama("admin", "grant", "victim", "writer", cwd=tmp_path).stdout \
        == "victim is now writer of demo\n"
    members = ama("admin", "user", "list", "--project", "demo", cwd=tmp_path).stdout
    assert "victim\tvictim@example.org\tactive\twriter\n" in members
    refused = ama("admin", "user", "list", cwd=tmp_path, code=4)
    assert "ama: error: padmin is not a server admin" in refused.stderr
    ama("admin", "grant", "victim", "reader", "--project", "other", cwd=tmp_path, code=3)
    ama("admin", "revoke", "victim", cwd=tmp_path)
    ama("admin", "revoke", "victim", cwd=tmp_path, code=3)
    lines = ama("admin", "audit", "--user", "padmin", "--since", "1h", cwd=tmp_path
                ).stdout.splitlines()
    assert [line.split("\t")[1:] for line in lines] == [
        ["padmin", "demo", "role.revoke", "victim", '"writer"', "-"],
        ["padmin", "demo", "role.grant", "victim", '"reader"', '"writer"']]
    entries = json.loads(ama("admin", "audit", "--action", "role.revoke", "--json",
                             cwd=tmp_path).stdout)
    assert [(e["user"], e["target"]) for e in entries] == [("padmin", "victim")]
    ama("admin", "audit", "--since", "soon", cwd=tmp_path, code=2)

    tokens = json.loads(ama("admin", "token", "list", "--json", cwd=tmp_path).stdout)
    assert [t["current"] for t in tokens] == [True]
    ama("admin", "token", "revoke", str(tokens[0]["id"]), cwd=tmp_path)
    ama("admin", "token", "list", cwd=tmp_path, code=4)

    ama("auth", "login", "--token", team.tokens["admin"], cwd=tmp_path)
    ama("admin", "user", "disable", "reader", cwd=tmp_path)
    listed = ama("admin", "user", "list", cwd=tmp_path).stdout
    assert "reader\treader@example.org\tdisabled\tdemo:reader\n" in listed
    assert "admin\tadmin@example.org\tactive\tadmin\tdemo:admin\n" in listed


def test_ama_admin_on_a_folder_remote(tmp_path: Path) -> None:
    """The embedded remote answers too: its local user is its server admin."""
    listed = ama("admin", "user", "list", cwd=tmp_path).stdout.split("\t")
    assert listed[0] == "local" and listed[2:] == ["active", "admin", "default:admin\n"]
    assert ama("admin", "grant", "local", "writer", cwd=tmp_path).stdout \
        == "local is now writer of default\n"
    entries = json.loads(ama("admin", "audit", "--json", cwd=tmp_path).stdout)
    assert [(e["user"], e["action"], e["old"], e["new"]) for e in entries] == [
        ("local", "role.grant", "admin", "writer")]
    assert ama("admin", "token", "list", "--json", cwd=tmp_path).stdout == "[]\n"
    ama("admin", "token", "revoke", "1", cwd=tmp_path, code=3)
    ama("admin", "user", "disable", "local", cwd=tmp_path, code=2)
