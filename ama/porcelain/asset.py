"""The state of an asset directory: its HEAD (:mod:`ama.plumbing.head`), its index and the
version it came from, and the registry of asset directories on this machine
(``$AMA_HOME/worktrees``).

The registry is a text file, one absolute path per line; it lists the roots that
``ama store gc`` must keep objects for, and ``ama store prune`` drops the lines of
directories that no longer exist.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import stat
from collections.abc import Callable, Collection, Iterator, Mapping
from pathlib import Path
from typing import NamedTuple

from ama.plumbing.durable import is_temp, write_all, write_atomic
from ama.plumbing.errors import BadInput
from ama.plumbing.graph import read_manifest, read_tree
from ama.plumbing.head import (  # noqa: F401 - re-exported for the porcelain
    HEAD_FORMAT,
    TEMP_PREFIX,
    TEMP_VERSION,
    CorruptHead,
    Head,
)
from ama.plumbing.index import (  # noqa: F401 - IndexLocked re-exported for the porcelain
    Index,
    IndexEntry,
    IndexLocked,
    locked,
    stat_differs,
)
from ama.plumbing.objects import (
    TREE_HEADERS,
    InvalidObject,
    TreeEntry,
    link_problem,
    name_problem,
)
from ama.plumbing.odb import FileObjectDatabase, MissingObject, ObjectDatabase
from ama.plumbing.store import Store, home_dir
from ama.plumbing.worktree import (
    META_DIR,
    AssetDir,
    UnsupportedFiles,
    file_problem,
    links_into,
    load_ignore,
    show_path,
)
from ama.porcelain.config import Config

REGISTRY_FILE = "worktrees"


class Asset:
    """An opened asset directory with the store and settings it works with."""

    def __init__(self, asset_dir: AssetDir, store: Store, config: Config) -> None:
        self.dir = asset_dir
        self.store = store
        self.config = config
        self.head = Head.read(asset_dir.meta)

    @classmethod
    def open(cls, start: str | os.PathLike[str] | None = None,
             environ: Mapping[str, str] | None = None) -> Asset:
        """Open the asset directory holding ``start`` (default: the working directory).

        Raises :class:`NotAnAssetDir` or :class:`CorruptHead`.
        """
        environ = os.environ if environ is None else environ
        # AMA_INDEX_FILE is for plumbing scripts building trees anywhere; the porcelain
        # always works on a real asset directory.
        scrubbed = {k: v for k, v in environ.items() if k != "AMA_INDEX_FILE"}
        asset_dir = AssetDir.find(start, scrubbed)
        return cls(asset_dir, Store(home_dir(environ)), Config(home_dir(environ), environ))

    @property
    def root(self) -> Path:
        return self.dir.root

    @property
    def odb(self) -> FileObjectDatabase:
        return self.store.objects

    def index(self) -> Index:
        return Index.read(self.dir.index_path)

    def link_strategy(self) -> str:
        return self.config.get("link.strategy")

    def set_head(self, head: Head) -> None:
        head.write(self.dir.meta)
        self.head = head

    def committed(self) -> dict[str, TreeEntry]:
        """Return path → entry for every file of the version HEAD names (empty for a temp
        asset). Raises :class:`MissingObject` naming the command that fetches it."""
        tree = self.committed_tree()
        return {} if tree is None else flatten_tree(self.odb, tree)

    def committed_ids(self) -> dict[str, tuple[str, str]]:
        """Return path → (type, id) for every file of the version HEAD names: what
        :meth:`committed` says, without a validated entry object per file (a tenth of the
        time on 100,000 files, for ``ama status``). Raises as :meth:`committed`, and
        :class:`~ama.plumbing.objects.InvalidObject` for a tree that does not parse."""
        tree = self.committed_tree()
        return {} if tree is None else flatten_tree_ids(self.odb, tree)

    def committed_tree(self) -> str | None:
        """Return the id of the root tree of the version HEAD names (None for a temp
        asset). Raises :class:`MissingObject` naming the command that fetches it."""
        if self.head.manifest is None:
            return None
        try:
            return read_manifest(self.odb, self.head.manifest).tree
        except MissingObject:
            raise MissingObject(self.head.manifest,
                                f"the asset store (the manifest of {self.head.name} "
                                f"{self.head.version})") from None


def flatten_tree(odb: ObjectDatabase, tree: str, prefix: str = "") -> dict[str, TreeEntry]:
    """Return path → entry for every file below the tree ``tree``."""
    files: dict[str, TreeEntry] = {}
    stack = [(tree, prefix)]
    while stack:
        oid, where = stack.pop()
        for entry in read_tree(odb, oid).entries:
            if entry.type == "tree":
                stack.append((entry.id, f"{where}{entry.name}/"))
            else:
                files[where + entry.name] = entry
    return files


def flatten_tree_ids(odb: ObjectDatabase, tree: str) -> dict[str, tuple[str, str]]:
    """Return path → (type, id) for every file below the tree ``tree``.

    Each tree's bytes are read through the store (so re-hashed against their id) and split
    by hand; a tree that does not split cleanly is handed to
    :func:`~ama.plumbing.graph.read_tree`, whose error names the broken rule.
    """
    files: dict[str, tuple[str, str]] = {}
    stack = [(tree, "")]
    headers = TREE_HEADERS
    while stack:
        oid, where = stack.pop()
        data = odb.get(oid)
        try:
            if not data.startswith(headers):
                raise ValueError
            lines = data[len(headers[0]):].decode("utf-8").split("\n")
            if lines.pop() != "":
                raise ValueError
            links = proxies = False
            for line in lines:
                head, _tab, name = line.partition("\t")
                kind, entry_id, _size = head.split(" ")
                if kind == "tree":
                    stack.append((entry_id, f"{where}{name}/"))
                else:
                    files[where + name] = (kind, entry_id)
                    links = links or kind == "link"
                    proxies = proxies or kind == "proxy"
            # "ama-tree 3" is for proxies only, "ama-tree 2" for links without proxies.
            if not data.startswith(headers[2] if proxies else headers[1] if links
                                   else headers[0]):
                raise ValueError
        except ValueError:  # UnicodeDecodeError too
            read_tree(odb, oid)
            raise InvalidObject(f"object {oid} is not a tree") from None
    return files


# -- the registry of asset directories -------------------------------------------------------


def registry_path(home: Path) -> Path:
    return home / REGISTRY_FILE


def registered(home: Path) -> list[Path]:
    """Return the asset directories registered on this machine, in registration order."""
    try:
        # As the file system names them (a path need not be UTF-8), and a line cut short
        # by a full disk or a kill is one bad path, not an error of every command.
        lines = os.fsdecode(registry_path(home).read_bytes()).split("\n")
    except FileNotFoundError:
        return []
    seen: dict[str, None] = {}
    for line in lines:
        if line.strip():
            seen.setdefault(line, None)
    return [Path(p) for p in seen]


@contextlib.contextmanager
def registry_locked(home: Path) -> Iterator[None]:
    """Hold the registry's lock, waiting for it: an ``flock`` on the folder ``home`` (read
    access is enough; the kernel drops it with its holder). A registration and a rewrite
    of the registry (``ama store prune``) so never run at once, and neither loses the
    other's line. Not re-entrant: hold it for a read and a write, never around a call that
    takes it."""
    home.mkdir(parents=True, exist_ok=True)
    fd = os.open(home, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def register(home: Path, root: Path) -> None:
    """Add ``root`` to the registry: one line appended, under :func:`registry_locked`
    (nothing is written when it is registered already)."""
    text = str(root)
    if "\n" in text:
        raise BadInput(f"cannot register {text!r}: the path holds a newline")
    if root in registered(home):
        return
    with registry_locked(home):
        if root not in registered(home):
            _append(home, text)


def _append(home: Path, text: str) -> None:
    fd = os.open(registry_path(home), os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        line = os.fsencode(text) + b"\n"
        end = os.fstat(fd).st_size
        if end and os.pread(fd, 1, end - 1) != b"\n":
            line = b"\n" + line  # after a line cut short: never joined to it
        write_all(fd, line)
    finally:
        os.close(fd)


def write_registry(home: Path, roots: list[Path]) -> None:
    """Replace the registry with ``roots`` atomically (under :func:`registry_locked`, held
    since it was read)."""
    write_atomic(registry_path(home), b"".join(os.fsencode(r) + b"\n" for r in roots))


def is_asset_dir(path: Path) -> bool:
    return (path / META_DIR / "HEAD").is_file()


# -- locking the index ------------------------------------------------------------------------


@contextlib.contextmanager
def locked_index(asset: Asset, index: Index | None = None) -> Iterator[Index]:
    """Hold the index's lock and yield the index read under it (or ``index``, the one the
    caller has just written); see :func:`ama.plumbing.index.locked`.

    Commands that change the index take it, so two of them never overwrite each other's
    staging. Raises :class:`IndexLocked` naming the holder; a holder that died is broken.
    """
    with locked(asset.dir.index_path, index) as held:
        yield held


# -- comparing the work tree with the index ---------------------------------------------------


class WorkScan(NamedTuple):
    """What a walk of the work tree found, compared with the index by stat only.

    ``new``: files not staged; ``stale``: staged files whose stat differs (or is racy), so
    their content may differ; ``missing``: staged files with no regular file left;
    ``problems``: paths that cannot be content (special files, bad names, links leaving
    the asset); ``skipped``: symbolic links left out (``links="skip"``).
    """

    new: list[tuple[str, os.stat_result]]
    stale: list[tuple[IndexEntry, os.stat_result]]
    missing: list[IndexEntry]
    problems: list[tuple[str, str]]
    skipped: tuple[str, ...] = ()


def under_any(path: str, prefixes: list[str]) -> bool:
    """Whether ``path`` is one of ``prefixes`` or below one (``""`` is the whole tree)."""
    for p in prefixes:
        if not p or path == p or path.startswith(p + "/"):
            return True
    return False


def scan(asset: Asset, index: Index, prefixes: list[str] | None = None,
         strict: bool = False, links: str = "record",
         counted: Callable[[int, int], None] | None = None) -> WorkScan:
    """Walk the work tree below ``prefixes`` (default: all of it) and compare with ``index``.

    Staged files are checked by one ``lstat`` each, in the index's order, as
    :func:`ama.plumbing.index.changes` does, from the index's records (no entry is built
    for a file whose stat matches); folders are listed (while a forked child checks part of
    the stats, see :func:`~ama.plumbing.index.stat_differs`) only to find files the index
    lacks, which alone get the checks of :func:`ama.plumbing.worktree.walk` (their names,
    their type, ``.amaignore``). With
    ``strict`` a path that cannot be content raises
    :class:`~ama.plumbing.worktree.UnsupportedFiles` (before anything is changed);
    otherwise it is reported in ``problems``.

    A symbolic link (other than one into the store, placed by the symlink strategy) is
    content when :func:`~ama.plumbing.objects.link_problem` accepts its target; one that
    leaves the asset is a problem, unless ``links`` is ``follow`` (the file it points at
    is content instead) or ``skip`` (every link is left out, listed in ``skipped``).

    ``counted``, if given, hears ``(files, bytes)`` of the new files found so far, every
    few hundred names listed, always from this process (the forked children only check
    stats): a walk of 30,000 files takes seconds, and a bar can show it going.
    """
    prefixes = [""] if prefixes is None else prefixes
    if "" in prefixes:
        prefixes = [""]
    root = os.fspath(asset.root)
    base = os.path.join(root, "")
    new: list[tuple[str, os.stat_result]] = []
    problems: list[tuple[str, str]] = []
    staged = index.paths()
    ignore = load_ignore(asset.root)
    link_root = asset.odb.root
    policy = _LinkPolicy(links)
    tell: Callable[[], None] | None = None
    if counted is not None:
        summed = 0  # new[:summed] are in found_bytes
        found_bytes = 0

        def tell() -> None:
            nonlocal summed, found_bytes
            for i in range(summed, len(new)):
                found_bytes += new[i][1].st_size
            summed = len(new)
            counted(summed, found_bytes)

    def walk(prefix: str, tracked: Collection[str]) -> None:
        full = base + prefix if prefix else root
        if prefix and not os.path.lexists(full):
            return
        if prefix and (os.path.islink(full) or not os.path.isdir(full)):
            if prefix not in tracked:
                _untracked_file(asset.root, prefix, ignore, link_root, new, problems,
                                policy=policy)
            return
        _untracked(root, prefix, tracked, ignore, link_root, new, problems, policy, tell)

    def walk_all() -> None:
        for prefix in prefixes:
            walk(prefix, staged)

    differ = stat_differs(index, root, None if prefixes == [""] else
                          (lambda path: under_any(path, prefixes)),
                          walk_all, store=link_root)
    stale: list[tuple[IndexEntry, os.stat_result]] = []
    missing: list[IndexEntry] = []
    folders: list[str] = []  # staged files that are folders now: what they hold is new
    for entry, st in differ:
        if st is not None and stat.S_ISLNK(st.st_mode):  # a link: its own, or a file's now
            content = policy.content(entry.path, base + entry.path, st, problems)
            if content is not None:
                stale.append((entry, content))
        elif st is None or not stat.S_ISREG(st.st_mode):
            missing.append(entry)
            if st is not None and stat.S_ISDIR(st.st_mode):
                folders.append(entry.path)
        else:
            stale.append((entry, st))
    if folders:
        tracked = set(staged) - set(folders)
        for folder in folders:
            walk(folder, tracked)
    if problems:
        problems.sort()
        if strict:
            raise UnsupportedFiles(problems)
    return WorkScan(new, stale, missing, problems, tuple(sorted(policy.skipped)))


# How many names a walk lists between two counts told (see :func:`scan`): a few
# milliseconds of work, so that a bar drawing ten frames a second always has a new count.
TELL_EVERY = 256


class _LinkPolicy:
    """What a scan makes of a symbolic link in the work tree (see :func:`scan`)."""

    def __init__(self, links: str) -> None:
        if links not in ("record", "follow", "skip"):
            raise ValueError(f"unknown link policy {links!r}")
        self.links = links
        self.skipped: list[str] = []

    def content(self, path: str, full: str, st: os.stat_result,
                problems: list[tuple[str, str]]) -> os.stat_result | None:
        """The stat to stage the link ``path`` (lstat ``st``) with: its own (a link), or
        its target's (followed); None when it is skipped or is a problem."""
        if self.links == "skip":
            self.skipped.append(path)
            return None
        why = link_problem(path, os.readlink(full))
        if why is None:
            return st
        if self.links == "follow":
            try:
                target = os.stat(full)
            except OSError:
                target = None
            if target is not None and stat.S_ISREG(target.st_mode):
                return target
            problems.append((show_path(path), f"is a symbolic link: {why}, and does not "
                             "point at a file that --follow-symlinks could store"))
            return None
        problems.append((show_path(path), f"is a symbolic link: {why}; pass "
                         "--follow-symlinks to store the file it points at, or "
                         "--skip-symlinks to leave links out"))
        return None


def _untracked(root: str, prefix: str, tracked: Collection[str],
               ignore: object, link_root: Path, new: list[tuple[str, os.stat_result]],
               problems: list[tuple[str, str]], policy: _LinkPolicy,
               tell: Callable[[], None] | None = None) -> None:
    """Find the files below ``prefix`` that are not ``tracked`` (see :func:`scan`).

    Each folder is listed by name only and its staged files are dropped in one pass; only
    the names left (new files and subfolders) cost a ``lstat`` each. ``tell`` is called
    every :data:`TELL_EVERY` names and after each folder.
    """
    stack = [(os.path.join(root, prefix) if prefix else root, prefix + "/" if prefix else "")]
    while stack:
        folder, rel = stack.pop()
        try:
            names = os.listdir(folder)
        except PermissionError:
            problems.append((rel.rstrip("/") or ".", "cannot be read (permission denied)"))
            continue
        except (FileNotFoundError, NotADirectoryError):
            continue  # removed while the walk ran
        for seen, name in enumerate([n for n in names if rel + n not in tracked], 1):
            if tell is not None and not seen % TELL_EVERY:
                tell()  # a folder of 30,000 files takes a second or two
            path = rel + name
            full = f"{folder}/{name}"
            try:
                st = os.lstat(full)
            except FileNotFoundError:
                continue
            if stat.S_ISDIR(st.st_mode):
                if not rel and name == META_DIR:
                    continue
                if ignore is not None and ignore.match_file(path + "/"):  # type: ignore[attr-defined]
                    continue
                problem = name_problem(name)
                if problem:
                    problems.append((show_path(path), problem))
                    continue
                stack.append((full, path + "/"))
                continue
            _untracked_file(root, path, ignore, link_root, new, problems, full, st, policy)
        if tell is not None:
            tell()


def _untracked_file(root: str | Path, path: str, ignore: object, link_root: Path,
                    new: list[tuple[str, os.stat_result]],
                    problems: list[tuple[str, str]], full: str | None = None,
                    st: os.stat_result | None = None,
                    policy: _LinkPolicy | None = None) -> None:
    """Sort one file the index lacks into ``new`` or ``problems``; ``full`` is its path
    and ``st`` its lstat when the caller has them, saving a join and a system call."""
    name = path.rpartition("/")[2]
    if is_temp(name):  # left by a killed checkout: never content (the next one removes it)
        return
    if ignore is not None and ignore.match_file(path):  # type: ignore[attr-defined]
        return
    problem = name_problem(name)
    if problem:
        problems.append((show_path(path), problem))
        return
    if full is None:
        full = os.path.join(root, path)
    if st is None:
        st = os.lstat(full)
    if stat.S_ISREG(st.st_mode):
        new.append((path, st))
    elif stat.S_ISLNK(st.st_mode) and links_into(full, link_root):
        new.append((path, os.stat(full)))
    elif stat.S_ISLNK(st.st_mode) and policy is not None:
        content = policy.content(path, full, st, problems)
        if content is not None:
            new.append((path, content))
    else:
        problems.append((show_path(path), file_problem(st.st_mode) or "is not a regular file"))
