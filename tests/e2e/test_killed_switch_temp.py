"""A switch killed while it copies a big file into the work tree: the temp file it leaves is
never staged or listed, and running the switch again removes it."""

from __future__ import annotations

import json
import os
from pathlib import Path

from tests.e2e.test_interruptions import kill_when
from tests.e2e.test_lifecycle import ama, files

BIG = 16_000_000  # each copy lasts long enough to be caught in the act, even on a busy machine
COUNT = 12


def temp_files(root: Path) -> list[Path]:
    """ama's temp files in the work tree (any name ama ever gave them)."""
    return [p for p in root.rglob("*") if ".ama-" in p.name and ".ama" not in
            p.relative_to(root).parts]


def test_a_killed_switch_leaves_no_temp_file_to_stage(tmp_path: Path) -> None:
    env = {"AMA_HOME": str(tmp_path / "home")}
    ama("class", "init", "data", cwd=tmp_path, env=env)
    m = tmp_path / "m"
    m.mkdir()
    ama("init", "data", cwd=m, env=env)
    for n in range(COUNT):
        (m / f"big{n}.bin").write_bytes(os.urandom(BIG))
    ama("add", ".", cwd=m, env=env)
    ama("upload", "-m", "first", cwd=m, env=env)
    v0 = files(m)
    for n in range(COUNT):
        (m / f"big{n}.bin").write_bytes(os.urandom(BIG))
    ama("add", ".", cwd=m, env=env)
    ama("upload", "-m", "second", cwd=m, env=env)

    def copying() -> bool:
        return any(".ama-" in name for name in os.listdir(m))

    kill_when(["switch", "--version", "0.0.0"], m, env, copying)
    left = temp_files(m)  # nearly always the file it was copying (unless it had just renamed)
    status = json.loads(ama("status", "--json", cwd=m, env=env).stdout)
    assert status["untracked"] == []
    (m / ".ama" / "index.lock").unlink()  # the killed switch's, as ama's hint about it says
    staged = json.loads(ama("add", ".", "--json", cwd=m, env=env).stdout)
    assert staged["new"] == []
    ama("switch", "--version", "0.0.0", cwd=m, env=env)
    assert temp_files(m) == [] and files(m) == v0
    assert all(not p.exists() for p in left)
