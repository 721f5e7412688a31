"""The lifecycle through the installed ``ama`` at a size where each command splits its work
with a forked child (more than :data:`ama.plumbing.parallel.PARALLEL_FROM` files): a command
runs single-threaded in its own interpreter, so the forks do happen here, and what they
produce must be what one process produces, byte for byte."""

from __future__ import annotations

import json
from pathlib import Path

from ama.plumbing.parallel import PARALLEL_FROM
from tests.e2e.test_lifecycle import ama, files

COUNT = PARALLEL_FROM + 300


def write_files(root: Path) -> dict[str, bytes]:
    made = {}
    for i in range(COUNT):
        path = f"d{i % 60:02d}/f{i:05d}.txt"
        data = f"file {i}\n".encode() * (1 + i % 3)
        (root / path).parent.mkdir(exist_ok=True)
        (root / path).write_bytes(data)
        made[path] = data
    return made


def status(root: Path, env: dict[str, str] | None = None) -> dict:  # type: ignore[type-arg]
    return json.loads(ama("status", "--json", cwd=root, env=env).stdout)


def test_add_upload_clone_switch_status_past_the_split(tmp_path: Path) -> None:
    ama("class", "init", "data", cwd=tmp_path)
    a = tmp_path / "a"
    a.mkdir()
    ama("init", "data", cwd=a)
    first = write_files(a)
    ama("add", "-q", ".", cwd=a)
    ama("upload", "-q", "-m", "first", cwd=a)
    assert status(a)["clean"]
    # Every 97th file changes: both halves of the work hold some.
    second = dict(first)
    for n, path in enumerate(sorted(first)):
        if n % 97 == 0:
            second[path] = b"changed " + first[path]
            (a / path).write_bytes(second[path])
    changed = status(a)
    assert sorted(changed["modified"]) == sorted(p for p in second if second[p] != first[p])
    ama("add", "-q", ".", cwd=a)
    ama("upload", "-q", "-m", "second", cwd=a)

    # A clone from the same (warm) store, by hard links, then back and forth.
    ama("config", "set", "link.strategy", "hardlink", cwd=tmp_path)
    c = tmp_path / "c"
    ama("clone", "-q", "data/1", "-d", str(c), cwd=tmp_path)
    assert files(c) == second
    assert status(c)["uploaded"] and status(c)["clean"]
    ama("switch", "-q", "--version", "0.0.0", cwd=c)
    assert files(c) == first and status(c)["clean"]
    ama("switch", "-q", "--version", "0.0.1", cwd=c)
    assert files(c) == second and status(c)["clean"]
    verified = ama("store", "verify", cwd=c)
    assert "0 corrupt" in verified.stdout + verified.stderr
