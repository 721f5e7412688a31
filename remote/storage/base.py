"""The storage backend interface: a few calls over object bytes, plus a not-found error.

Every backend (``file://``, ``s3://``, ``gs://``) stores an object under the same key layout,
``<prefix>/objects/ab/cdef…`` (docs/design.md §4); callers name objects by :func:`object_key`
and the backend adds its own prefix. Writes are create-only: an object, once stored, is never
replaced, so a second upload of the same id cannot overwrite verified bytes. One contract test suite
(tests/integration/test_storage_contract.py) runs against every backend.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any, BinaryIO, Protocol, runtime_checkable

from ama.plumbing import wire
from ama.plumbing.errors import FAILED, NOT_ALLOWED, UNREACHABLE, AmaError, BadInput, NotFound
from ama.plumbing.hashing import check_id

# Reads and writes move through memory in pieces of this size, never whole objects.
CHUNK = 8 << 20


class ObjectMissing(NotFound):
    """A key that is not stored in a backend."""

    def __init__(self, key: str, url: str) -> None:
        super().__init__(
            f"{key} is not in the storage at {url}",
            "upload it again, or run 'ama-server fsck' to list every missing object",
        )
        self.key = key
        self.url = url


class StorageUnreachable(AmaError):
    """A backend that cannot be reached or does not exist (a wrong endpoint, bucket or path)."""

    exit_code = UNREACHABLE

    def __init__(self, url: str, detail: str, hint: str | None = None) -> None:
        super().__init__(
            f"storage {url} is unreachable: {detail}",
            hint or "check the project's storage URL and the endpoint settings, then retry",
        )
        self.url = url


class StorageDenied(AmaError):
    """A backend that refused the credentials it was given."""

    exit_code = NOT_ALLOWED

    def __init__(self, url: str, detail: str, hint: str | None = None) -> None:
        super().__init__(
            f"storage {url} refused access: {detail}",
            hint or "check the credentials the server runs with for this storage",
        )
        self.url = url


class StorageFull(AmaError):
    """A backend whose disk (or quota) is full: nothing more can be stored until space is
    freed. Answered 507, not retried: asking again at once cannot succeed."""

    exit_code = FAILED
    http_status = 507

    def __init__(self, url: str, detail: str) -> None:
        super().__init__(
            f"storage {url} is full: {detail}",
            "free space on the disk it stores on (for a server's, its administrator can, and "
            "'ama-server gc' removes what no version needs), then run the command again: "
            "what was stored is kept",
        )
        self.url = url


class SizeMismatch(BadInput):
    """An upload whose stream did not hold exactly the announced number of bytes."""

    def __init__(self, key: str, expected: int, got: str) -> None:
        super().__init__(
            f"upload of {key} announced {expected} bytes but the stream held {got}",
            "retry the upload; if it fails again, run 'ama store verify'",
        )


@dataclass(frozen=True)
class Leftover:
    """What an upload cut off (a worker killed, a machine stopped) left in a storage: a temp
    file, or a multipart upload never completed. It is no object and costs space until
    removed."""

    name: str  # as the backend shows it: a key, with the upload id of a multipart upload
    size: int  # bytes, as far as the backend can tell without reading them
    modified: datetime  # the last write, timezone-aware
    handle: str  # what remove_leftover needs to find it again


@dataclass(frozen=True)
class Joined:
    """The parts of an upload joined under a key of the upload's own, to be hashed before
    they are copied to the object's key: that key, and the version of it (a GCS generation)
    written, so that the copy is of the bytes hashed and of no later write."""

    key: str
    version: str


class Backend(Protocol):
    """Object bytes under keys. Keys are relative ``a/b/c`` paths below the backend's prefix."""

    url: str

    def put(self, key: str, stream: BinaryIO, size: int) -> bool:
        """Store exactly ``size`` bytes read from ``stream`` under ``key``, unless it exists.

        Returns True when stored, False when ``key`` already existed (its bytes are kept).
        Raises :class:`SizeMismatch` when the stream is shorter or longer than ``size``.
        """
        ...

    def open(self, key: str) -> BinaryIO:
        """Return a readable stream of the bytes under ``key``; raises :class:`ObjectMissing`."""
        ...

    def stat(self, key: str) -> int | None:
        """Return the size of ``key`` in bytes, or None when it is absent."""
        ...

    def delete(self, key: str) -> None:
        """Remove ``key``; removing an absent key is not an error."""
        ...

    def list(self, prefix: str = "") -> Iterator[str]:
        """Yield every key that starts with ``prefix`` (relative keys, in no promised order)."""
        ...

    def leftovers(self) -> Iterator[Leftover]:
        """Yield what unfinished uploads left behind, in flight or abandoned alike (the
        caller decides by ``modified`` which are old enough to remove)."""
        ...

    def remove_leftover(self, leftover: Leftover) -> None:
        """Remove a leftover that :meth:`leftovers` yielded; one already gone is fine."""
        ...

    def presign(
        self, key: str, method: str, expires: int, size: int | None = None
    ) -> wire.Action | None:
        """Return a transfer action ``{"href", "method", "headers", "expires"}`` or None.

        ``method`` is ``GET`` or ``PUT``; the URL stays valid for ``expires`` seconds, which is
        also the ``expires`` value returned. The client sends every header in ``headers``
        with its request. A PUT URL only creates: when the key already exists the storage
        answers 412 Precondition Failed, which the client may take as "already uploaded".
        Backends without direct transfer (``file://``) return None: the server streams.
        """
        ...


@runtime_checkable
class ReadsRanges(Protocol):
    """A storage that reads part of an object in one request (S3's ranged GET): a reader
    far away overlaps several, where one stream would go at one connection's pace."""

    def read_range(self, key: str, offset: int, length: int) -> bytes:
        """Return ``length`` bytes of ``key`` from ``offset`` (fewer at its end); raises
        :class:`ObjectMissing`."""
        ...


@runtime_checkable
class PutsFiles(Protocol):
    """A storage that stores a local file by path (reflinked or copied), not yet durable:
    the embedded remote's bulk upload, whose client is on this machine."""

    def put_file(self, key: str, source: str, size: int,
                 copied: Callable[[int], None] | None = None) -> bool:
        """Store the file ``source`` under ``key`` unless it exists; True when stored.
        ``copied``, if given, is told the bytes of each chunk copied (none for a reflink).
        Raises :class:`SizeMismatch` when ``source`` is not ``size`` bytes long."""
        ...


@runtime_checkable
class HasLocalPaths(Protocol):
    """A storage whose objects are files on this machine, which a client may link or copy."""

    def local_path(self, key: str) -> str:
        """Return the file that holds (or would hold) ``key``."""
        ...


class TaggedStream:
    """A stream of an object's bytes with the :meth:`Tags.tag` of the version it reads
    (from the answer that opened it: no request more), so that what was read can be told
    from what the key holds later."""

    def __init__(self, stream: Any, tag: tuple[int, str, str]) -> None:
        self._stream = stream
        self.tag = tag

    def read(self, n: int = -1) -> bytes:
        return self._stream.read(n)  # type: ignore[no-any-return]

    def readable(self) -> bool:
        return True

    def close(self) -> None:
        self._stream.close()

    def __enter__(self) -> TaggedStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@runtime_checkable
class Tags(Protocol):
    """A storage that tells what version of an object it holds: an ETag (S3) or a generation
    (GCS), and a version id when the bucket keeps versions. A proxy file records it and is
    fetched again only while it is the same (``ama add --proxy``)."""

    def tag(self, key: str) -> tuple[int, str, str] | None:
        """Return ``(size, etag or generation, version id or "")`` of ``key``, or None when
        it is absent."""
        ...


@runtime_checkable
class ListsSizes(Protocol):
    """A storage whose listing tells each object's size, so that sizing every object under a
    prefix costs no request per object (``ama add s3://bucket/prefix/``)."""

    def list_sizes(self, prefix: str = "") -> Iterator[tuple[str, int]]:
        """Yield ``(key, size)`` for the keys :meth:`Backend.list` yields."""
        ...


@runtime_checkable
class Syncs(Protocol):
    """A storage that makes a batch of writes durable at once instead of one by one."""

    def sync(self) -> None:
        """Make every object stored so far durable."""
        ...


class Bounded:
    """The next ``length`` bytes of ``stream``, from where it stands, as a stream: a range
    of a stored object or pack, which is never read past."""

    def __init__(self, stream: Any, length: int) -> None:
        self._stream, self._left = stream, length

    def readable(self) -> bool:
        return True

    def read(self, n: int | None = -1, /) -> bytes:
        n = self._left if n is None or n < 0 else min(n, self._left)
        data: bytes = self._stream.read(n) if n else b""
        self._left -= len(data)
        return data

    def close(self) -> None:
        self._stream.close()


def object_key(oid: str) -> str:
    """Return the key of object ``oid``: ``objects/ab/cdef…``. Raises InvalidId."""
    check_id(oid)
    return f"objects/{oid[:2]}/{oid[2:]}"


def check_key(key: str) -> str:
    """Return ``key`` if it is a relative ``a/b/c`` key with no empty, ``.`` or ``..`` part."""
    parts = key.split("/")
    if not key or any(p in ("", ".", "..") for p in parts) or "\\" in key or "\0" in key:
        raise BadInput(f"storage key {key!r} is not a relative a/b/c path")
    return key


# Below it, the parts of uploads in parts that are objects of their own (S3, GCS):
# ``uploads/<object key>/<upload id>/<number>``, outside ``objects/``.
UPLOADS = "uploads/"


def upload_prefix(key: str, upload_id: str) -> str:
    """Return the prefix of the parts of upload ``upload_id`` of ``key``,
    ``uploads/<key>/<upload id>/``. Raises BadInput for an id that is not alphanumeric."""
    check_key(key)
    return f"{UPLOADS}{key}/{check_upload_id(upload_id)}/"


def check_upload_id(upload_id: str) -> str:
    """Return ``upload_id`` if it can be an upload's id (1 to 64 ASCII letters and digits,
    as this server makes them); raise BadInput otherwise."""
    if not (0 < len(upload_id) <= 64 and upload_id.isascii() and upload_id.isalnum()):
        raise BadInput(f"upload id {upload_id[:80]!r} is not one of this storage's")
    return upload_id


def upload_of(handle: str) -> tuple[str, str]:
    """Return (object key, upload id) of an upload's prefix ``uploads/<key>/<id>/``."""
    key, _, upload_id = handle[len(UPLOADS):-1].rpartition("/")
    return key, upload_id


def uploads_left(parts: Iterator[tuple[str, int, datetime]]) -> Iterator[Leftover]:
    """Of the objects ``(key, size, last write)`` below ``uploads/``, one leftover per upload
    in parts (its parts, and anything else below its prefix), dated by its newest."""
    found: dict[str, tuple[int, datetime]] = {}
    for name, size, modified in parts:
        handle = name.rpartition("/")[0] + "/"
        total, newest = found.get(handle, (0, modified))
        found[handle] = (total + size, max(newest, modified))
    for handle, (size, modified) in sorted(found.items()):
        key, upload_id = upload_of(handle)
        yield Leftover(f"{key} (upload in parts {upload_id})", size, modified, handle)


def newest_upload(dated_parts: Iterator[tuple[str, datetime]]) -> str | None:
    """Of parts ``(name below uploads/<key>/, last write)``, the upload id whose newest part
    is the newest: an upload cut off keeps its parts, and the next one goes on from them.
    Of uploads whose newest parts are of the same second (listings date to the second),
    the one with most parts: a part of a killed client's upload that landed late ties
    with those of the upload its next run sends, which is the one to go on with."""
    newest: dict[str, tuple[datetime, int]] = {}
    for name, modified in dated_parts:
        upload_id = name.partition("/")[0]
        seen, parts = newest.get(upload_id, (modified, 0))
        newest[upload_id] = (max(seen, modified), parts + 1)
    return max(newest, key=lambda u: newest[u]) if newest else None


def check_method(method: str) -> str:
    """Return ``method`` upper-cased if it is GET or PUT."""
    upper = method.upper()
    if upper not in ("GET", "PUT"):
        raise BadInput(f"cannot presign {method!r}: only GET and PUT transfer objects")
    return upper


class SizedReader:
    """A read-only view of ``stream`` that yields exactly ``size`` bytes.

    ``read(n)`` returns exactly ``n`` bytes (fewer only at the announced end), whatever
    short reads the underlying stream makes. Raises :class:`SizeMismatch` when ``stream``
    ends early, or, as soon as the last announced byte is read, when it holds more: so a
    truncated or padded upload fails before its last piece is sent and is never stored.
    """

    def __init__(self, stream: BinaryIO, size: int, key: str) -> None:
        if size < 0:
            raise BadInput(f"upload of {key} announced a negative size ({size})")
        self._stream = stream
        self._left = size
        self._size = size
        self._key = key
        if size == 0:
            self._check_end()

    def readable(self) -> bool:
        return True

    def read(self, n: int | None = -1) -> bytes:
        want = self._left if n is None or n < 0 else min(n, self._left)
        pieces = []
        while want:
            data = self._stream.read(want)
            if not data:
                raise SizeMismatch(self._key, self._size, f"only {self._size - self._left}")
            pieces.append(data)
            self._left -= len(data)
            want -= len(data)
            if self._left == 0:
                self._check_end()
        return b"".join(pieces)

    def _check_end(self) -> None:
        if self._stream.read(1):
            raise SizeMismatch(self._key, self._size, "more")
