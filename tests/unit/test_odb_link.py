"""Objects taken into the store from another store's files (odb.write_link): reflinked or
copied, never sharing an inode with the other store, re-hashed either way."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from ama.plumbing.hashing import MMAP_THRESHOLD, hash_bytes
from ama.plumbing.odb import CorruptObject, FileObjectDatabase


@pytest.mark.parametrize("size", [12, MMAP_THRESHOLD + 1])
def test_write_link_never_shares_an_inode_with_the_other_store(tmp_path: Path,
                                                               size: int) -> None:
    other = FileObjectDatabase(tmp_path / "other")
    data = (b"shared bytes" * (size // 12 + 1))[:size]
    oid = other.write(data)
    odb = FileObjectDatabase(tmp_path / "objects")
    with odb.batch():
        assert odb.write_link(other.path(oid), oid, size) is True
        assert odb.get(oid) == data  # readable before the batch ends
    assert os.stat(odb.path(oid)).st_ino != os.stat(other.path(oid)).st_ino
    assert not os.stat(odb.path(oid)).st_mode & 0o222
    assert odb.write_link(other.path(oid), oid, size) is False  # already stored
    # A write through the other store's file (made writable) leaves this one whole.
    os.chmod(other.path(oid), 0o644)
    with open(other.path(oid), "ab") as f:
        f.write(b"appended")
    assert odb.get(oid) == data


def test_write_link_refuses_bytes_that_are_not_their_id(tmp_path: Path) -> None:
    odb = FileObjectDatabase(tmp_path / "objects")
    fake = tmp_path / "fake"
    fake.write_bytes(b"not what the id says")
    fake.chmod(0o444)
    claimed = hash_bytes(b"something else")
    with pytest.raises(CorruptObject):
        odb.write_link(fake, claimed, fake.stat().st_size)
    assert not odb.has(claimed)
    assert odb.temp_files() == []
