"""What the machine refused, told as ama's errors: the file it was about and the fix."""

from __future__ import annotations

import errno
import os
import socket
import ssl
import traceback
from pathlib import Path

import pytest

from ama.plumbing.durable import new_file, write_all
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
    assert full is not None and full.message == "no space left on a disk the command writes to"
    # An error no state of the machine explains is a bug: shown with its traceback.
    assert environment_error(OSError(errno.EBADF, "Bad file descriptor")) is None
    assert environment_error(IsADirectoryError(errno.EISDIR, "Is a directory", "x")) is None


def test_the_store_is_told_apart_from_a_folder_sharing_its_name(tmp_path: Path) -> None:
    store = tmp_path / ".ama"
    beside = environment_error(OSError(errno.ENOSPC, "No space left on device",
                                       str(tmp_path / ".ama2" / "f")), str(store))
    assert beside is not None and "asset store" not in beside.message
    itself = environment_error(OSError(errno.ENOSPC, "No space left on device",
                                       str(store / ".ama-tmp-01")), str(store))
    assert itself is not None and itself.message == \
        f"no space left on the disk holding the asset store {store}"


def test_errors_of_the_network_or_without_a_file_to_check_are_not_the_disks() -> None:
    assert environment_error(ssl.SSLError(errno.EIO, "EOF in violation of protocol")) is None
    assert environment_error(ssl.SSLCertVerificationError(errno.EPERM, "bad cert")) is None
    assert environment_error(socket.herror(errno.EPERM, "host")) is None
    assert environment_error(ConnectionResetError(errno.EIO, "reset")) is None
    # A permission refused with no file named gives a user nothing to check.
    assert environment_error(PermissionError(errno.EACCES, "Permission denied")) is None


def test_a_full_disk_met_on_a_descriptor_names_the_file_and_keeps_its_traceback(
        tmp_path: Path) -> None:
    path = tmp_path / "new"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o644)
    os.close(fd)  # a write to it now fails: EBADF, a bug, stays as it was

    def failing_write() -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(OSError) as full:
        with new_file(str(path)):
            failing_write()
    assert full.value.filename == str(path) and not path.exists()
    assert "failing_write" in "".join(traceback.format_tb(full.value.__traceback__))
    path.touch()
    with pytest.raises(OSError) as bad:
        with new_file(str(path)):
            write_all(fd, b"x")
    assert bad.value.errno == errno.EBADF and bad.value.filename is None
    assert not path.exists()
