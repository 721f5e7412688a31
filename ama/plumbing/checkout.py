"""Checking out staged files: writing the index's blobs from the store into the work tree.

Files are placed by a small pool of threads (linking, copying and re-hashing are system
calls and reads, which run in parallel), in chunks, with one :class:`~ama.plumbing.link.Linker`
for the whole checkout so a filesystem without reflinks is probed once.
"""

from __future__ import annotations

import os
import stat
import threading
import time
from collections.abc import Callable, Collection, Iterable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path

from ama.plumbing.crash import crash_point
from ama.plumbing.durable import remove_temp_files, temp_beside, write_atomic
from ama.plumbing.errors import AmaError, NotFound, path_list
from ama.plumbing.hashing import (
    MMAP_THRESHOLD,
    hash_bytes,
    hash_file,
    read_small,
    read_small_with_stat,
)
from ama.plumbing.index import Index, IndexEntry
from ama.plumbing.link import Linker
from ama.plumbing.objects import check_links, check_paths, decode_link_target
from ama.plumbing.odb import CorruptObject, FileObjectDatabase, MissingObject, is_sealed, seal
from ama.plumbing.parallel import PARALLEL_FROM, can_fork, forked, shares, workers

# Threads placing files: one per core, up to 4, so that they overlap their system calls
# without fighting over the interpreter (on 2 cores, 4 threads place 100,000 hard links
# a third slower than 2).
WORKERS = max(2, min(4, os.cpu_count() or 2))
CHUNK = 256
_TELL_BYTES = 8 << 20  # progress hears of a large file at least this often


class WouldOverwrite(AmaError):
    """Files in the way that hold something else; nothing is written without ``force``."""


def checkout(odb: FileObjectDatabase, index: Index, root: Path, paths: Iterable[str],
             strategy: str = "auto", force: bool = False,
             verified: Collection[str] = frozenset(),
             split_at: int = PARALLEL_FROM,
             progress: Callable[[int, int, int, int], None] | None = None) -> list[str]:
    """Write the staged files ``paths`` into ``root`` from ``odb``; return the paths written.

    A file already holding the staged bytes is left alone. A file with other bytes (or a
    folder in the way) is refused, listing every one, unless ``force``. Each object is
    re-hashed as it is placed, so a corrupt store object never reaches the work tree;
    except, when it is placed as a hard or symbolic link, a sealed object (see
    :func:`~ama.plumbing.odb.is_sealed`: its stat shows no write since it was hashed) and
    an object in ``verified`` (ids that the caller's own operation re-hashed as it entered
    the store just before). A copy is still hashed from the bytes it reads. A linked object
    that was re-hashed and matched is sealed, so the next checkout trusts it. Raises
    :class:`~ama.plumbing.odb.CorruptObject` (naming the id and the object's path; the
    file is not placed) and :class:`~ama.plumbing.odb.MissingObject`. The index is updated
    with the new files' stat and written.

    From ``split_at`` files on, forked children place a share of them each
    (:func:`~ama.plumbing.parallel.forked`); below, a few threads do.

    ``progress(files done, files, bytes done, bytes)`` is told the totals of the files to
    place, then how far placing is, several times a second (a copy counts half its bytes as
    written, half as checked).
    """
    base = os.fspath(root)
    entries: list[IndexEntry] = []
    for p in paths:
        staged = index.get(p)
        if staged is None:
            raise NotFound(f"{p} is not staged", "stage it first ('ama update-index --add')")
        entries.append(staged)
    # A path through .ama/ (or .., or any name a tree may not hold) would write outside the
    # files of the version: refuse the whole checkout before the first write.
    check_paths((e.path for e in entries), "the index")
    # A link's target is checked as the remote checks it, before anything is written.
    targets = {e.path: _link_target(odb, e) for e in entries if e.is_link}
    check_links(targets.items(), "the index")
    todo: list[tuple[IndexEntry, bool]] = []  # (entry, nothing is at its path)
    blocked: list[str] = []
    missing_folders: dict[str, bool] = {}
    # Folders of the work tree are entered only where they are real folders: one that is a
    # symbolic link (a version's own, or planted) would carry the files placed below it
    # anywhere it points, so it is in the way like a file.
    folder_kinds: dict[str, str] = {base: "dir"}
    store_root = os.fspath(odb.root)
    for entry in entries:
        full = f"{base}/{entry.path}"
        folder = full.rpartition("/")[0]
        absent = missing_folders.get(folder)
        if absent is None:
            absent = missing_folders[folder] = _folder_kind(folder, folder_kinds) != "dir"
        if absent:
            if folder_kinds[folder] == "link":
                todo.append((entry, False))
                blocked.append(entry.path)
                continue
            todo.append((entry, True))  # no folder, so no file: skip a stat per file
            continue
        try:
            st = os.lstat(full)
        except (FileNotFoundError, NotADirectoryError):
            todo.append((entry, True))
            continue
        if stat.S_ISLNK(st.st_mode):
            if entry.is_link:
                if os.readlink(full) == targets[entry.path]:
                    index.add(IndexEntry.from_stat(entry.path, entry.id, st))
                    continue
                todo.append((entry, False))
                blocked.append(entry.path)
                continue
            if not _links_into(full, store_root):
                todo.append((entry, False))  # another link: never written through
                blocked.append(entry.path)
                continue
            st = os.stat(full)  # placed from the store by the symlink strategy
        elif entry.is_link:
            todo.append((entry, False))
            blocked.append(entry.path)
            continue
        if entry.matches(st) and not index.is_racy(entry):
            continue
        if (os.path.isfile(full) and st.st_size == entry.size
                and hash_file(full, st.st_size) == entry.id
                and bool(st.st_mode & 0o100) == entry.executable):
            index.add(IndexEntry.from_stat(entry.path, entry.id, st))
            continue
        todo.append((entry, False))
        blocked.append(entry.path)
    if blocked and not force:
        raise WouldOverwrite(
            f"{len(blocked)} file(s) in the work tree differ from the index and would be "
            f"overwritten:\n{path_list(blocked)}",
            "stage or move them first, or pass -f to overwrite them",
        )
    # Temp files that a killed checkout left beside the files it was placing: those files
    # are placed again now, so their folders are where the leftovers are. (A staged file
    # that merely has such a name, which no walk stages, is kept.)
    for folder in dict.fromkeys(f"{base}/{e.path}".rpartition("/")[0] for e, _ in todo):
        if not missing_folders.get(folder):
            prefix = folder[len(base) + 1:] + "/" if folder != base else ""
            remove_temp_files(folder, partial(_staged, index, prefix))
    linker = Linker(strategy)
    if force:
        for entry, _ in todo:
            _clear_way(root, root / entry.path)
    store = os.fspath(odb.root)

    def make_folders(part: list[tuple[IndexEntry, bool]]) -> None:
        for folder in dict.fromkeys(f"{base}/{e.path}".rpartition("/")[0] for e, _ in part):
            os.makedirs(folder, exist_ok=True)

    meter = None if progress is None or not todo else _Meter(progress, todo)

    def place_chunk(chunk: list[tuple[IndexEntry, bool]],
                    meter: _Meter | None = meter) -> list[IndexEntry]:
        placed = []
        for entry, fresh in chunk:
            dest = f"{base}/{entry.path}"
            if entry.is_link:
                placed.append(IndexEntry.from_stat(entry.path, entry.id,
                                                   _place_link(targets[entry.path], dest)))
                if meter is not None:
                    meter.placed(entry.size)
                continue
            src = f"{store}/{entry.id[:2]}/{entry.id[2:]}"
            moved = None if meter is None else meter.within(entry.size)
            st = _place_checked(linker, src, dest, entry, fresh and not force,
                                entry.id in verified, moved)
            placed.append(IndexEntry.from_stat(entry.path, entry.id, st))
            if meter is not None:
                meter.placed(entry.size, 0 if moved is None else moved.told)
            crash_point("checkout.placed")
        return placed

    def place_part(part: list[tuple[IndexEntry, bool]],
                   meter: _Meter | None = None) -> list[IndexEntry]:
        make_folders(part)
        return place_chunk(part, meter)

    chunks = [todo[i:i + CHUNK] for i in range(0, len(todo), CHUNK)]
    written: list[str] = []
    if len(todo) >= split_at and can_fork() and workers() > 1:
        # A process per core, not threads: linking and stat'ing 100,000 files is as much
        # the interpreter's work as the kernel's. A share that fails in a child is placed
        # again here, which raises its error (placing a file twice is harmless).
        own, *others = shares(len(todo), workers())
        theirs = [forked(partial(place_part, todo[a:b])) for a, b in others]
        if meter is not None:  # the children draw nothing: this share stands for all
            meter.scale = len(todo) / max(1, own[1] - own[0])
        results = [place_part(todo[own[0]:own[1]], meter)] + [result() for result in theirs]
    elif len(chunks) <= 1:
        make_folders(todo)
        results = [place_chunk(c) for c in chunks]
    else:
        make_folders(todo)
        with ThreadPoolExecutor(max_workers=WORKERS) as pool:
            futures = [pool.submit(place_chunk, c) for c in chunks]
            try:
                results = [f.result() for f in futures]
            except BaseException:
                for f in futures:
                    f.cancel()
                raise
    for placed in results:
        for new in placed:
            index.add(new)
            written.append(new.path)
    if meter is not None:
        meter.finish()
    crash_point("checkout.before-index")
    index.write()
    return written


class _Meter:
    """Files and bytes placed so far, told to ``progress`` from whichever thread placed
    them: the totals at once, then at most fifty times a second (a call per file would
    cost more than placing a hard link does) or every few MiB, and at the end."""

    def __init__(self, progress: Callable[[int, int, int, int], None],
                 todo: list[tuple[IndexEntry, bool]]) -> None:
        self.progress = progress
        self.files = len(todo)
        self.size = sum(e.size for e, _ in todo)
        self.done = self.bytes = 0
        self.scale = 1.0  # this process places 1/scale of the files (see checkout)
        self.told = time.monotonic()
        self.told_bytes = 0
        self.lock = threading.Lock()
        progress(0, self.files, 0, self.size)

    def within(self, size: int) -> _Moved:
        """A callback for the bytes of one file of ``size`` as they move (never more)."""
        return _Moved(self, size)

    def placed(self, size: int, moved: int = 0) -> None:
        """One file is in place; ``moved`` of its ``size`` bytes were told already."""
        self._add(1, size - moved)

    def _add(self, files: int, n: int) -> None:
        with self.lock:
            self.done += files
            self.bytes += n
            now = time.monotonic()
            if now - self.told < 0.02 and self.bytes - self.told_bytes < _TELL_BYTES:
                return
            self.told, self.told_bytes = now, self.bytes
            self.progress(min(int(self.done * self.scale), self.files - 1), self.files,
                          min(int(self.bytes * self.scale), self.size - 1), self.size)

    def finish(self) -> None:
        self.progress(self.files, self.files, self.size, self.size)


class _Moved:
    """The bytes of one file being placed, told to its :class:`_Meter` as they move."""

    def __init__(self, meter: _Meter, size: int) -> None:
        self.meter, self.left, self.told = meter, size, 0

    def __call__(self, n: int) -> None:
        n = min(n, self.left)
        self.left -= n
        self.told += n
        self.meter._add(0, n)


def _staged(index: Index, prefix: str, name: str) -> bool:
    """Whether the file ``name`` of the folder at ``prefix`` is in ``index``."""
    return prefix + name in index


def _link_target(odb: FileObjectDatabase, entry: IndexEntry) -> str:
    """The target of the staged link ``entry``, read (and re-hashed) from the store."""
    try:
        data = odb.get(entry.id)
    except MissingObject:
        raise MissingObject(entry.id, f"the asset store (needed for {entry.path})") from None
    return decode_link_target(data)


def _place_link(target: str, dest: str) -> os.stat_result:
    """Make ``dest`` a symbolic link to ``target`` and return its lstat: made under a
    temporary name and renamed over ``dest``, which replaces whatever was there (never
    writing through it)."""
    temp = temp_beside(dest)
    os.symlink(target, temp)
    try:
        os.replace(temp, dest)
    except BaseException:
        os.unlink(temp)
        raise
    return os.lstat(dest)


def in_real_folders(root: str | os.PathLike[str], path: str) -> bool:
    """Whether every folder on ``path`` (``/``-separated, below ``root``) is a real folder,
    none a symbolic link: only then may the file at ``path`` be removed or replaced, since
    through a link it would be a file outside the work tree."""
    base = os.fspath(root)
    folder = f"{base}/{path}".rpartition("/")[0]
    return _folder_kind(folder, {base: "dir"}) == "dir"


def _folder_kind(folder: str, kinds: dict[str, str]) -> str:
    """``dir``, ``link``, ``absent`` or ``file`` for ``folder``, found with ``lstat`` from
    the root down (memoised in ``kinds``): below anything but a real folder nothing is
    looked at, and a symbolic link is never followed."""
    known = kinds.get(folder)
    if known is not None:
        return known
    parent = _folder_kind(folder.rpartition("/")[0], kinds)
    if parent != "dir":
        kind = "link" if parent == "link" else "absent"
    else:
        try:
            mode = os.lstat(folder).st_mode
        except (FileNotFoundError, NotADirectoryError):
            mode = None
        if mode is None:
            kind = "absent"
        elif stat.S_ISLNK(mode):
            kind = "link"
        elif stat.S_ISDIR(mode):
            kind = "dir"
        else:
            kind = "file"
    kinds[folder] = kind
    return kind


def _links_into(path: str, root: str) -> bool:
    """Whether the symbolic link ``path`` points at a file in the store ``root`` (placed
    there by the symlink strategy)."""
    target = os.path.realpath(path)
    return target.startswith(os.path.join(os.path.realpath(root), "")) and os.path.isfile(
        target)


def _place_checked(linker: Linker, src: str, dest: str, entry: IndexEntry,
                   fresh: bool, verified: bool = False,
                   moved: Callable[[int], None] | None = None) -> os.stat_result:
    """Place one object at ``dest`` and check its bytes are ``entry.id``; return dest's stat.

    Every check comes before ``dest`` is replaced, so a corrupt object leaves what was at
    ``dest`` as it was (a user's file that discard was to restore is never deleted because
    of a store problem). A copy is checked from the bytes read for it, a reflink from the
    new file; a link by the object's size and, unless the object is sealed or ``verified``
    (hashed as it entered the store by the same operation), by hashing it. A linked object
    that had to be hashed is sealed once it matches, and the stat returned is the one
    taken after sealing, as the index must record it. ``moved``, if given, is told the
    bytes of a large copy as half of them are written and half checked (a reflink's as
    they are checked).
    """
    used = linker.used_for(dest, entry.executable)
    try:
        if used == "copy" and entry.size < MMAP_THRESHOLD:
            data = read_small(src, entry.size)
            actual = hash_bytes(data)
            if actual != entry.id:
                raise CorruptObject(entry.id, src, actual)
            write_atomic(dest, data, 0o755 if entry.executable else 0o644, sync=False)
            return os.stat(dest)
        linked = _check_linkable(src, entry, verified) if used in ("hardlink",
                                                                   "symlink") else None
        half = None if moved is None else (lambda n: moved(n // 2))
        # A reflink copies nothing: its check is all the bytes' progress.
        linker.place(src, dest, entry.executable, fresh=fresh,
                     check=lambda new, how: _check_new(new, how, src, entry,
                                                       half if how == "copy" else moved),
                     copied=half)
    except FileNotFoundError:
        if not os.path.exists(src):
            raise MissingObject(entry.id, f"the asset store (needed for {entry.path})") from None
        raise
    # A link's stat is the object's (a symbolic one is followed): taken already.
    return linked if linked is not None else os.stat(dest)


def _check_linkable(src: str, entry: IndexEntry, verified: bool) -> os.stat_result:
    """Check, before it is linked, that the object file ``src`` holds ``entry.id``: its size
    always, its bytes unless it is sealed or ``verified``; seal it when they matched. Return
    its stat (after the seal). Raises :class:`~ama.plumbing.odb.CorruptObject`."""
    st = os.stat(src)
    if st.st_size != entry.size:
        raise CorruptObject(entry.id, f"{src} ({st.st_size} bytes, not {entry.size})")
    if verified or is_sealed(st, entry.id):
        return st
    if entry.size < MMAP_THRESHOLD:
        actual, st = _hash_small_with_stat(src, entry.size)
    else:
        actual = hash_file(src, entry.size)
    if actual != entry.id:
        raise CorruptObject(entry.id, src, actual)
    if not st.st_mode & 0o222 and seal(src, entry.id):
        st = os.stat(src)  # the seal moved the mtime that the index records
    return st


def _check_new(new: str, used: str, src: str, entry: IndexEntry,
               hashed: Callable[[int], None] | None = None) -> None:
    """Check a placed copy or reflink ``new`` before it replaces anything (a link was
    checked by :func:`_check_linkable`)."""
    if used in ("hardlink", "symlink"):
        return
    actual = hash_file(new, entry.size, hashed)
    if actual != entry.id:
        raise CorruptObject(entry.id, src, actual)


def _hash_small_with_stat(path: str, size: int) -> tuple[str, os.stat_result]:
    """Return the id of the small file at ``path`` and its stat, from one open."""
    data, st = read_small_with_stat(path, size)
    return hash_bytes(data), st


def _clear_way(root: Path, dest: Path) -> None:
    """Remove what stands where ``dest`` must go: a folder at it, or a file at a parent."""
    import shutil

    if dest.is_dir() and not dest.is_symlink():
        shutil.rmtree(dest)
    # From the root down, so that nothing below a symbolic link is ever looked at.
    for parent in reversed(dest.relative_to(root).parents[:-1]):
        at = root / parent
        if at.is_symlink() or (at.exists() and not at.is_dir()):
            at.unlink()
            break
        parent = parent.parent


def checkout_index(odb: FileObjectDatabase, index_path: str | os.PathLike[str], root: Path,
                   paths: Iterable[str] | None, strategy: str = "auto",
                   force: bool = False) -> list[str]:
    """``ama checkout-index``: under the lock of the index at ``index_path``, write its
    staged files ``paths`` (paths from ``root``; None: every one) into ``root`` as
    :func:`checkout` does, recording their stat; return the paths written. Raises
    :class:`~ama.plumbing.errors.NotFound` for a path that is not staged (before anything
    is written), :class:`~ama.plumbing.index.IndexLocked`, and :func:`checkout`'s errors."""
    from ama.plumbing.index import locked

    with locked(index_path) as index:
        if paths is None:
            chosen = list(index.entries)
        else:
            chosen = list(paths)
            for path in chosen:
                if path not in index:
                    raise NotFound(f"{path} is not staged")
        return checkout(odb, index, root, chosen, strategy, force)
