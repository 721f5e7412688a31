from __future__ import annotations

import os
from pathlib import Path

import pytest

from ama.plumbing.errors import BadInput, NotFound
from ama.plumbing.hashing import hash_bytes
from ama.plumbing.worktree import UnsupportedFiles
from ama.porcelain.add import add
from ama.porcelain.asset import Asset, IndexLocked, locked_index
from ama.porcelain.discard import discard
from ama.porcelain.remove import UnsavedChanges, remove
from ama.porcelain.status import status
from ama.porcelain.update import update
from tests.unit.porcelain.conftest import commit, write


def test_add_stages_new_changed_and_deleted(asset: Asset) -> None:
    write(asset.root, {"a.txt": "a", "d/b.txt": "b", "d/e/c.txt": "c"})
    result = add(asset, ["."])
    assert result.new == ["a.txt", "d/b.txt", "d/e/c.txt"]
    index = asset.index()
    assert index.get("d/b.txt").id == hash_bytes(b"b")
    assert asset.odb.get(hash_bytes(b"c")) == b"c"
    write(asset.root, {"a.txt": "A", "new.txt": "n"})
    os.unlink(asset.root / "d" / "b.txt")
    again = add(asset, ["."])
    assert (again.new, again.modified, again.removed) == (["new.txt"], ["a.txt"], ["d/b.txt"])
    assert add(asset, ["."]).to_json() == {"new": [], "modified": [], "removed": [],
                                          "restored": [], "skipped": [], "bytes": 0}


def test_add_relative_to_a_subfolder_and_amaignore(asset: Asset,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    write(asset.root, {".amaignore": "*.tmp\ncache/\n", "d/x.csv": "1", "d/y.tmp": "2",
                       "cache/z": "3", "top": "4"})
    monkeypatch.chdir(asset.root / "d")
    assert add(asset, ["."]).new == ["d/x.csv"]
    with pytest.raises(BadInput, match="excluded by .amaignore"):
        add(asset, ["y.tmp"])
    assert add(asset, [".."]).new == [".amaignore", "top"]


def test_add_refuses_special_files_and_missing_paths_with_nothing_staged(asset: Asset) -> None:
    write(asset.root, {"good.txt": "g"})
    os.mkfifo(asset.root / "pipe")
    os.symlink("/etc/hostname", asset.root / "link")
    with pytest.raises(UnsupportedFiles) as e:
        add(asset, ["."])
    assert [p for p, _ in e.value.problems] == ["link", "pipe"]
    assert len(asset.index()) == 0
    assert not asset.odb.has(hash_bytes(b"g"))
    with pytest.raises(NotFound):
        add(asset, ["good.txt", "missing.txt"])
    assert len(asset.index()) == 0


def test_update_restages_only_tracked_files(asset: Asset) -> None:
    write(asset.root, {"a": "1", "b": "2"})
    add(asset, ["a", "b"])
    write(asset.root, {"a": "changed", "new": "n"})
    os.unlink(asset.root / "b")
    result = update(asset)
    assert (result.modified, result.removed, result.new) == (["a"], ["b"], [])
    assert "new" not in asset.index()
    with pytest.raises(NotFound, match="nothing to update") as staged:
        update(asset, ["new"])
    assert staged.value.hint == "stage it with 'ama add new'"
    # A hint that leads to another error is worse than none: no `ama add` for a missing file.
    with pytest.raises(NotFound, match="nothere.bin: no such file") as missing:
        update(asset, ["nothere.bin"])
    assert missing.value.hint is not None and "ama add" not in missing.value.hint


def test_status_reports_every_state(asset: Asset) -> None:
    write(asset.root, {"keep": "k", "edit": "e", "gone": "g", "drop": "d"})
    add(asset, ["."])
    commit(asset)
    write(asset.root, {"edit": "e2", "fresh": "f", "later": "l"})
    add(asset, ["edit", "fresh"])
    remove(asset, ["drop"])
    write(asset.root, {"keep": "k2"})
    os.unlink(asset.root / "gone")
    s = status(asset)
    assert s.staged_new == ["fresh"]
    assert s.staged_modified == ["edit"]
    assert s.staged_deleted == ["drop"]
    assert s.modified == ["keep"]
    assert s.deleted == ["gone"]
    assert s.untracked == ["later"]
    assert not s.uploaded and not s.clean
    discard(asset, None, staged=True)
    os.unlink(asset.root / "fresh")
    os.unlink(asset.root / "later")
    after = status(asset)
    assert after.uploaded and after.clean
    assert (asset.root / "drop").read_text() == "d"
    assert (asset.root / "gone").read_text() == "g"


def test_status_refreshes_touched_files(asset: Asset) -> None:
    write(asset.root, {"a": "same"})
    add(asset, ["a"])
    os.utime(asset.root / "a", ns=(1, 1))
    assert status(asset).modified == []
    assert asset.index().get("a").mtime_ns == 1


def test_remove_keeps_unstaged_changes_unless_forced(asset: Asset) -> None:
    write(asset.root, {"d/a": "1", "d/b": "2"})
    add(asset, ["."])
    write(asset.root, {"d/b": "edited"})
    with pytest.raises(UnsavedChanges, match="d/b"):
        remove(asset, ["d"])
    assert len(asset.index()) == 2 and (asset.root / "d" / "a").exists()
    kept = remove(asset, ["d/b"], keep=True)
    assert kept.unstaged == ["d/b"] and kept.deleted == []
    assert (asset.root / "d" / "b").read_text() == "edited"
    removed = remove(asset, ["d/a"])
    assert removed.deleted == ["d/a"] and not (asset.root / "d" / "a").exists()
    with pytest.raises(NotFound):
        remove(asset, ["d/a"])


def test_discard_restores_staged_bytes(asset: Asset) -> None:
    write(asset.root, {"a": "staged", "b": "other"})
    add(asset, ["."])
    write(asset.root, {"a": "scribble", "untracked": "u"})
    os.unlink(asset.root / "b")
    result = discard(asset, None)
    assert result.restored == ["a", "b"]
    assert (asset.root / "a").read_text() == "staged"
    assert (asset.root / "b").read_text() == "other"
    assert (asset.root / "untracked").read_text() == "u"
    with pytest.raises(NotFound):
        discard(asset, ["untracked"])


def test_index_lock_refuses_a_second_writer(asset: Asset) -> None:
    write(asset.root, {"a": "1"})
    with locked_index(asset):
        with pytest.raises(IndexLocked, match=str(os.getpid())):
            add(asset, ["a"])
    assert add(asset, ["a"]).new == ["a"]
    write(asset.root, {"a": "2"})
    (asset.dir.meta / "index.lock").write_text("999999999\n")  # a process that is gone
    assert add(asset, ["a"]).modified == ["a"]
    assert not (asset.dir.meta / "index.lock").exists()


def test_open_outside_an_asset_dir(tmp_path: Path) -> None:
    from ama.plumbing.worktree import NotAnAssetDir

    with pytest.raises(NotAnAssetDir):
        Asset.open(tmp_path)


def test_add_stages_a_folder_that_became_a_file_and_back(asset: Asset) -> None:
    import shutil

    write(asset.root, {"old/a": "a", "old/b": "b", "keep": "k"})
    add(asset, ["."])
    shutil.rmtree(asset.root / "old")
    write(asset.root, {"old": "a file now"})
    staged = add(asset, ["."])
    assert staged.removed == ["old/a", "old/b"] and staged.new == ["old"]
    assert sorted(asset.index().entries) == ["keep", "old"]
    os.unlink(asset.root / "old")
    write(asset.root, {"old/c": "a folder again"})
    staged = add(asset, ["."])
    assert staged.removed == ["old"] and staged.new == ["old/c"]
    assert sorted(asset.index().entries) == ["keep", "old/c"]
