"""Lock files (:mod:`ama.plumbing.lock`): who holds them, and writes under them."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from ama.plumbing.hashing import hash_bytes
from ama.plumbing.index import Index, IndexEntry, IndexLocked, locked
from ama.plumbing.lock import Lock, Locked


def test_a_lock_names_its_holder_and_goes_away(tmp_path: Path) -> None:
    folder = tmp_path / "folder"
    folder.mkdir()
    target = folder / "file"
    with Lock(target, "the file") as lock:
        assert Path(lock.path).read_text() == f"{os.getpid()} {socket.gethostname()}\n"
        assert sorted(os.listdir(folder)) == ["file.lock"]  # no temp file left
        lock.commit(b"new bytes")
        assert target.read_bytes() == b"new bytes"
        with pytest.raises(Locked, match=f"the file is locked by running process {os.getpid()}"):
            Lock(target, "the file").acquire()
    assert sorted(os.listdir(folder)) == ["file"]


def test_an_index_written_under_its_lock_by_another_path(tmp_path: Path) -> None:
    (tmp_path / "real" / ".ama").mkdir(parents=True)
    (tmp_path / "link").symlink_to(tmp_path / "real")
    with locked(tmp_path / "link" / ".ama" / "index"):
        index = Index(tmp_path / "real" / ".ama" / "index")
        index.add(IndexEntry("a", hash_bytes(b"a"), 1))
        index.write()  # the lock this process holds, not a second one
    assert [e.path for e in Index.read(tmp_path / "real" / ".ama" / "index")] == ["a"]


def test_an_index_write_refuses_a_lock_held_elsewhere(tmp_path: Path) -> None:
    path = tmp_path / ".ama" / "index"
    path.parent.mkdir()
    (tmp_path / ".ama" / "index.lock").write_text("1 elsewhere.example\n")
    with pytest.raises(IndexLocked, match="locked by process 1 on elsewhere.example"):
        Index(path).write()
    assert not path.exists()
