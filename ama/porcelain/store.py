"""``ama store info|set|verify|gc|prune|clear``: the machine-wide asset store (docs/design.md §3).

What ``gc`` keeps (its roots): for every registered asset directory that still exists, every
object its index names and everything reachable from the manifest its HEAD names (history
through parents, as far as it is in the store); everything reachable from the store's refs;
every manifest id cached under ``projects/`` (versions known locally); and every id listed in
``$AMA_HOME/uploads/*`` (one id per line: the objects an unfinished upload still needs; the
upload command writes such a file before it starts and removes it when the version is
committed). An asset directory whose index or HEAD cannot be read stops gc before anything
is deleted.

Objects in flight are safe two ways, as git makes them. Every command that writes objects
or names them holds the store's lock shared while it runs, and gc holds it exclusively
(:func:`~ama.plumbing.lock.store_exclusive`): it waits for those commands to finish (up to
``wait`` seconds, then stops naming them), and they wait for it. And objects younger than
``grace`` seconds are kept, by the later of their mtime and ctime: a sealed object's mtime
is when it was sealed (or, for a file hard-linked from elsewhere, long before), while
linking or renaming it into the store sets its ctime. Temp files of the store older than
``grace``, and what downloads killed half-way left in ``$AMA_HOME/incoming`` (partial files
a re-run goes on from) once a week old, are removed too.
"""

from __future__ import annotations

import contextlib
import os
import random
import shutil
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ama.plumbing.crash import crash_point
from ama.plumbing.errors import AmaError, BadInput
from ama.plumbing.graph import read_manifest, read_tree
from ama.plumbing.hashing import hash_file, is_id
from ama.plumbing.index import Index
from ama.plumbing.link import LinkFailed, reflink
from ama.plumbing.lock import store_exclusive
from ama.plumbing.objects import TREE_HEADER, TREE_HEADERS, InvalidObject
from ama.plumbing.odb import CorruptObject, FileObjectDatabase, MissingObject
from ama.plumbing.refs import SYMREF_PREFIX
from ama.plumbing.store import Store
from ama.porcelain.asset import (
    Head,
    is_asset_dir,
    registered,
    registry_locked,
    write_registry,
)
from ama.porcelain.config import Config

# (objects done, objects total, bytes done, bytes total)
Progress = Callable[[int, int, int, int], None]
UPLOADS_DIR = "uploads"
DEFAULT_GRACE = 3600
# A download killed half-way keeps its partial file this long for a re-run to go on from.
INCOMING_GRACE = 7 * 86400
INCOMING = "incoming"
DEFAULT_WAIT = 60.0


class UnreadableRoot(AmaError):
    """An asset directory gc must protect but cannot read: nothing is deleted."""


# -- info ------------------------------------------------------------------------------------


def reflink_supported(folder: Path) -> bool:
    """Try FICLONE between two temp files in ``folder``: whether reflinks work there."""
    folder.mkdir(parents=True, exist_ok=True)
    src = folder / f".reflink-probe-{os.getpid()}"
    dest = folder / f".reflink-probe-{os.getpid()}.clone"
    try:
        src.write_bytes(b"ama")
        reflink(src, dest)
        return True
    except (LinkFailed, OSError):
        return False
    finally:
        for p in (src, dest):
            with contextlib.suppress(FileNotFoundError):
                p.unlink()


def effective_strategy(configured: str, objects: Path) -> str:
    """The strategy files are placed with: ``auto`` becomes reflink or copy."""
    if configured == "auto":
        return "reflink" if reflink_supported(objects) else "copy"
    return configured


@dataclass
class StoreInfo:
    path: str
    objects_path: str
    objects: int
    bytes: int
    link_configured: str
    link_effective: str
    asset_dirs: int
    missing_asset_dirs: int

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


def info(store: Store, config: Config) -> StoreInfo:
    odb = store.objects
    count = size = 0
    for oid in odb:
        count += 1
        size += os.lstat(odb.path(oid)).st_size
    roots = registered(store.home)
    gone = sum(1 for r in roots if not is_asset_dir(r))
    configured = config.get("link.strategy")
    return StoreInfo(str(store.home), str(odb.root.resolve()), count, size, configured,
                     effective_strategy(configured, odb.root), len(roots) - gone, gone)


# -- set: move the objects --------------------------------------------------------------------


def set_path(store: Store, target: str | os.PathLike[str]) -> Path:
    """Move the store's objects to ``target`` (absent or an empty folder) and leave
    ``$AMA_HOME/objects`` as a symbolic link to it; return the new location.

    Settings, credentials and the registry stay in ``$AMA_HOME``. Raises
    :class:`BadInput` when ``target`` holds files or is inside the current objects.
    """
    dest = Path(target).absolute()
    objects = store.home / "objects"
    current = objects.resolve() if objects.exists() else None
    if current is not None and dest.resolve() == current:
        return dest
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise BadInput(f"{dest} is not an empty folder", "name a new or empty folder")
    if current is not None and str(dest.resolve()).startswith(str(current) + os.sep):
        raise BadInput(f"{dest} is inside the store's objects folder {current}")
    dest.parent.mkdir(parents=True, exist_ok=True)
    if current is None:
        dest.mkdir(exist_ok=True)
    else:
        if dest.exists():
            dest.rmdir()
        # A rename when on the same filesystem, else a copy then a delete.
        shutil.move(str(current), str(dest))
    if objects.is_symlink() or objects.exists():
        if objects.is_symlink():
            objects.unlink()
    store.home.mkdir(parents=True, exist_ok=True)
    temp = store.home / f"objects.{os.getpid()}.tmp"
    os.symlink(dest, temp)
    os.replace(temp, objects)
    return dest


# -- verify ----------------------------------------------------------------------------------


@dataclass
class Verified:
    checked: int = 0
    total: int = 0
    corrupt: list[dict[str, str]] = field(default_factory=list)
    repaired: list[str] = field(default_factory=list)  # corrupt ids fetched again (--repair)

    def to_json(self) -> dict[str, Any]:
        return {"checked": self.checked, "total": self.total, "corrupt": self.corrupt,
                "repaired": self.repaired}


def verify(store: Store, sample: float = 100.0, progress: Progress | None = None,
           rng: random.Random | None = None) -> Verified:
    """Re-hash every object (or a random ``sample`` percent of them); return the corrupt ones."""
    if not 0 < sample <= 100:
        raise BadInput(f"--sample {sample} is not a percentage above 0 and at most 100")
    odb = store.objects
    ids = list(odb)
    chosen = ids
    if sample < 100:
        k = max(1, round(len(ids) * sample / 100)) if ids else 0
        chosen = (rng or random.Random()).sample(ids, k)
    result = Verified(total=len(ids))
    meter = _VerifyMeter(odb, chosen, progress)
    for n, oid in enumerate(chosen, 1):
        path = odb.path(oid)
        try:
            actual = hash_file(path, None, meter.hashed)
        except OSError as e:
            result.corrupt.append({"id": oid, "path": str(path), "problem": str(e.strerror)})
        else:
            if actual != oid:
                result.corrupt.append({"id": oid, "path": str(path),
                                       "problem": f"its bytes hash to {actual}"})
        result.checked = n
        meter.checked(n)
    return result


class _VerifyMeter:
    """The objects and bytes ``verify`` has re-hashed, told to ``progress``: the totals
    first (one stat per object, a small part of hashing it), then after each window of a
    large object and every MiB or so of small ones."""

    def __init__(self, odb: FileObjectDatabase, chosen: list[str],
                 progress: Progress | None) -> None:
        self.progress = progress
        self.count = len(chosen)
        self.sizes: list[int] = []
        self.done = 0
        self.bytes = 0  # of the objects done
        self.window = 0  # of the object in hand
        self.told = 0
        self.total = 0
        if progress is None:
            return
        for oid in chosen:
            try:
                self.sizes.append(os.stat(odb.path(oid)).st_size)
            except OSError:
                self.sizes.append(0)
        self.total = sum(self.sizes)
        progress(0, self.count, 0, self.total)

    def hashed(self, n: int) -> None:
        if self.progress is not None:
            self.window += n
            self.progress(self.done, self.count, self.bytes + self.window, self.total)

    def checked(self, n: int) -> None:
        if self.progress is None:
            return
        self.done = n
        self.bytes += self.sizes[n - 1]
        self.window = 0
        if n == self.count or self.bytes - self.told >= 1 << 20 or n % 1000 == 0:
            self.told = self.bytes
            self.progress(n, self.count, self.bytes, self.total)


def repair(store: Store, ids: Iterable[str], config: Config) -> list[str]:
    """Replace the corrupt objects ``ids`` with good copies from a remote; return the ids
    replaced (each copy re-hashed before it takes the id's name).

    The remotes tried, in order, are those of the asset directories registered on this
    machine (their remote and project), then the default remote's active project; one that
    cannot be reached, or does not hold an object, is passed over. An object no remote has
    a good copy of keeps its corrupt file and is left out.
    """
    from ama.porcelain.download import refetch
    from ama.porcelain.remotes import open_remote

    todo: dict[str, int] = {}
    for oid in ids:
        try:
            todo[oid] = os.stat(store.objects.path(oid)).st_size
        except FileNotFoundError:
            todo[oid] = 0
    places: dict[tuple[str | None, str | None], None] = {}
    for root in registered(store.home):
        with contextlib.suppress(AmaError, OSError):
            head = Head.read(root / ".ama")
            places[(head.remote, head.project)] = None
    places[(None, None)] = None
    repaired: list[str] = []
    for remote, project in places:
        if not todo:
            break
        try:
            transport, info = open_remote(config, remote, project)
            done = refetch(transport, info.project, store.objects, list(todo.items()),
                           int(config.get("transfer.parallelism")))
        except AmaError:
            continue
        for oid in done:
            del todo[oid]
            repaired.append(oid)
    return repaired


# -- gc, clear, prune ------------------------------------------------------------------------


@dataclass
class Collected:
    """Objects deleted (or that would be, with ``dry_run``) and the bytes they held."""

    deleted: list[str] = field(default_factory=list)
    bytes: int = 0
    kept: int = 0
    dry_run: bool = False

    def to_json(self) -> dict[str, Any]:
        return {"deleted": self.deleted, "bytes": self.bytes, "kept": self.kept,
                "dry_run": self.dry_run}


def _reach(odb: FileObjectDatabase, start: Iterable[str], keep: set[str],
           history: bool = True) -> None:
    """Add to ``keep`` everything reachable from ``start`` that is in the store."""
    stack = list(start)
    while stack:
        oid = stack.pop()
        if oid in keep:
            continue
        keep.add(oid)
        path = odb.path(oid)
        try:
            with open(path, "rb") as f:
                head = f.read(len(TREE_HEADER))
        except FileNotFoundError:
            continue
        try:
            if head in TREE_HEADERS:
                stack.extend(e.id for e in read_tree(odb, oid).entries)
            elif head.startswith(b"{"):
                manifest = read_manifest(odb, oid)
                stack.append(manifest.tree)
                if history:
                    stack.extend(manifest.parents)
        except (InvalidObject, CorruptObject, MissingObject):
            continue  # a blob that looks like JSON, or damage that fsck reports


def asset_dir_roots(store: Store, committed_only: bool = False) -> tuple[set[str], set[str]]:
    """Return (ids the registered asset directories' indexes name, their HEAD manifests).

    Raises :class:`UnreadableRoot` when one cannot be read."""
    staged: set[str] = set()
    heads: set[str] = set()
    for root in registered(store.home):
        if not is_asset_dir(root):
            continue
        try:
            head = Head.read(root / ".ama")
            index = Index.read(root / ".ama" / "index")
        except AmaError as e:
            raise UnreadableRoot(
                f"cannot tell which objects {root} needs: {e.message}",
                "repair that asset directory, or remove it and run 'ama store prune'") from None
        staged.update(e.id for e in index.entries.values())
        # A staged proxy's descriptor: no tree names it until it is uploaded.
        staged.update(descriptor for _content, descriptor in index.proxies.values())
        if head.manifest:
            heads.add(head.manifest)
    return staged, heads


def upload_roots(home: Path) -> set[str]:
    """Ids listed in ``$AMA_HOME/uploads/*``: objects unfinished uploads still need."""
    ids: set[str] = set()
    folder = home / UPLOADS_DIR
    if folder.is_dir():
        for p in folder.iterdir():
            with contextlib.suppress(OSError, UnicodeDecodeError):
                ids.update(w for w in p.read_text(encoding="utf-8").split() if is_id(w))
    return ids


def cached_roots(home: Path) -> set[str]:
    """Manifest ids cached under ``projects/`` (versions known locally)."""
    ids: set[str] = set()
    folder = home / "projects"
    if folder.is_dir():
        for dirpath, _dirs, files in os.walk(folder):
            for name in files:
                if name.endswith(".json"):
                    continue
                with contextlib.suppress(OSError, UnicodeDecodeError):
                    text = Path(dirpath, name).read_text(encoding="utf-8").strip()
                    if is_id(text):
                        ids.add(text)
    return ids


def _ref_roots(store: Store) -> set[str]:
    return {v for _n, v in store.refs.iter() if not v.startswith(SYMREF_PREFIX) and is_id(v)}


def _sweep(store: Store, keep: set[str], dry_run: bool, grace: float,
           now: Callable[[], float]) -> Collected:
    odb = store.objects
    result = Collected(dry_run=dry_run)
    cutoff = now() - grace
    for oid in _all_ids(odb):
        if oid in keep:
            result.kept += 1
            continue
        path = odb.path(oid)
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            continue
        if max(st.st_mtime, st.st_ctime) > cutoff:
            result.kept += 1
            continue
        result.deleted.append(oid)
        result.bytes += st.st_size
        if not dry_run:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
            crash_point("gc.deleted")
    if not dry_run:
        for temp in odb.temp_files():
            with contextlib.suppress(OSError):
                if temp.stat().st_mtime <= cutoff:
                    temp.unlink()
        # What downloads killed half-way left in incoming/ (no download runs now: each
        # holds the store's lock): a partial file a re-run goes on from, kept a while.
        stale = now() - max(grace, INCOMING_GRACE)
        with contextlib.suppress(FileNotFoundError):
            for left in os.scandir(store.home / INCOMING):
                with contextlib.suppress(OSError):
                    if left.is_file(follow_symlinks=False) and left.stat().st_mtime <= stale:
                        os.unlink(left.path)
    result.deleted.sort()
    return result


def _all_ids(odb: FileObjectDatabase) -> Iterator[str]:
    return iter(sorted(odb))


def gc(store: Store, dry_run: bool = False, grace: float = DEFAULT_GRACE,
       now: Callable[[], float] = time.time, wait: float = DEFAULT_WAIT) -> Collected:
    """Delete every object no root needs (see the module docstring); return what went.

    Raises :class:`~ama.plumbing.lock.StoreBusy` when other commands still use the store
    after ``wait`` seconds, and :class:`UnreadableRoot`."""
    with store_exclusive(store.objects.root, wait):
        staged, heads = asset_dir_roots(store)
        keep: set[str] = set(staged)
        keep.update(upload_roots(store.home))
        _reach(store.objects, heads | _ref_roots(store) | cached_roots(store.home), keep)
        return _sweep(store, keep, dry_run, grace, now)


def clear(store: Store, dry_run: bool = False, now: Callable[[], float] = time.time,
          wait: float = DEFAULT_WAIT) -> Collected:
    """Empty the store of everything that can be fetched again: keep only what registered
    asset directories hold now (their indexes, their HEAD version's manifest and tree) and
    what unfinished uploads need; drop history, refs' objects and cached remote metadata.
    Raises as :func:`gc`."""
    with store_exclusive(store.objects.root, wait):
        return _clear(store, dry_run, now)


def _clear(store: Store, dry_run: bool, now: Callable[[], float]) -> Collected:
    staged, heads = asset_dir_roots(store)
    keep: set[str] = set(staged)
    keep.update(upload_roots(store.home))
    _reach(store.objects, heads, keep, history=False)
    result = _sweep(store, keep, dry_run, 0, now)
    if not dry_run:
        projects = store.home / "projects"
        # Classes stay: they are what 'ama init' checks against until they can be fetched.
        if projects.is_dir():
            for dirpath, _dirs, files in os.walk(projects):
                if Path(dirpath).name == "classes":
                    continue
                for name in files:
                    with contextlib.suppress(OSError):
                        os.unlink(os.path.join(dirpath, name))
    return result


@dataclass
class Pruned:
    dropped: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"dropped": self.dropped, "kept": self.kept}


def prune(store: Store, dry_run: bool = False) -> Pruned:
    """Drop the registrations of asset directories that no longer exist."""
    result = Pruned()
    # Looked at before the lock is taken: a folder on a mount that hangs holds up only
    # this command, not every registration waiting for the lock.
    gone = {root for root in registered(store.home) if not is_asset_dir(root)}
    with registry_locked(store.home):  # an asset directory registered meanwhile stays
        keep: list[Path] = []
        for root in registered(store.home):
            if root in gone:
                result.dropped.append(str(root))
            else:
                keep.append(root)
                result.kept.append(str(root))
        if result.dropped and not dry_run:
            write_registry(store.home, keep)
    return result
