"""The whole lifecycle through the installed ``ama`` against a real ``ama-server`` under
gunicorn on 127.0.0.1, its objects in S3 (moto's server): presigned transfers, verify,
commit, clone and switch, and the DNS bypass."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

from tests.e2e.test_lifecycle import ama, files
from tests.services.server import RunningServer


def test_lifecycle_on_a_server_with_s3(tmp_path: Path, s3_bucket: object,
                                       start_ama_server: Callable[..., RunningServer]) -> None:
    server = start_ama_server(storage_url=s3_bucket.storage_url("ama"))  # type: ignore[attr-defined]
    ama("remote", "add", "team", server.url, cwd=tmp_path)
    ama("remote", "default", "team", cwd=tmp_path)
    ama("auth", "login", "--token", server.token, "--remote", "team", cwd=tmp_path)
    ama("project", "activate", server.project, cwd=tmp_path)
    projects = json.loads(ama("project", "list", "--json", cwd=tmp_path).stdout)
    assert {"name": server.project, "role": "admin", "active": True} in projects
    ama("class", "init", "ml-models", cwd=tmp_path)
    m = tmp_path / "m"
    (m / "conf").mkdir(parents=True)
    ama("init", "ml-models", cwd=m)
    (m / "weights.bin").write_bytes(os.urandom(300_000))
    (m / "conf" / "train.yaml").write_text("lr: 0.1\n")
    ama("add", ".", cwd=m)
    first = json.loads(ama("upload", "-m", "first", "--json", cwd=m).stdout)
    assert (first["name"], first["version"], first["objects_sent"]) == ("ml-models/1", "0.0.0", 5)
    v0 = files(m)
    (m / "conf" / "train.yaml").write_text("lr: 0.01\n")
    ama("update", "conf/train.yaml", cwd=m)
    second = json.loads(ama("upload", "-m", "second", "--json", cwd=m).stdout)
    # Only the changed file, its folder's tree, the root tree and the manifest travel.
    assert (second["version"], second["objects_sent"]) == ("0.0.1", 4)
    v1 = files(m)
    # Another machine: an empty asset store, the server reached by its address only.
    other = {"AMA_HOME": str(tmp_path / "other-home"), "ASSET_SERVER_SKIP_DNS": "true"}
    host_url = server.url.replace("127.0.0.1", "ama.invalid")
    ama("remote", "add", "team", host_url, cwd=tmp_path, env=other)
    ama("remote", "default", "team", cwd=tmp_path, env=other)
    ama("config", "set", "server.ip", "127.0.0.1", cwd=tmp_path, env=other)
    ama("config", "set", "project.active", server.project, cwd=tmp_path, env=other)
    ama("auth", "login", "--token", server.token, cwd=tmp_path, env=other)
    ama("clone", "ml-models/1", cwd=tmp_path, env=other)
    clone = tmp_path / "ml-models" / "1"
    assert files(clone) == v1
    listed = json.loads(ama("versions", "--json", cwd=clone, env=other).stdout)
    assert [v["version"] for v in listed] == ["0.0.0", "0.0.1"]
    # The manifest's author and message, not only the account that uploaded it.
    assert [(v["author"], v["author_email"], v["message"], v["uploader"]) for v in listed] == [
        ("Test User", "test@example.org", "first", "admin"),
        ("Test User", "test@example.org", "second", "admin")]
    shown = ama("info", cwd=clone, env=other).stdout
    assert "by Test User <test@example.org>" in shown and "uploaded:" in shown
    assert "by admin" in shown
    ama("switch", "--version", "0.0.0", cwd=clone, env=other)
    assert files(clone) == v0
    history = json.loads(ama("history", "--json", cwd=clone, env=other).stdout)
    assert [c["path"] for c in history[0]["changes"]] == ["conf/train.yaml"]
    # Not logged in: refused with exit 4, nothing created.
    ama("auth", "logout", cwd=tmp_path, env=other)
    ama("clone", "ml-models/1", "-d", "nope", cwd=tmp_path, env=other, code=4)
    assert not (tmp_path / "nope").exists()
