"""Object bytes: negotiating transfers, streamed and bulk uploads, downloads, verifying
uploads made through presigned URLs, and fsck of a project's objects and storage.

Every object is hashed on its way in, or read back and hashed, before its row says it is
verified.
"""

from __future__ import annotations

import io
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta, timezone
from functools import partial
from typing import Any, BinaryIO, cast

from blake3 import blake3
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from ama.plumbing import wire
from ama.plumbing.hashing import MMAP_THRESHOLD, check_id, hash_file, is_id, read_small
from ama.plumbing.objects import TREE_HEADER, TREE_HEADERS, Tree, object_type, path_problems
from ama_remote.errors import BadInput, NotFound, ObjectCorrupt, ValidationFailed
from ama_remote.models import AssetClass, Project, StoredObject
from ama_remote.service.common import Caller, ObjectRow, Problem, upsert_objects
from ama_remote.service.packs import Packs, open_range, pack_key
from ama_remote.storage import storages_overlap
from ama_remote.storage.base import (
    Backend,
    HasLocalPaths,
    ObjectMissing,
    PutsFiles,
    Syncs,
    Tags,
    object_key,
)

# Trees and manifests up to this size keep their bytes in the database for commit's walk.
KEEP_LIMIT = 64 << 20
READ_CHUNK = 1 << 20
TRANSFER_TTL = 3600
# fsck leaves younger leftovers of uploads alone: they may belong to an upload still running
# (a worker may spend minutes on one, an embedded client copying a huge file longer).
LEFTOVER_GRACE = timedelta(days=1)
_MANIFEST_START = b'{"author":'
# Bulk uploads are stored and hashed by a few threads, this many objects per task.
_BULK_WORKERS = 4
_BULK_CHUNK = 256
# Objects read back at once by a verify call: below the S3 client's pool of 10 connections.
VERIFY_WORKERS = 8


class _Stored(wire.StoredFile, total=False):
    """A stored file's answer while it still carries what the object's row keeps."""

    kind: str | None
    data: bytes | None


def _mark_verified(project_id: int, ids: list[str], s: Session) -> None:
    s.execute(update(StoredObject).where(StoredObject.project_id == project_id,
                                         StoredObject.oid.in_(ids)).values(verified=True))


class _HashingReader:
    """Pass a stream through while hashing and counting it; keep the bytes of a tree or
    manifest (recognised by its first bytes), never those of a blob."""

    def __init__(self, stream: BinaryIO) -> None:
        self._stream = stream
        self._hasher = blake3()
        self.count = 0
        self._kept: bytearray | None = bytearray()
        self._decided = False

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        data = self._stream.read(READ_CHUNK if n is None or n < 0 else n)
        if data:
            self._hasher.update(data)
            self.count += len(data)
            self._keep(data)
        return data

    def _keep(self, data: bytes) -> None:
        if self._kept is None:
            return
        self._kept += data
        if len(self._kept) > KEEP_LIMIT:
            self._kept = None
            return
        if not self._decided and len(self._kept) >= len(TREE_HEADER):
            self._decided = True
            if not (self._kept.startswith(TREE_HEADERS) or self._kept.startswith(_MANIFEST_START)):
                self._kept = None

    def drain(self) -> None:
        while self.read(READ_CHUNK):
            pass

    def hexdigest(self) -> str:
        return self._hasher.hexdigest()

    def structured(self) -> tuple[str | None, bytes | None]:
        """Return ("tree"|"manifest", bytes) for a tree or manifest, else (None, None)."""
        if self._kept is None:
            return None, None
        data = bytes(self._kept)
        kind = object_type(data)
        return (kind, data) if kind in ("tree", "manifest") else (None, None)


class _CheckedStream:
    """Hand out a stored object's ``size`` bytes while hashing them, keeping back the last
    piece until the whole has hashed to ``oid``: on a mismatch (or bytes missing) ``read``
    raises what ``corrupt(detail)`` returns instead, so the response is cut short."""

    def __init__(self, stream: BinaryIO, oid: str, size: int,
                 corrupt: Callable[[str], Exception]) -> None:
        self._stream = stream
        self._oid = oid
        self._left = size
        self._size = size
        self._corrupt = corrupt
        self._hasher: Any = blake3()

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return bool(getattr(self._stream, "seekable", lambda: False)())

    def seek(self, offset: int) -> int:
        """Start at ``offset`` for a ranged read (ama-protocol(7)): part of an object cannot
        be checked against its id, so from here the bytes are not hashed."""
        self._stream.seek(offset)
        self._left = self._size - offset
        self._hasher = None
        return offset

    def read(self, n: int | None = -1) -> bytes:
        if self._left == 0:
            return b""
        want = READ_CHUNK if n is None or n < 0 else max(1, n)
        data = self._stream.read(min(want, self._left))
        if not data:
            self.close()
            raise self._corrupt(f"only {self._size - self._left} of {self._size} bytes")
        self._left -= len(data)
        if self._hasher is None:
            return data
        self._hasher.update(data)
        if self._left == 0 and self._hasher.hexdigest() != self._oid:
            self.close()
            raise self._corrupt(f"the bytes hash to {self._hasher.hexdigest()}")
        return data

    def read_all(self) -> bytes:
        pieces = []
        while piece := self.read(READ_CHUNK):
            pieces.append(piece)
        self.close()
        return b"".join(pieces)

    def close(self) -> None:
        close = getattr(self._stream, "close", None)
        if close is not None:
            close()


def _structured_start(path: str) -> bool:
    """Whether the file at ``path`` begins like a tree or a manifest."""
    with open(path, "rb") as f:
        return f.read(len(TREE_HEADER)).startswith((*TREE_HEADERS, _MANIFEST_START[:10]))


class Objects(Packs):
    """Object bytes: negotiating transfers, streamed and bulk uploads, downloads, verifying"""

    def batch(self, caller: Caller, project: str, operation: str,
              objects: list[wire.ObjectRequest], href_prefix: str = "",
              compact: bool = False, packs: bool = False
              ) -> wire.Negotiation | wire.CompactNegotiation:
        """Answer, per object, nothing (already present), a transfer action, or an error.

        ``operation`` is ``upload`` (writers) or ``download`` (readers). Presigned uploads
        get a ``verify`` action too: the client calls :meth:`verify_objects` after them.
        The server's own hrefs (``file://`` storage) are paths; ``href_prefix`` (the HTTP
        app's scheme and host) is put before them.

        Returns ``{"objects": [...]}``, one entry per requested object, in order. With
        ``compact``, the answer of negotiation format 1 (man ama-protocol(7)) instead,
        which says the same without an action per object (:class:`wire.CompactNegotiation`).

        With ``packs``, an upload that will send its objects in packs (:meth:`announce_pack`)
        only learns which ones the project lacks: they get the server's own href, and no
        URL is presigned for them nor any row left.
        """
        if operation not in ("upload", "download"):
            raise BadInput(f"invalid operation {operation!r}: use upload or download")
        if not isinstance(objects, list):
            raise BadInput("objects must be a list of {id, size}")
        # Thousands of ids per request: one pass to pick the well-formed ids, one query for
        # the rows, one pass to answer; nothing per object but dict lookups and the answer.
        pairs = [(o.get("id"), o.get("size")) if isinstance(o, dict) else (None, None)
                 for o in objects]
        wanted = {oid for oid, _ in pairs if type(oid) is str and is_id(oid)}
        upload = operation == "upload"
        with self.db.read() as s:
            proj = self._project(s, caller, project, "writer" if upload else "reader")
            known = self._object_rows(s, proj.id, wanted)
            project_id, storage_url = proj.id, proj.storage_url
            # A download of a packed object is a byte range of its pack (ama-protocol(7)).
            packed = {} if upload else self._packed_rows(s, proj.id, wanted)
            pack_sizes = self._pack_sizes(s, proj.id, {r.pid for r in packed.values()})
        storage = self._storage(storage_url)
        base = f"{href_prefix}/v1/projects/{project}/objects/"
        answer = wire.Negotiating(operation, compact, base + "{id}", TRANSFER_TTL)
        pending: list[tuple[str, int]] = []
        method = "PUT" if upload else "GET"
        # A backend either presigns every key or none (file://): ask once, not per object.
        presigns = not (upload and packs)
        for oid, size in pairs:
            if type(oid) is not str or oid not in wanted:
                answer.error(oid, 400, f"{oid!r} is not an object id")
                continue
            row = known.get(oid)
            if upload:
                if type(size) is not int or size < 0:
                    answer.error(oid, 400, f"object {oid}: size must be a non-negative "
                                 "integer")
                    continue
                if row is not None and row.verified:
                    answer.held(oid, row.size)
                    continue
            elif row is None or not row.verified:
                answer.error(oid, 404, f"object {oid} not found in project {project!r}")
                continue
            elif oid in packed:
                where = packed[oid]
                answer.in_pack(oid, row.size, where.pid, where.offset, where.length)
                continue
            else:
                size = row.size
            action = presigns and storage.presign(
                object_key(oid), method, TRANSFER_TTL, size if upload else None)
            if not action:
                presigns = False
                answer.through_server(oid, size)
            elif upload:
                pending.append((oid, size))
                answer.presigned(oid, size, {"upload": action, "verify": {
                    "href": base + "verify", "method": "POST", "headers": {},
                    "expires": TRANSFER_TTL}})
            else:
                answer.presigned(oid, size, {"download": action})
        if pending:
            self.db.run(lambda s: self._remember(s, project_id, pending))
        return answer.answer(self._pack_actions(storage, project,
                                                {r.pid for r in packed.values()},
                                                pack_sizes, href_prefix) if packed else None)

    def _remember(self, s: Session, project_id: int, pending: list[tuple[str, int]]) -> None:
        """Record objects about to be uploaded through presigned URLs, not yet verified
        (a row already there, verified or not, is kept)."""
        now = self._now()
        upsert_objects(s, [{"project_id": project_id, "oid": oid, "size": size,
                            "verified": False, "kind": None, "data": None, "created": now}
                           for oid, size in pending], replace=False)

    def _about_to_store(self, caller: Caller, project: str, oid: str, size: Any
                        ) -> tuple[wire.ObjectAnswer | None, int, str]:
        """Check an upload of object ``oid`` of ``size`` bytes to ``project`` (writers):
        return the answer when the project holds it verified already (else None), the
        project's id and its storage's URL. Raises BadInput for a bad id or size, NotFound,
        Forbidden."""
        check_id(oid)
        if type(size) is not int or size < 0:
            raise BadInput(f"object {oid}: size must be a non-negative integer")
        with self.db.read() as s:
            proj = self._project(s, caller, project, "writer")
            row = self._object_rows(s, proj.id, [oid]).get(oid)
            project_id, storage_url = proj.id, proj.storage_url
        held: wire.ObjectAnswer | None = (
            {"id": oid, "size": row.size, "verified": True}
            if row is not None and row.verified else None)
        return held, project_id, storage_url

    def put_object(self, caller: Caller, project: str, oid: str, stream: BinaryIO,
                   size: int) -> wire.ObjectAnswer:
        """Store an object from ``stream`` (writers), hashing it on the way through.

        Returns ``{"id","size","verified": True}``. When the bytes are not ``size`` long or
        do not hash to ``oid`` they are deleted and ValidationFailed says which.
        """
        held, project_id, storage_url = self._about_to_store(caller, project, oid, size)
        if held is not None:
            return held
        storage = self._storage(storage_url)
        reader = _HashingReader(stream)
        try:
            created = storage.put(object_key(oid), cast(BinaryIO, reader), size)
        except BadInput as e:  # the backend's SizeMismatch: nothing was stored
            raise ValidationFailed(
                f"upload of object {oid} was rejected: {e.message}",
                "upload it again", problems=[f"size mismatch: {oid}"]) from e
        if not created:
            reader.drain()
        digest, count = reader.hexdigest(), reader.count
        if count != size or digest != oid:
            if created:
                storage.delete(object_key(oid))
            what = (f"{count} bytes arrived, {size} were announced" if count != size
                    else f"the bytes hash to {digest}")
            raise ValidationFailed(
                f"upload of object {oid} does not match: {what}; it was deleted",
                "upload it again; if this repeats, run 'ama store verify'",
                problems=[f"{'size' if count != size else 'hash'} mismatch: {oid}"])
        try:
            intact = created or self._stored_matches(storage, oid, size)
        except ObjectMissing:  # the server's garbage collection freed it meanwhile
            raise ValidationFailed(
                f"the stored copy of object {oid} was removed while this upload checked it",
                "upload it again", problems=[f"missing object {oid}"]) from None
        if not intact:
            storage.delete(object_key(oid))
            raise ValidationFailed(
                f"the stored copy of object {oid} was corrupt and has been deleted",
                "upload it again", problems=[f"hash mismatch: {oid}"])
        kind, data = reader.structured()
        self.db.run(lambda s: self._upsert_object(s, project_id, oid, size, True, kind, data))
        return {"id": oid, "size": size, "verified": True}

    @staticmethod
    def _stored_matches(storage: Backend, oid: str, size: int | None) -> bool:
        reader = _HashingReader(storage.open(object_key(oid)))
        try:
            reader.drain()
        finally:
            close = getattr(reader._stream, "close", None)
            if close:
                close()
        return reader.hexdigest() == oid and (size is None or reader.count == size)

    def open_object(self, caller: Caller, project: str, oid: str) -> tuple[BinaryIO, int]:
        """Return a stream of a verified object's bytes and its size; raises NotFound.

        The bytes are hashed as they are read. When they turn out not to be the object, the
        object is recorded as not held and :class:`ObjectCorrupt` is raised: before any byte
        for an object up to one read chunk, else from the stream's read before its last
        piece, so that no reader ever gets the whole of wrong bytes.
        """
        check_id(oid)
        with self.db.read() as s:
            proj = self._project(s, caller, project)
            row = self._object_rows(s, proj.id, [oid]).get(oid)
            project_id, storage_url = proj.id, proj.storage_url
            where = self._packed_rows(s, proj.id, [oid]).get(oid)
        if row is None or not row.verified:
            raise NotFound(f"object {oid} not found in project {project!r}",
                           "run 'ama-server fsck' if a version names it")
        size = row.size

        def corrupt(detail: str) -> ObjectCorrupt:
            # Recorded as not held: it is no longer offered, a commit naming it asks for it
            # again, a new upload replaces the bad copy, and fsck lists it until then.
            self.db.run(lambda s: s.execute(
                update(StoredObject).where(StoredObject.project_id == project_id,
                                           StoredObject.oid == oid)
                .values(verified=False)))
            return ObjectCorrupt(oid, project, detail)

        storage = self._storage(storage_url)
        stored = (storage.open(object_key(oid)) if where is None else
                  open_range(storage, pack_key(where.pid), where.offset, where.length))
        checked = _CheckedStream(stored, oid, size, corrupt)
        if size <= READ_CHUNK:
            # A small object is checked whole before any byte goes out, so its reader gets
            # a plain error answer instead of a cut-off body.
            return io.BytesIO(checked.read_all()), size
        return cast(BinaryIO, checked), size  # a file-like reader: what the app streams

    def put_object_files(self, caller: Caller, project: str,
                         files: list[tuple[str, int, str]],
                         progress: Callable[[int], None] | None = None,
                         on_bytes: Callable[[int], None] | None = None
                         ) -> wire.StoredFiles:
        """Store many objects from files on this machine in one operation (writers): the
        embedded remote's upload, whose client shares the machine.

        ``files`` holds (id, size, path). Objects the project holds verified are skipped.
        The others are stored (a ``file://`` storage reflinks or copies a file, never
        hard-links it), then the stored bytes of each are measured and hashed:
        one that is not its id is deleted and answered with an error. The verified ones are
        made durable by one storage sync, then recorded in one transaction. ``progress`` is
        called with the number of objects handled so far, ``on_bytes`` with the bytes of
        each object, or of each window of a large one, as they are checked.

        Returns ``{"objects": [{"id","size","verified": True,"stored": bool} |
        {"id","error"}]}``, one entry per file, in order; ``stored`` is False for an object
        whose bytes the storage held already (verified now, or before).
        """
        for oid, size, _ in files:
            check_id(oid)
            if not isinstance(size, int) or size < 0:
                raise BadInput(f"object {oid}: size must be a non-negative integer")
        with self.db.read() as s:
            proj = self._project(s, caller, project, "writer")
            rows = self._object_rows(s, proj.id, (oid for oid, _, _ in files))
            project_id, storage_url = proj.id, proj.storage_url
        storage = self._storage(storage_url)
        answers: dict[str, _Stored] = {}
        todo: list[tuple[str, int, str]] = []
        for oid, size, path in files:
            row = rows.get(oid)
            if row is not None and row.verified:
                answers[oid] = {"id": oid, "size": row.size, "verified": True, "stored": False}
            elif oid not in answers:
                answers[oid] = {}
                todo.append((oid, size, path))
        store_one = (self._store_local if isinstance(storage, PutsFiles)
                     else self._store_streamed)
        chunks = [todo[i:i + _BULK_CHUNK] for i in range(0, len(todo), _BULK_CHUNK)]
        done = len(files) - len(todo)

        def store_chunk(chunk: list[tuple[str, int, str]]) -> list[_Stored]:
            return [store_one(storage, oid, size, path, on_bytes)
                    for oid, size, path in chunk]

        verified: list[_Stored] = []
        with ThreadPoolExecutor(max_workers=_BULK_WORKERS) as pool:
            for chunk, results in zip(chunks, pool.map(store_chunk, chunks), strict=True):
                for (oid, _, _), answer in zip(chunk, results, strict=True):
                    answers[oid] = answer
                    if "error" not in answer:
                        verified.append(answer)
                done += len(chunk)
                if progress is not None:
                    progress(done)
        if verified:
            if isinstance(storage, Syncs):
                storage.sync()
            now = self._now()
            values: list[ObjectRow] = [
                {"project_id": project_id, "oid": a["id"], "size": a["size"], "verified": True,
                 "kind": a.pop("kind"), "data": a.pop("data"), "created": now}
                for a in verified]
            self.db.run(lambda s: upsert_objects(s, values, replace=True))
        return {"objects": [answers[oid] for oid, _, _ in files]}

    @staticmethod
    def _store_local(storage: Any, oid: str, size: int, path: str,
                     on_bytes: Callable[[int], None] | None = None) -> _Stored:
        """Store one file into a storage with local files and check what is stored.

        ``on_bytes`` is told a large copy's bytes as half of them are copied and half
        checked, so that a bar moves through both (a reflink's as they are checked); in
        all, each object's size once."""
        key = object_key(oid)
        told, share = 0, 2  # a reflink copies nothing: the check is then all of it

        def half(n: int) -> None:
            nonlocal told
            n = min(n // share, size - told)
            told += n
            if on_bytes is not None:
                on_bytes(n)

        try:
            created = storage.put_file(key, path, size,
                                       None if on_bytes is None or size < MMAP_THRESHOLD
                                       else half)
        except BadInput as e:  # SizeMismatch: nothing was stored
            return {"id": oid, "error": {"code": 422, "message":
                                         f"upload of object {oid} was rejected: {e.message}"}}
        except FileNotFoundError:
            return {"id": oid, "error": {"code": 404, "message":
                                         f"object {oid} is not at {path}"}}
        if not told:
            share = 1
        # Bytes already in storage prove nothing about the sender: the file handed in must
        # itself be the object, as a streamed upload's bytes are hashed on the way in.
        if not created and hash_file(path, size) != oid:
            return {"id": oid, "error": {"code": 422, "message":
                                         f"upload of object {oid} does not match: the file "
                                         f"{path} does not hash to it"}}
        stored = storage.local_path(key)
        kind: str | None = None
        data: bytes | None = None
        if size < MMAP_THRESHOLD or (size <= KEEP_LIMIT and _structured_start(stored)):
            whole = read_small(stored, size)
            count, digest = len(whole), blake3(whole).hexdigest()
            if whole.startswith((*TREE_HEADERS, _MANIFEST_START)):
                found = object_type(whole)
                if found in ("tree", "manifest"):
                    kind, data = found, whole
        else:
            count = os.stat(stored).st_size
            digest = hash_file(stored, count, None if on_bytes is None else half
                               ) if count == size else ""
        if on_bytes is not None and size > told:
            on_bytes(size - told)
        if count != size or digest != oid:
            storage.delete(key)
            what = (f"{count} bytes are stored, {size} were announced" if count != size
                    else f"the stored bytes hash to {digest}")
            return {"id": oid, "error": {"code": 422, "message":
                                         f"upload of object {oid} does not match: {what}; "
                                         "it was deleted"}}
        return {"id": oid, "size": size, "verified": True, "stored": created, "kind": kind,
                "data": data}

    def _store_streamed(self, storage: Backend, oid: str, size: int, path: str,
                        on_bytes: Callable[[int], None] | None = None) -> _Stored:
        """Store one file into any storage through its stream interface, as put_object."""
        key = object_key(oid)
        with open(path, "rb") as f:
            reader = _HashingReader(f)
            try:
                created = storage.put(key, cast(BinaryIO, reader), size)
            except BadInput as e:
                return {"id": oid, "error": {"code": 422, "message":
                                             f"upload of object {oid} was rejected: "
                                             f"{e.message}"}}
            if not created:
                reader.drain()
        if reader.count != size or reader.hexdigest() != oid or (
                not created and not self._stored_matches(storage, oid, size)):
            storage.delete(key)
            return {"id": oid, "error": {"code": 422, "message":
                                         f"upload of object {oid} does not match its id or "
                                         "size; it was deleted"}}
        kind, data = reader.structured()
        if on_bytes is not None:
            on_bytes(size)
        return {"id": oid, "size": size, "verified": True, "stored": created, "kind": kind,
                "data": data}

    def object_files(self, caller: Caller, project: str, ids: list[str]) -> wire.ObjectFiles:
        """Where the verified objects ``ids`` are on this machine (readers): the embedded
        remote's download, whose client links or copies them and re-hashes what it got.

        Returns ``{"objects": [{"id","size","path"[,"pack"]} | {"id","error"}]}`` in
        order; ``path`` is None when the project's storage has no local files (read those
        with :meth:`open_object`) and for a packed object, whose ``pack`` is then
        ``{"path","offset","length"}`` of its pack file (None without local files).
        An id the project does not hold verified is an error, as in
        :meth:`batch`.
        """
        for oid in ids:
            check_id(oid)
        with self.db.read() as s:
            proj = self._project(s, caller, project)
            rows = {row[0]: row for row in self._placed_rows(s, proj.id, ids)}
            storage_url = proj.storage_url
        storage = self._storage(storage_url)
        local = storage.local_path if isinstance(storage, HasLocalPaths) else None
        # A path per pack, not per member: 100,000 members lie in a few packs.
        pack_paths = {} if local is None else {
            pid: local(pack_key(pid)) for pid in {row.pid for row in rows.values()} if pid}
        answers: list[wire.ObjectFile] = []
        for oid in ids:
            row = rows.get(oid)
            if row is None or not row.verified:
                answers.append({"id": oid, "error": {
                    "code": 404, "message": f"object {oid} not found in project {project!r}"}})
            elif row.pid is not None:
                # The pack file and the range of it: the client hashes what it reads.
                answers.append({"id": oid, "size": row.size, "path": None, "pack": None
                                if local is None else {"path": pack_paths[row.pid],
                                                       "offset": row.offset,
                                                       "length": row.length}})
            else:
                answers.append({"id": oid, "size": row.size,
                                "path": local(object_key(oid)) if local is not None else None})
        return {"objects": answers}

    def verify_objects(self, caller: Caller, project: str, ids: list[str],
                       seconds: float | None = None) -> wire.Verification:
        """Hash objects uploaded through presigned URLs, from storage (writers).

        Only an id this project negotiated for upload (:meth:`batch` left a row for it) is
        read: bytes in storage prove nothing about who sent them, so a claim on any other
        id, or on an id another project on an overlapping storage (a legacy setup that
        ``ama-server fsck`` reports) holds, is answered exactly like an id never uploaded.

        The objects are read :data:`VERIFY_WORKERS` at a time. With ``seconds``, no object
        is begun once that long has passed (the first few always are), and those left are
        answered ``{"id", "pending": True}`` for the client to ask about again: so a call
        answers within about ``seconds`` plus one object's read, whatever the number of
        objects and the storage's distance.

        Returns ``{"objects": [{"id","size","verified": True} | {"id","error"} |
        {"id","pending": True}]}``; an object whose stored bytes do not match its id is
        deleted.
        """
        for oid in ids:
            check_id(oid)
        with self.db.read() as s:
            proj = self._project(s, caller, project, "writer")
            rows = self._object_rows(s, proj.id, ids)
            project_id, storage_url = proj.id, proj.storage_url
            others = self._held_by_neighbours(s, proj, [o for o, r in rows.items()
                                                        if not r.verified])
        storage = self._storage(storage_url)
        answers: dict[str, wire.ObjectAnswer] = {}
        todo: list[str] = []
        for oid in dict.fromkeys(ids):
            row = rows.get(oid)
            if row is not None and row.verified:
                answers[oid] = {"id": oid, "size": row.size, "verified": True}
            elif row is None or oid in others:
                answers[oid] = {"id": oid, "error": {
                    "code": 404, "message": f"object {oid} was not uploaded"}}
            else:
                answers[oid] = {}  # keeps the order asked; filled in below
                todo.append(oid)
        deadline = None if seconds is None else time.monotonic() + max(0.0, seconds)
        started = 0
        lock = threading.Lock()

        def check(oid: str) -> tuple[wire.ObjectAnswer, tuple[Any, ...] | None]:
            nonlocal started
            with lock:
                late = (deadline is not None and started >= VERIFY_WORKERS
                        and time.monotonic() > deadline)
                started += not late
            if late:
                return {"id": oid, "pending": True}, None
            return self._verify_stored(storage, oid)

        # Each read waits on the storage far more than it hashes: threads overlap the waits,
        # so a call costs about objects / VERIFY_WORKERS round trips instead of one each.
        with ThreadPoolExecutor(max_workers=min(VERIFY_WORKERS, len(todo) or 1)) as pool:
            checked = list(pool.map(check, todo))
        verified = [row for _, row in checked if row is not None]

        def record(s: Session) -> None:
            for row in verified:
                self._upsert_object(s, project_id, *row)

        if verified:
            self.db.run(record)
        for answer, _ in checked:
            answers[answer["id"]] = answer
        return {"objects": list(answers.values())}

    @staticmethod
    def _verify_stored(storage: Backend, oid: str, key: str | None = None
                       ) -> tuple[wire.ObjectAnswer, tuple[Any, ...] | None]:
        """Read and hash the stored object ``oid`` (under ``key``, by default its own):
        its answer, and the arguments of its verified row after ``project_id`` (None unless
        it matched; a mismatch is deleted). Bytes that hash to the id are the object
        whatever size an upload announced (a writer's wrong size, kept from the first
        announcement, would have had every later upload of it deleted): their count is
        recorded."""
        key = object_key(oid) if key is None else key
        try:
            stream = storage.open(key)
            # Which version of the key is read (S3's ETag, GCS's generation): bytes that hash
            # wrong are deleted only while the key still holds them. A presigned PUT is
            # create-only but outlives a delete, so two hashes of one key at once could
            # otherwise see the first delete the bad bytes, the right ones stored, and the
            # second delete those (its bad bytes put back by the URL then, and the object
            # recorded as held).
            held = getattr(stream, "tag", None)
            reader = _HashingReader(stream)
            try:
                reader.drain()
            finally:
                close = getattr(stream, "close", None)
                if close is not None:
                    close()
        except ObjectMissing:  # never stored, or the server's garbage collection freed it
            return {"id": oid, "error": {"code": 404,
                                         "message": f"object {oid} was not uploaded"}}, None
        if reader.hexdigest() != oid:
            gone = "it was deleted"
            if not isinstance(storage, Tags) or held is None or storage.tag(key) == held:
                storage.delete(key)
            else:
                gone = "other bytes stored since are left to their own check"
            return {"id": oid, "error": {
                "code": 422, "message": f"object {oid} does not match its id "
                f"({reader.count} bytes hashing to {reader.hexdigest()}); {gone}"}}, None
        kind, data = reader.structured()
        return ({"id": oid, "size": reader.count, "verified": True},
                (oid, reader.count, True, kind, data))

    def _held_by_neighbours(self, s: Session, proj: Project, ids: list[str]) -> set[str]:
        """The ``ids`` that a project whose storage overlaps ``proj``'s holds (in any state)."""
        if not ids:
            return set()
        held: set[str] = set()
        for other_id, other_url in s.execute(select(Project.id, Project.storage_url)
                                             .where(Project.id != proj.id)):
            if storages_overlap(proj.storage_url, other_url):
                held |= set(self._object_rows(s, other_id, ids))
        return held

    def fsck(self, project: str | None = None, repair: bool = False,
             grace: timedelta = LEFTOVER_GRACE) -> list[Problem]:
        """Check every version's objects are in storage with bytes matching their ids, that
        no two projects share a storage, and what unfinished uploads left in storage.

        Returns one problem per object: ``{"project","object","problem","versions"}``
        (``problem`` is ``missing``, ``corrupt``, or ``unverified``: the bytes are right but
        the object is recorded as not held, as after a read found it corrupt and it was then
        restored); one per path that versions hold and no asset directory may
        (:func:`~ama.plumbing.objects.path_problems`: ``object`` is the path, ``problem`` is
        ``unsafe-path``), which an older server recorded; one per project whose storage
        overlaps another's (``object`` is its storage URL, ``problem`` is
        ``shared-storage``, ``versions`` names the other projects); and one per leftover of
        an upload older than ``grace`` (``object`` is its name in the storage, ``problem``
        is ``leftover``, ``versions`` is empty), younger ones being uploads that may still
        be running; a pack announced longer ago and never checked is such a leftover too
        (``object`` is its key), or ``unchecked-pack`` when it was checked once before
        (``repair`` checks it again). Each pack the project holds is read whole: one
        problem per pack missing from storage (``missing-pack``) or damaged, ill-formed
        or out of step with the rows of where its members lie (``corrupt-pack``, with
        ``detail``), and its members that versions hold are ``corrupt``.
        With ``repair``, leftovers are removed and unverified objects recorded as held
        again; each such problem has ``"repaired": True``.
        """
        problems: list[Problem] = []
        with self.db.read() as s:
            query = select(Project).order_by(Project.name)
            if project is not None:
                query = query.where(Project.name == project)
            projects = s.scalars(query).all()
            if project is not None and not projects:
                raise NotFound(f"project {project!r} not found",
                               "run 'ama-server project list' to see every project")
            plan = []
            for proj in projects:
                holders: dict[str, list[str]] = {}
                unsafe: dict[str, list[str]] = {}
                for version in self._versions(s, AssetClass.project_id == proj.id):
                    name = f"{version['name']}/{version['version']}"
                    holders.setdefault(version["manifest"], []).append(name)
                    _, files, missing = self._reachable(s, proj.id, version["manifest"])
                    # Recorded by a server that did not check them; clients refuse them.
                    for path, _why in path_problems(p for p, _, _ in files):
                        unsafe.setdefault(path, []).append(name)
                    for problem in missing:
                        oid = next(w for w in problem.split() if is_id(w))
                        holders.setdefault(oid, []).append(name)
                    for _, oid, _ in files:
                        holders.setdefault(oid, []).append(name)
                    tree_ids = self._tree_ids(s, proj.id, version["tree"])
                    for oid in tree_ids:
                        holders.setdefault(oid, []).append(name)
                sizes = self._object_rows(s, proj.id, holders)
                packed = self._packed_rows(s, proj.id, holders)
                plan.append((proj.id, proj.name, proj.storage_url, holders, sizes, packed))
                problems += [{"project": proj.name, "object": path, "problem": "unsafe-path",
                              "versions": sorted(names)}
                             for path, names in sorted(unsafe.items())]
            every = s.execute(select(Project.name, Project.storage_url)).all()
        for _, name, url, _, _, _ in plan:
            # A legacy server let projects share a storage; each must move to its own.
            sharing = sorted(other for other, other_url in every
                             if other != name and storages_overlap(url, other_url))
            if sharing:
                problems.append({"project": name, "object": url, "problem": "shared-storage",
                                 "versions": sharing})
        listed: set[str] = set()
        for project_id, name, url, holders, sizes, packed in plan:
            storage = self._storage(url)
            if url not in listed:  # a storage two legacy projects share is walked once
                listed.add(url)
                problems += self._leftovers(name, storage, repair, grace)
            problems += self._abandoned_packs(project_id, name, url, repair, grace)
            pack_problems, damaged = self._fsck_packs(project_id, name, storage)
            problems += pack_problems
            restored: list[str] = []
            for oid, versions in sorted(holders.items()):
                entry: Problem = {"project": name, "object": oid,
                                  "versions": sorted(set(versions))}
                row = sizes.get(oid)
                if oid in packed:  # checked with its pack, read once for all its members
                    if oid in damaged:
                        problems.append({**entry, "problem": "corrupt"})
                    elif row is not None and not row.verified:
                        problems.append({**entry, "problem": "unverified", "repaired": repair})
                        restored.append(oid)
                    continue
                if storage.stat(object_key(oid)) is None:
                    problems.append({**entry, "problem": "missing"})
                elif row is None or not self._stored_matches(storage, oid, row.size):
                    problems.append({**entry, "problem": "corrupt"})
                elif not row.verified:
                    problems.append({**entry, "problem": "unverified", "repaired": repair})
                    restored.append(oid)
            if repair and restored:
                self.db.run(partial(_mark_verified, project_id, restored))
        return problems

    def _leftovers(self, project: str, storage: Backend, repair: bool,
                   grace: timedelta) -> list[Problem]:
        """The leftovers older than ``grace`` in ``storage``, removed with ``repair``."""
        found: list[Problem] = []
        cutoff = self._clock().astimezone(timezone.utc) - grace
        for leftover in storage.leftovers():
            if leftover.modified > cutoff:
                continue  # perhaps an upload still running
            if repair:
                storage.remove_leftover(leftover)
            found.append({"project": project, "object": leftover.name, "problem": "leftover",
                          "versions": [], "repaired": repair})
        return found

    def _tree_ids(self, s: Session, project_id: int, root: str) -> list[str]:
        seen: list[str] = []
        level = [root]
        while level:
            seen += level
            rows = self._object_rows(s, project_id, level, with_data=True)
            level = [e.id for r in rows.values() if r.data is not None
                     for e in Tree.deserialize(r.data).entries if e.type == "tree"]
        return seen
