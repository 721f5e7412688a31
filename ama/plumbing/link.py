"""Link strategies: how a stored object becomes a file in an asset directory.

``reflink`` shares the object's blocks copy-on-write (XFS, Btrfs), ``hardlink`` shares its
inode (read-only, like the object), ``symlink`` points at it, ``copy`` writes new bytes.
``auto`` (the default) tries reflink and falls back to copy. Whatever the strategy a file
appears atomically (temp file beside it, then rename), and an executable file is never a
hard or symbolic link, since the shared object cannot carry the executable bit.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import shutil

from ama.plumbing.errors import AmaError, BadInput

STRATEGIES = ("reflink", "hardlink", "symlink", "copy")
DEFAULT = "auto"
_FICLONE = 0x40049409  # ioctl number of FICLONE on Linux


class LinkFailed(AmaError):
    """A strategy that this filesystem does not support."""


def check_strategy(name: str) -> str:
    if name not in (*STRATEGIES, DEFAULT):
        raise BadInput(f"unknown link strategy {name!r}: use one of "
                       f"{', '.join(STRATEGIES)} or {DEFAULT}")
    return name


def reflink(src: str | os.PathLike[str], dest: str | os.PathLike[str]) -> None:
    """Create ``dest`` sharing ``src``'s blocks; raise :class:`LinkFailed` if unsupported."""
    with open(src, "rb") as s:
        fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            fcntl.ioctl(fd, _FICLONE, s.fileno())
        except OSError as e:
            os.close(fd)
            os.unlink(dest)
            if e.errno in (errno.EOPNOTSUPP, errno.EXDEV, errno.EINVAL, errno.ENOTTY):
                raise LinkFailed(
                    f"cannot reflink {src} to {dest}: the filesystem does not support it",
                    "use --link copy or hardlink, or put the store on XFS or Btrfs",
                ) from None
            raise
        os.close(fd)


def place(src: str, dest: str, strategy: str, executable: bool) -> str:
    """Put the object file ``src`` at ``dest`` by ``strategy``; return the strategy used.

    ``dest`` is replaced atomically if it exists. Raises :class:`LinkFailed`.
    """
    temp = f"{dest}.ama-{os.getpid()}.tmp"
    used = strategy
    if executable and strategy in ("hardlink", "symlink"):
        used = "copy"
    try:
        if used in ("reflink", "auto"):
            try:
                reflink(src, temp)
                used = "reflink"
            except LinkFailed:
                if used == "reflink":
                    raise
                used = "copy"
        if used == "copy":
            shutil.copyfile(src, temp)
        elif used == "hardlink":
            os.link(src, temp)
        elif used == "symlink":
            os.symlink(os.path.abspath(src), temp)
        if used in ("copy", "reflink"):
            os.chmod(temp, 0o755 if executable else 0o644)
        os.replace(temp, dest)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp)
        raise
    return used
