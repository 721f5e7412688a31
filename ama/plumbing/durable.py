"""Durable files: small files replaced atomically, and the syncs that make writes survive a
crash (one per operation where many files are written, as git's core.fsyncMethod=batch)."""

from __future__ import annotations

import contextlib
import errno
import os
from collections.abc import Callable, Iterable, Iterator

from ama.plumbing.errors import DISK_FULL

# Temp files in work trees and stores have short names of their own (not the final name with
# a suffix, which a 255-byte name cannot take), so that any name fits and a walk of a work
# tree can skip what a killed command left behind.
TEMP_PREFIX = ".ama-tmp-"


def temp_beside(path: str) -> str:
    """Return a new temp file path in the folder of ``path``: ``.ama-tmp-<random>``."""
    return os.path.join(os.path.dirname(path), f"{TEMP_PREFIX}{os.urandom(8).hex()}")


def is_temp(name: str) -> bool:
    """Whether the file name ``name`` is one of ama's temp files (see :data:`TEMP_PREFIX`)."""
    return name.startswith(TEMP_PREFIX)


def remove_temp_files(folder: str, keep: Callable[[str], bool] = lambda name: False) -> int:
    """Remove ama's temp files directly in ``folder`` (left by a killed command; call it
    only while no other command writes there), except names for which ``keep`` is true;
    return how many there were."""
    removed = 0
    try:
        names = os.listdir(folder)
    except (FileNotFoundError, NotADirectoryError):
        return 0
    for name in names:
        if name.startswith(TEMP_PREFIX) and not keep(name):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(os.path.join(folder, name))
                removed += 1
    return removed

# What a file system answers when it will not take a write, whatever the write.
UNWRITABLE = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM})


@contextlib.contextmanager
def unless_unwritable() -> Iterator[None]:
    """Run the block, skipping the rest of it when the file system will not take a write
    (:data:`UNWRITABLE`): for a write that only saves work for later, such as the stats a
    ``status`` learned, which a full disk or a read-only checkout must not turn into a
    failed look."""
    try:
        yield
    except OSError as e:
        if e.errno not in UNWRITABLE:
            raise


def write_all(fd: int, data: bytes | memoryview) -> None:
    """Write all of ``data`` into the open file ``fd`` (``write`` may write less than it
    was given)."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


@contextlib.contextmanager
def naming(path: str | os.PathLike[str]) -> Iterator[None]:
    """Run the block that writes the file ``path``: a full disk (or quota) met writing to a
    descriptor, which names no file, is raised naming ``path``, the file the user needs
    to hear of. Any other error goes on as it was."""
    try:
        yield
    except OSError as e:
        if type(e) is OSError and e.errno in DISK_FULL and e.filename is None:
            e.filename = os.fspath(path)
        raise


@contextlib.contextmanager
def new_file(path: str) -> Iterator[None]:
    """Run the block that makes the new file ``path``: should it fail (a full disk, bytes
    that are not what was expected, an interrupt), the file is removed; a failure names
    it (:func:`naming`)."""
    try:
        with naming(path):
            yield
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
        raise


def fsync_dir(path: str | os.PathLike[str]) -> None:
    """Make a folder's entries (a rename, a new name) durable."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_at(fd: int, chunks: Iterable[bytes | memoryview], offset: int,
             written: Callable[[int], None] | None = None) -> None:
    """Write ``chunks`` one after the other into the open file ``fd`` from ``offset``, each
    as it comes (``pwrite`` may write less than it was given); ``written`` is told the
    length of each chunk once all of it is in the file."""
    for chunk in chunks:
        view = memoryview(chunk)
        while view:
            done = os.pwrite(fd, view, offset)
            view, offset = view[done:], offset + done
        if written is not None:
            written(len(chunk))


def write_atomic(path: str | os.PathLike[str], data: bytes, mode: int = 0o644,
                 sync: bool = True,
                 sync_dir: Callable[[str], None] = fsync_dir) -> None:
    """Replace the file at ``path`` with ``data``: a temp file beside it, synced, then renamed
    over it, so a reader sees the old bytes or the new ones and a crash leaves one of them.
    With ``sync`` the folder is synced after the rename (``sync_dir`` of it) too: until then
    a crash may bring back the old name, or no file at all where there was none. Without
    ``sync`` nothing is forced to disk (a file placed in a work tree, which the store can
    place again)."""
    path = os.fspath(path)
    temp = temp_beside(path)
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with new_file(temp):
        try:
            write_all(fd, data)
            os.fchmod(fd, mode)
            if sync:
                os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(temp, path)
    if sync:
        sync_dir(os.path.dirname(path) or ".")
