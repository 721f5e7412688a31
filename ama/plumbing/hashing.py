"""Object ids: BLAKE3-256 of an object's bytes, as 64 lowercase hex characters (DESIGN §2).

A blob's id equals what ``b3sum FILE`` prints. Large files are hashed through a memory map
with every core, one window at a time so a 100 GiB file never counts 100 GiB against the
process's memory; small files are read whole and hashed on the calling thread, so hashing many
small files pays no thread start-up per file.
"""

from __future__ import annotations

import mmap
import os
import re
from typing import BinaryIO

from blake3 import blake3

from ama.plumbing.errors import BadInput

ID_HEX_LEN = 64
# Below this size a file is read and hashed on one thread: spinning up the multi-threaded
# hasher costs more than it saves (measured on 2 cores: the cross-over is near 1 MiB).
MMAP_THRESHOLD = 1 << 20
CHUNK = 1 << 20
# Large files are mapped this much at a time: as fast as one map of the whole file (measured
# on 2 cores, 1 GiB in the page cache), while the peak RSS stays near 32 MiB instead of the
# file's size (mapped pages count as resident).
MAP_WINDOW = 32 << 20

EMPTY_BLOB_ID = "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262"

# BLAKE3 hashes large files on a native thread pool of its own, started on first use. Its
# threads do not survive a fork, while its state says they run: in a forked child of a
# process that used it, hashing with it hangs for ever. So a child whose parent (or any
# ancestor) started it hashes on one thread; a child of a process that never did may start
# a pool of its own (a gunicorn worker, say).
_pool_started = False
_pool_lost = False


def _after_fork_in_child() -> None:
    global _pool_lost
    _pool_lost = _pool_started


os.register_at_fork(after_in_child=_after_fork_in_child)

_ID_RE = re.compile(r"[0-9a-f]{64}\Z")
_PREFIX_RE = re.compile(r"[0-9a-f]{4,64}\Z")


class InvalidId(BadInput):
    """A string that is not an object id (or an id prefix, where those are allowed)."""


def hash_bytes(data: bytes | bytearray | memoryview) -> str:
    """Return the id of ``data``."""
    return blake3(data).hexdigest()


def hash_file(path: str | os.PathLike[str], size: int | None = None) -> str:
    """Return the id of the file at ``path``, as ``b3sum`` would print it.

    ``size`` is the file's length if the caller already has it from a stat.
    """
    if size is None:
        size = os.stat(path).st_size
    if size >= MMAP_THRESHOLD:
        return _hash_mapped(path)
    return blake3(read_small(path, size)).hexdigest()


def read_small(path: str | os.PathLike[str], size: int) -> bytes:
    """Return every byte of the file at ``path``, expected to be ``size`` long.

    One read besides open and close for a file of the expected size, and no buffered
    file object: this is most of the cost of hashing a 1 KiB file. A file that grew since
    its stat is still read to its end.
    """
    fd = os.open(path, os.O_RDONLY)
    try:
        return _read_all(fd, size)
    finally:
        os.close(fd)


def read_small_with_stat(path: str | os.PathLike[str], size: int
                         ) -> tuple[bytes, os.stat_result]:
    """Like :func:`read_small`, also returning the file's stat from the same open."""
    fd = os.open(path, os.O_RDONLY)
    try:
        return _read_all(fd, size), os.fstat(fd)
    finally:
        os.close(fd)


def _read_all(fd: int, size: int) -> bytes:
    data = os.read(fd, size + 1)
    if len(data) > size:
        chunks = [data]
        while chunk := os.read(fd, CHUNK):
            chunks.append(chunk)
        data = b"".join(chunks)
    return data


def _hash_mapped(path: str | os.PathLike[str]) -> str:
    """Hash a large file with every core, through successive read-only memory maps.

    In a forked child of a process that used BLAKE3's pool, on one thread: that pool is
    not there (see ``_pool_lost``)."""
    global _pool_started
    if _pool_lost:
        hasher = blake3(max_threads=1)
    else:
        _pool_started = True
        hasher = blake3(max_threads=blake3.AUTO)
    fd = os.open(path, os.O_RDONLY)
    try:
        size = os.fstat(fd).st_size
        offset = 0
        while offset < size:
            length = min(MAP_WINDOW, size - offset)
            window = mmap.mmap(fd, length, flags=mmap.MAP_SHARED, prot=mmap.PROT_READ,
                               offset=offset)
            try:
                hasher.update(window)
            finally:
                window.close()
            offset += length
    finally:
        os.close(fd)
    return hasher.hexdigest()


def hash_stream(stream: BinaryIO) -> tuple[str, int]:
    """Return the id of everything left in ``stream`` and how many bytes that was."""
    hasher = blake3()
    total = 0
    while chunk := stream.read(CHUNK):
        hasher.update(chunk)
        total += len(chunk)
    return hasher.hexdigest(), total


def check_id(value: str, what: str = "object id") -> str:
    """Return ``value`` if it is a full object id, else raise :class:`InvalidId`."""
    if not _ID_RE.match(value):
        raise InvalidId(f"{what} {value!r} is not 64 lowercase hex characters")
    return value


def is_id(value: str) -> bool:
    """Return whether ``value`` is a full object id."""
    return _ID_RE.match(value) is not None


def check_prefix(value: str) -> str:
    """Return ``value`` if it can name an object (4 to 64 lowercase hex characters)."""
    if not _PREFIX_RE.match(value):
        raise InvalidId(
            f"{value!r} is not an object id: ids are lowercase hex, at least 4 characters"
        )
    return value
