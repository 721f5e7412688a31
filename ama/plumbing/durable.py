"""Durable files: small files replaced atomically, and the syncs that make writes survive a
crash (one per operation where many files are written, as git's core.fsyncMethod=batch)."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable


def fsync_dir(path: str | os.PathLike[str]) -> None:
    """Make a folder's entries (a rename, a new name) durable."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


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
    folder, name = os.path.split(path)
    temp = os.path.join(folder, f".{name}.{os.getpid()}.tmp")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            os.fchmod(fd, mode)
            if sync:
                os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp)
        raise
    if sync:
        sync_dir(folder or ".")
