"""Objects taken into the store from another store's files (odb.write_link): shared by a
hard link when read-only, copied otherwise, re-hashed either way."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from ama.plumbing.hashing import hash_bytes
from ama.plumbing.odb import CorruptObject, FileObjectDatabase


def test_write_link_shares_read_only_objects_and_copies_others(tmp_path: Path) -> None:
    other = FileObjectDatabase(tmp_path / "other")
    oid = other.write(b"shared bytes")
    odb = FileObjectDatabase(tmp_path / "objects")
    with odb.batch():
        assert odb.write_link(other.path(oid), oid, 12) is True
        assert odb.get(oid) == b"shared bytes"  # readable before the batch ends
    assert os.stat(odb.path(oid)).st_ino == os.stat(other.path(oid)).st_ino
    assert odb.write_link(other.path(oid), oid, 12) is False  # already stored
    loose = tmp_path / "loose"
    loose.write_bytes(b"writable")
    lid = hash_bytes(b"writable")
    assert odb.write_link(loose, lid, 8) is True
    assert os.stat(odb.path(lid)).st_ino != os.stat(loose).st_ino
    assert not os.stat(odb.path(lid)).st_mode & 0o222


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
