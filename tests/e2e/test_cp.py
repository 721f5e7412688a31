"""``ama cp`` through the installed ``ama``, against the embedded remote and against
ama-server under gunicorn (SQLite and PostgreSQL): files from a version to local paths,
local files and other versions' files into an asset's next version, by object id (a copy
between two assets of one remote sends no file bytes), and the errors."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

from tests.e2e.test_lifecycle import ama, files, two_machines
from tests.services.server import RunningServer


def _make(root: Path, content: dict[str, bytes], env: dict[str, str]) -> None:
    root.mkdir()
    ama("init", "ml-models", cwd=root, env=env)
    for path, data in content.items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_bytes(data)
    ama("add", ".", cwd=root, env=env)
    ama("upload", "-m", root.name, cwd=root, env=env)


def _cp_scenario(tmp_path: Path, env: dict[str, str], other_env: dict[str, str]) -> None:
    weights = os.urandom(200_000)
    _make(tmp_path / "a", {"data/x.csv": b"1,2\n", "w.bin": weights, "sub/a.txt": b"a"}, env)
    _make(tmp_path / "b", {"other.txt": b"o"}, env)
    out = tmp_path / "out"
    out.mkdir()

    # Version → local, on a machine that has none of the objects: fetched, checked, written.
    done = json.loads(ama("cp", "ml-models/1/0.0.0:data/x.csv", "x.csv", "--json", cwd=out,
                          env=other_env).stdout)
    assert (done["files"], done["received"], done["version"]) == (["x.csv"], 1, None)
    assert (out / "x.csv").read_bytes() == b"1,2\n"
    ama("cp", "ml-models/1:sub", str(out) + "/", cwd=out, env=other_env)
    assert (out / "sub" / "a.txt").read_bytes() == b"a"
    ama("cp", "ml-models/1:w.bin", "renamed.bin", cwd=out, env=other_env)
    assert (out / "renamed.bin").read_bytes() == weights

    # Version → another asset: its next version, the weights sent by id, not by bytes.
    made = json.loads(ama("cp", "ml-models/1/0.0.0:w.bin", "ml-models/2:models/", "--json",
                          cwd=out, env=env).stdout)
    assert (made["version"]["name"], made["version"]["version"], made["files"]) == (
        "ml-models/2", "0.0.1", ["models/w.bin"])
    assert 0 < made["bytes_sent"] < 2_000  # two trees and a manifest
    clone = tmp_path / "clone"
    ama("clone", "ml-models/2", "-d", str(clone), cwd=tmp_path, env=other_env)
    assert files(clone) == {"other.txt": b"o", "models/w.bin": weights}
    shown = json.loads(ama("info", "--json", cwd=clone, env=other_env).stdout)
    assert shown["inputs"] == [{"label": "copied from", "manifest": shown["inputs"][0]["manifest"],
                                "name": "ml-models/1/0.0.0"}]

    # Local → asset: the new file's bytes are sent, once.
    (out / "notes.txt").write_bytes(b"read me")
    local = json.loads(ama("cp", "notes.txt", "ml-models/2:docs/readme.txt", "-m", "docs",
                           "--json", cwd=out, env=env).stdout)
    assert (local["version"]["version"], local["files"]) == ("0.0.2", ["docs/readme.txt"])
    assert local["bytes_sent"] >= len(b"read me")
    ama("pull", cwd=clone, env=other_env)
    assert files(clone)["docs/readme.txt"] == b"read me"
    assert json.loads(ama("versions", "--json", cwd=clone, env=other_env).stdout)[-1][
        "message"] == "docs"

    # Errors name what is wrong.
    both = ama("cp", "x.csv", "y.csv", cwd=out, env=env, code=2)
    assert "neither 'x.csv' nor 'y.csv' is an asset address" in both.stderr
    frozen = ama("cp", "x.csv", "ml-models/2/0.0.0:x.csv", cwd=out, env=env, code=2)
    assert "versions never change" in frozen.stderr
    missing = ama("cp", "ml-models/1:nope", "n", cwd=out, env=env, code=3)
    assert "has no file or folder nope" in missing.stderr


def test_cp_on_the_embedded_remote(tmp_path: Path) -> None:
    env, other = two_machines(tmp_path, "shared", (tmp_path / "shared").as_uri(), {})
    _cp_scenario(tmp_path, env, other)


def test_cp_against_ama_server(tmp_path: Path, start_ama_server: Callable[..., RunningServer],
                               server_database_url: str) -> None:
    server = start_ama_server(server_database_url)
    env, other = two_machines(tmp_path, "team", server.url,
                              {"AMA_TOKEN": server.token, "AMA_PROJECT": server.project})
    _cp_scenario(tmp_path, env, other)
