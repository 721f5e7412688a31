"""The object database: one conformance suite that every implementation passes, then what
only the file-backed one promises (layout, read-only files, atomic batches)."""

from __future__ import annotations

import os
import random
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from ama.plumbing.errors import NotFound
from ama.plumbing.hashing import EMPTY_BLOB_ID, MMAP_THRESHOLD, InvalidId, hash_bytes
from ama.plumbing.odb import (
    AmbiguousId,
    CorruptObject,
    FileObjectDatabase,
    MemoryObjectDatabase,
    MissingObject,
    ObjectDatabase,
)
from tests.unit.test_parallel import _in_fresh_interpreter


def _two_sharing_a_prefix() -> tuple[bytes, bytes]:
    """Two small payloads whose ids share their first 4 hex characters (a few hundred
    hashes by the birthday bound)."""
    seen: dict[str, bytes] = {}
    n = 0
    while True:
        data = f"payload {n}\n".encode()
        key = hash_bytes(data)[:4]
        if key in seen:
            return seen[key], data
        seen[key] = data
        n += 1


TWINS = _two_sharing_a_prefix()


@pytest.fixture(params=["file", "memory"])
def odb(request: pytest.FixtureRequest, tmp_path: Path) -> ObjectDatabase:
    if request.param == "file":
        return FileObjectDatabase(tmp_path / "objects")
    return MemoryObjectDatabase()


def corrupt(odb: ObjectDatabase, oid: str, data: bytes) -> None:
    """Replace the stored bytes of ``oid`` behind the database's back."""
    if isinstance(odb, FileObjectDatabase):
        path = odb.path(oid)
        os.chmod(path, 0o644)
        path.write_bytes(data)
    else:
        assert isinstance(odb, MemoryObjectDatabase)
        odb.objects[oid] = data


# -- conformance: every implementation -----------------------------------------------------

def test_write_returns_the_blake3_id_and_stores_the_bytes(odb: ObjectDatabase) -> None:
    oid = odb.write(b"hello\n")
    assert oid == hash_bytes(b"hello\n")
    assert odb.has(oid)
    assert odb.get(oid) == b"hello\n"
    assert odb.size(oid) == 6
    assert odb.write(b"hello\n") == oid  # writing twice stores once
    assert list(odb) == [oid]


def test_empty_object(odb: ObjectDatabase) -> None:
    assert odb.write(b"") == EMPTY_BLOB_ID
    assert odb.get(EMPTY_BLOB_ID) == b""
    assert odb.size(EMPTY_BLOB_ID) == 0


def test_iter_lists_every_object_once(odb: ObjectDatabase) -> None:
    ids = {odb.write(f"object {n}".encode()) for n in range(50)}
    assert len(ids) == 50
    listed = list(odb)
    assert sorted(listed) == sorted(ids)


def test_empty_database(odb: ObjectDatabase) -> None:
    assert list(odb) == []
    assert not odb.has(EMPTY_BLOB_ID)


@pytest.mark.parametrize("call", ["get", "size"])
def test_missing_object_is_not_found_naming_the_id(odb: ObjectDatabase, call: str) -> None:
    with pytest.raises(MissingObject) as caught:
        getattr(odb, call)(EMPTY_BLOB_ID)
    assert caught.value.exit_code == 3
    assert EMPTY_BLOB_ID in caught.value.message
    assert caught.value.hint


def test_corrupt_object_is_never_served(odb: ObjectDatabase) -> None:
    oid = odb.write(b"good bytes")
    corrupt(odb, oid, b"good byteS")
    with pytest.raises(CorruptObject) as caught:
        odb.get(oid)
    assert oid in caught.value.message
    assert hash_bytes(b"good byteS") in caught.value.message
    assert caught.value.exit_code == 1
    assert "ama fsck" in (caught.value.hint or "")


def test_resolve_full_ids_and_unique_prefixes(odb: ObjectDatabase) -> None:
    oid = odb.write(b"hello\n")
    other = odb.write(b"other\n")
    assert oid[:4] != other[:4]
    assert odb.resolve(oid) == oid
    for n in (4, 5, 12, 63):
        assert odb.resolve(oid[:n]) == oid


def test_resolve_refuses_an_ambiguous_prefix_listing_the_matches(odb: ObjectDatabase) -> None:
    a, b = (odb.write(data) for data in TWINS)
    prefix = a[:4]
    assert b.startswith(prefix)
    with pytest.raises(AmbiguousId) as caught:
        odb.resolve(prefix)
    assert caught.value.exit_code == 2
    assert prefix in caught.value.message
    assert a in caught.value.message and b in caught.value.message
    longer = next(n for n in range(5, 64) if a[:n] != b[:n])
    assert odb.resolve(a[:longer]) == a
    assert odb.resolve(b[:longer]) == b


@pytest.mark.parametrize("prefix", ["abc", "", "ABCD", "zzzz", "a" * 65])
def test_resolve_refuses_malformed_or_too_short_prefixes(odb: ObjectDatabase,
                                                          prefix: str) -> None:
    odb.write(b"hello\n")
    with pytest.raises(InvalidId) as caught:
        odb.resolve(prefix)
    assert caught.value.exit_code == 2


def test_resolve_of_an_unknown_prefix_is_not_found(odb: ObjectDatabase) -> None:
    oid = odb.write(b"hello\n")
    unknown = next(p for p in ("0000", "ffff", "1234") if not oid.startswith(p))
    with pytest.raises(NotFound) as caught:
        odb.resolve(unknown)
    assert unknown in caught.value.message
    assert caught.value.exit_code == 3
    with pytest.raises(MissingObject):
        odb.resolve(EMPTY_BLOB_ID)


@pytest.mark.parametrize("size", [0, 10, MMAP_THRESHOLD - 1, MMAP_THRESHOLD,
                                  2 * MMAP_THRESHOLD + 3])
def test_write_file_stores_the_file_bytes(odb: ObjectDatabase, tmp_path: Path,
                                          size: int) -> None:
    data = random.Random(size).randbytes(size)
    src = tmp_path / "src.bin"
    src.write_bytes(data)
    oid = odb.write_file(src)
    assert oid == hash_bytes(data)
    assert odb.get(oid) == data
    assert odb.size(oid) == size
    assert odb.write_file(src) == oid
    assert list(odb) == [oid]


def test_batch_makes_its_objects_visible_when_it_ends(odb: ObjectDatabase) -> None:
    with odb.batch():
        a = odb.write(b"one")
        with odb.batch():  # re-entrant: the inner block joins the outer one
            b = odb.write(b"two")
        assert odb.has(a) and odb.get(b) == b"two"  # readable by the writer meanwhile
    assert sorted(odb) == sorted([a, b])
    assert odb.get(a) == b"one"


def test_batch_makes_nothing_visible_when_the_block_raises(odb: ObjectDatabase,
                                                           tmp_path: Path) -> None:
    kept = odb.write(b"written before")
    big = tmp_path / "big"
    big.write_bytes(b"x" * (MMAP_THRESHOLD + 1))
    with pytest.raises(RuntimeError, match="boom"):
        with odb.batch():
            small = odb.write(b"written inside")
            large = odb.write_file(big)
            raise RuntimeError("boom")
    assert not odb.has(small) and not odb.has(large)
    assert list(odb) == [kept]
    with pytest.raises(MissingObject):
        odb.get(small)
    assert odb.write(b"written inside") == small  # and it can be written again
    assert odb.get(small) == b"written inside"


# -- the file-backed database --------------------------------------------------------------

def test_objects_are_read_only_files_named_by_their_id(tmp_path: Path) -> None:
    odb = FileObjectDatabase(tmp_path / "objects")
    src = tmp_path / "big"
    src.write_bytes(b"y" * (MMAP_THRESHOLD + 5))
    ids = [odb.write(b"hello\n"), odb.write_file(src)]
    for oid in ids:
        path = tmp_path / "objects" / oid[:2] / oid[2:]
        assert odb.path(oid) == path
        assert stat.S_IMODE(path.stat().st_mode) == 0o444
        assert stat.S_ISREG(path.stat().st_mode)
    assert odb.temp_files() == []
    leftovers = [p for p in (tmp_path / "objects").rglob("*") if p.is_file()
                 and p.parent.name + p.name not in ids]
    assert leftovers == []


def test_an_object_is_not_on_disk_until_its_batch_ends(tmp_path: Path) -> None:
    writer = FileObjectDatabase(tmp_path / "objects")
    reader = FileObjectDatabase(tmp_path / "objects")
    with writer.batch():
        oid = writer.write(b"pending")
        assert writer.has(oid)
        assert not reader.has(oid)
        assert not writer.path(oid).exists()
        assert writer.resolve(oid[:6]) == oid
    assert reader.get(oid) == b"pending"


def test_a_failed_batch_leaves_no_temp_files(tmp_path: Path) -> None:
    odb = FileObjectDatabase(tmp_path / "objects")
    big = tmp_path / "big"
    big.write_bytes(b"z" * (MMAP_THRESHOLD + 1))
    with pytest.raises(KeyboardInterrupt):
        with odb.batch():
            odb.write(b"a")
            odb.write_file(big)
            raise KeyboardInterrupt
    assert odb.temp_files() == []
    assert [p for p in (tmp_path / "objects").rglob("*") if p.is_file()] == []


@pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="the renames split only across cores")
def test_the_disk_wait_is_told_around_the_renames_and_never_across_their_fork(
        tmp_path: Path) -> None:
    """A bar's wait thread draws the syncs and the renames, and is stopped before the
    renames are forked (a live thread would keep them in one process). Run in a fresh
    interpreter, single-threaded as a command is (see test_parallel)."""
    printed = _in_fresh_interpreter(f"""
        import os, threading
        from ama.plumbing.odb import FileObjectDatabase
        odb = FileObjectDatabase({str(tmp_path / "objects")!r})
        odb.split_at = 4
        told, waits, pids = [], [], {str(tmp_path / "renamed-by")!r}
        rename = odb._rename

        def recorded(renames):
            with open(pids, "a") as out:  # the child's writes reach the file too
                out.write(f"{{os.getpid()}}\\n")
            rename(renames)

        def syncing(started):
            told.append(started)
            if started:  # as the terminal's bar does: a thread draws until it is told
                stop = threading.Event()
                thread = threading.Thread(target=stop.wait)
                thread.start()
                waits.append((thread, stop))
            else:
                thread, stop = waits.pop()
                stop.set()
                thread.join()

        odb._rename = recorded
        with odb.batch(syncing):
            oids = [odb.write(f"object {{n}}".encode()) for n in range(8)]
        assert all(odb.get(oid) == f"object {{n}}".encode() for n, oid in enumerate(oids))
        by = open(pids).read().split()
        print(told, waits, len(by), str(os.getpid()) in by, len(set(by)))
    """)
    # A forked child renamed a share: the thread was gone when it was forked.
    assert printed == "[True, False, True, False] [] 2 True 2"


def test_a_small_batch_tells_one_disk_wait(tmp_path: Path) -> None:
    odb = FileObjectDatabase(tmp_path / "objects")
    told: list[bool] = []
    with odb.batch(told.append):
        odb.write(b"one")
    assert told == [True, False]


def test_large_write_file_stores_the_bytes_it_hashed(tmp_path: Path) -> None:
    data = random.Random(7).randbytes(4 * MMAP_THRESHOLD + 1)
    src = tmp_path / "weights.bin"
    src.write_bytes(data)
    odb = FileObjectDatabase(tmp_path / "objects")
    oid = odb.write_file(src)
    src.write_bytes(b"changed afterwards")  # the stored copy is independent of the source
    assert odb.path(oid).read_bytes() == data
    assert odb.verify(oid) == odb.path(oid)


def test_write_stream_stores_the_pieces_it_hashed(tmp_path: Path) -> None:
    data = random.Random(8).randbytes(3 * MMAP_THRESHOLD + 5)
    pieces = [data[i:i + 100_000] for i in range(0, len(data), 100_000)]
    odb = FileObjectDatabase(tmp_path / "objects")
    told: list[int] = []
    oid, size = odb.write_stream(iter(pieces), told.append)
    assert (oid, size) == (hash_bytes(data), len(data))
    assert told == [len(p) for p in pieces]
    assert odb.path(oid).read_bytes() == data
    assert odb.verify(oid) == odb.path(oid)
    assert odb.write_stream(iter(pieces)) == (oid, size)  # stored once
    assert odb.temp_files() == [] and os.listdir(tmp_path / "objects" / "tmp") == []


def test_a_broken_stream_stores_nothing(tmp_path: Path) -> None:
    def broken() -> Iterator[bytes]:
        yield b"the first piece"
        raise ConnectionError("the download broke off")

    odb = FileObjectDatabase(tmp_path / "objects")
    with pytest.raises(ConnectionError):
        odb.write_stream(broken())
    assert [p for p in (tmp_path / "objects").rglob("*") if p.is_file()] == []


@pytest.mark.parametrize("damage", ["flip", "truncate", "wrong-name"])
def test_verify_and_get_refuse_damaged_objects(tmp_path: Path, damage: str) -> None:
    odb = FileObjectDatabase(tmp_path / "objects")
    data = random.Random(1).randbytes(MMAP_THRESHOLD + 100)
    oid = odb.write(data)
    path = odb.path(oid)
    if damage == "wrong-name":
        oid = "0" * 8 + oid[8:]
        odb.path(oid).parent.mkdir(exist_ok=True)
        odb.path(oid).write_bytes(data)
    else:
        os.chmod(path, 0o644)
        damaged = bytearray(data)
        if damage == "flip":
            damaged[12345] ^= 0x01
        else:
            del damaged[-1:]
        path.write_bytes(bytes(damaged))
    for read in (odb.get, odb.verify):
        with pytest.raises(CorruptObject) as caught:
            read(oid)
        assert oid in caught.value.message
        assert str(odb.path(oid)) in caught.value.message


def test_stray_files_in_the_object_folder_are_not_objects(tmp_path: Path) -> None:
    odb = FileObjectDatabase(tmp_path / "objects")
    oid = odb.write(b"real")
    (tmp_path / "objects" / oid[:2] / "README").write_text("not an object")
    (tmp_path / "objects" / "tmp").mkdir(exist_ok=True)
    (tmp_path / "objects" / "info").write_text("x")
    assert list(odb) == [oid]




def test_write_hashed_stores_bytes_once_under_the_given_id(tmp_path: Path) -> None:
    odb = FileObjectDatabase(tmp_path / "objects")
    data = b"hashed by the caller\n"
    oid = hash_bytes(data)
    with odb.batch():
        assert odb.write_hashed(oid, data) is True
        assert odb.write_hashed(oid, data) is False  # pending in the batch already
    assert odb.get(oid) == data
    assert odb.write_hashed(oid, data) is False
    assert odb.write(data) == oid


@pytest.mark.parametrize("count", [10, 2_500])
def test_lacking_names_what_is_neither_stored_nor_pending_in_order(tmp_path: Path,
                                                                   count: int) -> None:
    # 10 ids are looked for one by one; 2,500 through the folders' listings.
    db = FileObjectDatabase(tmp_path / "objects")
    ids = [hash_bytes(b"%d" % n) for n in range(count)]
    with db.batch():
        db.write(b"0")
    with db.batch():
        db.write(b"1")  # pending: not on disk yet
        assert not (tmp_path / "objects" / ids[1][:2] / ids[1][2:]).exists()
        assert db.lacking(ids) == ids[2:]
    assert db.lacking(reversed(ids)) == list(reversed(ids[2:]))


def test_a_download_is_moved_into_the_store_not_copied_and_checked_once_there(
        tmp_path: Path) -> None:
    odb = FileObjectDatabase(tmp_path / "objects")
    data = os.urandom(300_000)
    oid = hash_bytes(data)
    fetched = tmp_path / "incoming" / "fetched"
    fetched.parent.mkdir()
    fetched.write_bytes(data)
    inode = fetched.stat().st_ino
    odb.adopt_file(fetched, oid)
    assert not fetched.exists()
    assert odb.path(oid).stat().st_ino == inode  # the same file: no second copy
    assert odb.get(oid) == data
    # Bytes that are not the object are refused and leave nothing behind.
    other = tmp_path / "incoming" / "other"
    other.write_bytes(data[:-1] + b"!")
    wrong = hash_bytes(b"something else")
    with pytest.raises(CorruptObject):
        odb.adopt_file(other, wrong)
    assert not odb.has(wrong) and not other.exists()
    assert odb.temp_files() == []
