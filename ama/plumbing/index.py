"""The index of an asset directory: the staging area and the stat cache (``.ama/index``).

It maps each path (relative to the asset root, ``/``-separated) to the id of the blob staged
for it and the file's size, mtime_ns, inode and mode when it was hashed. A refresh re-hashes
only the files whose stat no longer matches; a file modified in the same clock tick as the
index was written ("racily clean") is re-hashed too, as git does.

The file is binary, so 100,000 entries load in a few milliseconds (layout in ama-format(5)):

    magic "AMAI", version u32 (2; 3 when a symbolic link is staged), entry count u32,
    length of the paths in bytes u32
    count records of '<32sIQqQ': raw id, mode, size, mtime_ns, inode
    the paths, UTF-8, each followed by NUL, in the records' order (sorted by UTF-8 bytes)
    extensions: each a 4-byte signature, a u32 length and that many bytes
    BLAKE3 of all the bytes above (32 bytes)

Version 1 (read, no longer written) has a 12-byte header and no extensions. The one
extension, ``TREE``, holds the raw id of the tree whose files the entries are known to
equal (see :attr:`Index.tree`), so ``ama status`` need not flatten that tree to find that
nothing is staged. The entries are built lazily: a command that only compares stats reads
the records through :meth:`Index.stat_rows` without making an entry per file.

It is written atomically (temp file, fsync, rename) under its lock, ``index.lock``
(:class:`~ama.plumbing.lock.Lock`): a command that reads, changes and writes it holds the
lock throughout (:func:`locked`), so two commands never overwrite each other's staging. A
damaged file is refused.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import stat
import struct
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from blake3 import blake3

from ama.plumbing.errors import AmaError
from ama.plumbing.lock import Lock, Locked, held
from ama.plumbing.parallel import PARALLEL_FROM, forked, shares, workers

if TYPE_CHECKING:
    from ama.plumbing.odb import ObjectDatabase

MAGIC = b"AMAI"
VERSION = 2
# An index staging a symbolic link is written as version 3: an ama that knows no links would
# take its mode (0120777) for an executable file's.
VERSION_LINKS = 3
# An index staging a proxy file is written as version 4: an ama that knows no proxies would
# drop the PRXY extension and upload the file's bytes as a plain file.
VERSION_PROXIES = 4
_HEADER_V1 = struct.Struct("<4sII")
_HEADER = struct.Struct("<4sIII")
_EXTENSION = struct.Struct("<4sI")
EXT_TREE = b"TREE"
EXT_PROXIES = b"PRXY"
_PROXY = struct.Struct("<32s32sI")
_RECORD = struct.Struct("<32sIQqQ")
_CHECKSUM_LEN = 32

MODE_FILE = 0o100644
MODE_EXEC = 0o100755
MODE_LINK = 0o120777


def mode_of(kind: str) -> int:
    """The mode an entry of the tree entry type ``kind`` is staged with; raises
    :class:`~ama.plumbing.proxy.ProxyNotPlaceable` for a proxy, whose object is a descriptor,
    not the file's bytes."""
    if kind == "proxy":
        from ama.plumbing.proxy import ProxyNotPlaceable

        raise ProxyNotPlaceable()
    return MODE_LINK if kind == "link" else MODE_EXEC if kind == "exec" else MODE_FILE


# Maps the second byte of a little-endian mode to 1 when its file type is a symbolic link.
_LINK_BYTE = bytes(1 if b >> 4 == 0o12 else 0 for b in range(256))


class CorruptIndex(AmaError):
    """The index file is damaged or of an unknown version."""


class IndexLocked(Locked):
    """Another command holds the index's lock."""


def index_lock(path: str | os.PathLike[str]) -> Lock:
    """The lock on the index at ``path``."""
    return Lock(path, "the index", IndexLocked)


@contextlib.contextmanager
def locked(path: str | os.PathLike[str], index: Index | None = None) -> Iterator[Index]:
    """Hold the lock of the index at ``path`` and yield the index read under it (or
    ``index``, the one the caller has just built, which saves reading it again); its
    :meth:`Index.write` replaces the file under this lock. Raises :class:`IndexLocked`
    naming the holder."""
    with index_lock(path):
        yield Index.read(path) if index is None else index


class IndexEntry(NamedTuple):
    """One staged file: its blob id and the stat it had when hashed (zeros: never stat'ed).

    A named tuple rather than a frozen dataclass: loading 100,000 of them must take
    milliseconds, and a dataclass's ``__init__`` costs ten times a tuple's.
    """

    path: str
    id: str
    size: int
    mtime_ns: int = 0
    ino: int = 0
    mode: int = MODE_FILE

    @property
    def is_link(self) -> bool:
        """Whether a symbolic link is staged (its blob holds the target), not a file."""
        return self.mode & 0o170000 == 0o120000

    @property
    def executable(self) -> bool:
        return bool(self.mode & 0o100) and not self.is_link

    @property
    def type(self) -> str:
        """The tree entry type this file gets: ``link``, ``exec`` or ``blob``."""
        if self.is_link:
            return "link"
        return "exec" if self.executable else "blob"

    def matches(self, st: os.stat_result) -> bool:
        """Return whether ``st`` is the stat this entry was recorded with."""
        return (
            st.st_mtime_ns == self.mtime_ns
            and st.st_size == self.size
            and st.st_ino == self.ino
            and st.st_mode == self.mode
        )

    @classmethod
    def from_stat(cls, path: str, oid: str, st: os.stat_result) -> IndexEntry:
        return cls(path, oid, st.st_size, st.st_mtime_ns, st.st_ino, st.st_mode)


def path_key(path: str) -> bytes:
    """The sort key of index paths: their UTF-8 bytes, as for tree entries.

    UTF-8 keeps the order of code points, so sorting the strings themselves gives the same
    order; the index does that, which saves encoding every path.
    """
    return path.encode("utf-8")


# A record as stored: raw id, mode, size, mtime_ns, inode.
Record = tuple[bytes, int, int, int, int]


class _Table:
    """The records of an index file as read, patched in place until the entries are built.

    A command that restages a few files of 100,000 (a switch, a status refreshing stats)
    then rewrites single records and writes the file back without an entry per file.
    """

    def __init__(self, paths: list[str], raw: bytearray, names: bytes) -> None:
        self.paths = paths
        self.raw = raw  # the packed records, _RECORD.size bytes each
        self.names: bytes | None = names  # the encoded paths block; None once one is removed
        self.removed: set[int] = set()
        self._pos: dict[str, int] | None = None

    def pos(self) -> dict[str, int]:
        """Path → record number, for the records not removed."""
        if self._pos is None:
            self._pos = {p: i for i, p in enumerate(self.paths)}
            for i in self.removed:
                del self._pos[self.paths[i]]
        return self._pos

    def record(self, i: int) -> Record:
        return _RECORD.unpack_from(self.raw, i * _RECORD.size)  # type: ignore[return-value]

    def rows(self, start: int = 0, stop: int | None = None) -> Iterable[tuple[str, Record]]:
        """The records ``start`` to ``stop`` (in file order, removed ones included in the
        count but not yielded)."""
        stop = len(self.paths) if stop is None else stop
        size = _RECORD.size
        rows = zip(self.paths[start:stop],
                   _RECORD.iter_unpack(memoryview(self.raw)[start * size:stop * size]),
                   strict=True)
        if not self.removed:
            return rows  # type: ignore[return-value]
        removed = self.removed
        return (row for i, row in enumerate(rows, start)  # type: ignore[misc]
                if i not in removed)

    def __len__(self) -> int:
        return len(self.paths) - len(self.removed)


class Index:
    """The entries of one index file, kept in memory; :meth:`write` saves them atomically.

    ``tree`` is the id of the tree whose files (paths, types and ids) the entries equal,
    when a command knows it (after ``ama upload``, ``clone``, ``switch``, ``read-tree``),
    else None. Staging a file with other bytes or another type, or unstaging one, forgets it.
    """

    def __init__(self, path: str | os.PathLike[str], entries: dict[str, IndexEntry] | None = None,
                 written_ns: int = 0, tree: str | None = None,
                 proxies: dict[str, tuple[str, str]] | None = None) -> None:
        self.path = Path(path)
        self._entries: dict[str, IndexEntry] = entries if entries is not None else {}
        # The records as read, until something needs the entries (see :meth:`records`).
        self._table: _Table | None = None
        # mtime of the index file when it was read: entries whose files were modified at or
        # after this moment may have changed without a visible stat change.
        self.written_ns = written_ns
        self.tree = tree
        # Path → (id of the bytes, id of the descriptor) of each staged proxy file: a file
        # whose bytes stay at their source (ama.plumbing.proxy). It counts only while the
        # path is staged with those bytes: a file staged anew with other bytes is a file.
        self.proxies: dict[str, tuple[str, str]] = proxies if proxies is not None else {}
        self._dir_cache: set[str] | None = None

    @classmethod
    def read(cls, path: str | os.PathLike[str]) -> Index:
        """Load the index at ``path``; a missing file is an empty index."""
        path = Path(path)
        try:
            with open(path, "rb") as f:
                st = os.fstat(f.fileno())
                data = f.read()
        except FileNotFoundError:
            return cls(path)
        table, tree, proxies = _parse(data, path)
        index = cls(path, None, st.st_mtime_ns, tree, proxies)
        index._table = table
        return index

    @property
    def entries(self) -> dict[str, IndexEntry]:
        """Path → entry, in path order as read (built on first use)."""
        if self._table is not None:
            rows = self._table.rows()
            # tuple.__new__ skips the named tuple's Python-level __new__: a third of the time.
            new = tuple.__new__
            self._entries = {
                p: new(IndexEntry, (p, raw.hex(), size, mtime, ino, mode))
                for p, (raw, mode, size, mtime, ino) in rows
            }
            self._table = None
        return self._entries

    def records(self, start: int = 0, stop: int | None = None
                ) -> Iterable[tuple[str, Record]]:
        """``(path, (raw id, mode, size, mtime_ns, inode))`` for the entries ``start`` to
        ``stop`` (default all), without building the entries when they were not needed
        yet (a stat check of 100,000 files then makes no object per file);
        :func:`record_entry` makes the entry of one. The slice counts the records as read,
        so slices of one index that cover it yield each entry once."""
        if self._table is not None:
            return self._table.rows(start, stop)
        values = itertools.islice(self._entries.values(), start, stop)
        return ((e.path, (bytes.fromhex(e.id), e.mode, e.size, e.mtime_ns, e.ino))
                for e in values)

    def _count(self) -> int:
        """How many records :meth:`records` slices: removed ones included."""
        return len(self._table.paths) if self._table is not None else len(self._entries)

    def paths(self) -> Collection[str]:
        """The staged paths, for membership tests (cheap before the entries are built)."""
        if self._table is not None:
            return self._table.pos().keys()
        return self._entries.keys()

    def __iter__(self) -> Iterator[IndexEntry]:
        entries = self.entries
        for key in sorted(entries):
            yield entries[key]

    def __len__(self) -> int:
        return len(self._table) if self._table is not None else len(self._entries)

    def __contains__(self, path: object) -> bool:
        return path in self.paths()

    def get(self, path: str) -> IndexEntry | None:
        if self._table is not None:
            i = self._table.pos().get(path)
            return None if i is None else record_entry(path, self._table.record(i))
        return self._entries.get(path)

    def add(self, entry: IndexEntry) -> None:
        """Stage ``entry``, replacing any entry at its path (and refusing file/dir clashes)."""
        table = self._table
        if table is not None:
            i = table.pos().get(entry.path)
            if i is not None:  # a new record in place of the old: no entry built
                raw, mode = table.record(i)[:2]
                if raw.hex() != entry.id or (mode ^ entry.mode) & 0o170100:
                    self.tree = None
                _RECORD.pack_into(table.raw, i * _RECORD.size, bytes.fromhex(entry.id),
                                  entry.mode, entry.size, entry.mtime_ns, entry.ino)
                return
        entries = self.entries
        old = entries.get(entry.path)
        if old is None:
            self._check_clash(entry.path)
            self.tree = None
        elif old.id != entry.id or old.type != entry.type:
            self.tree = None
        entries[entry.path] = entry

    def remove(self, path: str) -> bool:
        """Unstage ``path``; return whether it was staged."""
        table = self._table
        if table is not None:
            i = table.pos().pop(path, None)
            if i is None:
                return False
            table.removed.add(i)
            table.names = None
        elif self._entries.pop(path, None) is None:
            return False
        self.tree = None
        return True

    def clear(self) -> None:
        self._table = None
        self._entries.clear()
        self._dir_cache = None
        self.tree = None
        self.proxies = {}

    def is_racy(self, entry: IndexEntry) -> bool:
        """Whether the file may have changed after it was hashed within one clock tick."""
        return self.written_ns == 0 or entry.mtime_ns >= self.written_ns

    def _check_clash(self, path: str) -> None:
        parts = path.split("/")
        dirs = self._dirs()
        for i in range(1, len(parts)):
            parent = "/".join(parts[:i])
            if parent in self.entries:
                raise AmaError(
                    f"cannot stage {path}: {parent} is staged as a file",
                    f"remove {parent} from the index first",
                )
            dirs.add(parent)
        if path in dirs:
            # The folder set only grows; rebuild it once before refusing.
            self._dir_cache = None
            if path in self._dirs():
                raise AmaError(
                    f"cannot stage {path}: files below {path}/ are staged",
                    "remove them from the index first",
                )

    def _dirs(self) -> set[str]:
        """Every folder that holds a staged file (a superset after removals)."""
        if self._dir_cache is None:
            dirs: set[str] = set()
            for p in self.entries:
                while "/" in p:
                    p = p.rpartition("/")[0]
                    if p in dirs:
                        break
                    dirs.add(p)
            self._dir_cache = dirs
        return self._dir_cache

    def staged_proxies(self) -> dict[str, tuple[str, str]]:
        """The entries of :attr:`proxies` whose path is staged with the bytes it names."""
        kept = {}
        for path, (content, descriptor) in self.proxies.items():
            entry = self.get(path)
            if entry is not None and entry.id == content and entry.type == "blob":
                kept[path] = (content, descriptor)
        return kept

    def write(self) -> None:
        """Save the entries atomically (temp file in the same folder, fsync, rename) under
        the index's lock: the one this process holds (see :func:`locked`), else taken for
        the write alone. Raises :class:`IndexLocked` when another process holds it."""
        table = self._table
        if table is not None and not table.removed and table.names is not None:
            count, records, names = len(table.paths), bytes(table.raw), table.names
        elif table is not None:
            size, removed = _RECORD.size, table.removed
            kept = [i for i in range(len(table.paths)) if i not in removed]
            count = len(kept)
            records = b"".join(table.raw[i * size:(i + 1) * size] for i in kept)
            names = "".join(table.paths[i] + "\0" for i in kept).encode("utf-8")
        else:
            entries = list(self)
            pack = _RECORD.pack
            count = len(entries)
            records = b"".join(pack(bytes.fromhex(e.id), e.mode, e.size, e.mtime_ns, e.ino)
                               for e in entries)
            names = "".join(e.path + "\0" for e in entries).encode("utf-8")
        links = 1 in records[33::_RECORD.size].translate(_LINK_BYTE)
        version = VERSION_LINKS if links else VERSION
        self.proxies = self.staged_proxies()
        if self.proxies:
            version = VERSION_PROXIES
        parts = [_HEADER.pack(MAGIC, version, count, len(names)), records, names]
        if self.tree is not None:
            parts.append(_EXTENSION.pack(EXT_TREE, 32) + bytes.fromhex(self.tree))
        if self.proxies:
            block = b"".join(
                _PROXY.pack(bytes.fromhex(content), bytes.fromhex(descriptor), len(raw)) + raw
                for path, (content, descriptor) in sorted(self.proxies.items())
                for raw in [path.encode("utf-8")])
            parts.append(_EXTENSION.pack(EXT_PROXIES, len(block)) + block)
        body = b"".join(parts)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        lock = held(self.path)
        if lock is not None:
            lock.commit(body + blake3(body).digest())
        else:
            with index_lock(self.path) as lock:
                lock.commit(body + blake3(body).digest())
        self.written_ns = os.stat(self.path).st_mtime_ns


def record_entry(path: str, record: Record) -> IndexEntry:
    """The entry of one record of :meth:`Index.records`."""
    raw, mode, size, mtime, ino = record
    return IndexEntry(path, raw.hex(), size, mtime, ino, mode)


def _parse(data: bytes, path: Path
           ) -> tuple[_Table, str | None, dict[str, tuple[str, str]]]:
    """Return the paths, the records, the ``TREE`` extension and the ``PRXY`` one (path →
    (id of the bytes, id of the descriptor)) of an index file."""
    def corrupt(why: str) -> CorruptIndex:
        return CorruptIndex(
            f"index {path} is damaged: {why}",
            "remove it and stage the files again ('ama update-index --add' or 'ama add .')",
        )

    if len(data) < _HEADER_V1.size + _CHECKSUM_LEN:
        raise corrupt("it is too short")
    magic, version, count = _HEADER_V1.unpack_from(data)
    if magic != MAGIC:
        raise corrupt("it is not an ama index")
    if version not in (1, VERSION, VERSION_LINKS, VERSION_PROXIES):
        raise CorruptIndex(f"index {path} has version {version}; this ama reads versions 1 "
                           f"to {VERSION_PROXIES}", "upgrade ama")
    body, checksum = data[:-_CHECKSUM_LEN], data[-_CHECKSUM_LEN:]
    if blake3(body).digest() != checksum:
        raise corrupt("its checksum does not match")
    if version == 1:
        records_start, names_len = _HEADER_V1.size, None
    else:
        if len(body) < _HEADER.size:
            raise corrupt("it is too short")
        names_len = _HEADER.unpack_from(body)[3]
        records_start = _HEADER.size
    records_end = records_start + count * _RECORD.size
    names_end = len(body) if names_len is None else records_end + names_len
    if names_end > len(body):
        raise corrupt("it holds fewer records than it says")
    try:
        paths = body[records_end:names_end].decode("utf-8").split("\0")
    except UnicodeDecodeError:
        raise corrupt("a path is not UTF-8") from None
    if len(paths) != count + 1 or paths[-1] != "":
        raise corrupt("the number of paths does not match the number of records")
    paths.pop()
    table = _Table(paths, bytearray(body[records_start:records_end]),
                   body[records_end:names_end])
    tree = None
    proxies: dict[str, tuple[str, str]] = {}
    at = names_end
    while at < len(body):
        if at + _EXTENSION.size > len(body):
            raise corrupt("an extension is cut short")
        signature, size = _EXTENSION.unpack_from(body, at)
        at += _EXTENSION.size
        if at + size > len(body):
            raise corrupt("an extension is cut short")
        if signature == EXT_TREE and size == 32:
            tree = body[at:at + size].hex()
        elif signature == EXT_PROXIES:
            proxies = _parse_proxies(body[at:at + size], corrupt)
        at += size  # an extension this ama does not know is a cache it can do without
    return table, tree, proxies


def _parse_proxies(block: bytes, corrupt: Callable[[str], CorruptIndex]
                   ) -> dict[str, tuple[str, str]]:
    proxies = {}
    at = 0
    while at < len(block):
        if at + _PROXY.size > len(block):
            raise corrupt("its proxy extension is cut short")
        content, descriptor, length = _PROXY.unpack_from(block, at)
        at += _PROXY.size
        try:
            path = block[at:at + length].decode("utf-8")
        except UnicodeDecodeError:
            raise corrupt("a proxy's path is not UTF-8") from None
        if at + length > len(block):
            raise corrupt("its proxy extension is cut short")
        at += length
        proxies[path] = (content.hex(), descriptor.hex())
    return proxies


class Change(NamedTuple):
    """A staged file whose work-tree copy differs from the index.

    ``state`` is ``modified`` (other bytes), ``deleted`` (no regular file there) or
    ``touched`` (same bytes, new stat: ``entry`` is the refreshed entry).
    """

    state: str
    entry: IndexEntry


def stat_differs(index: Index, root: str | os.PathLike[str],
                 select: Callable[[str], bool] | None = None,
                 meanwhile: Callable[[], None] | None = None,
                 split_at: int = PARALLEL_FROM, store: str | os.PathLike[str] | None = None
                 ) -> list[tuple[IndexEntry, os.stat_result | None]]:
    """Return, in the index's order, the staged files below ``root`` (those whose path
    ``select`` accepts, default all) whose stat differs from their entry or is racily
    clean, each with its ``lstat`` (``os.stat`` for a symbolic link placed from the store),
    or None when nothing is at its path.

    One ``lstat`` per file, no entry built for a file that matches. From ``split_at`` files
    on, forked children check shares of them, one per core
    (:func:`~ama.plumbing.parallel.forked`);
    ``meanwhile``, if given, runs in this process during that time (it always runs once).

    With ``store`` (the object folder) only a link pointing into it counts as placed from
    the store; any other link where a file is staged is given with its own ``lstat``, so
    that a file replaced by a link is never read through it.
    """
    base = os.path.join(os.fspath(root), "")
    inside = None if store is None else os.path.join(os.path.abspath(store), "")
    written = index.written_ns
    count = index._count()
    if count < split_at:
        rows = index.records() if select is None else (
            (p, r) for p, r in index.records() if select(p))
        found = _stat_differs(rows, base, written, inside)
        if meanwhile is not None:
            meanwhile()
        return found
    # This process also runs ``meanwhile``: it takes a smaller share of the files.
    own, *others = shares(count, workers(), 2 / 3 if meanwhile is not None else 1.0)

    def part(start: int, stop: int | None) -> Iterable[tuple[str, Record]]:
        rows = index.records(start, stop)
        return rows if select is None else ((p, r) for p, r in rows if select(p))

    def share(start: int, stop: int | None) -> Any:  # read and checked in the child
        return _stat_differs(part(start, stop), base, written, inside)

    theirs = [forked(partial(share, a, b)) for a, b in others]
    found = _stat_differs(part(*own), base, written, inside)
    if meanwhile is not None:
        meanwhile()
    for result in theirs:
        found.extend(result())
    return found


def _stat_differs(rows: Iterable[tuple[str, Record]], base: str, written: int,
                  store: str | None = None
                  ) -> list[tuple[IndexEntry, os.stat_result | None]]:
    found: list[tuple[IndexEntry, os.stat_result | None]] = []
    lstat = os.lstat
    for path, record in rows:
        _raw, mode, size, mtime, ino = record
        full = base + path
        try:
            st = lstat(full)
            if (st.st_mode & 0o170000 == 0o120000 and mode & 0o170000 != 0o120000
                    and (store is None or os.readlink(full).startswith(store))):
                st = os.stat(full)  # a symbolic link placed from the store: its target counts
        except (FileNotFoundError, NotADirectoryError):
            found.append((record_entry(path, record), None))
            continue
        if (st.st_mtime_ns == mtime and st.st_size == size and st.st_ino == ino
                and st.st_mode == mode and mtime < written):
            continue
        found.append((record_entry(path, record), st))
    return found


def changes(index: Index, root: str | os.PathLike[str]) -> Iterator[Change]:
    """Yield the staged files under ``root`` whose stat differs from the index, re-hashing
    only those (and racily clean ones) to tell a real change from a touch."""
    base = os.fspath(root)
    for entry, st in stat_differs(index, root):
        yield change_of(entry, st, base)


def change_of(entry: IndexEntry, st: os.stat_result | None, root: str) -> Change:
    """What became of a staged file whose stat differs (``st``, None: nothing at its path;
    as :func:`stat_differs` gives them), re-hashing it only when size and executable bit
    cannot tell."""
    from ama.plumbing.hashing import hash_file

    if entry.is_link:
        return _link_change(entry, st, root)
    if st is not None and stat.S_ISLNK(st.st_mode):  # a file made a link: other content
        return Change("modified", entry)
    if st is None or not stat.S_ISREG(st.st_mode):
        return Change("deleted", entry)
    if st.st_size != entry.size or (st.st_mode & 0o100) != (entry.mode & 0o100):
        return Change("modified", entry._replace(size=st.st_size))
    if hash_file(f"{root}/{entry.path}", st.st_size) != entry.id:
        return Change("modified", entry)
    return Change("touched", IndexEntry.from_stat(entry.path, entry.id, st))


def _link_change(entry: IndexEntry, st: os.stat_result | None, root: str) -> Change:
    """What became of a staged symbolic link: its target string is its content."""
    from ama.plumbing.hashing import hash_bytes

    if st is None or not stat.S_ISLNK(st.st_mode):
        return Change("deleted", entry) if st is None else Change("modified", entry)
    target = os.fsencode(os.readlink(f"{root}/{entry.path}"))
    if hash_bytes(target) != entry.id:
        return Change("modified", entry._replace(size=len(target)))
    return Change("touched", IndexEntry.from_stat(entry.path, entry.id, st))


# -- the plumbing commands that write the index ------------------------------------------------


def update_index(path: str | os.PathLike[str], root: str | os.PathLike[str],
                 odb: ObjectDatabase,
                 names: Sequence[tuple[str, str]], *, add: bool = False,
                 remove: bool = False, force_remove: bool = False,
                 refresh: bool = False) -> list[str]:
    """``ama update-index``: under the lock of the index at ``path``, stage or unstage the
    files ``names`` ((name as given, path from ``root``) each) of the work tree ``root``,
    storing their bytes in ``odb``; with ``refresh`` first re-check every staged file's
    stat, recording the touched ones.

    Returns the staged files ``refresh`` found with other content, sorted; when there are
    any, nothing in ``names`` is staged. Every path is checked before anything is written:
    raises :class:`~ama.plumbing.errors.BadInput`, :class:`~ama.plumbing.errors.NotFound`
    or :class:`~ama.plumbing.worktree.UnsupportedFiles` with the index and the store
    unchanged, and :class:`IndexLocked` when another command holds the index.
    """
    from ama.plumbing.errors import BadInput, NotFound
    from ama.plumbing.objects import check_name
    from ama.plumbing.worktree import UnsupportedFiles, file_problem

    base = os.fspath(root)
    with locked(path) as index:
        if refresh:
            stale = []
            for change in changes(index, base):
                if change.state == "touched":
                    index.add(change.entry)
                else:
                    stale.append(change.entry.path)
            index.write()
            if stale:
                return sorted(stale)
        plan: list[tuple[str, str, os.stat_result | None]] = []
        for name, rel in names:
            if not rel:
                raise BadInput(f"{name} is the asset directory itself: name files",
                               "use 'ama add .' to stage a whole folder")
            try:
                st: os.stat_result | None = os.lstat(f"{base}/{rel}")
            except (FileNotFoundError, NotADirectoryError):
                st = None
            if force_remove or st is None:
                if rel not in index:
                    if st is None:
                        raise NotFound(f"{name}: no such file, and it is not staged")
                    raise NotFound(f"{name} is not staged, so it cannot be removed")
                if st is not None or remove or force_remove:
                    plan.append(("remove", rel, None))
                    continue
                raise BadInput(f"{name} no longer exists", "pass --remove to unstage it")
            if stat.S_ISDIR(st.st_mode):
                raise BadInput(f"{name} is a folder: update-index takes files",
                               "list its files with find, or use 'ama add'")
            if stat.S_ISLNK(st.st_mode):
                from ama.plumbing.objects import link_problem

                why = link_problem(rel, os.readlink(f"{base}/{rel}"))
                if why is not None:
                    raise UnsupportedFiles([(name, f"is a symbolic link: {why}")])
            elif not stat.S_ISREG(st.st_mode):
                raise UnsupportedFiles([(name, file_problem(st.st_mode) or "")])
            for part in rel.split("/"):
                check_name(part)
            if rel not in index and not add:
                raise BadInput(f"{name} is not staged yet", "pass --add to stage a new file")
            plan.append(("add", rel, st))
        if not plan and refresh:
            return []
        with odb.batch():
            for action, rel, st in plan:
                if action == "remove":
                    index.remove(rel)
                    continue
                assert st is not None
                if stat.S_ISLNK(st.st_mode):  # a link's content is its target
                    oid = odb.write(os.fsencode(os.readlink(f"{base}/{rel}")))
                else:
                    oid = odb.write_file(f"{base}/{rel}", st.st_size)
                index.add(IndexEntry.from_stat(rel, oid, st))
        index.write()
    return []


def read_tree_into(path: str | os.PathLike[str], odb: ObjectDatabase, tree: str) -> Index:
    """``ama read-tree``: under the lock of the index at ``path``, replace its entries with
    the files of the tree ``tree`` (entries without a stat, so the next check re-hashes
    each file once); return it. Raises :class:`IndexLocked` and the store's errors."""
    from ama.plumbing.graph import walk_tree
    from ama.plumbing.objects import check_paths

    with locked(path) as index:
        entries = {
            p: IndexEntry(p, e.id, e.size, 0, 0, mode_of(e.type))
            for p, e in walk_tree(odb, tree)
        }
        check_paths(entries, f"tree {tree}")  # before anything is written
        index.clear()
        index.entries.update(entries)
        index.tree = tree
        index.write()
    return index
