"""Placing files from the store: link strategies remembered per operation, and checkout
by a pool of threads."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from ama.plumbing.checkout import CHUNK, WouldOverwrite, checkout
from ama.plumbing.hashing import hash_bytes
from ama.plumbing.index import MODE_EXEC, MODE_FILE, Index, IndexEntry
from ama.plumbing.link import Linker
from ama.plumbing.odb import CorruptObject, FileObjectDatabase, MissingObject


def stage(odb: FileObjectDatabase, index: Index, files: dict[str, bytes],
          mode: int = MODE_FILE) -> None:
    with odb.batch():
        for path, data in files.items():
            index.add(IndexEntry(path, odb.write(data), len(data), 0, 0, mode))


def many(n: int) -> dict[str, bytes]:
    return {f"d{i % 7}/f{i:04d}.bin": f"file {i}\n".encode() * 3 for i in range(n)}


def test_auto_remembers_a_filesystem_without_reflinks(tmp_path: Path) -> None:
    src = tmp_path / "object"
    src.write_bytes(b"bytes")
    linker = Linker("auto")
    first = linker.place(str(src), str(tmp_path / "a"), False)
    assert (tmp_path / "a").read_bytes() == b"bytes"
    if first == "reflink":  # a filesystem with reflinks keeps using them
        assert linker.used_for(str(tmp_path / "b"), False) == "auto"
    else:
        assert first == "copy"
        assert linker.used_for(str(tmp_path / "b"), False) == "copy"
        assert Linker("auto").used_for(str(tmp_path / "b"), False) == "auto"


@pytest.mark.parametrize("strategy", ["hardlink", "copy", "auto", "symlink"])
def test_checkout_places_every_file_with_its_bytes(tmp_path: Path, strategy: str) -> None:
    odb = FileObjectDatabase(tmp_path / "objects")
    index = Index(tmp_path / "index")
    files = many(CHUNK * 3 + 5)  # several chunks: the pool of threads places them
    stage(odb, index, files)
    stage(odb, index, {"run.sh": b"#!/bin/sh\necho hi\n"}, MODE_EXEC)
    root = tmp_path / "work"
    written = checkout(odb, index, root, list(index.entries), strategy)
    assert sorted(written) == sorted(index.entries)
    for path, data in files.items():
        assert (root / path).read_bytes() == data
        entry = index.entries[path]
        assert entry.matches(os.stat(root / path))  # the stat cache is filled in
        if strategy == "hardlink":
            assert os.stat(root / path).st_ino == os.stat(odb.path(entry.id)).st_ino
            assert not os.stat(root / path).st_mode & 0o222  # read-only: edits fail
    assert os.access(root / "run.sh", os.X_OK)  # an executable is never a shared link
    assert os.stat(root / "run.sh").st_ino != os.stat(odb.path(index.entries["run.sh"].id)).st_ino
    # Nothing changed: nothing is written again.
    assert checkout(odb, index, root, list(index.entries), strategy) == []


def test_checkout_refuses_a_corrupt_object_and_a_missing_one(tmp_path: Path) -> None:
    odb = FileObjectDatabase(tmp_path / "objects")
    index = Index(tmp_path / "index")
    stage(odb, index, {"a.txt": b"alpha\n"})
    stored = odb.path(index.entries["a.txt"].id)
    stored.chmod(0o644)
    stored.write_bytes(b"evil!\n")
    for strategy in ("hardlink", "copy"):
        with pytest.raises(CorruptObject):
            checkout(odb, index, tmp_path / strategy, ["a.txt"], strategy)
        assert not (tmp_path / strategy / "a.txt").exists()
    index.add(IndexEntry("b.txt", hash_bytes(b"absent"), 6))
    with pytest.raises(MissingObject):
        checkout(odb, index, tmp_path / "w", ["b.txt"], "hardlink")


def test_only_objects_the_caller_verified_skip_the_hash_when_linked(tmp_path: Path) -> None:
    odb = FileObjectDatabase(tmp_path / "objects")
    index = Index(tmp_path / "index")
    stage(odb, index, {"a.txt": b"alpha\n", "b.txt": b"beta\n"})
    for name in ("a.txt", "b.txt"):
        stored = odb.path(index.entries[name].id)
        stored.chmod(0o644)
        stored.write_bytes(b"evil!\n" if name == "a.txt" else b"bad!\n")
    verified = {index.entries["b.txt"].id}
    with pytest.raises(CorruptObject) as caught:
        checkout(odb, index, tmp_path / "w", ["a.txt"], "hardlink", verified=verified)
    assert index.entries["a.txt"].id in str(caught.value)
    assert not (tmp_path / "w" / "a.txt").exists()
    # A verified id is trusted as the caller's own operation just hashed it: linked as is.
    checkout(odb, index, tmp_path / "w", ["b.txt"], "hardlink", verified=verified)
    assert (tmp_path / "w" / "b.txt").exists()


def test_checkout_keeps_local_edits_unless_forced(tmp_path: Path) -> None:
    odb = FileObjectDatabase(tmp_path / "objects")
    index = Index(tmp_path / "index")
    stage(odb, index, {"a.txt": b"alpha\n", "d/b.txt": b"beta\n"})
    root = tmp_path / "work"
    (root / "d").mkdir(parents=True)
    (root / "d" / "b.txt").write_bytes(b"mine\n")
    with pytest.raises(WouldOverwrite):
        checkout(odb, index, root, ["a.txt", "d/b.txt"], "hardlink")
    assert (root / "d" / "b.txt").read_bytes() == b"mine\n"
    assert checkout(odb, index, root, ["a.txt", "d/b.txt"], "hardlink", force=True)
    assert (root / "d" / "b.txt").read_bytes() == b"beta\n"


@pytest.mark.parametrize("strategy", ["hardlink", "copy"])
def test_checkout_split_with_a_child_process_places_the_same(tmp_path: Path,
                                                             strategy: str) -> None:
    odb = FileObjectDatabase(tmp_path / "objects")
    files = many(300)
    single, split = Index(tmp_path / "one"), Index(tmp_path / "two")
    stage(odb, single, files)
    stage(odb, split, files)
    checkout(odb, single, tmp_path / "a", sorted(files), strategy, split_at=10**9)
    written = checkout(odb, split, tmp_path / "b", sorted(files), strategy, split_at=2)
    assert written == sorted(files)
    for path, data in files.items():
        assert (tmp_path / "b" / path).read_bytes() == data
        assert split.get(path).matches(os.stat(tmp_path / "b" / path))  # type: ignore[union-attr]
    assert {p: e.id for p, e in split.entries.items()} == {
        p: e.id for p, e in single.entries.items()}


def test_a_corrupt_object_in_the_childs_half_is_refused(tmp_path: Path) -> None:
    odb = FileObjectDatabase(tmp_path / "objects")
    index = Index(tmp_path / "index")
    files = many(300)
    stage(odb, index, files)
    last = sorted(files)[-1]  # in the second half: the child's
    victim = odb.path(index.get(last).id)  # type: ignore[union-attr]
    victim.chmod(0o644)
    victim.write_bytes(b"X" * len(files[last]))  # written: no longer sealed
    victim.chmod(0o444)
    with pytest.raises(CorruptObject) as caught:
        checkout(odb, index, tmp_path / "w", sorted(files), "hardlink", split_at=2)
    assert str(victim) in caught.value.message
    assert not (tmp_path / "w" / last).exists()


def test_checkout_removes_leftover_temp_files_where_it_places_but_keeps_staged_ones(
        tmp_path: Path) -> None:
    odb = FileObjectDatabase(tmp_path / "objects")
    index = Index(tmp_path / "index")
    stage(odb, index, {"d/a.txt": b"alpha\n", "d/.ama-tmp-staged": b"kept\n",
                       "e/b.txt": b"beta\n"})
    root = tmp_path / "work"
    checkout(odb, index, root, ["d/.ama-tmp-staged", "e/b.txt"], "copy")
    for folder in ("d", "e"):
        (root / folder / ".ama-tmp-0123456789abcdef").write_bytes(b"left by a kill")
    assert checkout(odb, index, root, ["d/a.txt"], "copy") == ["d/a.txt"]
    assert sorted(os.listdir(root / "d")) == [".ama-tmp-staged", "a.txt"]
    assert (root / "d" / ".ama-tmp-staged").read_bytes() == b"kept\n"
    # A folder the checkout placed nothing in is left alone.
    assert (root / "e" / ".ama-tmp-0123456789abcdef").exists()


def test_checkout_places_links_and_never_writes_through_one(tmp_path: Path) -> None:
    from ama.plumbing.index import MODE_LINK

    odb = FileObjectDatabase(tmp_path / "objects")
    index = Index(tmp_path / "index")
    stage(odb, index, {"zoneinfo/Europe/Paris": b"CET\n"})
    stage(odb, index, {"zoneinfo/Europe/Monaco": b"Paris", "posix": b"zoneinfo",
                       "zoneinfo/gone": b"../nowhere"}, MODE_LINK)
    root = tmp_path / "work"
    written = checkout(odb, index, root, list(index.entries))
    assert sorted(written) == sorted(index.entries)
    assert os.readlink(root / "zoneinfo/Europe/Monaco") == "Paris"
    assert os.readlink(root / "posix") == "zoneinfo"  # a folder: linked, not copied
    assert os.readlink(root / "zoneinfo/gone") == "../nowhere"  # dangling, as recorded
    assert (root / "posix/Europe/Monaco").read_bytes() == b"CET\n"
    for path in ("posix", "zoneinfo/gone"):
        assert index.entries[path].matches(os.lstat(root / path))
    # Placed again: the links are up to date, nothing is written.
    assert checkout(odb, index, root, list(index.entries)) == []


@pytest.mark.parametrize("target", ["/etc", "../outside", "a/../../x"])
def test_checkout_refuses_a_link_leaving_the_asset_before_any_write(tmp_path: Path,
                                                                    target: str) -> None:
    from ama.plumbing.index import MODE_LINK
    from ama.plumbing.objects import UnsafeLink

    odb = FileObjectDatabase(tmp_path / "objects")
    index = Index(tmp_path / "index")
    stage(odb, index, {"a.txt": b"first\n"})
    stage(odb, index, {"evil": target.encode()}, MODE_LINK)
    root = tmp_path / "work"
    root.mkdir()
    with pytest.raises(UnsafeLink, match="evil"):
        checkout(odb, index, root, list(index.entries))
    assert os.listdir(root) == []


@pytest.mark.parametrize("force", [False, True])
def test_checkout_never_follows_a_folder_that_is_a_link(tmp_path: Path, force: bool) -> None:
    odb = FileObjectDatabase(tmp_path / "objects")
    index = Index(tmp_path / "index")
    stage(odb, index, {"a/passwd": b"root::0:0::/:/bin/sh\n", "a/b/c": b"deep\n",
                       "z.txt": b"z\n"})
    outside = tmp_path / "etc"
    outside.mkdir()
    (outside / "passwd").write_bytes(b"kept\n")
    root = tmp_path / "work"
    root.mkdir()
    (root / "a").symlink_to(outside)
    if not force:
        with pytest.raises(WouldOverwrite, match="a/passwd"):
            checkout(odb, index, root, list(index.entries))
        assert not (root / "z.txt").exists()  # nothing written at all
    else:
        checkout(odb, index, root, list(index.entries), force=True)
        assert not (root / "a").is_symlink()
        assert (root / "a/passwd").read_bytes() == b"root::0:0::/:/bin/sh\n"
    assert os.listdir(outside) == ["passwd"]
    assert (outside / "passwd").read_bytes() == b"kept\n"


def test_checkout_does_not_write_through_a_link_at_a_files_path(tmp_path: Path) -> None:
    odb = FileObjectDatabase(tmp_path / "objects")
    index = Index(tmp_path / "index")
    stage(odb, index, {"passwd": b"new\n"})
    outside = tmp_path / "passwd"
    outside.write_bytes(b"kept\n")
    root = tmp_path / "work"
    root.mkdir()
    (root / "passwd").symlink_to(outside)
    with pytest.raises(WouldOverwrite, match="passwd"):
        checkout(odb, index, root, ["passwd"], "copy")
    checkout(odb, index, root, ["passwd"], "copy", force=True)
    assert not (root / "passwd").is_symlink()
    assert (root / "passwd").read_bytes() == b"new\n"
    assert outside.read_bytes() == b"kept\n"
