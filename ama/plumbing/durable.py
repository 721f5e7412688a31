"""Durable files: small files replaced atomically, and the syncs that make writes survive a
crash (one per operation where many files are written, as git's core.fsyncMethod=batch)."""

from __future__ import annotations

import contextlib
import os


def write_atomic(path: str | os.PathLike[str], data: bytes, mode: int = 0o644,
                 sync: bool = True) -> None:
    """Replace the file at ``path`` with ``data``: a temp file beside it, synced, then renamed
    over it, so a reader sees the old bytes or the new ones and a crash leaves one of them.
    Without ``sync`` the bytes are not forced to disk first (a file placed in a work tree,
    which the store can place again)."""
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
