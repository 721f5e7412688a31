"""``ama-server gc`` beside the installed ``ama``, on a real ama-server under gunicorn
(SQLite and PostgreSQL): an upload killed after sending its objects and before its commit
leaves objects, loose and in a pack, that gc frees once nothing references them; ``ama
upload`` run again sends them again and commits, and the version clones byte for byte."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

from tests.e2e.test_lifecycle import ama, files, prepare
from tests.services.server import RunningServer


def test_an_upload_cut_before_its_commit_is_freed_then_sent_again(
        tmp_path: Path, start_ama_server: Callable[..., RunningServer],
        server_database_url: str) -> None:
    server = start_ama_server(server_database_url)
    prepare("remote", "add", "team", server.url, cwd=tmp_path)
    prepare("remote", "default", "team", cwd=tmp_path)
    prepare("auth", "login", "--token", server.token, cwd=tmp_path)
    prepare("project", "activate", server.project, cwd=tmp_path)
    prepare("class", "init", "ml-models", cwd=tmp_path)
    m = tmp_path / "m"
    m.mkdir()
    ama("init", "ml-models", cwd=m)
    (m / "weights.bin").write_bytes(os.urandom(300_000))  # over the pack threshold: loose
    (m / "notes.txt").write_text("first\n")
    ama("add", ".", cwd=m)
    ama("upload", "-m", "first", cwd=m, code=-9, env={"AMA_CRASH_AT": "upload.sent"})

    kept = json.loads(server.run("gc", "--json").stdout)["storages"][0]
    assert (kept["objects"], kept["freed"]) == (0, 0)  # a week's grace: the upload may resume
    freed = json.loads(server.run("gc", "--grace", "0", "--json").stdout)["storages"][0]
    # The loose weights; and the pack the manifest, the tree and notes.txt went in, whole.
    assert (freed["objects"], freed["freed"]) == (1, 1)
    assert freed["freed_bytes"] == 300_000
    assert (freed["packs"], freed["freed_packs"]) == (1, 1)

    again = json.loads(ama("upload", "-m", "first", "--json", cwd=m).stdout)
    assert (again["name"], again["version"], again["objects_sent"]) == ("ml-models/1", "0.0.0", 4)
    # Another machine: an empty asset store, so every byte comes from the server.
    other = {"AMA_HOME": str(tmp_path / "other-home")}
    (tmp_path / "elsewhere").mkdir()
    for args in (("remote", "add", "team", server.url), ("remote", "default", "team"),
                 ("auth", "login", "--token", server.token),
                 ("project", "activate", server.project)):
        prepare(*args, cwd=tmp_path / "elsewhere", env=other)
    ama("clone", "ml-models/1", cwd=tmp_path / "elsewhere", env=other)
    assert files(tmp_path / "elsewhere" / "ml-models" / "1") == files(m)
    assert server.run("fsck").returncode == 0
    after = json.loads(server.run("gc", "--grace", "0", "--json").stdout)["storages"][0]
    assert (after["objects"], after["packs"]) == (0, 0)
