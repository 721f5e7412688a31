"""``ama add PATH…``: stage new and changed files (and the removal of deleted ones)."""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Literal

from ama.plumbing.crash import crash_point
from ama.plumbing.errors import BadInput, NotFound
from ama.plumbing.hashing import MMAP_THRESHOLD, hash_file, read_small
from ama.plumbing.index import Index, IndexEntry, path_key, record_entry
from ama.plumbing.lock import store_in_use
from ama.plumbing.odb import FileObjectDatabase, ObjectDatabase, seal, syncfs
from ama.plumbing.parallel import PARALLEL_FROM, can_fork, shares, workers
from ama.plumbing.worktree import IGNORE_FILE, load_ignore
from ama.porcelain.asset import Asset, WorkScan, locked_index, scan, under_any

if TYPE_CHECKING:
    from pathspec import GitIgnoreSpec

# (files done, files total[, bytes done, bytes total])
Progress = Callable[..., None]
# Files stored between two reports to a bar: at most a few tens of milliseconds of small
# files, so a bar drawing ten frames a second or more always has a new count (one
# process stores its share while another stores the rest unseen).
REPORT_EVERY = 128


@dataclass
class Staged:
    """What a staging command did, each list sorted by path."""

    new: list[str] = field(default_factory=list)
    modified: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # symbolic links left out
    bytes: int = 0
    # Staged files, unchanged, whose objects had gone from the store: stored again.
    restored: list[str] = field(default_factory=list)

    def sort(self) -> Staged:
        for name in ("new", "modified", "removed", "restored"):
            getattr(self, name).sort(key=path_key)
        return self

    def to_json(self) -> dict[str, object]:
        return {"new": self.new, "modified": self.modified, "removed": self.removed,
                "restored": self.restored, "skipped": self.skipped, "bytes": self.bytes}


def pathspecs(asset: Asset, paths: list[str], cwd: str | os.PathLike[str] | None = None
              ) -> list[str]:
    """Turn command-line paths (relative to ``cwd``) into paths from the asset root."""
    if not paths:
        raise BadInput("name the paths to stage, or '.' for everything here")
    return [asset.dir.relpath(p, cwd) for p in paths]


def add(asset: Asset, paths: list[str], cwd: str | os.PathLike[str] | None = None,
        progress: Progress | None = None, links: str = "record") -> Staged:
    """Stage the files below ``paths``: new files, files whose content changed, and the
    removal of staged files that were deleted. Honours ``.amaignore``.

    Every path is checked before anything is written: a path that matches nothing, a file
    ``.amaignore`` excludes, or a special file raise (:class:`NotFound`,
    :class:`BadInput`, :class:`~ama.plumbing.worktree.UnsupportedFiles`) with the index
    and the store unchanged. Returns what was staged.

    A staged file whose object is no longer in the store (``ama store gc`` while an older
    ama ran, a hand-made deletion) is stored again from the work tree when its bytes are
    still the staged ones, so the next upload has every object it needs.
    A symbolic link whose target stays inside the asset is staged as a link; one that
    leaves it is refused unless ``links`` is ``follow`` (the file it points at is staged)
    or ``skip`` (every link is left out and listed in ``skipped``); see
    :func:`~ama.porcelain.asset.scan`.

    With the ``hardlink`` link strategy a file becomes its store object by a hard link
    instead of a copy (see :func:`link_files`): it turns read-only, as files a hardlink
    clone places do.
    """
    prefixes = pathspecs(asset, paths, cwd)
    # Until the index names them, the objects stored here are safe from gc only by this.
    with store_in_use(asset.odb.root), locked_index(asset) as index:
        # False once read and found empty: the file is read at most once.
        ignore: GitIgnoreSpec | Literal[False] | None = None
        for name, prefix in zip(paths, prefixes, strict=True):
            full = asset.root / prefix
            if not os.path.lexists(full):
                if not any(under_any(p, [prefix]) for p in index.entries):
                    raise NotFound(f"{name}: no such file or folder, and nothing staged there")
            elif prefix and not os.path.isdir(full) and prefix not in index:
                ignore = ignore if ignore is not None else load_ignore(asset.root) or False
                if ignore and ignore.match_file(prefix):
                    raise BadInput(f"{name} is excluded by {IGNORE_FILE}",
                                   f"remove the pattern from {IGNORE_FILE} to stage it")
        counted: Callable[[int, int], None] | None = None
        if progress is not None:
            tell = progress

            def counted(files: int, nbytes: int) -> None:
                tell(files, 0, nbytes, 0)  # no total yet: the bar shows the count

        work = scan(asset, index, prefixes, strict=True, links=links, counted=counted)
        result = Staged(skipped=list(work.skipped))
        todo: list[tuple[str, os.stat_result, IndexEntry | None]] = [
            (path, st, None) for path, st in work.new]
        todo.extend((entry.path, st, entry) for entry, st in work.stale)
        lost = _lost(asset, index, prefixes, work)
        todo.extend(lost)
        lost_paths = {path for path, _st, _entry in lost}
        # Removals first: a staged folder that is a file now (or the reverse) is replaced.
        for gone in work.missing:
            index.remove(gone.path)
            result.removed.append(gone.path)
        for path, oid, st, entry in store_files(asset, todo, progress):
            index.add(IndexEntry.from_stat(path, oid, st))
            if entry is None:
                result.new.append(path)
                result.bytes += st.st_size
            elif entry.id != oid or entry.mode != st.st_mode:
                result.modified.append(path)
                result.bytes += st.st_size
            elif path in lost_paths:
                result.restored.append(path)
        if todo or work.missing:
            crash_point("add.before-index")
            index.write()
    return result.sort()


def _lost(asset: Asset, index: Index, prefixes: list[str], work: WorkScan
          ) -> list[tuple[str, os.stat_result, IndexEntry | None]]:
    """The staged files below ``prefixes`` that ``work`` found unchanged but whose objects
    are not in the store, each with its stat and entry (to store again): the index is not
    trusted to name only stored objects (one existence check per staged file)."""
    handled = {entry.path for entry, _st in work.stale}
    handled.update(entry.path for entry in work.missing)
    base = os.path.join(os.fspath(asset.root), "")
    stored = _stored(os.fspath(asset.odb.root), len(index))
    everything = "" in prefixes
    found: list[tuple[str, os.stat_result, IndexEntry | None]] = []
    for path, record in index.records():
        if (stored(record[0].hex()) or path in handled
                or not (everything or under_any(path, prefixes))):
            continue
        try:
            st = os.lstat(base + path)
        except (FileNotFoundError, NotADirectoryError):
            continue
        found.append((path, st, record_entry(path, record)))
    return found


def _stored(store: str, count: int) -> Callable[[str], bool]:
    """A test of whether an object is in the store at ``store``, for ``count`` ids: a set
    of every stored id when the store is not much bigger than that (listing its folders
    costs a third of a check per id, measured on 30,000 objects), else a check per id.
    The size is guessed from the folder of ids starting ``00``."""
    try:
        sample = len(os.listdir(f"{store}/00"))
    except FileNotFoundError:
        sample = 0
    if sample * 256 > 4 * count:
        exists = os.path.exists
        return lambda oid: exists(f"{store}/{oid[:2]}/{oid[2:]}")
    ids: set[str] = set()
    for prefix in (f"{i:02x}" for i in range(256)):
        try:
            ids.update(prefix + name for name in os.listdir(f"{store}/{prefix}"))
        except FileNotFoundError:
            continue
    return ids.__contains__


Stored = tuple[str, str, os.stat_result, IndexEntry | None]


def store_files(asset: Asset,
                todo: Sequence[tuple[str, os.stat_result, IndexEntry | None]],
                progress: Progress | None = None) -> list[Stored]:
    """Store the work-tree files ``todo`` (path from the asset root, stat, old index entry)
    as objects; return (path, id, stat to record, old entry) for each, in no set order.

    With the ``hardlink`` link strategy a plain file becomes its object by a hard link
    (:func:`link_files`); other files, and every file under another strategy, are copied.
    """
    total = len(todo)
    total_bytes = sum(st.st_size for _, st, _ in todo)
    odb = asset.odb
    base = os.path.join(os.fspath(asset.root), "")
    linking = asset.link_strategy() == "hardlink" and isinstance(odb, FileObjectDatabase)
    if progress is not None:
        progress(0, total, 0, total_bytes)  # the totals, before any file is read

    def part(files: Sequence[tuple[str, os.stat_result, IndexEntry | None]],
             report: Progress | None = None) -> tuple[list[Stored], list[Stored]]:
        """Hash the files to link, store the others: (hashed, stored)."""
        hashed: list[Stored] = []
        stored: list[Stored] = []
        count = len(files)
        done_bytes = 0
        count_bytes = sum(st.st_size for _, st, _ in files)
        n = 0

        def window(length: int) -> None:
            # A large file is reported window by window, not only once it is done.
            nonlocal done_bytes
            done_bytes += length
            if report is not None:
                report(n, count, done_bytes, count_bytes)

        for n, (path, st, entry) in enumerate(files):
            if stat.S_ISLNK(st.st_mode):  # a link's content is its target
                target = os.fsencode(os.readlink(base + path))
                stored.append((path, odb.write(target), st, entry))
            elif linking and _linkable(st):
                hashed.append((path, hash_file(base + path, st.st_size,
                                               window if report is not None else None),
                               st, entry))
            else:
                stored.append((path, store_file(odb, base + path, st.st_size,
                                                window if report is not None else None),
                               st, entry))
                crash_point("store.stored")
            if st.st_size < MMAP_THRESHOLD or stat.S_ISLNK(st.st_mode):
                done_bytes += st.st_size  # a large file was counted window by window
            if report is not None and ((n + 1) % REPORT_EVERY == 0 or n + 1 == count
                                       or st.st_size >= MMAP_THRESHOLD):
                report(n + 1, count, done_bytes, count_bytes)
        return hashed, stored

    told = None
    if progress is not None:
        from ama.porcelain.download import syncing

        told = syncing(progress)  # seconds for 30,000 new files: the bar says why
    with odb.batch(told):
        if (total >= PARALLEL_FROM and isinstance(odb, FileObjectDatabase) and can_fork()
                and workers() > 1):
            # Reading, hashing and writing 100,000 small files is as much the interpreter's
            # work as the kernel's: forked children do a share each (their objects join
            # this batch).
            own, *others = shares(total, workers())
            theirs = [odb.in_child(partial(part, todo[a:b])) for a, b in others]
            scaled: Progress | None = None
            if progress is not None:
                def scaled(n: int, count: int, nbytes: int = 0, count_bytes: int = 0) -> None:
                    # The bar follows this share; the others go at the same pace.
                    progress(min(n * total // max(count, 1), total - 1), total,
                             min(nbytes * total_bytes // max(count_bytes, 1), total_bytes),
                             total_bytes)
            hashed, staged = part(todo[own[0]:own[1]], scaled)
            for result in theirs:
                more_hashed, more_staged = result()
                hashed += more_hashed
                staged += more_staged
        else:
            hashed, staged = part(todo, progress)
        if progress is not None:
            progress(total, total, total_bytes, total_bytes)
    if hashed:
        staged.extend(link_files(odb, base, hashed))  # type: ignore[arg-type]
    return staged


def _linkable(st: os.stat_result) -> bool:
    """Whether a file may become its own store object by a hard link: not executable (an
    object is 0444 and cannot carry the bit) and not already sharing its inode with another
    name (making it read-only would change files the user did not name)."""
    return st.st_nlink == 1 and not st.st_mode & 0o111


def link_files(odb: FileObjectDatabase, base: str,
               hashed: list[tuple[str, str, os.stat_result, IndexEntry | None]]
               ) -> list[tuple[str, str, os.stat_result, IndexEntry | None]]:
    """Make each hashed work-tree file its store object by a hard link, as the
    ``hardlink`` link strategy places objects in asset directories: the file becomes
    read-only (0444), shares its inode with the object, and nothing is copied.

    ``hashed`` holds (path below ``base``, id of its bytes, stat before hashing, old index
    entry). The files' bytes are made durable before any object name appears, and the names
    before this returns (two filesystem syncs, as a batch of written objects). A file whose
    stat changed while it was hashed, or that cannot be linked (another filesystem, a link
    limit), is stored by copy instead. A linked file, its stat proving its bytes are the
    ones hashed, is sealed (:func:`~ama.plumbing.odb.seal`) so a checkout links it without
    reading it again. Returns the same tuples with each file's new stat (after the seal).
    """
    os.makedirs(odb.root, exist_ok=True)
    syncfs(odb.root)
    done: list[tuple[str, str, os.stat_result, IndexEntry | None]] = []
    again: list[tuple[str, os.stat_result, IndexEntry | None]] = []
    made: set[str] = set()
    root = os.fspath(odb.root)
    lstat, chmod, link = os.lstat, os.chmod, os.link
    linking = True
    for path, oid, st, entry in hashed:
        full = base + path
        if not linking:
            again.append((path, st, entry))
            continue
        folder = f"{root}/{oid[:2]}"
        if oid[:2] not in made:
            os.makedirs(folder, exist_ok=True)
            made.add(oid[:2])
        target = f"{folder}/{oid[2:]}"
        mode = st.st_mode & 0o7777
        try:
            chmod(full, 0o444)
        except OSError:  # not the user's own file: leave it be and copy it
            again.append((path, st, entry))
            continue
        try:
            link(full, target)
        except FileExistsError:
            chmod(full, mode)  # already stored: the file stays the user's own
            now = lstat(full)
            if (now.st_mtime_ns, now.st_size, now.st_ino) != (st.st_mtime_ns, st.st_size,
                                                              st.st_ino):
                again.append((path, now, entry))
            else:
                done.append((path, oid, now, entry))
            continue
        except OSError:
            chmod(full, mode)  # another filesystem, or a link limit: copy from here on
            linking = False
            again.append((path, st, entry))
            continue
        now = lstat(full)
        if (now.st_mtime_ns, now.st_size, now.st_ino) != (st.st_mtime_ns, st.st_size,
                                                          st.st_ino):
            # Written to while it was hashed: its bytes may not be ``oid``'s.
            os.unlink(target)
            chmod(full, mode)
            again.append((path, lstat(full), entry))
            continue
        if seal(full, oid):
            now = lstat(full)  # the index records the sealed mtime
        done.append((path, oid, now, entry))
    syncfs(odb.root)
    if again:
        with odb.batch():
            for path, st, entry in again:
                done.append((path, store_file(odb, base + path, st.st_size), st, entry))
    return done


def store_file(odb: ObjectDatabase, path: str, size: int,
               hashed: Callable[[int], None] | None = None) -> str:
    """Store the file at ``path`` (``size`` bytes by its stat) and return its id.

    A small file is read with one ``read`` call on a raw descriptor: for 100,000 small
    files the buffered reader's extra system calls cost more than the hashing.
    """
    if size >= MMAP_THRESHOLD:
        if hashed is not None and isinstance(odb, FileObjectDatabase):
            return odb.write_file(path, size, hashed)
        return odb.write_file(path, size)
    # A file that grew after it was listed is stored whole; its new stat is newer than the
    # one recorded, so the next status reads it again.
    return odb.write(read_small(path, size))
