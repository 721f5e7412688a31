"""Packs on the remote: announcing, storing and checking a pack of small objects, where a
packed object lies, reading one back, and fsck of a project's packs (ama-format(5) PACKS,
ama-protocol(7) Packs).

A pack's members become present only in the one transaction that records them after the
whole pack was read and every member hashed to its id; a pack with any bad member is
deleted and none of its members is recorded from it.
"""

from __future__ import annotations

import operator
from collections.abc import Iterable
from datetime import timedelta
from typing import Any, BinaryIO, TypedDict

from sqlalchemy import Row, delete, select, update
from sqlalchemy.orm import Session

from ama.plumbing import pack, wire
from ama.plumbing.crash import hold_point
from ama.plumbing.hashing import check_id
from ama.plumbing.objects import TREE_HEADERS, object_type
from ama_remote.errors import BadInput, NotFound, ValidationFailed
from ama_remote.models import Pack, PackedObject, Project, StoredObject
from ama_remote.service.common import (
    Caller,
    ObjectRow,
    Problem,
    ServiceBase,
    id_among,
    insert_rows,
    upsert_objects,
)
from ama_remote.storage import storages_overlap
from ama_remote.storage.base import (
    Backend,
    Bounded,
    ObjectMissing,
    PutsFiles,
    object_key,
)

PACK_TTL = 3600
_REFRESH_AFTER = timedelta(seconds=PACK_TTL)
_MANIFEST_START = b'{"author":'


def pack_key(pid: str) -> str:
    """Return the storage key of pack ``pid``: ``packs/ab/cdef…``. Raises InvalidId."""
    check_id(pid)
    return f"packs/{pid[:2]}/{pid[2:]}"


def open_range(storage: Backend, key: str, offset: int, length: int) -> BinaryIO:
    """A stream of ``length`` bytes of ``key`` from ``offset`` (a storage's stream may not
    seek: S3's body is read up to the range instead)."""
    stream = storage.open(key)
    if getattr(stream, "seekable", lambda: False)():
        stream.seek(offset)
    else:
        skip = offset
        while skip and (chunk := stream.read(min(skip, 1 << 20))):
            skip -= len(chunk)
    return Bounded(stream, length)  # type: ignore[return-value]


class Packs(ServiceBase):
    """Packs of small objects: announce, store, check, locate, fsck."""

    @staticmethod
    def _packed_rows(s: Session, project_id: int, ids: Iterable[str]
                     ) -> dict[str, Row[str, str, int, int]]:
        """oid -> row (oid, pid, offset, length) for the ids the project holds in packs;
        one query whatever the number of ids, as ``_object_rows``."""
        unique = sorted(set(ids))
        if not unique:
            return {}
        query = select(PackedObject.oid, PackedObject.pid, PackedObject.offset,
                       PackedObject.length).where(PackedObject.project_id == project_id,
                                                  id_among(s, PackedObject.oid, unique))
        return {row[0]: row for row in s.execute(query)}

    @staticmethod
    def _placed_rows(s: Session, project_id: int, ids: list[str]) -> list[Any]:
        """Rows (oid, size, verified, pid, offset, length) of the ids the project holds,
        with where each lies in a pack (pid None for a loose object): one query, the
        objects joined to their places, where a download would otherwise ask twice."""
        unique = sorted(set(ids))
        if not unique:
            return []
        query = (select(StoredObject.oid, StoredObject.size, StoredObject.verified,
                        PackedObject.pid, PackedObject.offset, PackedObject.length)
                 .outerjoin(PackedObject, (PackedObject.project_id == StoredObject.project_id)
                            & (PackedObject.oid == StoredObject.oid))
                 .where(StoredObject.project_id == project_id,
                        id_among(s, StoredObject.oid, unique)))
        return list(s.execute(query))

    def announce_pack(self, caller: Caller, project: str, pid: str, size: int,
                      href_prefix: str = "") -> wire.PackAnswer:
        """Say how to upload pack ``pid`` of ``size`` bytes (writers): ``{"id","size",
        "actions": {"upload"[, "verify"]}}``, or ``{"id","size","objects"}`` when the
        project holds it already."""
        check_id(pid)
        if not isinstance(size, int) or size < pack.HEADER_SIZE:
            raise BadInput(f"pack {pid}: size must be an integer of at least "
                           f"{pack.HEADER_SIZE}")
        with self.db.read() as s:
            proj = self._project(s, caller, project, "writer")
            row = s.get(Pack, (proj.id, pid))
            project_id, storage_url = proj.id, proj.storage_url
        stale = False
        if row is not None and row.verified:
            if self._holds_members(project_id, storage_url, pid, row.size):
                return {"id": pid, "size": row.size, "objects": row.count}
            # gc freed some of its objects (they may have lain in another pack), or the
            # pack itself: upload and check it again, which records them all.
            stale = True
        if row is None or stale or not row.verified:  # new, stale, or sent again: young again
            now = self._now()

            def announce(s: Session) -> None:
                # Ordered against gc's mark and sweep of a pack of the same name, which take
                # the lock exclusively: they either see this row unverified and keep the
                # pack, or are done before the upload writes it.
                from ama_remote.service.gc import lock_against_marking  # gc imports this module

                lock_against_marking(s)
                current = s.get(Pack, (project_id, pid))
                if current is None:
                    s.add(Pack(project_id=project_id, pid=pid, size=size, count=0,
                               verified=False, created=now))
                else:
                    if stale:
                        current.verified = False
                    # An upload of it runs again: young again, so that fsck leaves it alone
                    # (abandoned_packs). Not within the hour its URLs live: the date is what
                    # a check under way records under (verify_pack), and another upload of
                    # the same pack announcing it meanwhile must not make that check fail.
                    if not current.verified and current.created < now - _REFRESH_AFTER:
                        current.created = now
            self.db.run(announce)
        base = f"{href_prefix}/v1/projects/{project}/packs/{pid}"
        action = self._storage(storage_url).presign(pack_key(pid), "PUT", PACK_TTL, size)
        if not action:
            return {"id": pid, "size": size, "actions": {"upload": {
                "href": base, "method": "PUT", "headers": {}, "expires": PACK_TTL}}}
        return {"id": pid, "size": size, "actions": {
            "upload": action,
            "verify": {"href": base + "/verify", "method": "POST", "headers": {},
                       "expires": PACK_TTL}}}

    def _holds_members(self, project_id: int, storage_url: str, pid: str, size: int) -> bool:
        """Whether pack ``pid`` is in storage and the project holds every object its index
        lists (one read of the index)."""
        try:
            stream = self._storage(storage_url).open(pack_key(pid))
        except ObjectMissing:
            return False
        try:
            ids = [m.id for m in pack.read_index(stream, pid, size)]
        except (pack.BadPack, ObjectMissing):
            return False
        finally:
            stream.close()
        with self.db.read() as s:
            held = {oid for oid, row in self._object_rows(s, project_id, ids).items()
                    if row.verified}
        return held.issuperset(ids)

    def put_pack(self, caller: Caller, project: str, pid: str, stream: BinaryIO,
                 size: int) -> wire.PackAnswer:
        """Store pack ``pid`` from ``stream`` (writers), then check it as
        :meth:`verify_pack` does and answer the same."""
        self.announce_pack(caller, project, pid, size)
        with self.db.read() as s:
            proj = self._project(s, caller, project, "writer")
            storage_url = proj.storage_url
        storage = self._storage(storage_url)
        try:
            storage.put(pack_key(pid), stream, size)
        except BadInput as e:  # the backend's SizeMismatch: nothing was stored
            raise ValidationFailed(f"upload of pack {pid} was rejected: {e.message}",
                                   "upload it again", problems=[f"size mismatch: {pid}"]) from e
        return self.verify_pack(caller, project, pid)

    def put_pack_file(self, caller: Caller, project: str, pid: str, path: str,
                      size: int) -> wire.PackAnswer:
        """Store pack ``pid`` from a file on this machine (the embedded remote: a ``file://``
        storage reflinks or copies it), then check it as :meth:`verify_pack` does."""
        self.announce_pack(caller, project, pid, size)
        with self.db.read() as s:
            storage_url = self._project(s, caller, project, "writer").storage_url
        storage = self._storage(storage_url)
        try:
            if isinstance(storage, PutsFiles):
                storage.put_file(pack_key(pid), path, size)
            else:
                with open(path, "rb") as f:
                    storage.put(pack_key(pid), f, size)
        except BadInput as e:
            raise ValidationFailed(f"upload of pack {pid} was rejected: {e.message}",
                                   "upload it again", problems=[f"size mismatch: {pid}"]) from e
        return self.verify_pack(caller, project, pid)

    def verify_pack(self, caller: Caller, project: str, pid: str) -> wire.PackAnswer:
        """Read pack ``pid`` from storage once and check it (writers); then record, in one
        transaction, every member as held and verified and where it lies.

        Returns ``{"id","size","objects"}``. Raises NotFound for a pack the project did not
        announce or that is not in storage, and ValidationFailed (the pack deleted) when it
        is no well-formed pack named by its bytes or a member does not hash to its id."""
        check_id(pid)
        with self.db.read() as s:
            proj = self._project(s, caller, project, "writer")
            project_id, storage_url = proj.id, proj.storage_url
        return self._check_pack(project_id, project, storage_url, pid)

    def _check_pack(self, project_id: int, project: str, storage_url: str, pid: str,
                    delete_bad: bool = True) -> wire.PackAnswer:
        """:meth:`verify_pack` of project ``project_id`` (named ``project``), once the
        caller may. Without ``delete_bad`` a bad pack is refused and kept (fsck's, where
        good objects of it may be held: ``corrupt-pack`` is for an administrator)."""
        with self.db.read() as s:
            row = s.get(Pack, (project_id, pid))
            verified, count = (row.verified, row.count) if row is not None else (False, 0)
            announced = row.created if row is not None else None
        storage = self._storage(storage_url)
        key = pack_key(pid)
        size = storage.stat(key) if row is not None else None
        if row is None or size is None:
            raise NotFound(f"pack {pid} was not uploaded to project {project!r}",
                           "upload it again")
        if verified:
            return {"id": pid, "size": size, "objects": count}
        values: list[ObjectRow] = []
        now = self._now()

        def keep(member: pack.Member, data: bytes) -> None:
            kind = None
            if data.startswith((*TREE_HEADERS, _MANIFEST_START)):
                found = object_type(data)
                kind = found if found in ("tree", "manifest") else None
            values.append({"project_id": project_id, "oid": member.id, "size": member.length,
                           "verified": True, "kind": kind, "data": data if kind else None,
                           "created": now})

        stream = storage.open(key)
        try:
            members = pack.check(stream, pid, size, keep)
        except pack.BadPack as e:
            if not delete_bad:
                raise ValidationFailed(e.message, e.hint) from e
            storage.delete(key)
            self.db.run(lambda s: s.query(Pack).filter_by(project_id=project_id, pid=pid)
                        .delete())
            raise ValidationFailed(f"{e.message}; it was deleted and none of its objects "
                                   "was recorded", e.hint,
                                   problems=[f"hash mismatch: {m}" for m in e.members]
                                   or [f"bad pack: {pid}"]) from e
        finally:
            close = getattr(stream, "close", None)
            if close is not None:
                close()

        def record(s: Session) -> None:
            # The row read before the pack first, as it was: once ``ama-server fsck
            # --repair`` removed the pack as an abandoned upload (its bytes with it),
            # nothing of what was read may be recorded, even under a row an upload made
            # anew since (its announce dates it: a day or more later).
            found = s.execute(update(Pack).where(Pack.project_id == project_id,
                                                 Pack.pid == pid, Pack.created == announced)
                              .values(verified=True, count=len(members), size=size))
            if not found.rowcount:  # type: ignore[attr-defined]
                raise NotFound(f"pack {pid} was announced again, or removed as an abandoned "
                               "upload, while it was checked", "upload it again")
            upsert_objects(s, values, replace=True)
            _insert_ignore(s, [{"project_id": project_id, "oid": m.id, "pid": pid,
                                "offset": m.offset, "length": m.length} for m in members])
        hold_point("server.pack.record")
        self.db.run(record)
        return {"id": pid, "size": size, "objects": len(members)}

    def _pack_actions(self, storage: Backend, project: str, pids: set[str],
                      sizes: dict[str, int], href_prefix: str) -> dict[str, wire.PackDownload]:
        """The download action of each pack in ``pids``: ``{pid: {"size","actions"}}``."""
        answer: dict[str, wire.PackDownload] = {}
        for pid in sorted(pids):
            action = storage.presign(pack_key(pid), "GET", PACK_TTL)
            if not action:
                action = {"href": f"{href_prefix}/v1/projects/{project}/packs/{pid}",
                          "method": "GET", "headers": {}, "expires": PACK_TTL}
            answer[pid] = {"size": sizes[pid], "actions": {"download": action}}
        return answer

    def _pack_sizes(self, s: Session, project_id: int, pids: set[str]) -> dict[str, int]:
        return {pid: size for pid, size in s.execute(
            select(Pack.pid, Pack.size).where(Pack.project_id == project_id,
                                              Pack.pid.in_(sorted(pids))))}

    def open_pack(self, caller: Caller, project: str, pid: str) -> tuple[BinaryIO, int]:
        """Return a stream of a verified pack's bytes and its size (readers): the reader
        hashes it, or the members of the ranges it reads. Raises NotFound."""
        check_id(pid)
        with self.db.read() as s:
            proj = self._project(s, caller, project)
            row = s.get(Pack, (proj.id, pid))
            storage_url = proj.storage_url
            size = row.size if row is not None and row.verified else None
        if size is None:
            raise NotFound(f"pack {pid} not found in project {project!r}",
                           "negotiate the download again")
        return self._storage(storage_url).open(pack_key(pid)), size

    def _open_stored(self, s: Session, project_id: int, storage: Backend, oid: str,
                     size: int) -> BinaryIO:
        """A stream of object ``oid`` from storage, loose or from the pack that holds it."""
        where = self._packed_rows(s, project_id, [oid]).get(oid)
        if where is not None:
            return open_range(storage, pack_key(where.pid), where.offset, where.length)
        return storage.open(object_key(oid))

    def _abandoned_packs(self, project_id: int, project: str, url: str, repair: bool,
                         grace: timedelta) -> list[Problem]:
        """The packs the project announced more than ``grace`` ago and never had checked
        (an upload cut off between the two, whose bytes may or may not be stored), as
        ``leftover`` problems (``object`` is the pack's key); with ``repair``, each row
        is removed and then the key from the storage at ``url``, unless a project on that
        storage (a legacy one sharing it) holds a pack of that name.

        A pack checked once and announced again since (gc freed some of its objects) by
        an upload cut off is no leftover: its other objects still lie in it, and cannot be
        read through the server until it is checked again. It is ``unchecked-pack``, and
        ``repair`` checks it again as its upload would have (:meth:`verify_pack`)."""
        storage = self._storage(url)
        cutoff = self._now() - grace
        with self.db.read() as s:
            pids = list(s.scalars(select(Pack.pid).where(
                Pack.project_id == project_id, Pack.verified.is_(False),
                Pack.created <= cutoff).order_by(Pack.pid)))
        found: list[Problem] = []
        for pid in pids:
            def forget(s: Session, pid: str = pid) -> str | None:
                from ama_remote.service.gc import lock_against_marking  # gc imports this

                # Exclusive against announcing a pack, as gc's sweep is: an announce of it
                # in any project either comes first (and is seen below) or after the key
                # is gone. (Only to repair: a report holds up no commit.)
                if repair:
                    lock_against_marking(s, exclusive=True)
                still = s.scalar(select(Pack.pid).where(
                    Pack.project_id == project_id, Pack.pid == pid,
                    Pack.verified.is_(False), Pack.created <= cutoff)) is not None
                if not still:  # checked, or announced again, meanwhile
                    return None
                def on_this_storage(model: type[Pack] | type[PackedObject]) -> bool:
                    """Whether a project on this storage has a row of ``model`` for it."""
                    return any(storages_overlap(url, other) for other in s.scalars(
                        select(Project.storage_url).join(model, model.project_id == Project.id)
                        .where(model.pid == pid).distinct()))

                if on_this_storage(PackedObject):  # objects lie in it
                    return "unchecked-pack"
                if repair:
                    # Only while it is still unchecked and old: a check that recorded it
                    # first keeps it, and one that comes after finds no row to record.
                    gone = s.execute(delete(Pack).where(
                        Pack.project_id == project_id, Pack.pid == pid,
                        Pack.verified.is_(False), Pack.created <= cutoff))
                    if not gone.rowcount:  # type: ignore[attr-defined]
                        return None
                    if not on_this_storage(Pack):
                        storage.delete(pack_key(pid))  # in the transaction, as gc's sweep
                return "leftover"

            problem = self.db.run(forget)
            if problem is None:
                continue
            repaired = repair
            if repair and problem == "unchecked-pack":
                try:
                    self._check_pack(project_id, project, url, pid, delete_bad=False)
                except (NotFound, ValidationFailed):  # gone, or bad: kept as it is
                    repaired = False
            found.append({"project": project, "object": pack_key(pid), "problem": problem,
                          "versions": [], "repaired": repaired})
        return found

    def _fsck_packs(self, project_id: int, project: str, storage: Backend
                    ) -> tuple[list[Problem], set[str]]:
        """Check every verified pack of the project: in storage, well formed, each member
        hashing to its id, and its index matching the rows of where members lie. Returns
        the problems (``object`` is the pack, ``problem`` is ``missing-pack`` or
        ``corrupt-pack``) and the ids of the members of damaged packs."""
        problems: list[Problem] = []
        damaged: set[str] = set()
        with self.db.read() as s:
            packs = s.execute(select(Pack.pid, Pack.size).where(
                Pack.project_id == project_id, Pack.verified.is_(True))).all()
            placed: dict[str, dict[str, tuple[int, int]]] = {}
            for oid, pid, offset, length in s.execute(
                    select(PackedObject.oid, PackedObject.pid, PackedObject.offset,
                           PackedObject.length).where(PackedObject.project_id == project_id)):
                placed.setdefault(pid, {})[oid] = (offset, length)
        for pid, size in packs:
            rows = placed.get(pid, {})
            entry: Problem = {"project": project, "object": pid, "versions": []}
            if storage.stat(pack_key(pid)) is None:
                problems.append({**entry, "problem": "missing-pack"})
                damaged |= set(rows)
                continue
            stream = storage.open(pack_key(pid))
            detail = None
            try:
                members = pack.check(stream, pid, size)
                for m in members:
                    if m.id in rows and rows[m.id] != (m.offset, m.length):
                        detail = f"object {m.id} is not where the database says"
                listed = {m.id for m in members}
                if detail is None and not set(rows) <= listed:
                    detail = f"it lacks {len(set(rows) - listed)} object(s) the database " \
                             "places in it"
            except (pack.BadPack, ObjectMissing) as e:
                detail = getattr(e, "message", str(e))
            finally:
                stream.close()
            if detail is not None:
                problems.append({**entry, "problem": "corrupt-pack", "detail": detail})
                damaged |= set(rows)
        return problems, damaged


_PACKED_COLUMNS = ("project_id", "oid", "pid", "offset", "length")


class _PackedRow(TypedDict):
    """Where a packed object lies: a row of :class:`PackedObject`."""

    project_id: int
    oid: str
    pid: str
    offset: int
    length: int


def _insert_ignore(s: Session, values: list[_PackedRow]) -> None:
    """Insert rows of where packed objects lie; an object placed already keeps its place."""
    insert_rows(s, "packed_objects", _PACKED_COLUMNS,
                [operator.itemgetter(*_PACKED_COLUMNS)(v) for v in values], "NOTHING")
