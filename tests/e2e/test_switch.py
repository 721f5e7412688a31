"""``ama switch`` between versions that differ in their file types and folder shapes, with
changes staged here, with a store that lacks the trees of the version here, and without
loading the HTTP client for a ``file://`` remote. Versions are uploaded through the
installed ``ama``; the switch runs through its Python API where the test reads its result."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from ama.plumbing.graph import read_manifest, read_tree
from ama.porcelain.asset import Asset
from ama.porcelain.switch import LocalChanges, switch
from tests.e2e.test_lifecycle import ama, files


def upload(root: Path, tree: dict[str, bytes], message: str) -> None:
    """Make ``root`` hold exactly ``tree`` (path → bytes; a path ending in ``*`` is
    executable) and upload it as the next version."""
    wanted = {p.rstrip("*"): (data, p.endswith("*")) for p, data in tree.items()}
    gone = [path for path in files(root) if path not in wanted]
    if gone:
        ama("remove", "-f", *gone, cwd=root)
    for path, (data, executable) in wanted.items():
        full = root / path
        if full.is_file() and not full.is_symlink() and full.read_bytes() == data:
            full.chmod(0o755 if executable else 0o644)
            continue
        if full.exists():
            full.unlink()
        full.parent.mkdir(parents=True, exist_ok=True)
        full.write_bytes(data)
        full.chmod(0o755 if executable else 0o644)
    ama("add", ".", cwd=root)
    ama("upload", "-m", message, cwd=root)


def two_versions(tmp_path: Path, first: dict[str, bytes], second: dict[str, bytes]) -> Path:
    """Upload ``first`` then ``second`` as data/1 and return a clone holding ``second``."""
    ama("class", "init", "data", cwd=tmp_path)
    a = tmp_path / "a"
    a.mkdir()
    ama("init", "data", cwd=a)
    upload(a, first, "first")
    upload(a, second, "second")
    clone = tmp_path / "c"
    ama("clone", "data/1", str(clone), cwd=tmp_path)
    return clone


def clean(root: Path) -> bool:
    return json.loads(ama("status", "--json", cwd=root).stdout)["uploaded"] is True


FIRST = {"p": b"a file named p\n", "keep/k.txt": b"kept\n", "run.sh": b"#!/bin/sh\n",
         "old/deep/x.txt": b"x\n"}
SECOND = {"p/inner.txt": b"now a folder\n", "p/more/y.txt": b"y\n", "keep/k.txt": b"kept\n",
          "run.sh*": b"#!/bin/sh\n", "old": b"a file where a folder was\n"}


def test_switch_turns_files_into_folders_and_back(tmp_path: Path) -> None:
    c = two_versions(tmp_path, FIRST, SECOND)
    kept = (c / "keep" / "k.txt").stat().st_ino
    back = switch(Asset.open(c), "0.0.0")
    assert back.written == ["old/deep/x.txt", "p", "run.sh"]
    assert back.deleted == ["old", "p/inner.txt", "p/more/y.txt"]
    assert files(c) == FIRST
    assert not (c / "run.sh").stat().st_mode & stat.S_IXUSR
    assert (c / "keep" / "k.txt").stat().st_ino == kept  # equal folders are not touched
    assert clean(c)
    # The index records that it equals the version's tree: the next check has nothing to
    # compare but stats.
    here = Asset.open(c)
    assert here.index().tree == here.committed_tree() is not None
    forth = switch(Asset.open(c), "0.0.1")
    assert forth.written == ["old", "p/inner.txt", "p/more/y.txt", "run.sh"]
    assert forth.deleted == ["old/deep/x.txt", "p"]
    assert files(c) == {p.rstrip("*"): d for p, d in SECOND.items()}
    assert (c / "run.sh").stat().st_mode & stat.S_IXUSR
    assert clean(c)


def test_staged_changes_are_refused_then_forced_away(tmp_path: Path) -> None:
    c = two_versions(tmp_path, {"a.txt": b"a0\n", "b.txt": b"b\n", "s.sh": b"s\n"},
                     {"a.txt": b"a1\n", "b.txt": b"b\n", "s.sh": b"s\n"})
    # Staged here, not uploaded: other bytes in a file both versions share, a new file and
    # an executable bit; the work tree matches the index, so only the index tells.
    (c / "b.txt").chmod(0o644)
    (c / "b.txt").unlink()
    (c / "b.txt").write_bytes(b"staged edit\n")
    (c / "new.txt").write_bytes(b"staged new file\n")
    (c / "s.sh").chmod(0o755)
    ama("add", ".", cwd=c)
    with pytest.raises(LocalChanges) as refused:
        switch(Asset.open(c), "0.0.0")
    for path in ("b.txt", "new.txt", "s.sh"):
        assert path in refused.value.message
    assert "a.txt" not in refused.value.message
    assert (c / "a.txt").read_bytes() == b"a1\n"
    assert json.loads(ama("status", "--json", cwd=c).stdout)["version"] == "0.0.1"
    forced = switch(Asset.open(c), "0.0.0", force=True)
    assert forced.written == ["a.txt", "b.txt", "s.sh"] and forced.deleted == ["new.txt"]
    assert files(c) == {"a.txt": b"a0\n", "b.txt": b"b\n", "s.sh": b"s\n"}
    assert not (c / "s.sh").stat().st_mode & stat.S_IXUSR
    assert clean(c)
    here = Asset.open(c)
    assert here.index().tree == here.committed_tree() is not None


def test_work_tree_changes_are_found_by_stat(tmp_path: Path) -> None:
    c = two_versions(tmp_path, {"a.txt": b"a0\n", "b.txt": b"b\n", "d/c.txt": b"c\n"},
                     {"a.txt": b"a1\n", "b.txt": b"b\n", "d/c.txt": b"c\n"})
    (c / "b.txt").chmod(0o644)
    (c / "b.txt").write_bytes(b"edited\n")
    (c / "d" / "c.txt").unlink()
    with pytest.raises(LocalChanges) as refused:
        switch(Asset.open(c), "0.0.0")
    assert "b.txt" in refused.value.message and "d/c.txt" in refused.value.message
    # Touched but the same bytes is no change.
    (c / "b.txt").write_bytes(b"b\n")
    (c / "d" / "c.txt").write_bytes(b"c\n")
    os.utime(c / "b.txt", (1, 1))
    assert switch(Asset.open(c), "0.0.0").written == ["a.txt"]
    assert files(c) == {"a.txt": b"a0\n", "b.txt": b"b\n", "d/c.txt": b"c\n"}


def test_switch_fetches_the_trees_of_the_version_here_when_the_store_lacks_them(
        tmp_path: Path) -> None:
    first = {f"d{f}/{n}.txt": f"{f} {n}\n".encode() for f in range(3) for n in range(4)}
    second = {**first, "d1/2.txt": b"changed\n"}
    c = two_versions(tmp_path, first, second)
    asset = Asset.open(c)
    odb = asset.odb
    manifest = asset.head.manifest
    assert manifest is not None
    trees = [read_manifest(odb, manifest).tree]
    trees += [e.id for e in read_tree(odb, trees[0]).entries if e.type == "tree"]
    removed = [manifest, *trees]
    for oid in removed:
        path = odb.path(oid)
        path.parent.chmod(0o755)
        path.unlink()
    assert not any(odb.has(oid) for oid in removed)
    result = switch(Asset.open(c), "0.0.0")
    assert result.written == ["d1/2.txt"] and result.deleted == []
    assert files(c) == first
    assert odb.has(manifest) and odb.has(trees[0])  # fetched again: what the diff read
    assert clean(c)


def test_a_switch_on_a_file_remote_does_not_load_the_http_client(tmp_path: Path) -> None:
    c = two_versions(tmp_path, {"a.txt": b"0\n"}, {"a.txt": b"1\n"})
    code = ("import sys\n"
            "from ama.porcelain.asset import Asset\n"
            "from ama.porcelain.switch import switch\n"
            "written = switch(Asset.open('.'), '0.0.0').written\n"
            "print(written, 'requests' in sys.modules, 'urllib3' in sys.modules)\n")
    done = subprocess.run([sys.executable, "-c", code], cwd=c, capture_output=True, text=True,
                          timeout=120, check=True)
    assert done.stdout.split("\n")[0] == "['a.txt'] False False"
    assert (c / "a.txt").read_bytes() == b"0\n"


def test_switch_records_the_new_stat_of_files_touched_but_unchanged(tmp_path: Path) -> None:
    c = two_versions(tmp_path, FIRST, SECOND)
    os.utime(c / "keep" / "k.txt", ns=(1_000_000_000, 1_000_000_000))  # same bytes
    switch(Asset.open(c), "0.0.0")
    entry = Asset.open(c).index().get("keep/k.txt")
    assert entry is not None and entry.matches(os.stat(c / "keep" / "k.txt"))


def test_pull_brings_the_latest_version_and_keeps_changes_not_uploaded(tmp_path: Path) -> None:
    ama("class", "init", "data", cwd=tmp_path)
    a = tmp_path / "a"
    a.mkdir()
    ama("init", "data", cwd=a)
    upload(a, {"x.txt": b"one", "keep.txt": b"k"}, "first")
    clone = tmp_path / "clone"
    ama("clone", "data/1", str(clone), cwd=tmp_path)
    assert ama("pull", cwd=clone).stderr == "data/1 is at the latest version, 0.0.0, already\n"
    upload(a, {"x.txt": b"two", "keep.txt": b"k", "new.txt": b"n"}, "second")
    pulled = json.loads(ama("pull", "--json", cwd=clone).stdout)
    assert (pulled["from"], pulled["to"]) == ("0.0.0", "0.0.1")
    assert sorted(pulled["written"]) == ["new.txt", "x.txt"]
    assert files(clone) == files(a)
    # A change here is never overwritten without --force.
    upload(a, {"x.txt": b"three", "keep.txt": b"k"}, "third")
    (clone / "x.txt").write_text("mine")
    refused = ama("pull", cwd=clone, code=1)
    assert "x.txt" in refused.stderr and "--force" in refused.stderr
    assert (clone / "x.txt").read_text() == "mine"
    ama("pull", "--force", "-q", cwd=clone)
    assert files(clone) == files(a)
    # An asset never uploaded has nothing to pull.
    temp = tmp_path / "t"
    temp.mkdir()
    ama("init", "data", cwd=temp)
    assert "ama upload" in ama("pull", cwd=temp, code=3).stderr
