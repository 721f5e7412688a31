"""Fetching a large object in ranges: parallel ranged GETs into a partial file in the
store's temp area, which a download run again after an interruption goes on from, and a
hash of the whole against the object's id before it may enter the store.

One GET per object is one connection's speed and, cut off, starts again from byte 0. The
object is cut into *pieces* of :data:`CHUNK` bytes; the partial file ``<id>.partial`` is
written in place as bytes arrive, and ``<id>.ranges`` lists the pieces written (a line
each, appended once all of a piece's bytes are in the file), so a re-run fetches only the
others, and a piece cut off half-way again; its first line names the size of the pieces,
and a list of pieces of another size (the threshold changed since) is thrown away. A
request asks for a *run* of pieces that lie one after the other, about one run per
stream in flight: each request costs a round trip before its first byte (and, on some
storages, a read of the whole object), so a gigabyte is fetched in about eight requests,
not sixty-four, while an interruption still loses at most the pieces being written. A
stream that finished its run takes over the second half of the pieces left to the run
with most left (whose request then stops where the taken pieces begin), so a slow
connection does not set the end. Nothing under
``objects/`` is ever partial or unhashed: the caller moves the file into the store only
after :func:`fetch_ranged` returned. One process at a time writes an object's partial file
(a lock file beside it): two downloads of one object at once would otherwise write into
one file and truncate each other's list of pieces.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections import deque
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path
from typing import Any, Protocol

from ama.plumbing.durable import naming
from ama.plumbing.hashing import hash_file
from ama.plumbing.lock import Lock
from ama.plumbing.odb import CorruptObject

MiB = 1 << 20
# A piece: what a re-run after an interruption fetches again at most per stream, and
# what memory holds a few chunks of per thread (a piece is written as it arrives).
CHUNK = 16 * MiB
MAX_CHUNKS = 10_000
# Bytes one request asks for at most (or one piece, when pieces are larger): past that a
# longer request saves no round trip worth having, and shorter runs let the streams share
# an object of tens of gigabytes evenly to its end.
RUN_BYTES = 512 * MiB
# A stream done takes over from a run with at least this many pieces left after the one
# being written: fewer are a tail about as short as the new request's round trip (and,
# on some storages, its read of the whole object) is long.
TAKE_OVER = 4
# Ranged requests in flight at once in this process, however many objects are fetched at
# once (each fetch runs its own threads): eight fill a far link, and more only share it.
RANGES_IN_FLIGHT = 8
_in_flight = threading.BoundedSemaphore(RANGES_IN_FLIGHT)


class _Stopped(Exception):
    """A run stopped because another failed."""


class _Enough(Exception):
    """A run stopped where the pieces another stream took over from it begin."""


class _Run:
    """Pieces one request fetches: ``next`` is the first not written yet, and the request
    stops before piece ``end`` (lowered when another stream takes the rest over)."""

    def __init__(self, pieces: list[tuple[int, int, int]]) -> None:
        self.pieces = pieces
        self.start = pieces[0][1]
        self.length = pieces[-1][1] + pieces[-1][2] - self.start
        self.next = 0
        self.end = len(pieces)
        self.got = 0  # bytes of the request in the file
        self.begun = False  # its request sent (not waiting for a place in flight)

    def left(self) -> int:
        """Pieces after the one being written."""
        return self.end - self.next - 1

    def limit(self) -> int:
        """Bytes of the request up to ``end``."""
        last = self.pieces[self.end - 1]
        return last[1] + last[2] - self.start


class _Plan:
    """The runs of a fetch, handed to its streams: the runs not begun in order, then, once
    none is left, the back half of the pieces left to the run under way with most left
    (at least :data:`TAKE_OVER`), so that the streams end together however their speeds
    differ."""

    def __init__(self, todo: list[list[tuple[int, int, int]]], lock: threading.Lock) -> None:
        self.lock = lock
        self._waiting = deque(todo)
        self._going: list[_Run] = []

    def take(self) -> _Run | None:
        with self.lock:
            if self._waiting:
                run = _Run(self._waiting.popleft())
            else:
                busiest = max((r for r in self._going if r.begun), key=_Run.left,
                              default=None)
                if busiest is None or busiest.left() < TAKE_OVER:
                    return None
                cut = busiest.end - (busiest.left() + 1) // 2
                run = _Run(busiest.pieces[cut:busiest.end])
                busiest.end = cut
            self._going.append(run)
            return run

    def finish(self, run: _Run) -> None:
        with self.lock:
            self._going.remove(run)


class WritesRanges(Protocol):
    def write_range(self, action: Mapping[str, Any], oid: str, start: int, length: int,
                    fd: int, written: Callable[[int], None] | None = None) -> None: ...


def piece_bytes(size: int, chunk: int = CHUNK) -> int:
    """The bytes of each piece (but the last) of an object of ``size`` bytes: ``chunk``,
    more when there would be over MAX_CHUNKS."""
    return max(chunk, -(-size // MAX_CHUNKS), 1)


def chunks(size: int, chunk: int = CHUNK) -> list[tuple[int, int, int]]:
    """(index, offset, length) of the pieces of an object of ``size`` bytes."""
    step = piece_bytes(size, chunk)
    return [(n, offset, min(step, size - offset))
            for n, offset in enumerate(range(0, size, step))]


def runs(todo: list[tuple[int, int, int]], streams: int,
         longest: int = RUN_BYTES) -> list[list[tuple[int, int, int]]]:
    """The pieces ``todo`` (in order) grouped into runs that one request each fetches:
    pieces that follow one another, about ``streams`` runs of equal length where there
    are enough pieces, none of more than ``longest`` bytes but for a run of one piece."""
    if not todo:
        return []
    most = max(1, longest // max(1, todo[0][2]))  # pieces, all of one size but the last
    length = max(1, min(most, -(-len(todo) // max(1, streams))))
    out: list[list[tuple[int, int, int]]] = []
    for piece in todo:
        last = out[-1] if out else None
        if last is not None and len(last) < length and last[-1][0] + 1 == piece[0]:
            last.append(piece)
        else:
            out.append([piece])
    return out


def fetch_ranged(transport: WritesRanges, action: Mapping[str, Any], oid: str, size: int,
                 folder: str | os.PathLike[str], parallelism: int = 8,
                 notice: Callable[[str], None] | None = None, chunk: int = CHUNK,
                 on_bytes: Callable[[int], None] | None = None,
                 into: str | os.PathLike[str] | None = None) -> Path:
    """Fetch object ``oid`` (``size`` bytes) through a download action into
    ``folder/<oid>.partial`` in pieces of ``chunk`` bytes, runs of them ``parallelism``
    requests at a time, going on from the pieces a killed run wrote (``notice`` is told
    so; ``on_bytes`` gets their length, then that of each chunk written); return the
    file once its bytes hash to ``oid``. Raises :class:`CorruptObject` (and removes the
    partial file) when they do not, and the first of the transport's errors, once the
    runs under way stopped at their next chunk (keeping the pieces written; runs not begun
    are not asked for). With ``into``, the file is moved there before another process may
    take the object's partial file up, and that path is returned.

    One process at a time fetches an object into its partial file (the lock
    ``<oid>.partial.lock``): another raises :class:`~ama.plumbing.lock.Locked` naming it.
    """
    partial = Path(folder) / f"{oid}.partial"
    # A full disk names the partial file, which keeps the pieces written for the next run.
    with Lock(partial, f"the partial download of object {oid[:12]}"), naming(partial):
        return _fetch_ranged(transport, action, oid, size, partial, parallelism, notice,
                             chunk, on_bytes, into)


def _fetch_ranged(transport: WritesRanges, action: Mapping[str, Any], oid: str, size: int,
                  partial: Path, parallelism: int, notice: Callable[[str], None] | None,
                  chunk: int, on_bytes: Callable[[int], None] | None,
                  into: str | os.PathLike[str] | None) -> Path:
    ranges = partial.with_suffix(".ranges")
    header = f"pieces {piece_bytes(size, chunk)}"
    done: set[int] = set()
    with contextlib.suppress(FileNotFoundError):
        lines = ranges.read_text().splitlines()
        if partial.exists() and lines[:1] == [header]:
            done = {int(line) for line in lines[1:] if line.isdigit()}
    if not done:
        ranges.write_text(f"{header}\n")
    plan_of_pieces = chunks(size, chunk)
    have = sum(length for n, _, length in plan_of_pieces if n in done)
    if have and notice is not None:
        notice(f"resuming: {have / MiB:.0f} of {size / MiB:.0f} MiB of object {oid[:12]} "
               "already fetched")
    if have and on_bytes is not None:
        on_bytes(have)
    fd = os.open(partial, os.O_RDWR | os.O_CREAT, 0o600)
    lock = threading.Lock()
    failed = threading.Event()  # a run failed: the others stop at their next chunk
    try:
        if os.fstat(fd).st_size != size:
            os.ftruncate(fd, size)

        def fetch(run: _Run) -> None:
            def written(count: int) -> None:
                if failed.is_set():
                    raise _Stopped()
                before, run.got = run.got, run.got + count
                with lock:
                    limit = run.limit()
                    while run.next < run.end and (
                            run.pieces[run.next][1] + run.pieces[run.next][2] - run.start
                            <= run.got):
                        with open(ranges, "a") as f:
                            f.write(f"{run.pieces[run.next][0]}\n")
                        run.next += 1
                    cut_short = run.end < len(run.pieces) and run.next >= run.end
                if on_bytes is not None:  # not the bytes past a limit: others fetch them
                    on_bytes(min(run.got, limit) - min(before, limit))
                if cut_short:
                    raise _Enough()

            try:
                with _in_flight:
                    run.begun = True
                    transport.write_range(action, oid, run.start, run.length, fd, written)
                # Answered whole: any piece a transport did not tell of is in the file too.
                if run.next < run.end:
                    written(run.length - run.got)
            except _Enough:
                pass

        def stream() -> None:
            while not failed.is_set() and (run := plan.take()) is not None:
                try:
                    fetch(run)
                finally:
                    plan.finish(run)

        todo = runs([c for c in plan_of_pieces if c[0] not in done], parallelism)
        plan = _Plan(todo, lock)
        if todo:
            count = min(parallelism, len(todo))  # one stream per run, at most
            with ThreadPoolExecutor(max_workers=max(1, count)) as pool:
                streams = [pool.submit(stream) for _ in range(count)]
                try:
                    for finished in as_completed(streams):
                        finished.result()
                except BaseException:
                    # The error is the command's: the streams stop at their next chunk,
                    # keeping the pieces they wrote for the next run, and take no more.
                    failed.set()
                    raise
        os.fsync(fd)
    finally:
        os.close(fd)
    actual = hash_file(partial, size)
    if actual != oid:
        for path in (partial, ranges):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
        if have:
            # The pieces kept from an earlier run are listed once written, not once on the
            # disk: after a power cut some may hold zeros. Fetched whole once more, the
            # bytes decide whether the remote's are wrong.
            if notice is not None:
                notice(f"the pieces of object {oid[:12]} kept from an earlier run do not "
                       "hash to it (lost in a crash?): fetching it whole again")
            return _fetch_ranged(transport, action, oid, size, partial, parallelism,
                                 notice, chunk, on_bytes, into)
        raise CorruptObject(oid, "the ranges fetched", actual)
    if into is not None:
        os.replace(partial, into)
    ranges.unlink(missing_ok=True)
    return partial if into is None else Path(into)
