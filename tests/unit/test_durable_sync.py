"""What a durable write syncs: the file's bytes, then the folder that holds its new name."""

from __future__ import annotations

import os
from pathlib import Path

from ama.plumbing.durable import fsync_dir, write_atomic


def test_a_synced_write_syncs_the_folder_after_the_rename(tmp_path: Path) -> None:
    folder = tmp_path / "meta"
    folder.mkdir()
    target = folder / "HEAD"
    synced: list[tuple[str, bytes]] = []

    def record(folder: str) -> None:
        # The rename must be done when the folder is synced, or the sync saves the old name.
        synced.append((folder, target.read_bytes()))
        fsync_dir(folder)

    write_atomic(target, b"new\n", sync_dir=record)
    assert synced == [(os.fspath(folder), b"new\n")]
    assert os.listdir(folder) == ["HEAD"]


def test_an_unsynced_write_syncs_nothing(tmp_path: Path) -> None:
    synced: list[str] = []
    write_atomic(tmp_path / "placed", b"bytes", sync=False, sync_dir=synced.append)
    assert synced == [] and (tmp_path / "placed").read_bytes() == b"bytes"
