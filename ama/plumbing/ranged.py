"""Fetching a large object in ranges: parallel ranged GETs into a partial file in the
store's temp area, which a download run again after an interruption goes on from, and a
hash of the whole against the object's id before it may enter the store.

One GET per object is one connection's speed and, cut off, starts again from byte 0. The
partial file ``<id>.partial`` is written in place, each range as its bytes arrive;
``<id>.ranges`` lists the ranges written (a line each, appended once all of a range's
bytes are in the file), so a re-run fetches only the others, and a range cut off half-way
again. Nothing under ``objects/`` is ever partial or unhashed: the caller moves the file
into the store only after :func:`fetch_ranged` returned.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Protocol

from ama.plumbing.hashing import hash_file
from ama.plumbing.odb import CorruptObject

MiB = 1 << 20
# A range per request: big enough that a request's round trip is small beside its bytes,
# small enough that an interruption loses little and memory holds a few per thread.
CHUNK = 16 * MiB
MAX_CHUNKS = 10_000
# Ranged requests in flight at once in this process, however many objects are fetched at
# once (each fetch runs its own threads): eight fill a far link, and more only share it.
# A range is written to its file as it arrives, so each holds a chunk in memory, not the
# range.
RANGES_IN_FLIGHT = 8
_in_flight = threading.BoundedSemaphore(RANGES_IN_FLIGHT)


class WritesRanges(Protocol):
    def write_range(self, action: Mapping[str, Any], oid: str, start: int, length: int,
                    fd: int) -> None: ...


def chunks(size: int, chunk: int = CHUNK) -> list[tuple[int, int, int]]:
    """(index, offset, length) of the ranges an object of ``size`` bytes is fetched in:
    ``chunk`` bytes each, more when there would be over MAX_CHUNKS."""
    step = max(chunk, -(-size // MAX_CHUNKS), 1)
    return [(n, offset, min(step, size - offset))
            for n, offset in enumerate(range(0, size, step))]


def fetch_ranged(transport: WritesRanges, action: Mapping[str, Any], oid: str, size: int,
                 folder: str | os.PathLike[str], parallelism: int = 8,
                 notice: Callable[[str], None] | None = None, chunk: int = CHUNK,
                 on_bytes: Callable[[int], None] | None = None) -> Path:
    """Fetch object ``oid`` (``size`` bytes) through a download action into
    ``folder/<oid>.partial`` in ranges of ``chunk`` bytes, ``parallelism`` at a time,
    going on from the chunks a killed run wrote (``notice`` is told so; ``on_bytes`` gets
    their length, then that of each chunk fetched); return the
    file once its bytes hash to ``oid``. Raises :class:`CorruptObject` (and removes the
    partial file) when they do not, and the transport's errors (keeping what was fetched).
    """
    partial = Path(folder) / f"{oid}.partial"
    ranges = Path(folder) / f"{oid}.ranges"
    done: set[int] = set()
    if partial.exists() and ranges.exists():
        done = {int(line) for line in ranges.read_text().split() if line.isdigit()}
    else:
        ranges.unlink(missing_ok=True)
    plan = chunks(size, chunk)
    have = sum(length for n, _, length in plan if n in done)
    if have and notice is not None:
        notice(f"resuming: {have / MiB:.0f} of {size / MiB:.0f} MiB of object {oid[:12]} "
               "already fetched")
    if have and on_bytes is not None:
        on_bytes(have)
    fd = os.open(partial, os.O_RDWR | os.O_CREAT, 0o600)
    lock = threading.Lock()
    try:
        if os.fstat(fd).st_size != size:
            os.ftruncate(fd, size)

        def fetch(chunk: tuple[int, int, int]) -> None:
            n, offset, length = chunk
            with _in_flight:
                transport.write_range(action, oid, offset, length, fd)
            with lock, open(ranges, "a") as f:
                f.write(f"{n}\n")
            if on_bytes is not None:
                on_bytes(length)

        todo = [c for c in plan if c[0] not in done]
        if todo:
            with ThreadPoolExecutor(max_workers=max(1, min(parallelism, len(todo)))) as pool:
                for _ in pool.map(fetch, todo):
                    pass
        os.fsync(fd)
    finally:
        os.close(fd)
    actual = hash_file(partial, size)
    if actual != oid:
        for path in (partial, ranges):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
        raise CorruptObject(oid, "the ranges fetched", actual)
    ranges.unlink(missing_ok=True)
    return partial
