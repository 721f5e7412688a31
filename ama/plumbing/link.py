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
from collections.abc import Callable

from ama.plumbing.durable import new_file, temp_beside, write_all
from ama.plumbing.errors import AmaError, BadInput
from ama.plumbing.hashing import read_small

STRATEGIES = ("reflink", "hardlink", "symlink", "copy")
DEFAULT = "auto"
_FICLONE = 0x40049409  # ioctl number of FICLONE on Linux
_COPY_IN_KERNEL = 1 << 20  # from this size a copy goes through copy_file_range/sendfile
# A large copy told window by window: as fast as one call on the whole file (the kernel
# copies either way; a window is 128 calls a GiB), and a bar moves meanwhile, even on a
# disk that a busy machine slows to a few tens of MiB a second.
_COPY_WINDOW = 8 << 20
_COPY_RANGE: Callable[..., int] | None = getattr(os, "copy_file_range", None)  # Linux only


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

    ``dest`` is replaced atomically if it exists. Raises :class:`LinkFailed`. To place
    many files, use one :class:`Linker`, which stops trying a reflink where it failed.
    """
    return Linker(strategy).place(src, dest, executable)


class Linker:
    """Places objects by one strategy for one operation (a checkout, a clone, a switch).

    With ``auto``, the first reflink refused by a filesystem is remembered: every later
    file on that filesystem is copied straight away instead of trying again, so a checkout
    of 100,000 files on ext4 pays one failed reflink, not 100,000. Safe to share between
    threads.
    """

    def __init__(self, strategy: str) -> None:
        self.strategy = check_strategy(strategy)
        self._no_reflink: set[int] = set()  # st_dev of filesystems that refused a reflink
        self._devices: dict[str, int] = {}  # folder -> st_dev, for folders seen so far

    def _device(self, folder: str) -> int:
        dev = self._devices.get(folder)
        if dev is None:
            dev = self._devices[folder] = os.stat(folder).st_dev
        return dev

    def used_for(self, dest: str, executable: bool) -> str:
        """Return the strategy that :meth:`place` will try first for ``dest``."""
        used = self.strategy
        if executable and used in ("hardlink", "symlink"):
            return "copy"
        if used == "auto" and self._no_reflink \
                and self._device(os.path.dirname(dest) or ".") in self._no_reflink:
            return "copy"
        return used

    def place(self, src: str, dest: str, executable: bool, fresh: bool = False,
              check: Callable[[str, str], None] | None = None,
              copied: Callable[[int], None] | None = None) -> str:
        """Put the object file ``src`` at ``dest``; return the strategy used.

        ``dest`` appears atomically whole, replacing what was there. With ``fresh`` (the
        caller found nothing at ``dest``) a hard or symbolic link is made at ``dest``
        directly, which is as atomic and saves a rename. ``check(path, used)`` is called
        on the new file before it replaces ``dest`` (not for a fresh link, which replaces
        nothing): what it raises leaves ``dest`` as it was. ``copied``, if given, is
        called with the bytes of each window of a large copy as it is written. Raises
        :class:`LinkFailed`.
        """
        used = self.used_for(dest, executable)
        if fresh and used in ("hardlink", "symlink"):
            try:
                if used == "hardlink":
                    os.link(src, dest)
                else:
                    os.symlink(os.path.abspath(src), dest)
                return used
            except FileExistsError:
                pass  # something appeared meanwhile: replace it as below
        temp = temp_beside(dest)
        with new_file(temp):
            if used in ("reflink", "auto"):
                try:
                    reflink(src, temp)
                    used = "reflink"
                except LinkFailed:
                    if used == "reflink":
                        raise
                    self._no_reflink.add(self._device(os.path.dirname(dest) or "."))
                    used = "copy"
            if used == "copy":
                _copy(src, temp, 0o755 if executable else 0o644, copied)
            elif used == "hardlink":
                os.link(src, temp)
            elif used == "symlink":
                os.symlink(os.path.abspath(src), temp)
            if used == "reflink":
                os.chmod(temp, 0o755 if executable else 0o644)
            if check is not None:
                check(temp, used)
            os.replace(temp, dest)
            if used == "hardlink":
                # rename() between two links of one inode does nothing, leaving the temp
                # name: dest held this very object already.
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(temp)
        return used


def _copy(src: str, dest: str, mode: int, copied: Callable[[int], None] | None = None
          ) -> None:
    """Copy ``src`` to the new file ``dest`` created with ``mode``: small files with one read
    and one write (shutil's machinery costs several times that for a 1 KiB file), large ones
    through the kernel; with ``copied``, in windows, each told to it once written."""
    size = os.stat(src).st_size
    if size >= _COPY_IN_KERNEL:
        if copied is None or _COPY_RANGE is None:
            shutil.copyfile(src, dest)
            os.chmod(dest, mode)
            if copied is not None:
                copied(size)
            return
        try:
            _copy_windows(_COPY_RANGE, src, dest, mode, size, copied)
        except OSError as e:
            if e.errno not in (errno.EXDEV, errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP):
                raise
            os.unlink(dest)  # a filesystem the call does not serve: shutil's way, at once
            shutil.copyfile(src, dest)
            os.chmod(dest, mode)
            copied(size)
        return
    data = read_small(src, size)
    out = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        os.fchmod(out, mode)  # whatever the umask, as a copy by shutil and chmod would be
        write_all(out, data)
    finally:
        os.close(out)


def _copy_windows(copy_range: Callable[..., int], src: str, dest: str, mode: int, size: int,
                  copied: Callable[[int], None]) -> None:
    """Copy the large file ``src`` to the new file ``dest`` in the kernel, a window at a
    time, calling ``copied`` with each window's bytes."""
    fin = os.open(src, os.O_RDONLY)
    try:
        out = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
        try:
            os.fchmod(out, mode)
            done = 0
            while done < size:
                n = copy_range(fin, out, min(_COPY_WINDOW, size - done))
                if n == 0:  # the source shrank under us: the check of the copy will say so
                    break
                done += n
                copied(n)
        finally:
            os.close(out)
    finally:
        os.close(fin)
