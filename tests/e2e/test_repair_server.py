"""Repairing corrupt store objects from a real ``ama-server`` under gunicorn on 127.0.0.1:
``ama store verify --repair`` and ``ama download -f`` fetch good copies over HTTP."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

from ama.plumbing.hashing import hash_bytes
from tests.e2e.test_lifecycle import ama, files, prepare
from tests.services.server import RunningServer


def flip(path: Path) -> None:
    os.chmod(path, 0o644)
    data = bytearray(path.read_bytes())
    data[-1] ^= 1
    path.write_bytes(bytes(data))
    os.chmod(path, 0o444)


def test_corrupt_objects_are_fetched_again_from_the_server(
        tmp_path: Path, start_ama_server: Callable[..., RunningServer]) -> None:
    server = start_ama_server()
    prepare("remote", "add", "team", server.url, cwd=tmp_path)
    prepare("remote", "default", "team", cwd=tmp_path)
    prepare("auth", "login", "--token", server.token, "--remote", "team", cwd=tmp_path)
    prepare("project", "activate", server.project, cwd=tmp_path)
    prepare("class", "init", "ml-models", cwd=tmp_path)
    m = tmp_path / "m"
    m.mkdir()
    ama("init", "ml-models", cwd=m)
    (m / "weights.bin").write_bytes(os.urandom(300_000))
    (m / "train.yaml").write_text("lr: 0.1\n")
    ama("add", ".", cwd=m)
    ama("upload", "-m", "first", cwd=m)
    v0 = files(m)
    objects = Path(os.environ["AMA_HOME"]) / "objects"
    weights = hash_bytes(v0["weights.bin"])
    stored = objects / weights[:2] / weights[2:]

    flip(stored)
    assert ama("store", "verify", cwd=tmp_path, code=1).stdout.startswith(
        f"corrupt\t{weights}\t")
    repaired = ama("store", "verify", "--repair", cwd=tmp_path)
    assert f"repaired\t{weights}" in repaired.stdout.splitlines()
    assert hash_bytes(stored.read_bytes()) == weights
    assert list(objects.rglob(".tmp-*")) == []

    flip(stored)
    (m / "weights.bin").unlink()
    ama("download", cwd=m, code=1)
    done = json.loads(ama("download", "-f", "--json", cwd=m).stdout)
    assert done["repaired"] == [weights] and done["placed"] == ["weights.bin"]
    assert files(m) == v0 and hash_bytes(stored.read_bytes()) == weights
    ama("store", "verify", cwd=tmp_path)
