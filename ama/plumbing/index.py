"""The index of an asset directory: the staging area and the stat cache (``.ama/index``).

It maps each path (relative to the asset root, ``/``-separated) to the id of the blob staged
for it and the file's size, mtime_ns, inode and mode when it was hashed. A refresh re-hashes
only the files whose stat no longer matches; a file modified in the same clock tick as the
index was written ("racily clean") is re-hashed too, as git does.

The file is binary, so 100,000 entries load in a few milliseconds (layout in ama-format(5)):

    magic "AMAI", version u32, entry count u32
    count records of '<32sIQqQ': raw id, mode, size, mtime_ns, inode
    the paths, UTF-8, each followed by NUL, in the records' order (sorted by UTF-8 bytes)
    BLAKE3 of all the bytes above (32 bytes)

It is written atomically (temp file, fsync, rename) and a damaged file is refused.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

from blake3 import blake3

from ama.plumbing.errors import AmaError

MAGIC = b"AMAI"
VERSION = 1
_HEADER = struct.Struct("<4sII")
_RECORD = struct.Struct("<32sIQqQ")
_CHECKSUM_LEN = 32

MODE_FILE = 0o100644
MODE_EXEC = 0o100755


class CorruptIndex(AmaError):
    """The index file is damaged or of an unknown version."""


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
    def executable(self) -> bool:
        return bool(self.mode & 0o100)

    @property
    def type(self) -> str:
        """The tree entry type this file gets: ``exec`` or ``blob``."""
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
    """The sort key of index paths: their UTF-8 bytes, as for tree entries."""
    return path.encode("utf-8")


class Index:
    """The entries of one index file, kept in memory; :meth:`write` saves them atomically."""

    def __init__(self, path: str | os.PathLike[str], entries: dict[str, IndexEntry] | None = None,
                 written_ns: int = 0) -> None:
        self.path = Path(path)
        self.entries: dict[str, IndexEntry] = entries if entries is not None else {}
        # mtime of the index file when it was read: entries whose files were modified at or
        # after this moment may have changed without a visible stat change.
        self.written_ns = written_ns
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
        return cls(path, _parse(data, path), st.st_mtime_ns)

    def __iter__(self) -> Iterator[IndexEntry]:
        for key in sorted(self.entries, key=path_key):
            yield self.entries[key]

    def __len__(self) -> int:
        return len(self.entries)

    def __contains__(self, path: object) -> bool:
        return path in self.entries

    def get(self, path: str) -> IndexEntry | None:
        return self.entries.get(path)

    def add(self, entry: IndexEntry) -> None:
        """Stage ``entry``, replacing any entry at its path (and refusing file/dir clashes)."""
        self._check_clash(entry.path)
        self.entries[entry.path] = entry

    def remove(self, path: str) -> bool:
        """Unstage ``path``; return whether it was staged."""
        return self.entries.pop(path, None) is not None

    def clear(self) -> None:
        self.entries.clear()
        self._dir_cache = None

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

    def write(self) -> None:
        """Save the entries atomically: temp file in the same folder, fsync, rename."""
        entries = list(self)
        parts = [_HEADER.pack(MAGIC, VERSION, len(entries))]
        pack = _RECORD.pack
        parts.extend(
            pack(bytes.fromhex(e.id), e.mode, e.size, e.mtime_ns, e.ino) for e in entries
        )
        parts.append("".join(e.path + "\0" for e in entries).encode("utf-8"))
        body = b"".join(parts)
        data = body + blake3(body).digest()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        temp = self.path.with_name(f"{self.path.name}.{os.getpid()}.tmp")
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            os.fsync(fd)
        except BaseException:
            os.close(fd)
            os.unlink(temp)
            raise
        os.close(fd)
        os.replace(temp, self.path)
        self.written_ns = os.stat(self.path).st_mtime_ns


def _parse(data: bytes, path: Path) -> dict[str, IndexEntry]:
    def corrupt(why: str) -> CorruptIndex:
        return CorruptIndex(
            f"index {path} is damaged: {why}",
            "remove it and stage the files again ('ama update-index --add' or 'ama add .')",
        )

    if len(data) < _HEADER.size + _CHECKSUM_LEN:
        raise corrupt("it is too short")
    magic, version, count = _HEADER.unpack_from(data)
    if magic != MAGIC:
        raise corrupt("it is not an ama index")
    if version != VERSION:
        raise CorruptIndex(f"index {path} has version {version}; this ama reads version {VERSION}",
                           "upgrade ama")
    body, checksum = data[:-_CHECKSUM_LEN], data[-_CHECKSUM_LEN:]
    if blake3(body).digest() != checksum:
        raise corrupt("its checksum does not match")
    records_end = _HEADER.size + count * _RECORD.size
    if records_end > len(body):
        raise corrupt("it holds fewer records than it says")
    try:
        paths = body[records_end:].decode("utf-8").split("\0")
    except UnicodeDecodeError:
        raise corrupt("a path is not UTF-8") from None
    if len(paths) != count + 1 or paths[-1] != "":
        raise corrupt("the number of paths does not match the number of records")
    records = _RECORD.iter_unpack(body[_HEADER.size:records_end])
    # tuple.__new__ skips the named tuple's Python-level __new__: a third of the load time.
    new = tuple.__new__
    return {
        p: new(IndexEntry, (p, raw.hex(), size, mtime, ino, mode))
        for p, (raw, mode, size, mtime, ino) in zip(paths, records, strict=False)
    }


class Change(NamedTuple):
    """A staged file whose work-tree copy differs from the index.

    ``state`` is ``modified`` (other bytes), ``deleted`` (no regular file there) or
    ``touched`` (same bytes, new stat: ``entry`` is the refreshed entry).
    """

    state: str
    entry: IndexEntry


def changes(index: Index, root: str | os.PathLike[str]) -> Iterator[Change]:
    """Yield the staged files under ``root`` whose stat differs from the index, re-hashing
    only those (and racily clean ones) to tell a real change from a touch."""
    from ama.plumbing.hashing import hash_file

    base = os.fspath(root)
    lstat = os.lstat
    written = index.written_ns
    # Stat relative to an open handle on the root: the kernel walks only the path inside the
    # asset directory, and no full path is built per file (most of the cost at 100,000 files).
    root_fd = os.open(base, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for path, entry in index.entries.items():
            try:
                st = lstat(path, dir_fd=root_fd)
                if st.st_mode & 0o170000 == 0o120000:
                    # A symlink checked out from the store: its target is the content.
                    st = os.stat(path, dir_fd=root_fd)
            except (FileNotFoundError, NotADirectoryError):
                yield Change("deleted", entry)
                continue
            if (st.st_mtime_ns == entry.mtime_ns and st.st_size == entry.size
                    and st.st_ino == entry.ino and st.st_mode == entry.mode
                    and entry.mtime_ns < written):
                continue
            if not (st.st_mode & 0o170000 == 0o100000):
                yield Change("deleted", entry)
            elif st.st_size != entry.size or (st.st_mode & 0o100) != (entry.mode & 0o100):
                yield Change("modified", entry._replace(size=st.st_size))
            elif hash_file(f"{base}/{path}", st.st_size) != entry.id:
                yield Change("modified", entry)
            else:
                yield Change("touched", IndexEntry.from_stat(path, entry.id, st))
    finally:
        os.close(root_fd)
