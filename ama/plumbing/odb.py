"""The object database: immutable objects stored once under their id.

Layout: ``<root>/ab/cdef…`` (the first two hex characters name a folder). Objects are written
once and atomically: into a temp file in the final folder (created read-only, 0444), made
durable, then renamed to their id. Writes inside :meth:`FileObjectDatabase.batch` share one
filesystem sync before their renames and one after, like git's ``core.fsyncMethod=batch``, so
an operation that writes 100,000 objects pays two syncs, not 100,000. Every read re-hashes
the bytes and refuses an object whose bytes do not match its id. A batch holds the store's
lock shared (:func:`~ama.plumbing.lock.store_in_use`), so gc never removes its temp files or
its objects before the command names them.

An object written from bytes that were just hashed is *sealed* (:func:`seal`): its mtime is
set to a moment whose nanoseconds name its id (:func:`seal_ns`). Writing to a file's bytes
makes the kernel set its mtime to the current time, which breaks the seal, while
hard-linking changes only the ctime; so a placement by link may trust a read-only object
sealed for its id from its stat (:func:`is_sealed`) instead of reading it again
(docs/design.md §7, "Sealed objects"). ``ama store verify`` and ``ama fsck`` ignore seals
and re-hash every object.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import itertools
import os
import shutil
import time
from collections.abc import Callable, Iterable, Iterator
from functools import partial
from pathlib import Path
from typing import Protocol, TypeVar

from blake3 import blake3

from ama.plumbing.durable import fsync_dir, new_file, write_all  # noqa: F401 - fsync_dir re-exported
from ama.plumbing.errors import AmaError, BadInput, NotFound
from ama.plumbing.hashing import (
    MMAP_THRESHOLD,
    check_prefix,
    hash_bytes,
    hash_file,
    is_id,
    read_small,
)
from ama.plumbing.link import LinkFailed, reflink
from ama.plumbing.lock import store_in_use
from ama.plumbing.parallel import PARALLEL_FROM, forked, shares, workers

_TEMP_PREFIX = ".tmp-"
# From this many ids, :meth:`FileObjectDatabase.lacking` lists the object folders rather than
# stat each id: 256 listings cost less than 2,000 stats.
LIST_FROM = 2_000
T = TypeVar("T")


# The nanoseconds part of a sealed object's mtime: SEAL_BASE_NS plus 1,000 times the first
# 16 bits of its id, so that the seal names the object it vouches for and an object file
# under another id's name (two objects swapped) does not look sealed there. Never a whole
# number of microseconds (it ends in 727): a filesystem that keeps timestamps in seconds
# (ext4 with small inodes, HFS+), in 2 s (FAT), in 100 ns (NTFS) or in microseconds cannot
# store it, so there no object ever looks sealed and every one is re-hashed before it is
# linked, as if seals did not exist.
SEAL_BASE_NS = 700_000_727
_SEAL_LAST_NS = SEAL_BASE_NS + 0xFFFF * 1000
_NS = 1_000_000_000


def seal_ns(oid: str) -> int:
    """Return the nanoseconds of the mtime of an object sealed as ``oid``."""
    return SEAL_BASE_NS + int(oid[:4], 16) * 1000


def seal_time_ns(now_ns: int, oid: str) -> int:
    """Return the seal timestamp of ``oid`` for ``now_ns``: the latest moment not after it
    whose nanoseconds are :func:`seal_ns` (never in the future, so an index written after
    the seal never sees the object as racily modified)."""
    t = now_ns - now_ns % _NS + seal_ns(oid)
    return t if t <= now_ns else t - _NS


def seal(target: str | int | os.PathLike[str], oid: str, now_ns: int | None = None) -> bool:
    """Mark the object file ``target`` (a path or an open descriptor) as holding exactly the
    bytes of ``oid``: call it only right after hashing those very bytes. Sets its access and
    modification times to :func:`seal_time_ns`; any later write to the bytes moves the mtime
    off the seal. Returns False, leaving the file unsealed (so it is re-hashed when used),
    where its times cannot be set: another user's file, a read-only filesystem."""
    t = seal_time_ns(time.time_ns() if now_ns is None else now_ns, oid)
    try:
        os.utime(target, ns=(t, t))
    except OSError as e:
        if e.errno in (errno.EPERM, errno.EACCES, errno.EROFS):
            return False
        raise
    return True


def is_sealed(st: os.stat_result, oid: str | None = None) -> bool:
    """Return whether the stat ``st`` of an object file shows it sealed as ``oid`` (see
    :func:`seal`; None: as any id) and still read-only, so its bytes may be trusted to be
    that id's without reading them.

    A seal is a cheap guard against accidents (an edit through a hard link, a truncation, a
    file renamed to another object's name), not against someone who sets the mtime back on
    purpose: ``ama store verify`` re-hashes every object whatever its stat.
    """
    if st.st_mode & 0o222:
        return False
    ns = st.st_mtime_ns % _NS
    if oid is not None:
        return ns == seal_ns(oid)
    return SEAL_BASE_NS <= ns <= _SEAL_LAST_NS and ns % 1000 == SEAL_BASE_NS % 1000


class MissingObject(NotFound):
    """An object that is not in the object database."""

    def __init__(self, oid: str, where: str = "the object database") -> None:
        super().__init__(
            f"object {oid} is not in {where}",
            "fetch or download it from the remote, or check the id",
        )
        self.oid = oid


class CorruptObject(AmaError):
    """An object whose bytes do not hash to its id: it is never served."""

    def __init__(self, oid: str, where: str, actual: str | None = None) -> None:
        detail = f" (its bytes hash to {actual})" if actual else ""
        super().__init__(
            f"object {oid} at {where} is corrupt{detail}",
            "run 'ama fsck' to list every damaged object, and 'ama store verify --repair' "
            "to fetch good copies of them",
        )
        self.oid = oid
        self.where = where


class AmbiguousId(BadInput):
    """An id prefix that names more than one object."""


class ObjectDatabase(Protocol):
    """What every object database offers; :class:`FileObjectDatabase` and
    :class:`MemoryObjectDatabase` both pass the same conformance tests."""

    def has(self, oid: str) -> bool: ...
    def get(self, oid: str) -> bytes: ...
    def size(self, oid: str) -> int: ...
    def write(self, data: bytes) -> str: ...
    def write_file(self, path: str | os.PathLike[str], size: int | None = None) -> str: ...
    def __iter__(self) -> Iterator[str]: ...
    def resolve(self, prefix: str) -> str: ...
    def batch(self) -> contextlib.AbstractContextManager[None]: ...


def _resolve_among(prefix: str, candidates: Iterator[str]) -> str:
    check_prefix(prefix)
    found = [oid for oid in candidates if oid.startswith(prefix)]
    if not found:
        raise MissingObject(prefix) if len(prefix) == 64 else NotFound(
            f"no object id starts with {prefix}", "check the id, or run 'ama fsck'"
        )
    if len(found) > 1:
        shown = ", ".join(sorted(found)[:5])
        raise AmbiguousId(
            f"id prefix {prefix} is ambiguous: it matches {len(found)} objects ({shown}…)",
            "give more characters of the id",
        )
    return found[0]


def syncfs(path: str | os.PathLike[str]) -> None:
    """Flush every dirty page and directory entry of the filesystem holding ``path`` to
    stable storage: the one durable sync that a batch of writes pays (syncfs(2), else sync)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        if _LIBC is not None and _LIBC.syncfs(fd) == 0:
            return
        os.sync()
    finally:
        os.close(fd)


def _libc_with_syncfs() -> ctypes.CDLL | None:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.syncfs  # noqa: B018 - probe that the symbol exists (Linux)
    except (OSError, AttributeError):
        return None
    return libc


_LIBC = _libc_with_syncfs()


class FileObjectDatabase:
    """Objects as read-only files under ``root``."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)
        # Paths are built by string formatting on this: os.path.join and Path cost more than
        # the syscalls they feed when a batch writes 100,000 small objects.
        self._base = os.fspath(self.root)
        self._made: set[str] = set()
        self._pending: dict[str, str] | None = None  # id -> temp path, inside a batch
        self._counter = itertools.count(1)  # next() on it is safe from many threads
        # From this many objects a batch's renames are split with forked children.
        self.split_at = PARALLEL_FROM
        self._no_reflink = False  # a reflink into this store failed once: copy

    # -- reading ---------------------------------------------------------------------------

    def path(self, oid: str) -> Path:
        """Return where the object ``oid`` is (or would be) stored."""
        return self.root / oid[:2] / oid[2:]

    def has(self, oid: str) -> bool:
        """Return whether ``oid`` is stored, without reading it."""
        if self._pending is not None and oid in self._pending:
            return True
        return os.path.exists(f"{self._base}/{oid[:2]}/{oid[2:]}")

    def lacking(self, ids: Iterable[str]) -> list[str]:
        """Return the ``ids`` that are not stored (nor written in the current batch), in
        order. From :data:`LIST_FROM` ids on, the object folders are listed (256 at most)
        instead of one stat per id."""
        ids = list(ids)
        if len(ids) < LIST_FROM:
            return [oid for oid in ids if not self.has(oid)]
        listed: dict[str, set[str]] = {}
        lacking = []
        for oid in ids:
            names = listed.get(oid[:2])
            if names is None:
                try:
                    names = listed[oid[:2]] = set(os.listdir(f"{self._base}/{oid[:2]}"))
                except (FileNotFoundError, NotADirectoryError):
                    names = listed[oid[:2]] = set()
            if oid[2:] not in names and not self.is_pending(oid):
                lacking.append(oid)
        return lacking

    def is_pending(self, oid: str) -> bool:
        """Return whether ``oid`` was written in the current :meth:`batch` (so it has no
        name yet): what :meth:`has` adds to a look at the object's folder."""
        return self._pending is not None and oid in self._pending

    def get(self, oid: str) -> bytes:
        """Return the bytes of ``oid`` after checking they hash to it.

        Raises :class:`MissingObject` or :class:`CorruptObject`.
        """
        path = self._readable_path(oid)
        try:
            with open(path, "rb") as f:
                data = f.read()
        except FileNotFoundError:
            raise MissingObject(oid) from None
        actual = hash_bytes(data)
        if actual != oid:
            raise CorruptObject(oid, str(path), actual)
        return data

    def verify(self, oid: str) -> Path:
        """Re-hash the stored file of ``oid`` without loading it whole; return its path."""
        path = self._readable_path(oid)
        try:
            actual = hash_file(path)
        except FileNotFoundError:
            raise MissingObject(oid) from None
        if actual != oid:
            raise CorruptObject(oid, str(path), actual)
        return Path(path)

    def size(self, oid: str) -> int:
        """Return the stored length of ``oid`` in bytes (from a stat, not a read)."""
        try:
            return os.stat(self._readable_path(oid)).st_size
        except FileNotFoundError:
            raise MissingObject(oid) from None

    def _readable_path(self, oid: str) -> str:
        if self._pending is not None and oid in self._pending:
            return self._pending[oid]
        return os.path.join(self.root, oid[:2], oid[2:])

    def __iter__(self) -> Iterator[str]:
        """Yield every stored id (in no particular order)."""
        try:
            folders = os.scandir(self.root)
        except FileNotFoundError:
            return
        with folders:
            for folder in folders:
                if len(folder.name) != 2 or not folder.is_dir(follow_symlinks=False):
                    continue
                with os.scandir(folder.path) as files:
                    for f in files:
                        oid = folder.name + f.name
                        if is_id(oid):
                            yield oid

    def temp_files(self) -> list[Path]:
        """Return temp files left by writes that never finished (a killed process)."""
        found: list[Path] = []
        if self.root.is_dir():
            for folder in self.root.iterdir():
                if folder.is_dir():
                    found.extend(p for p in folder.iterdir() if p.name.startswith(_TEMP_PREFIX))
        return found

    def resolve(self, prefix: str) -> str:
        """Return the one stored id starting with ``prefix`` (at least 4 hex characters).

        Raises :class:`InvalidId`, :class:`NotFound` or :class:`AmbiguousId`.
        """
        check_prefix(prefix)
        if len(prefix) == 64:
            if not self.has(prefix):
                raise MissingObject(prefix)
            return prefix
        folder = self.root / prefix[:2]
        names: list[str] = []
        if folder.is_dir():
            names = [prefix[:2] + n for n in os.listdir(folder) if is_id(prefix[:2] + n)]
        if self._pending:
            names.extend(oid for oid in self._pending if oid.startswith(prefix[:2]))
        return _resolve_among(prefix, iter(set(names)))

    # -- writing ---------------------------------------------------------------------------

    @contextlib.contextmanager
    def batch(self, syncing: Callable[[bool], None] | None = None) -> Iterator[None]:
        """Group writes into one operation with one durable sync (re-entrant).

        On success every object written inside is durable and visible under its id; on an
        exception the temp files are removed and nothing becomes visible. ``syncing``, for
        the outermost batch, is called with True when it starts waiting on the disk (the
        syncs and the renames: seconds for a GiB received or 30,000 files) and with False
        when that ends; the pair comes twice when the renames are split with forked
        children, since no thread a True may start can live across a fork.
        """
        if self._pending is not None:
            yield
            return
        with store_in_use(self.root):  # gc waits until the objects have their names
            yield from self._batch(syncing)

    def _batch(self, syncing: Callable[[bool], None] | None = None) -> Iterator[None]:
        self._pending = {}
        try:
            yield
            pending = self._pending
            if pending:
                if syncing is not None:
                    syncing(True)
                syncfs(self.root)
                renames = list(pending.items())
                if len(renames) >= self.split_at:  # a share per core: see in_child
                    own, *others = shares(len(renames), workers())
                    if syncing is not None:
                        syncing(False)
                    theirs = [forked(partial(self._rename, renames[a:b])) for a, b in others]
                    if syncing is not None:
                        syncing(True)
                    self._rename(renames[own[0]:own[1]])
                    for done in theirs:
                        done()
                else:
                    self._rename(renames)
                syncfs(self.root)
                if syncing is not None:
                    syncing(False)
        except BaseException:
            for temp in self._pending.values():
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(temp)
            raise
        finally:
            self._pending = None

    def _rename(self, renames: list[tuple[str, str]]) -> None:
        """Give the temp files of a batch their names: ``(id, temp path)`` each. Renaming
        a file renamed already (by a child that failed half-way) is skipped."""
        base, replace = self._base, os.replace
        for oid, temp in renames:
            try:
                replace(temp, f"{base}/{oid[:2]}/{oid[2:]}")
            except FileNotFoundError:
                if not os.path.exists(f"{base}/{oid[:2]}/{oid[2:]}"):
                    raise

    def in_child(self, work: Callable[[], T]) -> Callable[[], T]:
        """Start ``work``, which writes objects into the current :meth:`batch`, in a forked
        child (:func:`~ama.plumbing.parallel.forked`); return a function that waits for its
        result and joins the objects it wrote to this batch, to become visible with the
        rest. When the child fails, its temp files are removed and ``work`` runs here
        instead, so its error is raised here."""
        assert self._pending is not None, "in_child needs a batch"
        before = set(self._pending)

        def child() -> tuple[T, dict[str, str]]:
            pending = self._pending
            assert pending is not None
            try:
                result = work()
            except BaseException:
                for oid, temp in list(pending.items()):
                    if oid not in before:
                        with contextlib.suppress(FileNotFoundError):
                            os.unlink(temp)
                        del pending[oid]
                raise
            return result, {o: t for o, t in pending.items() if o not in before}

        waiting = forked(child)

        def join() -> T:
            result, written = waiting()
            pending = self._pending
            assert pending is not None
            for oid, temp in written.items():
                known = pending.setdefault(oid, temp)
                if known != temp:  # the same bytes, written on both sides
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(temp)
            return result

        return join

    def write(self, data: bytes) -> str:
        """Store ``data`` (if not already stored) and return its id."""
        oid = hash_bytes(data)
        self.write_hashed(oid, data)
        return oid

    def write_hashed(self, oid: str, data: bytes | memoryview, lacking: bool = False) -> bool:
        """Store ``data``, which the caller has just hashed to ``oid`` itself, unless it is
        stored already; return whether it was added. A clone hashes each packed object as
        it reads it: this spares the bytes a second hash and the store a second look.
        ``lacking``: the caller saw the store lack ``oid`` in this batch (a listing of its
        folder), so it is not looked for again; should another command store it meanwhile,
        the same bytes take its name at the end of the batch."""
        if self.is_pending(oid) if lacking else self.has(oid):
            return False
        if self._pending is None:
            with self.batch():
                self._write_temp(oid, data)
        else:
            self._write_temp(oid, data)
        return True

    def _write_temp(self, oid: str, data: bytes | memoryview) -> None:
        """Write ``data`` to a new read-only sealed temp file, renamed to ``oid`` when the
        batch ends."""
        assert self._pending is not None
        temp = self._temp_path(oid)
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o444)
        with new_file(temp):
            try:
                write_all(fd, data)
                seal(fd, oid)  # ``oid`` is the hash of exactly these bytes
            finally:
                os.close(fd)
        self._pending[oid] = temp

    def write_file(self, path: str | os.PathLike[str], size: int | None = None,
                   hashed: Callable[[int], None] | None = None) -> str:
        """Store the bytes of the file at ``path`` and return their id.

        Small files are read once, so the id is of exactly the bytes stored. Large files are
        copied first and the copy is hashed, for the same guarantee without holding them in
        memory; ``hashed`` is told of each window hashed (see :func:`hash_file`). The new
        object is sealed (:func:`seal`).
        """
        if size is None:
            size = os.stat(path).st_size
        if size < MMAP_THRESHOLD:
            return self.write(read_small(path, size))
        temp = self._tmp_file()
        with new_file(temp):
            shutil.copyfile(path, temp)
            oid = hash_file(temp, None, hashed)
            self._adopt(temp, oid)
            return oid

    def adopt_file(self, path: str | os.PathLike[str], oid: str) -> None:
        """Move the file at ``path`` into the store as object ``oid``: a download this
        process has just written (and hashed as it came), which no other process writes.
        Moved, not copied: an object of tens of gigabytes costs no second copy, in time
        or disk. Its bytes are hashed again once moved, where no one else names them;
        raises :class:`CorruptObject` (the file removed) when they are not ``oid``. A file
        on another filesystem than the store's is copied first."""
        temp = self._tmp_file()
        with new_file(temp):
            try:
                os.rename(path, temp)
            except OSError as e:
                if e.errno != errno.EXDEV:
                    raise
                shutil.copyfile(path, temp)
                os.unlink(path)
            actual = hash_file(temp)
            if actual != oid:
                raise CorruptObject(oid, f"{temp} (moved from {os.fspath(path)})", actual)
            self._adopt(temp, oid)

    def _adopt(self, temp: str, oid: str) -> None:
        """Make ``temp``, a file of the store's tmp/ whose bytes were just hashed to ``oid``,
        that object (or drop it when the object is stored already); the caller removes
        ``temp`` if this raises."""
        if self.has(oid):
            os.unlink(temp)
            return
        os.chmod(temp, 0o444)
        seal(temp, oid)  # the bytes just hashed, in a file no one else has opened
        with self.batch():
            final_temp = self._temp_path(oid)
            os.rename(temp, final_temp)
            assert self._pending is not None
            self._pending[oid] = final_temp

    def write_stream(self, chunks: Iterable[bytes],
                     hashed: Callable[[int], None] | None = None,
                     check: Callable[[str, int], None] | None = None) -> tuple[str, int]:
        """Store the bytes of ``chunks`` (a download, read piece by piece) and return their
        id and length.

        Each piece is hashed as it is written to a temp file of the store, which then
        becomes the object as :meth:`write_file`'s copy does: the bytes never sit whole in
        memory nor anywhere outside the store. ``hashed`` is told the length of each piece.
        ``check`` is given the id and length before the bytes become an object: when it
        raises, they are thrown away (a download that is not what was expected never
        enters the store).
        """
        temp = self._tmp_file()
        hasher = blake3()
        total = 0
        with new_file(temp):
            with open(temp, "wb") as out:
                for chunk in chunks:
                    hasher.update(chunk)
                    out.write(chunk)
                    total += len(chunk)
                    if hashed is not None:
                        hashed(len(chunk))
            oid = hasher.hexdigest()
            if check is not None:
                check(oid, total)
            self._adopt(temp, oid)
            return oid, total

    def write_link(self, src: str | os.PathLike[str], oid: str, size: int,
                   on_bytes: Callable[[int], None] | None = None) -> bool:
        """Store the file at ``src`` (another store's object) as ``oid`` unless stored:
        reflinked where the filesystem shares blocks copy-on-write, else copied, never
        hard-linked, so that no write through one store's file can change the other's.
        The stored bytes are re-hashed and sealed when they match (:func:`seal`); returns
        whether the object was added. ``on_bytes``, if given, is told the object's ``size``
        in steps as the copy and the hash go (a large copy takes seconds).

        Raises :class:`CorruptObject` (nothing is stored) when they are not ``oid``. Safe
        to call from several threads inside one :meth:`batch`.
        """
        if self.has(oid):
            if on_bytes is not None:
                on_bytes(size)
            return False
        if self._pending is None:
            with self.batch():
                return self.write_link(src, oid, size, on_bytes)
        if size < MMAP_THRESHOLD:
            added = self._copy_small(src, oid, size)
            if on_bytes is not None:
                on_bytes(size)
            return added
        temp = self._temp_path(oid)
        told = 0

        def tell(done: int) -> None:
            # A copy is half the work and the hash the other half; a reflink is no work.
            nonlocal told
            if on_bytes is not None and done > told:
                on_bytes(done - told)
                told = done

        with new_file(temp):
            cloned = False
            if not self._no_reflink:
                try:
                    reflink(src, temp)
                    cloned = True
                except LinkFailed:
                    self._no_reflink = True
            if cloned:
                hashed_from = 0
            else:
                hashed_from = size // 2
                _copy_telling(src, temp, size, lambda n: tell(n * hashed_from // size))
            os.chmod(temp, 0o444)
            hashed = 0

            def advance(n: int) -> None:
                nonlocal hashed
                hashed += n
                tell(hashed_from + hashed * (size - hashed_from) // size)

            actual = hash_file(temp, size, advance if on_bytes is not None else None)
            if actual != oid:
                raise CorruptObject(oid, os.fspath(src), actual)
            seal(temp, oid)
        tell(size)
        self._pending[oid] = temp
        return True

    def _copy_small(self, src: str | os.PathLike[str], oid: str, size: int) -> bool:
        data = read_small(src, size)
        actual = hash_bytes(data)
        if actual != oid:
            raise CorruptObject(oid, os.fspath(src), actual)
        self._write_temp(oid, data)
        return True

    def _next(self) -> int:
        return next(self._counter)

    def _ensure_folder(self, name: str) -> str:
        folder = f"{self._base}/{name}"
        if name not in self._made:
            os.makedirs(folder, exist_ok=True)
            self._made.add(name)
        return folder

    def _tmp_file(self) -> str:
        """A new name in the store's tmp/ folder, for a file that becomes an object once
        hashed there (:meth:`_adopt`)."""
        self._ensure_folder("tmp")
        return os.path.join(self.root, "tmp", f"{_TEMP_PREFIX}{os.getpid()}-{self._next()}")

    def _temp_path(self, oid: str) -> str:
        folder = self._ensure_folder(oid[:2])
        return f"{folder}/{_TEMP_PREFIX}{oid[2:14]}-{os.getpid()}-{self._next()}"


class MemoryObjectDatabase:
    """An in-memory twin of :class:`FileObjectDatabase`, for tests and scratch work."""

    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}

    def has(self, oid: str) -> bool:
        return oid in self.objects

    def get(self, oid: str) -> bytes:
        try:
            data = self.objects[oid]
        except KeyError:
            raise MissingObject(oid) from None
        actual = hash_bytes(data)
        if actual != oid:
            raise CorruptObject(oid, "memory", actual)
        return data

    def size(self, oid: str) -> int:
        try:
            return len(self.objects[oid])
        except KeyError:
            raise MissingObject(oid) from None

    def write(self, data: bytes) -> str:
        oid = hash_bytes(data)
        self.objects.setdefault(oid, bytes(data))
        return oid

    def write_file(self, path: str | os.PathLike[str], size: int | None = None) -> str:
        with open(path, "rb") as f:
            return self.write(f.read())

    def __iter__(self) -> Iterator[str]:
        return iter(list(self.objects))

    def resolve(self, prefix: str) -> str:
        return _resolve_among(prefix, iter(self.objects))

    @contextlib.contextmanager
    def batch(self) -> Iterator[None]:
        """Group writes; on an exception the objects written inside are dropped again."""
        before = set(self.objects)
        try:
            yield
        except BaseException:
            for oid in set(self.objects) - before:
                del self.objects[oid]
            raise


# A large copy goes in pieces of this size so that its progress moves; the kernel copies
# each piece (sendfile), so the pieces cost one system call each and nothing more.
_COPY_PIECE = 8 << 20


def _copy_telling(src: str | os.PathLike[str], dst: str, size: int,
                  copied: Callable[[int], None]) -> None:
    """Copy the file ``src`` to a new file ``dst`` as :func:`shutil.copyfile` does,
    telling ``copied`` the bytes copied so far after each piece."""
    with open(src, "rb") as fin, open(dst, "xb") as fout:
        infd, outfd = fin.fileno(), fout.fileno()
        done = 0
        try:
            while True:
                sent = os.sendfile(outfd, infd, done, _COPY_PIECE)
                if not sent:
                    break
                done += sent
                copied(min(done, size))
        except OSError as e:
            if e.errno not in (errno.EINVAL, errno.ENOSYS) or done:
                raise
            # A filesystem without sendfile: the ordinary copy, in one go.
            fout.close()
            shutil.copyfile(src, dst)
            copied(size)
