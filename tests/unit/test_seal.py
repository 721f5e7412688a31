"""Sealed objects: an object whose bytes were hashed as it was written carries a seal in its
mtime, which any later write breaks; a checkout by link trusts a sealed object without
reading it, re-hashes (and then seals) an unsealed one, and refuses one whose bytes changed."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from ama.plumbing.checkout import checkout
from ama.plumbing.fsck import check
from ama.plumbing.hashing import MMAP_THRESHOLD, hash_bytes
from ama.plumbing.index import MODE_FILE, Index, IndexEntry
from ama.plumbing.odb import (
    CorruptObject,
    FileObjectDatabase,
    is_sealed,
    seal,
    seal_ns,
    seal_time_ns,
)
from ama.plumbing.store import Store

NS = 1_000_000_000
BIG = MMAP_THRESHOLD + 17


OID = hash_bytes(b"x")


@pytest.mark.parametrize("now", [5 * NS, 5 * NS + seal_ns(OID) - 1, 5 * NS + seal_ns(OID),
                                 5 * NS + seal_ns(OID) + 1, 6 * NS - 1])
def test_the_seal_time_is_the_latest_moment_with_the_seal_nanoseconds(now: int) -> None:
    t = seal_time_ns(now, OID)
    assert t % NS == seal_ns(OID)
    assert now - NS < t <= now  # never in the future, at most a second back


@pytest.mark.parametrize("oid", ["0" * 64, "f" * 64, hash_bytes(b"x"), hash_bytes(b"y")])
def test_the_seal_nanoseconds_name_the_id_and_no_whole_microsecond(oid: str) -> None:
    ns = seal_ns(oid)
    assert 0 < ns < NS and ns % 1000 != 0
    assert (ns - seal_ns("0" * 64)) // 1000 == int(oid[:4], 16)


def test_a_seal_needs_its_nanoseconds_and_a_read_only_file(tmp_path: Path) -> None:
    f = tmp_path / "f"
    f.write_bytes(b"x")
    f.chmod(0o444)
    assert not is_sealed(f.stat())
    assert seal(f, OID)
    assert is_sealed(f.stat()) and is_sealed(f.stat(), OID)
    assert not is_sealed(f.stat(), hash_bytes(b"y"))  # sealed as another object
    f.chmod(0o644)  # writable again: not trusted, whatever its mtime
    assert not is_sealed(f.stat())
    f.chmod(0o444)
    os.utime(f, ns=(7 * NS, 7 * NS))  # what a filesystem keeping whole seconds would store
    assert not is_sealed(f.stat())


def stored(odb: FileObjectDatabase, oid: str) -> os.stat_result:
    return os.stat(odb.path(oid))


@pytest.mark.parametrize("size", [5, BIG])
def test_every_write_path_seals_the_object_it_writes(tmp_path: Path, size: int) -> None:
    odb = FileObjectDatabase(tmp_path / "objects")
    data = os.urandom(size)
    oid = odb.write(data)
    assert is_sealed(stored(odb, oid))

    source = tmp_path / "file.bin"
    source.write_bytes(os.urandom(size))
    assert is_sealed(stored(odb, odb.write_file(source)))

    # write_link: from a writable file and from a read-only one, both copied.
    other = FileObjectDatabase(tmp_path / "other")
    for mode in (0o644, 0o444):
        src = tmp_path / f"src{mode:o}"
        src.write_bytes(os.urandom(size))
        src.chmod(mode)
        os.utime(src, ns=(NS, NS))  # not sealed: write_link hashes it, then seals
        new = hash_bytes(src.read_bytes())
        assert other.write_link(src, new, size)
        st = stored(other, new)
        assert is_sealed(st)
        assert st.st_ino != src.stat().st_ino


def test_a_failed_write_link_seals_nothing(tmp_path: Path) -> None:
    odb = FileObjectDatabase(tmp_path / "objects")
    src = tmp_path / "src"
    src.write_bytes(b"these are not the bytes of the id")
    src.chmod(0o444)
    os.utime(src, ns=(NS, NS))
    with pytest.raises(CorruptObject):
        odb.write_link(src, hash_bytes(b"other"), src.stat().st_size)
    assert src.stat().st_mtime_ns == NS


def staged(tmp_path: Path, files: dict[str, bytes]) -> tuple[FileObjectDatabase, Index]:
    odb = FileObjectDatabase(tmp_path / "objects")
    index = Index(tmp_path / "index")
    with odb.batch():
        for path, data in files.items():
            index.add(IndexEntry(path, odb.write(data), len(data), 0, 0, MODE_FILE))
    return odb, index


def tamper_keeping_the_seal(path: Path, data: bytes) -> None:
    """Change a file's bytes and set its times back: what no accident does."""
    before = path.stat()
    path.chmod(0o644)
    path.write_bytes(data)
    path.chmod(0o444)
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert is_sealed(path.stat())


@pytest.mark.parametrize("strategy", ["hardlink", "symlink"])
def test_a_sealed_object_is_linked_without_being_read(tmp_path: Path, strategy: str) -> None:
    odb, index = staged(tmp_path, {"a.txt": b"alpha\n"})
    oid = index.entries["a.txt"].id
    # Bytes changed behind the seal's back: a link checkout does not read them, so it
    # places them; the full checks re-hash every object and find them.
    tamper_keeping_the_seal(odb.path(oid), b"ALPHA\n")
    assert checkout(odb, index, tmp_path / "w", ["a.txt"], strategy) == ["a.txt"]
    assert (tmp_path / "w" / "a.txt").read_bytes() == b"ALPHA\n"
    assert [(p.kind, p.id) for p in check(Store(tmp_path))] == [("corrupt", oid)]
    # A copy hashes the bytes it reads, seal or not.
    with pytest.raises(CorruptObject):
        checkout(odb, index, tmp_path / "c", ["a.txt"], "copy")
    assert not (tmp_path / "c" / "a.txt").exists()


@pytest.mark.parametrize("restore_mode", [False, True])
@pytest.mark.parametrize("size", [6, BIG])
def test_an_object_edited_through_a_hard_link_is_refused(tmp_path: Path, size: int,
                                                         restore_mode: bool) -> None:
    data = os.urandom(size)
    odb, index = staged(tmp_path, {"a.txt": data})
    oid = index.entries["a.txt"].id
    checkout(odb, index, tmp_path / "w1", ["a.txt"], "hardlink")
    linked = tmp_path / "w1" / "a.txt"
    linked.chmod(0o644)  # the user makes the linked file writable and edits it in place
    with open(linked, "r+b") as f:
        f.write(bytes([data[0] ^ 1]))  # same size, one byte differs
    if restore_mode:
        linked.chmod(0o444)
    assert not is_sealed(os.stat(odb.path(oid)))
    with pytest.raises(CorruptObject) as caught:
        checkout(odb, index, tmp_path / "w2", ["a.txt"], "hardlink")
    assert oid in str(caught.value) and str(odb.path(oid)) in str(caught.value)
    assert not (tmp_path / "w2" / "a.txt").exists()


@pytest.mark.parametrize("strategy", ["hardlink", "symlink"])
@pytest.mark.parametrize("size", [6, BIG])
def test_an_unsealed_object_is_hashed_placed_and_sealed(tmp_path: Path, strategy: str,
                                                        size: int) -> None:
    data = os.urandom(size)
    odb, index = staged(tmp_path, {"a.txt": data})
    oid = index.entries["a.txt"].id
    os.utime(odb.path(oid), ns=(NS, NS))  # as an object stored before seals existed
    assert not is_sealed(stored(odb, oid))
    checkout(odb, index, tmp_path / "w", ["a.txt"], strategy)
    placed = tmp_path / "w" / "a.txt"
    assert placed.read_bytes() == data
    assert is_sealed(stored(odb, oid))
    # The index holds the stat taken after the seal, so the file is not re-read later.
    entry = Index.read(tmp_path / "index").entries["a.txt"]
    assert entry.matches(os.stat(placed)) and entry.mtime_ns % NS == seal_ns(oid)


def test_an_unsealed_corrupt_object_stays_unsealed(tmp_path: Path) -> None:
    odb, index = staged(tmp_path, {"a.txt": b"alpha\n"})
    path = odb.path(index.entries["a.txt"].id)
    path.chmod(0o644)
    path.write_bytes(b"evil!\n")
    path.chmod(0o444)
    with pytest.raises(CorruptObject):
        checkout(odb, index, tmp_path / "w", ["a.txt"], "hardlink")
    assert not is_sealed(path.stat())
    with pytest.raises(CorruptObject):  # and it is refused again the next time
        checkout(odb, index, tmp_path / "w", ["a.txt"], "hardlink")


def test_taking_a_sealed_object_from_another_store_keeps_its_times(tmp_path: Path) -> None:
    """Files elsewhere that share the other store's object (hard links in asset directories)
    keep the stat their indexes recorded: write_link copies it and seals only the copy."""
    first = FileObjectDatabase(tmp_path / "one")
    oid = first.write(b"shared bytes")
    seal(first.path(oid), oid, now_ns=time.time_ns() - 3600 * NS)  # sealed an hour ago
    before = os.stat(first.path(oid))
    assert is_sealed(before)
    second = FileObjectDatabase(tmp_path / "two")
    assert second.write_link(first.path(oid), oid, len(b"shared bytes"))
    after = os.stat(second.path(oid))
    assert after.st_ino != before.st_ino and is_sealed(after)
    assert os.stat(first.path(oid)).st_mtime_ns == before.st_mtime_ns
