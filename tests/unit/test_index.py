"""The index: its binary format, atomic writes, damage detection and the stat cache."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from ama.plumbing.errors import AmaError
from ama.plumbing.hashing import hash_bytes
from ama.plumbing.index import (
    MODE_EXEC,
    MODE_FILE,
    Change,
    CorruptIndex,
    Index,
    IndexEntry,
    changes,
)
from ama.plumbing.worktree import AssetDir, NotAnAssetDir, OutsideAssetDir


def entry(path: str, data: bytes = b"x", **kw: int) -> IndexEntry:
    return IndexEntry(path, hash_bytes(data), len(data), **kw)


def test_round_trip_keeps_every_field_and_sorts_by_utf8_bytes(tmp_path: Path) -> None:
    path = tmp_path / "index"
    entries = [
        IndexEntry("b/ü.txt", hash_bytes(b"1"), 1, 1_700_000_000_123_456_789, 42, MODE_FILE),
        IndexEntry("B", hash_bytes(b"22"), 2**40, -5, 2**63, MODE_EXEC),
        IndexEntry("a.txt", hash_bytes(b""), 0),
        IndexEntry("a/b/c", hash_bytes(b"c"), 7, 1, 2, MODE_FILE),
    ]
    index = Index(path)
    for e in entries:
        index.add(e)
    index.write()
    again = Index.read(path)
    assert list(again) == sorted(entries, key=lambda e: e.path.encode())
    assert [e.path for e in again] == ["B", "a.txt", "a/b/c", "b/ü.txt"]
    assert again.get("B") == entries[1] and again.get("B").executable  # type: ignore[union-attr]
    assert again.written_ns == os.stat(path).st_mtime_ns
    assert path.read_bytes()[:4] == b"AMAI"


def test_a_missing_index_is_empty(tmp_path: Path) -> None:
    index = Index.read(tmp_path / "nope")
    assert len(index) == 0 and list(index) == []


def test_write_replaces_the_file_atomically(tmp_path: Path) -> None:
    path = tmp_path / "meta" / "index"
    first = Index(path)
    first.add(entry("old"))
    first.write()
    old_bytes = path.read_bytes()
    with open(path, "rb") as reader:  # a reader that opened the old index keeps seeing it
        second = Index.read(path)
        second.remove("old")
        second.add(entry("new"))
        second.write()
        assert reader.read() == old_bytes
    assert [e.path for e in Index.read(path)] == ["new"]
    assert sorted(p.name for p in path.parent.iterdir()) == ["index"]  # no temp file left


def test_a_write_that_fails_leaves_the_old_index(tmp_path: Path) -> None:
    path = tmp_path / "meta" / "index"
    good = Index(path)
    good.add(entry("kept"))
    good.write()
    before = path.read_bytes()
    bad = Index.read(path)
    bad.entries["broken"] = IndexEntry("broken", "not hex", 1)
    with pytest.raises(ValueError):
        bad.write()
    assert path.read_bytes() == before
    assert sorted(p.name for p in path.parent.iterdir()) == ["index"]


def _valid_index(tmp_path: Path) -> Path:
    path = tmp_path / "index"
    index = Index(path)
    index.add(entry("a.txt", b"hello"))
    index.add(entry("dir/b.txt", b"bye"))
    index.write()
    return path


@pytest.mark.parametrize(("damage", "said"), [
    (lambda d: d[:-1], "checksum does not match"),
    (lambda d: d[:20], "too short"),
    (lambda d: b"", "too short"),
    (lambda d: d[:40] + bytes([d[40] ^ 1]) + d[41:], "checksum does not match"),
    (lambda d: b"GITI" + d[4:], "not an ama index"),
    (lambda d: d + b"\0", "checksum does not match"),
])
def test_a_damaged_index_is_refused(tmp_path: Path, damage, said: str) -> None:  # type: ignore[no-untyped-def]
    path = _valid_index(tmp_path)
    path.write_bytes(damage(path.read_bytes()))
    with pytest.raises(CorruptIndex) as caught:
        Index.read(path)
    assert str(path) in caught.value.message
    assert said in caught.value.message
    assert caught.value.exit_code == 1
    assert caught.value.hint


def test_an_index_of_another_version_is_refused(tmp_path: Path) -> None:
    from blake3 import blake3

    path = _valid_index(tmp_path)
    body = bytearray(path.read_bytes()[:-32])
    body[4:8] = (5).to_bytes(4, "little")
    path.write_bytes(bytes(body) + blake3(bytes(body)).digest())
    with pytest.raises(CorruptIndex, match="has version 5; this ama reads versions 1 to 4"):
        Index.read(path)


def test_an_index_whose_count_lies_is_refused_even_with_a_valid_checksum(tmp_path: Path
                                                                          ) -> None:
    from blake3 import blake3

    path = _valid_index(tmp_path)
    body = bytearray(path.read_bytes()[:-32])
    body[8:12] = (3).to_bytes(4, "little")
    path.write_bytes(bytes(body) + blake3(bytes(body)).digest())
    with pytest.raises(CorruptIndex, match="fewer records than it says"):
        Index.read(path)


def test_a_file_and_a_folder_cannot_share_a_path(tmp_path: Path) -> None:
    index = Index(tmp_path / "index")
    index.add(entry("data/train.csv"))
    with pytest.raises(AmaError, match="files below data/ are staged"):
        index.add(entry("data"))
    index.add(entry("model"))
    with pytest.raises(AmaError, match="model is staged as a file"):
        index.add(entry("model/weights"))
    assert sorted(index.entries) == ["data/train.csv", "model"]


# -- the stat cache ------------------------------------------------------------------------

def stage(root: Path, index: Index, rel: str) -> IndexEntry:
    full = root / rel
    e = IndexEntry.from_stat(rel, hash_bytes(full.read_bytes()), os.stat(full))
    index.add(e)
    return e


def age(path: Path, seconds: int) -> None:
    st = os.stat(path)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns - seconds * 10**9))


@pytest.fixture
def staged(tmp_path: Path) -> tuple[Path, Index]:
    """Four staged files, stat'ed well before the index was written (none racily clean)."""
    root = tmp_path / "work"
    root.mkdir()
    for name, data in [("same", b"same"), ("edit", b"before"), ("gone", b"bye"),
                       ("touch", b"touch")]:
        (root / name).write_bytes(data)
        age(root / name, 100)
    index = Index(tmp_path / "index")
    for name in ("same", "edit", "gone", "touch"):
        stage(root, index, name)
    index.write()
    return root, Index.read(index.path)


def by_path(found: list[Change]) -> dict[str, str]:
    return {c.entry.path: c.state for c in found}


def test_changes_tells_modified_deleted_and_touched_apart(staged: tuple[Path, Index]) -> None:
    root, index = staged
    (root / "edit").write_bytes(b"after!")  # same size, new bytes
    (root / "gone").unlink()
    os.utime(root / "touch")  # new mtime, same bytes
    found = list(changes(index, root))
    assert by_path(found) == {"edit": "modified", "gone": "deleted", "touch": "touched"}
    touched = next(c.entry for c in found if c.state == "touched")
    assert touched.id == hash_bytes(b"touch")
    assert touched.mtime_ns == os.stat(root / "touch").st_mtime_ns


def test_changes_sees_size_mode_and_type_changes(staged: tuple[Path, Index]) -> None:
    root, index = staged
    (root / "edit").write_bytes(b"longer content")
    os.chmod(root / "same", 0o755)
    (root / "gone").unlink()
    (root / "gone").mkdir()  # a folder where a file was staged
    (root / "touch").unlink()
    os.symlink(root / "nowhere", root / "touch")  # a dangling symlink
    assert by_path(list(changes(index, root))) == {
        "edit": "modified", "same": "modified", "gone": "deleted", "touch": "deleted"}


def test_an_unchanged_stat_is_trusted_without_rehashing(staged: tuple[Path, Index]) -> None:
    root, index = staged
    st = os.stat(root / "edit")
    (root / "edit").write_bytes(b"BEFORE")  # same size, same inode, mtime put back
    os.utime(root / "edit", ns=(st.st_atime_ns, st.st_mtime_ns))
    assert list(changes(index, root)) == []


def test_a_racily_clean_file_is_rehashed(tmp_path: Path) -> None:
    root = tmp_path / "work"
    root.mkdir()
    f = root / "racy"
    f.write_bytes(b"before")
    index = Index(tmp_path / "index")
    stage(root, index, "racy")
    index.write()
    st = os.stat(f)
    # The index was written in the same clock tick as the file was last modified:
    os.utime(index.path, ns=(st.st_atime_ns, st.st_mtime_ns))
    f.write_bytes(b"BEFORE")  # modified within that tick: the stat looks unchanged
    os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert os.stat(f).st_ino == st.st_ino
    racy = Index.read(index.path)
    assert racy.is_racy(racy.entries["racy"])
    assert by_path(list(changes(racy, root))) == {"racy": "modified"}
    f.write_bytes(b"before")
    os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns))
    again = list(changes(Index.read(index.path), root))  # re-hashed, found identical
    assert [(c.state, c.entry.id) for c in again] == [("touched", hash_bytes(b"before"))]


# -- finding the asset directory -----------------------------------------------------------

def test_the_asset_directory_is_found_upward(tmp_path: Path) -> None:
    (tmp_path / "asset" / ".ama").mkdir(parents=True)
    deep = tmp_path / "asset" / "a" / "b"
    deep.mkdir(parents=True)
    found = AssetDir.find(deep, environ={})
    assert found.root == tmp_path / "asset"
    assert found.index_path == tmp_path / "asset" / ".ama" / "index"
    assert found.relpath("c.txt", cwd=deep) == "a/b/c.txt"
    assert found.relpath("../../x", cwd=deep) == "x"
    assert found.relpath(".", cwd=tmp_path / "asset") == ""
    with pytest.raises(OutsideAssetDir, match="outside the asset directory"):
        found.relpath("../../../elsewhere", cwd=deep)
    with pytest.raises(OutsideAssetDir, match=".ama/"):
        found.relpath(".ama/index", cwd=tmp_path / "asset")


def test_no_asset_directory_is_not_found_with_a_hint(tmp_path: Path) -> None:
    with pytest.raises(NotAnAssetDir) as caught:
        AssetDir.find(tmp_path, environ={})
    assert str(tmp_path) in caught.value.message
    assert caught.value.exit_code == 3
    assert "AMA_INDEX_FILE" in (caught.value.hint or "")


def test_ama_index_file_makes_any_directory_a_work_tree(tmp_path: Path) -> None:
    (tmp_path / "outer" / ".ama").mkdir(parents=True)
    here = tmp_path / "outer" / "scratch"
    here.mkdir()
    found = AssetDir.find(here, environ={"AMA_INDEX_FILE": "my.index"})
    assert found.root == here
    assert found.index_path == here / "my.index"
    absolute = AssetDir.find(here, environ={"AMA_INDEX_FILE": str(tmp_path / "i")})
    assert absolute.index_path == tmp_path / "i"


def _resign(path: Path, body: bytes) -> None:
    from blake3 import blake3

    path.write_bytes(body + blake3(body).digest())


def test_a_version_1_index_is_still_read(tmp_path: Path) -> None:
    import struct

    one, two = entry("a.txt", b"hello", mtime_ns=5, ino=6), entry("d/b", b"bye")
    records = b"".join(struct.pack("<32sIQqQ", bytes.fromhex(e.id), e.mode, e.size,
                                   e.mtime_ns, e.ino) for e in (one, two))
    path = tmp_path / "index"
    _resign(path, b"AMAI" + struct.pack("<II", 1, 2) + records + b"a.txt\0d/b\0")
    index = Index.read(path)
    assert list(index) == [one, two] and index.tree is None
    index.write()  # written back as the current version, same entries
    assert path.read_bytes()[4:8] == (2).to_bytes(4, "little")
    assert list(Index.read(path)) == [one, two]


def test_the_tree_extension_round_trips_and_is_forgotten_by_a_staging_change(
        tmp_path: Path) -> None:
    path = _valid_index(tmp_path)
    tree = hash_bytes(b"some tree")
    index = Index.read(path)
    assert index.tree is None
    index.tree = tree
    index.write()
    again = Index.read(path)
    assert again.tree == tree
    # A new stat for the same bytes keeps it; other bytes, another type or a removal do not.
    old = again.get("a.txt")
    assert old is not None
    again.add(old._replace(mtime_ns=99, ino=7))
    assert again.tree == tree
    again.add(old._replace(mode=MODE_EXEC))
    assert again.tree is None
    for change in (lambda i: i.add(entry("a.txt", b"other")), lambda i: i.remove("dir/b.txt"),
                   lambda i: i.add(entry("new.txt")), lambda i: i.clear()):
        fresh = Index.read(path)
        change(fresh)
        assert fresh.tree is None
        fresh.write()
        assert Index.read(path).tree is None
        fresh.tree = tree
        fresh.write()
    # Removing a path that is not staged changes nothing.
    kept = Index.read(path)
    assert kept.remove("never/staged") is False and kept.tree == tree


def test_an_unknown_extension_is_skipped_and_a_cut_one_refused(tmp_path: Path) -> None:
    path = _valid_index(tmp_path)
    body = path.read_bytes()[:-32]
    _resign(path, body + b"ZZZZ" + (3).to_bytes(4, "little") + b"abc")
    assert [e.path for e in Index.read(path)] == ["a.txt", "dir/b.txt"]
    _resign(path, body + b"TREE" + (32).to_bytes(4, "little") + b"x" * 10)
    with pytest.raises(CorruptIndex, match="extension is cut short"):
        Index.read(path)


def test_records_give_every_entry_with_or_without_built_entries(tmp_path: Path) -> None:
    from ama.plumbing.index import record_entry

    path = _valid_index(tmp_path)
    lazy = Index.read(path)
    rows = list(lazy.records())
    assert len(lazy) == 2 and set(lazy.paths()) == {"a.txt", "dir/b.txt"}
    built = Index.read(path)
    assert [record_entry(p, r) for p, r in rows] == list(built.entries.values())
    assert list(built.records()) == rows


def test_changes_to_a_read_index_write_the_same_bytes_with_or_without_built_entries(
        tmp_path: Path) -> None:
    path = tmp_path / "index"
    first = Index(path)
    for i in range(50):
        first.add(entry(f"d{i % 4}/f{i:02d}", f"v{i}".encode(), mtime_ns=i, ino=i))
    first.tree = hash_bytes(b"a tree")
    first.write()

    def change(index: Index) -> Index:
        old = index.get("d1/f01")
        assert old is not None and old.ino == 1 and "d1/f01" in index
        index.add(old._replace(mtime_ns=77, ino=78))             # a new stat: tree kept
        assert index.tree == hash_bytes(b"a tree")
        index.add(entry("d2/f02", b"other bytes", mtime_ns=5))   # other bytes: tree gone
        assert index.tree is None
        assert index.remove("d3/f03") and not index.remove("d3/f03")
        assert index.get("d3/f03") is None and "d3/f03" not in index
        assert len(index) == 49
        return index

    change(Index.read(path)).write()
    lazy_bytes = path.read_bytes()
    # The same changes from the same file, this time with the entries built first.
    first.write()
    built = Index.read(path)
    built.entries  # noqa: B018 - built on first use
    change(built).write()
    assert path.read_bytes() == lazy_bytes
    again = Index.read(path)
    assert again.get("d1/f01") == entry("d1/f01", b"v1", mtime_ns=77, ino=78)
    assert again.get("d2/f02") == entry("d2/f02", b"other bytes", mtime_ns=5)
    assert [e.path for e in again].count("d3/f03") == 0 and len(again) == 49
    # A new path added to a read index is staged in order.
    again.add(entry("d0/new", b"n"))
    again.write()
    assert "d0/new" in [e.path for e in Index.read(path)]


def test_slices_of_the_records_cover_each_entry_once(tmp_path: Path) -> None:
    path = tmp_path / "index"
    index = Index(path)
    for i in range(10):
        index.add(entry(f"f{i}", bytes([i])))
    index.write()
    for built in (False, True):
        again = Index.read(path)
        again.remove("f3")
        if built:
            again.entries  # noqa: B018 - built on first use
        whole = list(again.records())
        assert [p for p, _r in whole] == [f"f{i}" for i in range(10) if i != 3]
        for cut in range(11):
            assert list(again.records(0, cut)) + list(again.records(cut, None)) == whole


def test_an_index_staging_a_link_is_version_3_and_keeps_the_link(tmp_path: Path) -> None:
    from ama.plumbing.index import MODE_LINK

    path = _valid_index(tmp_path)
    assert path.read_bytes()[4:8] == (2).to_bytes(4, "little")
    index = Index.read(path)
    index.add(IndexEntry("zone", hash_bytes(b"a.txt"), 5, 1, 2, MODE_LINK))
    index.write()
    assert path.read_bytes()[4:8] == (3).to_bytes(4, "little")
    again = Index.read(path)
    link = again.get("zone")
    assert link is not None and link.type == "link" and not link.executable
    assert again.get("a.txt").type == "blob"
    again.remove("zone")
    again.write()
    assert path.read_bytes()[4:8] == (2).to_bytes(4, "little")


def test_a_file_restaged_as_a_link_to_the_same_bytes_forgets_the_tree(tmp_path: Path
                                                                       ) -> None:
    from ama.plumbing.index import MODE_LINK

    path = _valid_index(tmp_path)
    for index in (Index.read(path), Index(tmp_path / "other")):  # as read, and as built
        index.add(entry("a.txt", b"hello"))
        index.tree = "ab" * 32
        index.add(entry("a.txt", b"hello")._replace(mode=MODE_LINK))
        assert index.tree is None
