"""Sending a large object in parts: the remote opens (or finds again) a multipart upload,
the parts it lacks go up in parallel straight to the storage's presigned URLs, and the
remote joins them; it hashes the result after answering, and counts the object as held
only once it hashed right (the client asks, as for any object sent to the storage
directly, before it commits a version).

One PUT per object cannot carry more than 5 GiB to S3 and, cut off, starts again from byte
0; in parts, a re-run sends only the parts the storage does not list yet
(ama-protocol(7), MULTIPART UPLOADS).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any, BinaryIO, Protocol, runtime_checkable

from ama.plumbing import wire

MiB = 1 << 20
# Objects from this many bytes go in parts, unless transfer.multipart_threshold says
# otherwise: below it, one request costs less than opening and completing an upload.
DEFAULT_THRESHOLD = 64 * MiB


@runtime_checkable
class SendsParts(Protocol):
    """A transport whose remote takes large objects in parts."""

    def start_multipart(self, project: str, oid: str, size: int
                        ) -> wire.MultipartUpload | wire.ObjectAnswer: ...
    def upload_part(self, action: Mapping[str, Any], path: str | os.PathLike[str],
                    offset: int, size: int,
                    on_bytes: Callable[[int], None] | None = None) -> None: ...
    def complete_multipart(self, project: str, oid: str,
                           upload_id: str | None) -> wire.ObjectAnswer: ...


class Window:
    """``size`` bytes of the file ``f`` from ``offset``, as a stream of its own: a part's
    body, read from the file as it is sent (never a whole part in memory), and rewound to
    its start when a request is sent again (``tell`` and ``seek`` count from the part's
    start, which is also what an HTTP client takes its length from). ``on_bytes`` hears of
    the bytes read past the furthest point read before, a MiB at a time and at the end (an
    HTTP client reads 16 KiB at a time): a request sent again from the start is not
    counted twice."""

    def __init__(self, f: BinaryIO, offset: int, size: int,
                 on_bytes: Callable[[int], None] | None = None) -> None:
        self._f = f
        self._offset = offset
        self._size = size
        self._pos = 0
        self._furthest = 0
        self._told = 0
        self._on_bytes = on_bytes
        f.seek(offset)

    def __len__(self) -> int:
        return self._size

    def read(self, n: int = -1) -> bytes:
        left = self._size - self._pos
        want = left if n is None or n < 0 else min(n, left)
        if want <= 0:
            return b""
        data = self._f.read(want)
        self._pos += len(data)
        if self._pos > self._furthest:
            self._furthest = self._pos
            untold = self._furthest - self._told
            if self._on_bytes is not None and (untold >= MiB or self._furthest == self._size):
                self._on_bytes(untold)
                self._told = self._furthest
        return data

    def tell(self) -> int:
        return self._pos

    def seek(self, pos: int, whence: int = 0) -> int:
        base = {0: 0, 1: self._pos, 2: self._size}[whence]
        self._pos = max(0, min(self._size, base + pos))
        self._f.seek(self._offset + self._pos)
        return self._pos


def send_in_parts(transport: SendsParts, project: str, oid: str, size: int,
                  path: str | os.PathLike[str], parallelism: int = 8,
                  notice: Callable[[str], None] | None = None,
                  on_bytes: Callable[[int], None] | None = None) -> int:
    """Send object ``oid`` (the file ``path``, ``size`` bytes) in parts, ``parallelism``
    at a time, going on from the parts the storage holds already (``notice`` is told so).
    ``on_bytes`` hears of the bytes stored already, then of each chunk sent.

    Returns the bytes sent; the remote verifies the object after it answered (ask it with
    ``verify``). Raises the transport's errors: BadInput when the remote's storage takes no
    multipart uploads (nothing was sent).
    """
    plan = transport.start_multipart(project, oid, size)
    if "parts" not in plan:  # the remote holds the object: {id, size, verified}
        return 0
    stored = plan["stored_bytes"]
    if stored and notice is not None:
        notice(f"resuming: {stored / MiB:.0f} of {size / MiB:.0f} MiB of object "
               f"{oid[:12]} already stored")
    if stored and on_bytes is not None:
        on_bytes(stored)
    parts = plan["parts"]
    if parts:
        with ThreadPoolExecutor(max_workers=max(1, min(parallelism, len(parts)))) as pool:
            for _ in pool.map(lambda part: transport.upload_part(
                    part["action"], path, part["offset"], part["size"], on_bytes), parts):
                pass
    transport.complete_multipart(project, oid, plan["upload_id"])
    return sum(part["size"] for part in parts)
