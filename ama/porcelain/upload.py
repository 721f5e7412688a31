"""``ama upload -m MSG``: make the staged files the asset's next version on its remote.

In order: build the tree of the index; check the class rules here (the same code the remote
runs, :mod:`ama.plumbing.rules`); write the manifest; record the upload in
``.ama/upload`` and ``$AMA_HOME/uploads/<key>`` (so gc keeps its trees and manifest);
negotiate (one batch call per 50,000 ids, leaving out what the parent version already
holds); send only what the remote lacks, in parallel; commit with the idempotency key;
record the version's ref; move HEAD; forget the upload.

An upload that is killed resumes when run again: the same manifest and key are reused
(when the staged files, parent, message and metadata are the same), the remote answers
"present" for every object that arrived, and a commit that went through answers the same
version again.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import threading
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, cast

from ama.plumbing import pack, wire
from ama.plumbing.crash import crash_point
from ama.plumbing.durable import write_atomic
from ama.plumbing.errors import AmaError, BadInput, NotFound
from ama.plumbing.graph import read_manifest, tree_entries, write_tree
from ama.plumbing.index import Index, IndexEntry
from ama.plumbing.lock import store_in_use
from ama.plumbing.multipart import DEFAULT_THRESHOLD, SendsParts, send_in_parts
from ama.plumbing.objects import Manifest
from ama.plumbing.odb import FileObjectDatabase, MissingObject
from ama.plumbing.rules import rule_problems
from ama.plumbing.transport import Conflict, LocalTransfer, Transport, ValidationFailed
from ama.porcelain.asset import Asset, Head, locked_index
from ama.porcelain.classes import LocalClasses, load_json_file, project_dir
from ama.porcelain.download import Meter
from ama.porcelain.store import UPLOADS_DIR

# (files done, files total[, bytes done, bytes total][, phase=NAME]): see ama.cli's bar
Progress = Callable[..., None]
BATCH = 50_000
# The steps of an upload that are not the transfer, as progress names them. Each lasts a
# second or more for 30,000 files; those with no count of their own are waits (a total of
# 0), which a bar shows with their elapsed time.
WRITING_TREES = "writing trees"
ASKING = "asking the remote what it lacks"
STORING_PACKS = "remote storing packs"
COMMITTING = "committing"
# The remote reading back what went straight to its storage and hashing it: for an object
# of gigabytes sent in parts, as long as sending it again from beside its storage.
VERIFYING = "remote verifying"
# Ids per verify call; the remote answers those it could not read in time as pending.
VERIFY_BATCH = 1000
# Objects the remote hashes in the background (sent in parts) are asked about again after
# this many seconds, doubled each time up to the maximum, for at most VERIFY_WAIT_MAX.
VERIFY_PAUSE = 0.25
VERIFY_PAUSE_MAX = 4.0
VERIFY_WAIT_MAX = 3600.0
PENDING_FILE = "upload"
BUMPS = ("patch", "minor", "major")


class NothingStaged(AmaError):
    """An upload of a temp asset with no staged files."""


class ParentMoved(AmaError):
    """Someone uploaded a newer version of this asset first."""


class RulesBroken(ValidationFailed):
    """The staged files or metadata break the class rules (found before sending anything)."""


@dataclass(frozen=True)
class UploadResult:
    """What an upload did: the asset's name and new version (``created`` False when nothing
    changed and no version was made), its manifest, and the objects sent."""

    name: str
    version: str
    manifest: str
    created: bool = True
    objects_sent: int = 0
    bytes_sent: int = 0
    objects_total: int = 0

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "version": self.version, "manifest": self.manifest,
                "created": self.created, "objects_sent": self.objects_sent,
                "bytes_sent": self.bytes_sent, "objects_total": self.objects_total}


def _load_metadata(metadata: Any) -> wire.Metadata | None:
    if metadata is None:
        return None
    if isinstance(metadata, (str, os.PathLike)):
        metadata = load_json_file(metadata, "metadata")
    if not isinstance(metadata, dict):
        raise BadInput("version metadata must be a JSON object")
    return metadata


def upload(asset: Asset, message: str, *, metadata: Any = None, bump: str = "patch",
           progress: Progress | None = None,
           now: Callable[[], datetime] = lambda: datetime.now(timezone.utc),
           key: Callable[[], str] = lambda: secrets.token_hex(16),
           notice: Callable[[str], None] | None = None) -> UploadResult:
    """Upload the staged files as the next version of ``asset`` (see the module docstring).

    ``metadata`` is a dict or the path of a JSON file; ``notice`` is told of a large
    object's upload that goes on from parts an interrupted one stored. Raises
    :class:`NothingStaged`, :class:`RulesBroken`, :class:`ParentMoved`, BadInput, and the
    transport's errors; nothing is sent when a local check fails.
    """
    # The objects sent must stay in the store until the remote has them all.
    with store_in_use(asset.store.objects.root):
        return _upload(asset, message, metadata, bump, progress, now, key, notice)


def _upload(asset: Asset, message: str, metadata: Any, bump: str, progress: Progress | None,
            now: Callable[[], datetime], key: Callable[[], str],
            notice: Callable[[str], None] | None = None) -> UploadResult:
    from ama.porcelain.remotes import open_remote

    if bump not in BUMPS:
        raise BadInput(f"invalid bump {bump!r}: use minor or major (patch is the default)")
    if not message.strip():
        raise BadInput("an upload needs a message", "pass -m 'what changed'")
    from ama.porcelain.inputs import reset as reset_inputs
    from ama.porcelain.inputs import staged as staged_inputs

    given = _load_metadata(metadata)
    head = asset.head
    odb = asset.store.objects
    if progress is not None:
        progress(0, 0, phase=WRITING_TREES)  # checking the staged objects, then the trees
    with locked_index(asset) as index:
        entries = list(index.entries.values())
        if not entries and head.is_temp:
            raise NothingStaged(f"nothing is staged in {asset.root}: an asset needs files",
                                "stage files with 'ama add PATH…' first")
        inputs = staged_inputs(asset)
        # The trees and the manifest become durable together: one sync, not one each.
        with odb.batch():
            _store_lost(asset, odb, entries)
            tree = write_tree(odb, entries, index.staged_proxies(), checked=True)
            parent = read_manifest(odb, head.manifest) if head.manifest else None
            # Metadata and inputs carry over from the parent unless new ones are given.
            meta = given if given is not None else (dict(parent.metadata) if parent else {})
            if (parent is not None and parent.tree == tree and list(parent.inputs) == inputs
                    and parent.metadata == meta):
                _remember_tree(index, tree)  # the parent's tree: already durable
                return UploadResult(head.name, head.version, head.manifest or "", created=False)
            classes = LocalClasses(project_dir(asset.store.home, head.remote, head.project)
                                   / "classes")
            cls = classes.get(head.class_name)
            problems = rule_problems(cls.schema, cls.rules, meta,
                                     [(e.path, e.id, e.size) for e in entries])
            if problems:
                raise RulesBroken(
                    f"the staged files break {len(problems)} rule(s) of class {cls.name!r}:\n"
                    + "\n".join(f"  {p}" for p in problems),
                    "fix them and upload again; read the rules with "
                    f"'ama class info -n {cls.name}'", problems=problems)
            pending = _pending(asset)
            manifest_id = None
            upload_key = None
            if pending is not None:
                with contextlib.suppress(AmaError):
                    old = read_manifest(odb, pending["manifest"])
                    parents = [head.manifest] if head.manifest else []
                    if (old.tree == tree and list(old.parents) == parents
                            and old.message == message and old.metadata == meta
                            and list(old.inputs) == sorted(inputs, key=lambda i: i.name)
                            and pending.get("bump") == bump):
                        manifest_id, upload_key = pending["manifest"], pending["key"]
            if manifest_id is None or upload_key is None:
                manifest = Manifest.create(tree, asset.config.author(), now(), message,
                                           parents=[head.manifest] if head.manifest else [],
                                           inputs=inputs, metadata=meta)
                manifest_id = odb.write(manifest.serialize())
                upload_key = key()
                if pending is not None:
                    _forget(asset, pending["key"])
        _remember_tree(index, tree)  # after the batch: the tree is durable
        new_trees, new_blobs = _to_send(odb, tree, parent.tree if parent else None)
        _remember(asset, upload_key, manifest_id, bump, new_trees)
    if progress is not None:
        from ama.porcelain.download import REACHING

        progress(0, 0, phase=REACHING)
    transport, remote = open_remote(asset.config, head.remote, head.project)
    objects = [(manifest_id, odb.size(manifest_id))]
    objects += [(t, odb.size(t)) for t in new_trees]
    objects += new_blobs
    sent, sent_bytes = send(transport, remote.project, odb, objects,
                            int(asset.config.get("transfer.parallelism")), progress,
                            int(asset.config.get("transfer.multipart_threshold")), notice,
                            int(asset.config.get("transfer.pack_bytes")))
    crash_point("upload.sent")
    if progress is not None:
        progress(0, 0, phase=COMMITTING)  # the remote checks the version's every object
    try:
        result = transport.commit(remote.project, head.class_name,
                                  None if head.is_temp else int(head.asset), head.manifest,
                                  manifest_id, upload_key, bump)
    except Conflict as e:
        latest = e.latest
        if latest is not None and latest == manifest_id:
            raise  # "already has this manifest": the remote's message says it all
        _forget(asset, upload_key)
        raise ParentMoved(
            f"{head.name} has moved on: someone uploaded a newer version than "
            f"{head.version}, which this directory holds ({e.message})",
            "fetch it with 'ama fetch', switch to it with 'ama switch --version VERSION' "
            "(stage your changes again afterwards), then upload") from None
    crash_point("upload.committed")
    from ama.porcelain.versions import record

    record(asset.store.home, remote.name, remote.project, head.class_name,
           result["ordinal"], [result])
    asset.set_head(Head(class_name=head.class_name, asset=str(result["ordinal"]),
                        version=result["version"], manifest=manifest_id, remote=head.remote,
                        project=head.project))
    reset_inputs(asset)
    _forget(asset, upload_key)
    return UploadResult(result["name"], result["version"], manifest_id, True, sent, sent_bytes,
                        len(objects))


def _remember_tree(index: Index, tree: str) -> None:
    """Record in the index that its entries are the files of ``tree``, so that status and
    switch know nothing is staged without flattening the version's trees."""
    if index.tree != tree:
        index.tree = tree
        index.write()


# -- the record of an unfinished upload --------------------------------------------------------


def _pending(asset: Asset) -> dict[str, Any] | None:
    try:
        value = json.loads((asset.dir.meta / PENDING_FILE).read_text(encoding="utf-8"))
    except (FileNotFoundError, ValueError):
        return None
    return value if isinstance(value, dict) and "key" in value and "manifest" in value else None


def _remember(asset: Asset, key: str, manifest: str, bump: str, trees: list[str]) -> None:
    """Write ``$AMA_HOME/uploads/<key>`` (ids gc must keep) and ``.ama/upload``."""
    folder = asset.store.home / UPLOADS_DIR
    folder.mkdir(parents=True, exist_ok=True)
    write_atomic(folder / key, "".join(f"{i}\n" for i in [manifest, *trees]).encode("ascii"))
    write_atomic(asset.dir.meta / PENDING_FILE,
                 (json.dumps({"key": key, "manifest": manifest, "bump": bump}) + "\n").encode())


def _forget(asset: Asset, key: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(asset.dir.meta / PENDING_FILE)
    with contextlib.suppress(FileNotFoundError):
        os.unlink(asset.store.home / UPLOADS_DIR / key)


# -- what to send -----------------------------------------------------------------------------


def _store_lost(asset: Asset, odb: FileObjectDatabase, entries: list[IndexEntry]) -> None:
    """Store again, from the work tree, the staged blobs that are no longer in the store
    (the index is not trusted to name only stored objects: one existence check per staged
    file). Raises :class:`~ama.plumbing.odb.MissingObject` naming the file when its bytes
    changed."""
    lost = set(odb.lacking(e.id for e in entries))
    if not lost:
        return
    from ama.plumbing.hashing import hash_file
    from ama.porcelain.add import store_file

    base = os.fspath(asset.root)
    with odb.batch():
        for entry in entries:
            if entry.id not in lost:
                continue
            path = f"{base}/{entry.path}"
            with contextlib.suppress(OSError):
                if hash_file(path) == entry.id:
                    store_file(odb, path, os.stat(path).st_size)
                    lost.discard(entry.id)
                    continue
            raise MissingObject(entry.id, f"the asset store, and {entry.path} no longer "
                                "holds its bytes: stage the file again with 'ama add "
                                f"{entry.path}' or restore it") from None


def _walk(odb: FileObjectDatabase, root: str, skip: set[str] | frozenset[str] = frozenset()
          ) -> tuple[list[str], dict[str, int]]:
    """Every tree (parents first) and blob (id → size) below ``root``, leaving out the
    trees in ``skip`` and everything below them; each tree is read once. A proxy file's
    blob is its descriptor."""
    trees: list[str] = []
    blobs: dict[str, int] = {}
    seen: set[str] = set()
    stack = [root]
    while stack:
        oid = stack.pop()
        if oid in seen or oid in skip:
            continue
        seen.add(oid)
        trees.append(oid)
        for kind, entry, size, _name in tree_entries(odb, oid):
            if kind == "tree":
                stack.append(entry)
            elif kind == "proxy":  # its descriptor is sent, never the bytes it describes
                blobs[entry] = odb.size(entry)
            else:
                blobs[entry] = size
    return trees, blobs


def _to_send(odb: FileObjectDatabase, root: str, parent_root: str | None
             ) -> tuple[list[str], list[tuple[str, int]]]:
    """The trees and blobs (id, size) below ``root`` that the parent version's tree does
    not hold: each tree of both versions is read once."""
    old_trees: set[str] = set()
    old_blobs: dict[str, int] = {}
    if parent_root is not None:
        try:
            listed, old_blobs = _walk(odb, parent_root)
            old_trees = set(listed)
        except MissingObject:
            old_trees, old_blobs = set(), {}  # an incomplete parent: send all, the remote skips
    trees, blobs = _walk(odb, root, old_trees)
    return trees, [(oid, size) for oid, size in blobs.items() if oid not in old_blobs]


def send(transport: Transport, project: str, odb: FileObjectDatabase,
         objects: list[tuple[str, int]], parallelism: int = 8,
         progress: Progress | None = None, multipart_threshold: int | None = None,
         notice: Callable[[str], None] | None = None,
         pack_bytes: int = pack.TARGET) -> tuple[int, int]:
    """Negotiate ``objects`` (id, size) and send those the remote lacks, ``parallelism`` at
    a time, those of ``multipart_threshold`` bytes or more in parts where the remote takes
    them (``notice`` hears of an upload that resumes); ask the remote to verify objects
    sent to its storage directly. Returns (objects sent, bytes sent)."""
    if multipart_threshold is None:
        multipart_threshold = DEFAULT_THRESHOLD
    total_bytes = sum(size for _, size in objects)
    if progress is not None:
        progress(0, len(objects), 0, total_bytes)  # the totals, before any transfer
    small = [(oid, size) for oid, size in objects if size < pack.THRESHOLD]
    n_small, small_bytes = len(small), sum(s for _, s in small)
    packing: Progress | None = None
    if progress is not None:
        whole, count = len(objects), total_bytes

        def packing(done: int, done_bytes: int, phase: str | None = None) -> None:
            if phase is None:  # objects packed: the transfer's own bar
                progress(done, whole, done_bytes, count)
            else:
                progress(0, 0, phase=phase)

    packed, packed_bytes = _send_packs(transport, project, odb, small, parallelism, pack_bytes,
                                       packing)
    objects = [(oid, size) for oid, size in objects if size >= pack.THRESHOLD]
    if progress is not None:
        progress(n_small, n_small + len(objects), small_bytes, total_bytes)
    if isinstance(transport, LocalTransfer):
        def after_packs(done: int, _objects: int, done_bytes: int, _bytes: int) -> None:
            assert progress is not None
            progress(n_small + done, n_small + len(objects), small_bytes + done_bytes,
                     total_bytes)

        sent, sent_bytes = _send_files(transport, project, odb, objects,
                                       None if progress is None else after_packs)
        return packed + sent, packed_bytes + sent_bytes
    sent = 0
    sent_bytes = 0

    def offset(done: int, files: int, done_bytes: int, size: int) -> None:
        assert progress is not None
        progress(n_small + done, n_small + files, small_bytes + done_bytes,
                 small_bytes + size)

    # Moves with every chunk sent, from whichever thread sends it.
    meter = Meter(None if progress is None else offset, len(objects),
                  total_bytes - small_bytes)
    for start in range(0, len(objects), BATCH):
        chunk = objects[start:start + BATCH]
        answer = transport.batch(project, "upload", [{"id": o, "size": s} for o, s in chunk])
        todo: list[tuple[str, int, wire.Action]] = []
        verify: list[str] = []
        for item in answer["objects"]:
            if "error" in item:
                raise ValidationFailed(f"the remote refused object {item.get('id')}: "
                                       f"{item['error'].get('message')}",
                                       problems=[str(item.get("id"))])
            actions = item.get("actions") or {}
            if "upload" in actions:
                todo.append((item["id"], item.get("size", 0), actions["upload"]))
                if "verify" in actions:
                    verify.append(item["id"])
        done = 0
        with ThreadPoolExecutor(max_workers=parallelism) as pool:
            pending: set[Future[int]] = set()
            try:
                for oid, size, action in todo:
                    if size >= multipart_threshold and isinstance(transport, SendsParts):
                        pending.add(pool.submit(_metered, meter, size, _send_large, transport,
                                                project, action, odb, oid, size, parallelism,
                                                notice))
                        # The remote hashes an object sent in parts after it answered.
                        verify.append(oid)
                    else:
                        pending.add(pool.submit(_metered, meter, size, _send_one, transport,
                                                action, odb, oid, size))
                    if len(pending) >= parallelism * 4:
                        finished, pending = wait(pending, return_when=FIRST_COMPLETED)
                        for future in finished:
                            sent_bytes += future.result()
                            done += 1
                        meter.set_files(start + done)
                finished, pending = wait(pending)
                for future in finished:
                    sent_bytes += future.result()
                    done += 1
            except BaseException:
                for future in pending:
                    future.cancel()
                raise
        sent += done
        # Objects the remote held already count as done too.
        meter.set_files(start + len(chunk))
        if verify and progress is not None:
            progress(0, 0, phase=VERIFYING)
        _verify(transport, project, list(dict.fromkeys(verify)))
    return packed + sent, packed_bytes + sent_bytes


def _send_packs(transport: Transport, project: str, odb: FileObjectDatabase,
                objects: list[tuple[str, int]], parallelism: int,
                pack_bytes: int = pack.TARGET, progress: Progress | None = None
                ) -> tuple[int, int]:
    """Send the small ``objects`` (id, size) the remote lacks in packs (ama-format(5)
    PACKS), written one by one into the store's ``incoming`` folder and sent a few at a
    time, each pack checked whole by the remote. Returns (objects sent, bytes sent).

    ``progress`` hears ``(0, 0, phase=ASKING)`` before the negotiation, ``(objects,
    bytes)`` packed so far (those the remote holds count as done at once) from the
    threads that write the packs, and ``(0, 0, phase=STORING_PACKS)`` once the last pack
    is written, while the remote stores and checks the last ones: for 30,000 small files one
    pack, so each of those steps takes a second or so."""
    if not objects:
        return 0, 0
    if progress is not None:
        progress(0, 0, ASKING)
    lacking: list[tuple[str, int]] = []
    for start in range(0, len(objects), BATCH):
        chunk = objects[start:start + BATCH]
        answer = transport.batch(project, "upload", [{"id": o, "size": s} for o, s in chunk],
                                 packs=True)
        for item in answer["objects"]:
            if "error" in item:
                raise ValidationFailed(f"the remote refused object {item.get('id')}: "
                                       f"{item['error'].get('message')}",
                                       problems=[str(item.get("id"))])
            if item.get("actions"):
                lacking.append((item["id"], item.get("size", 0)))
    folder = odb.root.parent / "incoming"
    folder.mkdir(parents=True, exist_ok=True)
    base = os.fspath(odb.root)
    groups = pack.plan(lacking, pack_bytes)
    lock = threading.Lock()
    held = len(objects) - len(lacking)  # the remote has them: nothing to send
    packed = [held, sum(s for _, s in objects) - sum(s for _, s in lacking), 0]
    wrote: Callable[[int, int], None] | None = None
    if progress is not None:
        tell = progress
        tell(packed[0], packed[1])

        def wrote(count: int, nbytes: int) -> None:
            with lock:
                packed[0] += count
                packed[1] += nbytes
                tell(packed[0], packed[1])

    def send_one(group: list[tuple[str, int]]) -> tuple[int, int]:
        name, path, size = pack.write_file(
            group, lambda oid: f"{base}/{oid[:2]}/{oid[2:]}", os.fspath(folder), wrote)
        if progress is not None:
            with lock:
                packed[2] += 1
                last = packed[2] == len(groups)
            if last:  # nothing moves until the remote has checked what it got
                progress(0, 0, STORING_PACKS)
        try:
            transport.send_pack(project, name, path, size)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
        return len(group), sum(s for _, s in group)

    sent = sent_bytes = 0
    # A few packs at once: writing one overlaps sending another; each holds no more
    # than one object in memory.
    with ThreadPoolExecutor(max_workers=max(1, min(parallelism, 4))) as pool:
        for count, size in pool.map(send_one, groups):
            sent += count
            sent_bytes += size
    return sent, sent_bytes


def _verify(transport: Transport, project: str, ids: list[str],
            sleep: Callable[[float], None] = time.sleep,
            clock: Callable[[], float] = time.monotonic) -> None:
    """Have the remote hash ``ids`` in its storage, asking again for those it answered
    pending (it answers each call within a set time), and, after a pause that doubles up
    to VERIFY_PAUSE_MAX, for those it hashes in the background (objects sent in parts);
    raises ValidationFailed naming the objects that did not arrive intact, or still not
    verified after VERIFY_WAIT_MAX seconds."""
    pause = VERIFY_PAUSE
    since = clock()
    while ids:
        checked = transport.verify(project, ids[:VERIFY_BATCH])
        answers = checked.get("objects", [])
        bad = [i for i in answers if "error" in i]
        full = [i for i in bad if i["error"].get("code") == 507]
        if full and len(full) == len(bad):  # not the bytes' fault: kept by the remote
            raise AmaError(
                f"the remote could not store {len(full)} object(s): "
                + str(full[0]["error"].get("message", "its storage is full")),
                "free space where the remote stores (its administrator can), then run the "
                "upload again: it sends nothing again")
        if bad:
            raise ValidationFailed(
                f"{len(bad)} object(s) did not arrive intact: "
                + "; ".join(i["error"].get("message", "") for i in bad[:5]),
                "run the upload again", problems=[str(i.get("id")) for i in bad])
        pending = [str(i["id"]) for i in answers if i.get("pending")]
        background = [i for i in answers if i.get("verifying")]
        if len(pending) >= min(len(ids), VERIFY_BATCH) and not background:
            raise ValidationFailed(f"the remote verified none of {len(pending)} object(s) "
                                   "it was asked to", "run the upload again",
                                   problems=pending)
        ids = pending + ids[VERIFY_BATCH:]
        if background and len(background) == len(pending):
            if clock() - since > VERIFY_WAIT_MAX:
                raise ValidationFailed(
                    f"the remote is still verifying {len(pending)} object(s) after "
                    f"{VERIFY_WAIT_MAX:.0f} s", "run the upload again later: it sends "
                    "nothing again", problems=pending)
            sleep(pause)
            pause = min(pause * 2, VERIFY_PAUSE_MAX)


def _send_files(transport: LocalTransfer, project: str, odb: FileObjectDatabase,
                objects: list[tuple[str, int]], progress: Progress | None) -> tuple[int, int]:
    """Send to a remote on this machine: every object in one operation, no negotiation
    (the remote skips what it holds), each verified by the remote."""
    base = os.fspath(odb.root)
    total = len(objects)
    size = sum(s for _, s in objects)
    lock = threading.Lock()
    done = [0, 0]  # objects, bytes: told from the remote's threads
    report: Progress = progress or (lambda *_: None)

    def objects_done(n: int) -> None:
        with lock:
            done[0] = n
            report(n, total, done[1], size)

    def bytes_done(n: int) -> None:
        with lock:
            done[1] = min(done[1] + n, size)
            report(done[0], total, done[1], size)

    answer = transport.send_files(
        project, [(oid, size, f"{base}/{oid[:2]}/{oid[2:]}") for oid, size in objects],
        None if progress is None else objects_done, None if progress is None else bytes_done)
    if progress is not None:
        # Objects the remote held already were never hashed: all is done now.
        progress(total, total, size, size)
    bad = [item for item in answer["objects"] if "error" in item]
    if bad:
        raise ValidationFailed(
            f"{len(bad)} object(s) did not arrive intact: "
            + "; ".join(str(i["error"].get("message", "")) for i in bad[:5]),
            "check the store with 'ama store verify', then run the upload again",
            problems=[str(i.get("id")) for i in bad])
    stored = [item for item in answer["objects"] if item.get("stored")]
    return len(stored), sum(int(item["size"]) for item in stored)


def _metered(meter: Meter, size: int, send: Callable[..., int], *args: Any) -> int:
    """``send(*args, on_bytes=…)`` with its bytes told to ``meter`` as they go, and what it
    did not tell of ``size`` (bytes the storage held already) once it is done."""
    told = 0

    def on_bytes(n: int) -> None:
        nonlocal told
        told += n
        meter.add_bytes(n)

    sent = send(*args, on_bytes=on_bytes)
    if told < size:
        meter.add_bytes(size - told)
    return sent


def _send_one(transport: Transport, action: wire.Action, odb: FileObjectDatabase,
              oid: str, size: int, on_bytes: Callable[[int], None] | None = None) -> int:
    transport.upload(action, odb.path(oid), on_bytes)
    return size


def _send_large(transport: SendsParts, project: str, action: wire.Action,
                odb: FileObjectDatabase, oid: str, size: int, parallelism: int,
                notice: Callable[[str], None] | None,
                on_bytes: Callable[[int], None] | None = None) -> int:
    """Send a large object in parts; in one request when the remote's storage takes no
    parts (or the remote is older than uploads in parts). Returns the bytes sent."""
    try:
        return send_in_parts(transport, project, oid, size, odb.path(oid), parallelism,
                             notice, on_bytes)
    except (BadInput, NotFound):
        return _send_one(cast(Transport, transport), action, odb, oid, size, on_bytes)
