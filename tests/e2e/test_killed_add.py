"""A killed ``ama add`` leaves temp files in the asset store: ``ama fsck`` lists them as
removable garbage, not damage (exit 0, with a note), and ``ama store gc`` removes those
older than its grace period."""

from __future__ import annotations

from pathlib import Path

from tests.e2e.test_interruptions import count_files, data_asset, kill_when
from tests.e2e.test_lifecycle import ama


def test_fsck_notes_what_a_killed_add_left_and_gc_removes_it(tmp_path: Path) -> None:
    home = tmp_path / "home"
    env = {"AMA_HOME": str(home)}
    m = data_asset(tmp_path, env)
    objects = home / "objects"
    kill_when(["add", "."], m, env, lambda: count_files(objects) >= 100)
    left = [p for p in objects.rglob(".tmp-*")]
    assert left
    checked = ama("fsck", cwd=tmp_path, env=env)
    rows = checked.stdout.splitlines()
    assert len(rows) == len(left) and all(r.startswith("garbage\t\t") for r in rows)
    assert f"note: {len(left)} temp file(s) left by interrupted writes" in checked.stderr
    assert "ama store gc" in checked.stderr and "problem" not in checked.stderr
    ama("store", "gc", cwd=tmp_path, env=env)  # within the grace period: kept
    assert sorted(objects.rglob(".tmp-*")) == sorted(left)
    ama("store", "gc", "--grace", "0", cwd=tmp_path, env=env)
    assert list(objects.rglob(".tmp-*")) == []
    assert ama("fsck", cwd=tmp_path, env=env).stdout == ""
    (m / ".ama" / "index.lock").unlink()  # the killed add's, as ama's hint about it says
    ama("add", ".", cwd=m, env=env)
    assert ama("fsck", cwd=tmp_path, env=env).stdout == ""
