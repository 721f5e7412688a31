"""``ama asset status|delete|restore`` through the installed ``ama``, against the embedded
remote and against ama-server under gunicorn (on SQLite and PostgreSQL): the status shown
by list, info and versions, a deleted asset neither listed nor cloneable, and restored."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path

from ama.plumbing.transport import HttpTransport, Transport
from tests.e2e.test_metadata import ama, as_json, local  # noqa: F401  (fixture)
from tests.services.server import RunningServer, run_ama_server
from tests.unit.porcelain.published import publish


def _lifecycle(run: Callable[..., subprocess.CompletedProcess[str]], tmp_path: Path) -> None:
    run("asset", "status", "deprecated", "--asset", "ml-models/1")
    listed = json.loads(run("list", "ml-models", "--json").stdout)
    assert [(a["name"], a["status"], a["deleted"]) for a in listed] == [
        ("ml-models/1", "deprecated", None), ("ml-models/2", "active", None)]
    human = run("list", "ml-models").stdout.splitlines()
    assert human[0].split() == ["NAME", "ALIAS", "LATEST", "STATUS", "TITLE"]
    assert human[1].split() == ["ml-models/1", "-", "0.0.0", "deprecated"]
    assert "status:      deprecated" in run("info", "ml-models/1").stdout
    shown = run("versions", "ml-models/1")
    assert shown.stderr == "note: ml-models/1 is deprecated\n"
    assert json.loads(run("versions", "ml-models/1", "--json").stdout)[0]["status"] == \
        "deprecated"
    assert run("asset", "status", "retired", "--asset", "ml-models/1", code=2)
    assert json.loads(run("asset", "status", "obsolete", "--asset", "ml-models/1", "--json")
                      .stdout)["status"] == "obsolete"

    assert run("asset", "delete", "ml-models/2").stdout == (
        "ml-models/2: deleted (bring it back with 'ama asset restore ml-models/2')\n")
    assert [a["name"] for a in json.loads(run("list", "ml-models", "--json").stdout)] == [
        "ml-models/1"]
    assert [a["name"] for a in json.loads(run("list", "ml-models", "--deleted", "--json")
                                          .stdout)] == ["ml-models/2"]
    for args in (("clone", "ml-models/2", "-d", str(tmp_path / "c")), ("versions", "ml-models/2"),
                 ("info", "ml-models/2")):
        refused = run(*args, code=3)
        assert "ml-models/2 was deleted" in refused.stderr, refused.stderr
        assert "ama asset restore ml-models/2" in refused.stderr
    assert not (tmp_path / "c").exists()

    assert json.loads(run("asset", "restore", "ml-models/2", "--json").stdout)["deleted"] is None
    run("clone", "ml-models/2", "-d", str(tmp_path / "c"))
    assert (tmp_path / "c" / "w").read_bytes() == b"two"


def test_status_delete_and_restore_on_the_embedded_remote(tmp_path: Path,
                                                          local: Transport) -> None:  # noqa: F811
    publish(local, "default", "ml-models", {"w": b"one"})
    publish(local, "default", "ml-models", {"w": b"two"})

    def run(*args: str, code: int = 0) -> subprocess.CompletedProcess[str]:
        return ama(*args, cwd=tmp_path, code=code)

    _lifecycle(run, tmp_path)


def test_status_delete_and_restore_against_ama_server(
        tmp_path: Path, start_ama_server: Callable[..., RunningServer],
        server_database_url: str) -> None:
    server = start_ama_server(server_database_url)
    env = {"AMA_TOKEN": server.token, "AMA_PROJECT": server.project}
    ama("remote", "add", "team", server.url, cwd=tmp_path)
    ama("remote", "default", "team", cwd=tmp_path)
    admin = HttpTransport(server.url, token=server.token)
    admin.put_class(server.project, "ml-models")
    publish(admin, server.project, "ml-models", {"w": b"one"})
    publish(admin, server.project, "ml-models", {"w": b"two"})

    def run(*args: str, code: int = 0) -> subprocess.CompletedProcess[str]:
        return ama(*args, cwd=tmp_path, env=env, code=code)

    _lifecycle(run, tmp_path)
    # A writer may set the status but not delete: the server checks the role.
    run_ama_server(server.env(), "user", "add", "wes", "--email", "wes@example.org")
    writer = run_ama_server(server.env(), "token", "issue", "wes").stdout.strip()
    run_ama_server(server.env(), "project", "grant", server.project, "wes", "writer")
    as_writer = {"AMA_TOKEN": writer, "AMA_PROJECT": server.project}
    ama("asset", "status", "active", "--asset", "ml-models/1", cwd=tmp_path, env=as_writer)
    refused = ama("asset", "delete", "ml-models/1", cwd=tmp_path, env=as_writer, code=4)
    assert "needs admin" in refused.stderr
