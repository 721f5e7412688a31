"""What the machine refused, told as ama's errors: the file it was about and the fix."""

from __future__ import annotations

import errno
import os
from pathlib import Path

from ama.plumbing.errors import FAILED, environment_error


def test_a_full_disk_names_the_file_written_or_its_folder_once_removed(tmp_path: Path) -> None:
    there = tmp_path / "model.bin"
    there.write_bytes(b"x")
    failed = environment_error(OSError(errno.ENOSPC, "No space left on device", "/src",
                                       None, str(there)))
    assert failed is not None and failed.exit_code == FAILED
    assert failed.message == f"no space left on the disk holding {there}"  # the copy's target
    assert failed.hint == "free space on that disk and run the command again"
    gone = tmp_path / ".ama-tmp-0123"  # half written, then removed: its folder is the news
    failed = environment_error(OSError(errno.EDQUOT, "Disk quota exceeded", str(gone)))
    assert failed is not None and failed.message == \
        f"your disk quota is used up, writing {tmp_path}"


def test_a_full_store_is_named_as_the_store_with_a_way_out(tmp_path: Path) -> None:
    store = tmp_path / "store"
    failed = environment_error(OSError(errno.ENOSPC, "No space left on device",
                                       str(store / "objects" / "ab" / ".tmp-1")), str(store))
    assert failed is not None
    assert failed.message == f"no space left on the disk holding the asset store {store}"
    assert "`ama store gc`" in (failed.hint or "") and "AMA_HOME" in (failed.hint or "")


def test_a_file_refused_names_the_file_and_a_bug_stays_a_bug(tmp_path: Path) -> None:
    failed = environment_error(PermissionError(errno.EACCES, "Permission denied",
                                               str(tmp_path / "index")), str(tmp_path))
    assert failed is not None and failed.message == f"permission denied: {tmp_path / 'index'}"
    assert failed.hint == f"check who owns {tmp_path / 'index'} and its folder (ls -ld), " \
        "or run as that user"
    full = environment_error(OSError(errno.ENOSPC, os.strerror(errno.ENOSPC)))
    assert full is not None and full.message == \
        "no space left on the disk holding a file the command writes"
    # An error no state of the machine explains is a bug: shown with its traceback.
    assert environment_error(OSError(errno.EBADF, "Bad file descriptor")) is None
    assert environment_error(IsADirectoryError(errno.EISDIR, "Is a directory", "x")) is None
