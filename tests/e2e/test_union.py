"""``ama union`` through the installed ``ama``, against the embedded remote and against
ama-server under gunicorn (SQLite and PostgreSQL): the union staged and uploaded,
conflicts listed and resolved either way, local changes protected, and only the objects
the store lacks fetched."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

from tests.e2e.test_lifecycle import ama, files, two_machines
from tests.services.server import RunningServer


def _make(root: Path, content: dict[str, str], env: dict[str, str]) -> None:
    root.mkdir()
    ama("init", "ml-models", cwd=root, env=env)
    for path, text in content.items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_text(text)
    ama("add", ".", cwd=root, env=env)
    ama("upload", "-m", root.name, cwd=root, env=env)


def _union_scenario(tmp_path: Path, env: dict[str, str], other_env: dict[str, str]) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    _make(a, {"same.txt": "same", "a.txt": "a", "conf.yaml": "A", "data/x.csv": "1,2"}, env)
    _make(b, {"same.txt": "same", "b.txt": "b", "conf.yaml": "B", "data": "a file"}, env)

    # Conflicts stop it, listed, and nothing changes.
    before = files(a)
    refused = ama("union", "ml-models/2", cwd=a, env=env, code=1)
    assert "2 path(s) differ between this directory and ml-models/2/0.0.0" in refused.stderr
    assert "  conf.yaml\n  data\n" in refused.stderr and "--ours" in refused.stderr
    listed = json.loads(ama("union", "ml-models/2", "--json", cwd=a, env=env, code=1).stdout)
    assert [(c["path"], c["ours"][:5], c["theirs"][:5]) for c in listed["conflicts"]] == [
        ("conf.yaml", "blob:", "blob:"), ("data", "folde", "blob:")]
    assert files(a) == before
    assert json.loads(ama("status", "--json", cwd=a, env=env).stdout)["clean"]

    # Another machine holding only ml-models/1 fetches just the one blob it lacks.
    c = tmp_path / "c"
    ama("clone", "ml-models/1", "-d", str(c), cwd=tmp_path, env=other_env)
    ours = json.loads(ama("union", "ml-models/2", "--ours", "--json", cwd=c,
                          env=other_env).stdout)
    assert (ours["added"], ours["replaced"], ours["removed"], ours["received"]) == (
        ["b.txt"], [], [], 1)
    assert files(c) == {**before, "b.txt": b"b"}
    state = json.loads(ama("status", "--json", cwd=c, env=other_env).stdout)
    assert state["staged"] == {"new": ["b.txt"], "modified": [], "deleted": []}
    assert ours["input"] is True
    up = json.loads(ama("upload", "-m", "union", "--json", cwd=c, env=other_env).stdout)
    assert up["version"] == "0.0.1"
    lineage = json.loads(ama("info", "--json", cwd=c, env=other_env).stdout)["inputs"]
    assert [(i["name"], i["label"]) for i in lineage] == [("ml-models/2/0.0.0", "union")]

    # --theirs: B's file, and B's file where A had a folder.
    ama("pull", cwd=a, env=env)
    (a / "conf.yaml").chmod(0o644)
    (a / "conf.yaml").write_text("edited, not staged")
    ama("union", "ml-models/2", "--theirs", cwd=a, env=env, code=1)
    assert (a / "conf.yaml").read_text() == "edited, not staged"
    ama("discard", "conf.yaml", cwd=a, env=env)
    theirs = json.loads(ama("union", "ml-models/2", "--theirs", "--json", cwd=a,
                            env=env).stdout)
    assert (theirs["added"], theirs["replaced"], theirs["removed"], theirs["received"]) == (
        ["data"], ["conf.yaml"], ["data/x.csv"], 0)
    assert files(a) == {"same.txt": b"same", "a.txt": b"a", "b.txt": b"b", "conf.yaml": b"B",
                        "data": b"a file"}
    ama("upload", "-m", "theirs", cwd=a, env=env)

    # A version of the same asset, named by its number: keeping ours changes nothing.
    after = files(a)
    again = json.loads(ama("union", "0.0.1", "--ours", "--json", cwd=a, env=env).stdout)
    assert (again["other"], again["added"], [c["path"] for c in again["conflicts"]],
            again["input"]) == ("ml-models/1/0.0.1", [], ["conf.yaml", "data"], False)
    assert files(a) == after
    # An untracked file where a new one would go is refused.
    d = tmp_path / "d"
    ama("clone", "ml-models/1/0.0.0", "-d", str(d), cwd=tmp_path, env=env)
    (d / "b.txt").write_text("mine")
    ama("union", "ml-models/2", "--ours", cwd=d, env=env, code=1)
    assert (d / "b.txt").read_text() == "mine"
    # So is an untracked folder there, and an ignored file.
    (d / "b.txt").unlink()
    (d / "b.txt").mkdir()
    (d / "b.txt" / "keep").write_text("kept")
    in_the_way = ama("union", "ml-models/2", "--ours", cwd=d, env=env, code=1)
    assert "  b.txt\n" in in_the_way.stderr
    assert (d / "b.txt" / "keep").read_text() == "kept"
    shutil.rmtree(d / "b.txt")
    (d / ".amaignore").write_text("b.txt\n")
    (d / "b.txt").write_text("ignored")
    ama("union", "ml-models/2", "--ours", cwd=d, env=env, code=1)
    assert (d / "b.txt").read_text() == "ignored"
    # Another class is refused.
    wrong = ama("union", "datasets/1", cwd=d, env=env, code=2)
    assert "a union joins versions of one class" in wrong.stderr


def test_union_on_the_embedded_remote(tmp_path: Path) -> None:
    # Two asset stores (two machines) sharing one embedded remote in a folder.
    env, other = two_machines(tmp_path, "shared", (tmp_path / "shared").as_uri(), {})
    _union_scenario(tmp_path, env, other)


def test_union_against_ama_server(tmp_path: Path, start_ama_server: Callable[..., RunningServer],
                                  server_database_url: str) -> None:
    server = start_ama_server(server_database_url)
    env, other = two_machines(tmp_path, "team", server.url,
                              {"AMA_TOKEN": server.token, "AMA_PROJECT": server.project})
    _union_scenario(tmp_path, env, other)
