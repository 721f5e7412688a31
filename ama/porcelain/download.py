"""``ama download [PATH|GLOB…]``: file bytes of the version an asset directory holds, and
the receiving side of every transfer from a remote (clone, fetch, switch use it).

Objects are negotiated in one batch call per 50,000 ids, received in parallel
(``transfer.parallelism``) into temp files under ``$AMA_HOME/incoming``, re-hashed as they
arrive (the transport refuses bytes that do not match their id) and again as they are moved
into the store (moved, not copied: a large object costs no second copy). A download that
is killed leaves only whole objects in the store, so running it again fetches just the
rest.
"""

from __future__ import annotations

import contextlib
import fnmatch
import os
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, as_completed, wait
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ama.plumbing import pack, wire
from ama.plumbing.checkout import checkout
from ama.plumbing.crash import crash_point
from ama.plumbing.errors import NotFound
from ama.plumbing.graph import read_manifest, tree_entries
from ama.plumbing.hashing import hash_bytes, is_id
from ama.plumbing.index import Index, IndexEntry, mode_of, path_key
from ama.plumbing.lock import Locked
from ama.plumbing.objects import check_paths
from ama.plumbing.odb import CorruptObject, FileObjectDatabase
from ama.plumbing.pack import Member
from ama.plumbing.ranged import fetch_ranged
from ama.plumbing.refs import pid_alive
from ama.plumbing.transport import (
    MAX_UNSIZED,
    LocalTransfer,
    RemoteError,
    Transport,
    Unreachable,
)
from ama.porcelain.asset import Asset, locked_index
from ama.porcelain.clone import CLONE_MARKER
from ama.porcelain.config import Config

if TYPE_CHECKING:
    from ama.plumbing.proxy import ProxyDescriptor

# (files done, files total[, bytes done, bytes total])
Progress = Callable[..., None]
BATCH = 50_000
INCOMING = "incoming"


def _incoming(home: Path) -> Path:
    """``$AMA_HOME/incoming``, without the temp files of downloads that were killed."""
    folder = home / INCOMING
    folder.mkdir(parents=True, exist_ok=True)
    for name in os.listdir(folder):
        pid = name.split(".")[1] if name.count(".") >= 2 else ""
        if pid.isdigit() and int(pid) != os.getpid() and not pid_alive(int(pid)):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(folder / name)
    return folder


def receive(transport: Transport, project: str, odb: FileObjectDatabase,
            wanted: Iterable[tuple[str, int]], parallelism: int = 8,
            progress: Progress | None = None, *, brought: set[str] | None = None) -> int:
    """Bring the objects ``wanted`` (id, size) that the store lacks from the remote; return
    how many were received. Raises NotFound naming an object the remote does not hold, and
    the transport's errors.

    Every object received is re-hashed as it enters the store. ``brought``, when given,
    gets the ids of the objects that this call found missing and brought in, once all are
    in: a checkout in the same operation need not hash them again (``verified``)."""
    sized = dict(wanted)
    for oid, size in sized.items():
        # Ids come from a remote's answers (a version's manifest); each becomes a path.
        if not is_id(oid) or type(size) is not int or size < 0:
            raise RemoteError(f"the remote at {transport.url} named an object "
                              f"{str(oid)[:100]!r} of {size!r} bytes, which cannot be one",
                              "tell the server's administrator")
    todo = _lacking(odb, sized)
    if not todo:
        return 0
    total = len(todo)
    meter = Meter(progress, total, sum(size for _, size in todo))
    on_bytes = None if progress is None else meter.add_bytes
    if isinstance(transport, LocalTransfer):
        with odb.batch(syncing(progress)):
            count = transport.receive_files(
                project, todo, odb, None if progress is None else meter.set_files,
                on_bytes=on_bytes)
        if brought is not None:
            brought.update(oid for oid, _ in todo)
        return count
    home = odb.root.parent
    folder = _incoming(home)
    # The threshold of uploads in parts (transfer.multipart_threshold, in the settings of
    # the store's home or AMA_MULTIPART_THRESHOLD) serves here too.
    large = int(Config(home).get("transfer.multipart_threshold"))
    done = 0
    counter = 0
    for start in range(0, total, BATCH):
        chunk = todo[start:start + BATCH]
        answer = transport.batch(project, "download", [{"id": o, "size": s} for o, s in chunk])
        actions: list[tuple[str, wire.Action]] = []
        sizes: dict[str, int] = {}
        in_packs: dict[str, list[Member]] = {}
        packs = answer.get("packs") or {}
        for item in answer["objects"]:
            if "error" in item:
                raise NotFound(f"object {item.get('id')} is not on the remote "
                               f"{transport.url} (project {project}): "
                               f"{item['error'].get('message')}",
                               "ask whoever uploaded it to upload it again, or run "
                               "'ama-server fsck' on the server")
            asked = sized.get(item["id"], 0)
            where = item.get("pack")
            if where is not None:
                member = checked_member(transport, item["id"], asked, where, packs)
                in_packs.setdefault(where["id"], []).append(member)
                continue
            action = (item.get("actions") or {}).get("download")
            if action is not None:
                actions.append((item["id"], action))
                sizes[item["id"]] = _size(transport, item["id"], asked, item.get("size"))
        if in_packs:
            done += _receive_packed(transport, odb, in_packs, packs, folder, parallelism)
            meter.add_bytes(sum(m.length for members in in_packs.values() for m in members))
            meter.set_files(done)
        with ThreadPoolExecutor(max_workers=parallelism) as pool, \
                odb.batch(syncing(progress)):
            pending: set[Future[str]] = set()
            paths: dict[Future[str], tuple[str, str]] = {}

            def ingest(finished: set[Future[str]],
                       paths: dict[Future[str], tuple[str, str]] = paths) -> None:
                nonlocal done
                for future in finished:
                    oid, temp = paths.pop(future)
                    try:
                        if future.result():  # else another download stored it meanwhile
                            # A file of this process's own, hashed as it came: moved in.
                            odb.adopt_file(temp, oid)
                    finally:
                        with contextlib.suppress(FileNotFoundError):
                            os.unlink(temp)
                    done += 1
                    meter.set_files(done)

            try:
                for oid, action in actions:
                    counter += 1
                    temp = str(folder / f"{oid[:16]}.{os.getpid()}.{counter}")
                    if sizes.get(oid, 0) >= large:
                        future = pool.submit(_fetch_large, transport, action, oid,
                                             sizes[oid], temp, parallelism, large, on_bytes,
                                             odb.has)
                    else:
                        future = pool.submit(_fetch_one, transport, action, oid, temp,
                                             sizes.get(oid, 0) or MAX_UNSIZED, on_bytes)
                    paths[future] = (oid, temp)
                    pending.add(future)
                    if len(pending) >= parallelism * 4:
                        finished, pending = wait(pending, return_when=FIRST_COMPLETED)
                        ingest(finished)
                finished, pending = wait(pending)
                ingest(finished)
            except BaseException:
                for future in pending:
                    future.cancel()
                for _, temp in paths.values():
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(temp)
                raise
    left = odb.lacking(oid for oid, _ in todo)
    if left:
        raise RemoteError(f"the remote at {transport.url} answered for object {left[0]} "
                          f"({len(left)} in all) neither where to fetch it nor that it lacks it",
                          "run the command again; if it repeats, tell the server's "
                          "administrator")
    if brought is not None:
        brought.update(oid for oid, _ in todo)
    return done


def _size(transport: Transport, oid: str, asked: int, answered: Any) -> int:
    """The size to fetch of object ``oid``: the size asked for (from a tree, which the id
    fixes), else the remote's, at most :data:`MAX_UNSIZED`."""
    if type(answered) is not int or answered < 0 or (asked and answered != asked) \
            or answered > (asked or MAX_UNSIZED):
        raise RemoteError(f"the remote at {transport.url} answered a size of {answered!r} "
                          f"bytes for object {oid}" + (f", of {asked}" if asked else ""),
                          "tell the server's administrator")
    return answered


def checked_member(transport: Transport, oid: str, asked: int, where: Any,
                   packs: dict[str, wire.PackDownload]) -> Member:
    """Where the remote answered that object ``oid`` lies in a pack, checked: a pack named
    by an id, of a size, that holds the whole range, of the size asked for (the pack's
    bytes are read into memory and files named after its id)."""
    pid = where.get("id") if isinstance(where, dict) else None
    info = packs.get(pid) if isinstance(pid, str) and is_id(pid) else None
    pack_size = info.get("size") if isinstance(info, dict) else None
    offset = where.get("offset") if isinstance(where, dict) else None
    length = where.get("length") if isinstance(where, dict) else None
    if (type(pack_size) is not int or type(offset) is not int or type(length) is not int
            or offset < pack.HEADER_SIZE or length < 0 or offset + length > pack_size
            or length != (asked or length) or length > pack.TARGET):
        raise RemoteError(f"the remote at {transport.url} answered that object {oid} lies "
                          f"in a pack where it cannot: {str(where)[:200]}",
                          "tell the server's administrator")
    return Member(oid, offset, length)


def refetch(transport: Transport, project: str, odb: FileObjectDatabase,
            objects: Iterable[tuple[str, int]], parallelism: int = 8) -> list[str]:
    """Replace the corrupt stored objects ``objects`` (id, size) with good copies from the
    remote; return the ids replaced.

    The corrupt file is moved aside (to a ``.tmp-`` name, garbage if this is killed) so
    that the object is fetched like a missing one, re-hashed before it takes the id's name;
    then the corrupt file is deleted. An object the remote does not hold, or holds no good
    copy of, gets its corrupt file back and is left out of the ids returned. Files in asset
    directories that share the corrupt file's inode (hard links) keep it."""
    repaired: list[str] = []
    for oid, size in objects:
        path = os.fspath(odb.path(oid))
        aside = f"{os.path.dirname(path)}/.tmp-corrupt-{oid[2:14]}-{os.getpid()}"
        try:
            os.rename(path, aside)
        except FileNotFoundError:
            aside = ""
        try:
            receive(transport, project, odb, [(oid, size)], parallelism)
        except (NotFound, CorruptObject):
            if aside:
                os.replace(aside, path)
            continue
        except BaseException:
            if aside and not os.path.exists(path):
                os.replace(aside, path)
            raise
        if aside:
            os.unlink(aside)
        repaired.append(oid)
    return repaired


def _lacking(odb: FileObjectDatabase, wanted: dict[str, int]) -> list[tuple[str, int]]:
    """The (id, size) of ``wanted`` that ``odb`` does not hold, in ``wanted``'s order."""
    lacking = set(odb.lacking(wanted))
    return [(oid, size) for oid, size in wanted.items() if oid in lacking]


# How often a download looks again whether another one of the same large object is done.
WAIT_FOR_OTHER = 0.5
# A pack is fetched whole when at least this share of its bytes is needed, else as ranges.
WHOLE_PACK = 0.5
# Ranges of one pack closer than this are fetched with one request: a round trip costs
# more than these bytes.
RANGE_GAP = 64 << 10
# Threads storing received packed objects, and how many objects each takes at a time.
STORE_THREADS = 4
STORE_CHUNK = 256
# Bytes of packed objects fetched and not yet stored, at most (or one pack's needed bytes,
# when they are more): what a download holds in memory, however many packs its batch names
# (50,000 objects near the pack threshold are gigabytes).
HELD_BYTES = 192 << 20


class _Closed(Exception):
    """The download a fetch waited to go on with failed meanwhile."""


class _Budget:
    """At most ``limit`` bytes held at once: :meth:`take` waits until the bytes it asks for
    fit (any amount fits when nothing is held), :meth:`give` returns them, :meth:`close`
    ends every wait (the download failed): :meth:`take` then raises :class:`_Closed`, so
    that no fetch starts after the failure."""

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._held = 0
        self._closed = False
        self._cond = threading.Condition()

    def take(self, n: int) -> None:
        with self._cond:
            self._cond.wait_for(lambda: self._closed or self._held == 0
                                or self._held + n <= self._limit)
            if self._closed:
                raise _Closed
            self._held += n

    def give(self, n: int) -> None:
        with self._cond:
            self._held -= n
            self._cond.notify_all()

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()


def _receive_packed(transport: Transport, odb: FileObjectDatabase,
                    wanted: dict[str, list[Member]],
                    packs: dict[str, wire.PackDownload], folder: Path,
                    parallelism: int) -> int:
    """Bring the packed objects ``wanted`` (pack id -> members) into ``odb``: a whole pack
    (hashed against its name) when most of it is needed, else the members' ranges, joined
    where they are near; every member hashed against its id before it enters. Returns how
    many objects entered. At most :data:`HELD_BYTES` of members wait in memory between
    their fetch and their store."""
    budget = _Budget(HELD_BYTES)

    def fetch(pid: str) -> list[tuple[str, Member, bytes]]:
        members = wanted[pid]
        # Taken back by store(), or by the failure that ends the download.
        budget.take(sum(m.length for m in members))
        info = packs.get(pid)
        if info is None:
            raise NotFound(f"pack {pid} is not on the remote {transport.url}",
                           "run the command again")
        action = info["actions"]["download"]
        got: list[tuple[str, Member, bytes]] = []
        if sum(m.length for m in members) >= WHOLE_PACK * info["size"]:
            temp = str(folder / f"{pid[:16]}.{os.getpid()}.pack")
            try:
                transport.download(action, pid, temp, size=info["size"])
                with open(temp, "rb") as f:
                    for m in sorted(members, key=lambda m: m.offset):
                        f.seek(m.offset)
                        got.append((pid, m, f.read(m.length)))
                return got
            except (CorruptObject, Unreachable, RemoteError):
                pass  # damaged or cut short: its ranges, each hashed, name what is damaged
            finally:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(temp)
        for start, length, run in pack.ranges(members, gap=RANGE_GAP):
            data = transport.read_range(action, pid, start, length)
            # Each piece is hashed below, where it enters the store, as a whole pack's are.
            got += [(pid, m, data[m.offset - start:m.offset - start + m.length]) for m in run]
        return got

    def store(got: list[tuple[str, Member, bytes]]) -> int:
        try:
            for pid, m, data in got:
                actual = hash_bytes(data)
                if actual != m.id:
                    raise CorruptObject(m.id, f"bytes {m.offset}-{m.offset + m.length - 1} "
                                        f"of pack {pid} on {transport.url}", actual)
                # Found lacking by receive's listing of the store: not looked for again.
                odb.write_hashed(actual, data, lacking=True)
        finally:
            budget.give(sum(m.length for _, m, _ in got))
        return len(got)

    count = 0
    # Storing is a file each (open, write, seal, close): a few threads take turns at the
    # system calls, where one thread behind the fetches took twice as long for 100,000.
    # The threads are done before the batch ends, so nothing is written after its sync.
    # Packs are stored in the order they arrive: a fetch waiting for the budget waits for
    # packs already fetched, never for one behind it.
    with odb.batch(), ThreadPoolExecutor(max_workers=parallelism) as pool, \
            ThreadPoolExecutor(max_workers=STORE_THREADS) as writers:
        # A fetch's future is let go once its members are handed to the writers: it holds
        # them (its result) for as long as it is referenced.
        fetches = {pool.submit(fetch, pid) for pid in sorted(wanted)}
        stored: list[Future[int]] = []
        try:
            for fetched in as_completed(fetches):
                fetches.discard(fetched)
                got = fetched.result()
                del fetched
                stored += [writers.submit(store, got[i:i + STORE_CHUNK])
                           for i in range(0, len(got), STORE_CHUNK)]
                del got
            for future in stored:
                count += future.result()
        except BaseException:
            for waiting in fetches:
                waiting.cancel()
            for future in stored:
                future.cancel()
            budget.close()
            raise
    return count


def _fetch_one(transport: Transport, action: wire.Action, oid: str, temp: str, size: int,
               on_bytes: Callable[[int], None] | None = None) -> str:
    transport.download(action, oid, temp, on_bytes=on_bytes, size=size)
    return temp


def _fetch_large(transport: Transport, action: wire.Action, oid: str, size: int,
                 temp: str, parallelism: int, large: int,
                 on_bytes: Callable[[int], None] | None, stored: Callable[[str], bool]
                 ) -> str:
    """Fetch a large object in ranges into its partial file, kept for a re-run when this
    one fails, and move it to ``temp`` once it hashed to ``oid``: ``temp``, or "" when
    another download of the object (another command, or another thread of this process)
    was writing its partial file, and was waited for, and ``stored`` says it is stored."""
    # A quarter of the threshold a range: 16 MiB at the default of 64 MiB.
    chunk = max(1 << 20, large // 4)
    while True:
        try:
            fetch_ranged(transport, action, oid, size, os.path.dirname(temp), parallelism,
                         chunk=chunk, on_bytes=on_bytes, into=temp)
            return temp
        except Locked:
            time.sleep(WAIT_FOR_OTHER)
            if stored(oid):
                return ""


# The steps around a transfer, as progress names them (see ama.cli's progress bar).
REACHING = "reaching the remote"  # opening it: the embedded one imports its database code
PLACING = "placing files"
SYNCING = "syncing to disk"


def placing(progress: Progress | None) -> Progress | None:
    """``progress`` for a checkout: the same bar, in its "placing files" step."""
    return None if progress is None else partial(progress, phase=PLACING)


def syncing(progress: Progress | None) -> Callable[[bool], None] | None:
    """A store batch's ``syncing`` hook showing the disk sync on ``progress``: one wait in
    the kernel, with no total (seconds for a GiB received)."""
    if progress is None:
        return None

    def told(started: bool) -> None:
        if started:
            progress(0, 0, phase=SYNCING)
        else:
            progress(1, 1, phase=SYNCING)

    return told


class Meter:
    """Files and bytes moved so far (received, or sent by an upload), told to ``progress``
    from whichever thread moved them: the totals at once, then after every object and every
    chunk (a MiB or so) of one. A download that is tried again counts its bytes again, so
    bytes stop at their total."""

    def __init__(self, progress: Progress | None, files: int, size: int) -> None:
        self.progress = progress
        self.files = files
        self.size = size
        self.done = 0
        self.bytes = 0
        self.lock = threading.Lock()
        if progress is not None:
            progress(0, files, 0, size)  # the totals, before any transfer

    def add_bytes(self, n: int) -> None:
        if self.progress is not None:
            with self.lock:
                self.bytes = min(self.bytes + n, self.size)
                self.progress(self.done, self.files, self.bytes, self.size)

    def set_files(self, done: int) -> None:
        if self.progress is not None:
            with self.lock:
                self.done = done
                if done >= self.files:
                    self.bytes = self.size
                self.progress(done, self.files, self.bytes, self.size)


def fetch_metadata(transport: Transport, project: str, odb: FileObjectDatabase,
                   manifests: Iterable[str], trees: bool = True, parallelism: int = 8,
                   progress: Progress | None = None) -> int:
    """Bring ``manifests`` and (with ``trees``) every tree below them; no file bytes.
    Returns how many objects were received."""
    manifests = list(dict.fromkeys(manifests))
    count = receive(transport, project, odb, [(m, 0) for m in manifests], parallelism)
    if not trees:
        return count
    level = list(dict.fromkeys(read_manifest(odb, m).tree for m in manifests))
    seen: set[str] = set()
    while level:
        count += receive(transport, project, odb, [(t, 0) for t in level], parallelism,
                         progress)
        below: list[str] = []
        for tree in level:
            seen.add(tree)
            below.extend(e[1] for e in tree_entries(odb, tree)
                         if e[0] == "tree" and e[1] not in seen)
        level = list(dict.fromkeys(below))
    return count


def version_files(odb: FileObjectDatabase, manifest: str, transport: Transport | None = None,
                  project: str = "", parallelism: int = 8,
                  proxies: dict[str, tuple[str, ProxyDescriptor]] | None = None,
                  progress: Progress | None = None) -> dict[str, IndexEntry]:
    """Path → a stat-less index entry for every file of the version ``manifest``.

    With ``transport``, the manifest and trees the store lacks are fetched from the remote
    on the way, one negotiation per level of folders: each tree is read once. ``progress``
    is told ``(files counted, 0)`` after each tree: the totals are not known yet.

    A proxy file's entry names the id of its bytes (which are at its source, not on the
    remote), and ``proxies`` gets its path → (descriptor id, descriptor), each descriptor
    fetched and checked (:func:`~ama.plumbing.proxy.parse_descriptor`); without
    ``proxies`` a version holding one raises
    :class:`~ama.plumbing.proxy.ProxyNotPlaceable`.
    """
    files: dict[str, IndexEntry] = {}
    described: list[tuple[str, str, int]] = []
    # One batch: what is fetched becomes durable with one sync, not one per level.
    with odb.batch() if transport is not None else contextlib.nullcontext():
        if transport is not None:
            receive(transport, project, odb, [(manifest, 0)], parallelism)
        level = [(read_manifest(odb, manifest).tree, "")]
        while level:
            if transport is not None:
                receive(transport, project, odb, [(t, 0) for t, _ in level], parallelism)
            below: list[tuple[str, str]] = []
            for tree, prefix in level:
                for kind, oid, size, name in tree_entries(odb, tree):
                    path = prefix + name
                    if kind == "tree":
                        below.append((oid, path + "/"))
                    elif kind == "proxy" and proxies is not None:
                        described.append((path, oid, size))
                    else:
                        files[path] = IndexEntry(path, oid, size, 0, 0, mode_of(kind))
                if progress is not None:
                    progress(len(files), 0)
            level = below
        if described:
            assert proxies is not None
            if transport is not None:
                receive(transport, project, odb, [(d, 0) for _p, d, _s in described],
                        parallelism)
            for path, did, size in described:
                files[path] = _described(odb, path, did, size, proxies)
    check_paths(files, f"the version whose manifest is {manifest}")
    return files


def _described(odb: FileObjectDatabase, path: str, did: str, size: int,
               proxies: dict[str, tuple[str, ProxyDescriptor]]) -> IndexEntry:
    """The entry of the proxy file ``path`` whose descriptor is ``did``, recorded in
    ``proxies``; raises :class:`~ama.plumbing.objects.InvalidObject` naming the file for a
    descriptor no client may follow."""
    from ama.plumbing.proxy import file_descriptor

    descriptor = file_descriptor(odb.get(did), path, size)
    proxies[path] = (did, descriptor)
    return IndexEntry(path, descriptor.id, size)


@dataclass
class DownloadResult:
    """Objects received from the remote and files placed in the work tree."""

    received: int = 0
    placed: list[str] = field(default_factory=list)
    bytes: int = 0
    repaired: list[str] = field(default_factory=list)  # corrupt objects fetched again

    def to_json(self) -> dict[str, Any]:
        return {"received": self.received, "placed": self.placed, "bytes": self.bytes,
                "repaired": self.repaired}


def download(asset: Asset, patterns: tuple[str, ...] | list[str] = (),
             progress: Progress | None = None, force: bool = False, *,
             files: dict[str, IndexEntry] | None = None,
             index: Index | None = None,
             proxies: dict[str, tuple[str, ProxyDescriptor]] | None = None) -> DownloadResult:
    """Bring the bytes of the files of HEAD's version that match ``patterns`` (paths from
    the asset root, folders, or globs; none: every file) and place the missing ones in the
    work tree. A file that is there with other bytes is refused unless ``force``
    (:class:`~ama.plumbing.checkout.WouldOverwrite`). ``files`` is the version's files
    when the caller has them already (:func:`version_files`), and ``index`` the index as
    the caller has just written it (a clone), and ``proxies`` the proxy files among
    ``files`` (see :func:`version_files`): their bytes are fetched from their sources and
    verified (:func:`~ama.porcelain.sources.fetch_proxy`), never from the remote. With
    ``force``, a store object found corrupt as it is placed is fetched again from the
    remote (:func:`refetch`) and placed.
    Raises NotFound for a pattern that matches no file,
    :class:`~ama.plumbing.odb.CorruptObject` (without ``force``, or when the remote has
    no good copy), and the transport's errors."""
    from ama.porcelain.remotes import open_remote

    head = asset.head
    if head.manifest is None:
        raise NotFound(f"{head.name} was never uploaded: there is nothing to download",
                       "upload it with 'ama upload -m MESSAGE'")
    transport, remote = open_remote(asset.config, head.remote, head.project)
    parallelism = int(asset.config.get("transfer.parallelism"))
    if files is None:
        proxies = {}
        files = version_files(asset.store.objects, head.manifest, transport, remote.project,
                              parallelism, proxies)
    proxies = proxies or {}
    chosen = _match(files, [asset.dir.relpath(p) if not _is_glob(p) else p for p in patterns])
    result = DownloadResult()
    brought: set[str] = set()
    result.received = receive(transport, remote.project, asset.store.objects,
                              [(files[p].id, files[p].size) for p in chosen
                               if p not in proxies], parallelism, progress, brought=brought)
    odb = asset.store.objects
    for path in chosen:
        if path in proxies and not odb.has(files[path].id):
            from ama.porcelain.sources import fetch_proxy

            fetch_proxy(odb, path, proxies[path][1])
            brought.add(files[path].id)
            result.received += 1
    crash_point("download.received")
    with locked_index(asset, index) as index:
        # Restage the chosen files the index holds with other bytes; none when the index
        # records that it equals the version's tree (as a clone leaves it).
        if index.tree is None or index.tree != asset.committed_tree():
            for path in chosen:
                current = index.get(path)
                if current is None or current.id != files[path].id:
                    index.add(files[path])
        for path in chosen:
            if path in proxies:
                index.proxies[path] = (files[path].id, proxies[path][0])
        sizes = {files[p].id: files[p].size for p in chosen}
        while True:
            try:
                result.placed = checkout(asset.store.objects, index, asset.root, chosen,
                                         asset.link_strategy(), force=force, verified=brought,
                                         progress=placing(progress))
                break
            except CorruptObject as e:
                # Placing is idempotent: after a repair, the checkout goes on from there.
                if not force or e.oid in result.repaired or not refetch(
                        transport, remote.project, asset.store.objects,
                        [(e.oid, sizes.get(e.oid, 0))], parallelism):
                    raise
                result.repaired.append(e.oid)
    if not patterns:
        # Every file is in place: an unfinished clone this finished is a clone no more.
        with contextlib.suppress(FileNotFoundError):
            (asset.dir.meta / CLONE_MARKER).unlink()
    result.placed.sort(key=path_key)
    result.bytes = sum(files[p].size for p in result.placed)
    return result


def _is_glob(text: str) -> bool:
    return any(c in text for c in "*?[")


def _match(files: dict[str, IndexEntry], patterns: list[str]) -> list[str]:
    if not patterns:
        return sorted(files, key=path_key)
    chosen: dict[str, None] = {}
    for pattern in patterns:
        if pattern in ("", "."):
            hits = list(files)
        elif _is_glob(pattern):
            hits = [p for p in files if fnmatch.fnmatchcase(p, pattern)]
        else:
            prefix = pattern.rstrip("/")
            hits = [p for p in files if p == prefix or p.startswith(prefix + "/")]
        if not hits:
            raise NotFound(f"{pattern} matches no file of this version",
                           "list the version's files with 'ama ls-tree -r HEAD'")
        chosen.update(dict.fromkeys(hits))
    return sorted(chosen, key=path_key)


__all__ = ["DownloadResult", "download", "fetch_metadata", "receive", "version_files"]
