"""The server's garbage collection: freeing stored objects that nothing references, without
ever losing one that a version, or an upload still on its way to a commit, needs.

The protocol (docs/design.md §8, ama-server-gc(1)), per storage and the projects on it:

1. *Look* (read only): every object reachable from every version of those projects is
   referenced; so is every object row (uploaded, or negotiated for a presigned upload)
   younger than the grace period. Every other object row and every stored key is a
   candidate.
2. *Mark* (one write transaction, exclusive against commits): versions committed since the
   look are walked too and their objects dropped from the candidates, as are objects whose
   row turned young again; the candidates' rows are deleted (a negotiation asks for them
   again, a commit finds them missing) and a mark is recorded in each project.
3. *Sweep* (write transactions of a few hundred objects): an object is deleted from storage
   only while every project on the storage still marks it and none holds a row for it
   again; its marks then record when it was swept.

A commit takes the same lock as step 2 in shared mode and looks for marks on the objects
it reaches (:func:`marked`); finding one, it gives the transaction up and
:func:`recheck` reads storage: bytes there lift the mark (the sweep then leaves
them), bytes gone drop the project's row, and the commit fails with the objects missing,
which ``ama upload`` sends again. So a version never names an object gc deleted, and an
upload slower than the grace period costs a second upload, never a broken version.

A pack is collected whole: it is a candidate when none of the objects placed in it is
referenced or young and its rows are older than the grace period; the mark drops its rows,
its members' rows and where they lie and marks each member, and the sweep deletes its key
only while every member is still marked everywhere and no project holds the pack again. A
commit reaching a member then finds its row gone, or its mark, which the re-check settles
by reading the pack's key (docs/design.md §8).

A pack with referenced members is kept, and with it its unreferenced ones, unless they
fill less than ``--repack-below`` of it: then (4. *Repack*, after the sweep) its referenced
members are read from it, each hashed, into a new pack stored create-only, and in one
transaction exclusive against commits their places move to the new pack while the other
members' rows are forgotten, unless the pack changed or one of those was referenced or sent
again since the look. The old pack is retired, a pack that holds nothing as old as the
repack, and so freed whole by a run once the grace period has passed: a download told to
read it still finds it until then. A commit reaching a forgotten member finds its row gone
and fails with it missing; the upload sends it again.
"""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from sqlalchemy import delete, select, text, update
from sqlalchemy.orm import Session

from ama.plumbing import pack
from ama.plumbing.hashing import is_id
from ama.plumbing.objects import InvalidObject, Manifest
from ama_remote.models import (
    Asset,
    AssetClass,
    GcMark,
    Pack,
    PackedObject,
    Project,
    StoredObject,
    Version,
)
from ama_remote.service.common import ServiceBase, _tree_entries
from ama_remote.service.packs import pack_key
from ama_remote.storage.base import Backend, ObjectMissing, object_key

GC_GRACE = timedelta(days=7)
# A pack is repacked when its referenced members fill less than this share of it.
REPACK_BELOW = 0.5
# The PostgreSQL advisory lock that orders gc's mark (exclusive) against commits (shared).
GC_LOCK = 7232
_SWEEP_BATCH = 200
_IN_BATCH = 1000


def lock_against_marking(s: Session, exclusive: bool = False) -> None:
    """Order this transaction against gc's mark step: a commit takes it shared, the mark
    exclusive. SQLite needs nothing: its write transactions already run one at a time."""
    if s.get_bind().dialect.name == "postgresql":
        function = "pg_advisory_xact_lock" if exclusive else "pg_advisory_xact_lock_shared"
        s.execute(text(f"SELECT {function}({GC_LOCK})"))


def marked(s: Session, project_id: int, ids: Iterable[str]) -> list[str]:
    """The ``ids`` that gc has marked or swept in the project (one cheap query when it
    has marked nothing)."""
    if s.scalar(select(GcMark.oid).where(GcMark.project_id == project_id).limit(1)) is None:
        return []
    unique = sorted(set(ids))
    found: list[str] = []
    for start in range(0, len(unique), _IN_BATCH):
        found += s.scalars(select(GcMark.oid).where(
            GcMark.project_id == project_id,
            GcMark.oid.in_(unique[start:start + _IN_BATCH]))).all()
    return found


@dataclass
class Collection:
    """One storage, the projects on it, and what gc's look found there: what its mark and
    sweep work on."""

    url: str
    project_ids: list[int]
    names: list[str]
    candidates: dict[str, int] = field(default_factory=dict)  # oid -> bytes
    packs: dict[str, int] = field(default_factory=dict)  # pid -> bytes, candidates whole
    repacks: dict[str, Repack] = field(default_factory=dict)  # pid -> what to keep of it
    seen_version: int = 0


@dataclass
class Repack:
    """A pack whose referenced members fill less than the share ``--repack-below`` of it:
    they are copied into a new pack and the rest freed with the old one."""

    size: int
    live: dict[str, int]  # oid -> bytes, the members kept
    dead: set[str]

    @property
    def reclaimable(self) -> int:
        return self.size - sum(self.live.values())


@dataclass
class Marked:
    """What gc's mark condemned: the objects, and each pack with its members, that its
    sweep deletes while they are still marked."""

    objects: list[str]
    packs: dict[str, list[str]]


def recheck(base: ServiceBase, project_id: int, storage_url: str,
            ids: list[str]) -> list[str]:
    """Settle gc's marks on ``ids``, objects a commit in the project reaches: an object whose
    bytes are in storage loses its mark (gc will not sweep it); one whose bytes are gone
    loses its row, so a negotiation asks for it again. Returns the ids whose bytes are gone.
    """
    storage = base._storage(storage_url)

    def work(s: Session, chunk: list[str]) -> list[str]:
        gone = []
        vanished: set[str] = set()
        # An object may have come back in a pack since gc freed its loose bytes: it is
        # there while its verified pack is.
        packed = dict(s.execute(
            select(PackedObject.oid, PackedObject.pid)
            .join(Pack, (Pack.project_id == PackedObject.project_id)
                  & (Pack.pid == PackedObject.pid))
            .where(PackedObject.project_id == project_id, PackedObject.oid.in_(chunk),
                   Pack.verified.is_(True))).all())
        for mark in s.scalars(select(GcMark).where(
                GcMark.project_id == project_id, GcMark.oid.in_(chunk)).with_for_update()):
            pid = packed.get(mark.oid)
            if storage.stat(object_key(mark.oid)) is None and (
                    pid is None or storage.stat(pack_key(pid)) is None):
                gone.append(mark.oid)
                if pid is not None:
                    vanished.add(pid)
            else:
                s.delete(mark)
        if gone:
            s.execute(delete(StoredObject).where(StoredObject.project_id == project_id,
                                                 StoredObject.oid.in_(gone)))
        if vanished:
            # A pack gc swept as an upload sent it again: forget it whole, or announcing
            # it would answer that the project holds it and nothing would send it again.
            s.execute(delete(PackedObject).where(PackedObject.project_id == project_id,
                                                 PackedObject.pid.in_(vanished)))
            s.execute(delete(Pack).where(Pack.project_id == project_id,
                                         Pack.pid.in_(vanished)))
        return gone

    found: list[str] = []
    for start in range(0, len(ids), _IN_BATCH):
        chunk = ids[start:start + _IN_BATCH]
        found += base.db.run(lambda s, chunk=chunk: work(s, chunk))  # type: ignore[misc]
    return found


class Collecting(ServiceBase):
    """The server's garbage collection (``ama-server gc``)."""

    def gc(self, grace: timedelta = GC_GRACE, dry_run: bool = False,
           repack_below: float = REPACK_BELOW) -> dict[str, Any]:
        """Free the stored objects that no version of any project on their storage
        references, and that no upload younger than ``grace`` has sent or announced.

        Returns ``{"dry_run", "storages": [{"storage", "projects", "objects", "bytes",
        "freed", "freed_bytes", "packs", "pack_bytes", "freed_packs",
        "freed_pack_bytes"}]}``: ``objects``/``bytes`` were found unreferenced (what a
        dry run would free), ``freed``/``freed_bytes`` were deleted; ``packs``,
        ``pack_bytes``, ``freed_packs`` and ``freed_pack_bytes`` say the same of the packs
        none of whose objects is referenced, which go whole. Stored keys no project
        has a row for (what an upload cut off may leave) are freed once they were marked
        at least ``grace`` ago, by an earlier run unless ``grace`` is zero.

        A pack whose referenced (or young) members fill less than ``repack_below`` of it
        (0 turns this off) has them copied into a new pack (:meth:`repack`): ``repacks``
        and ``repack_bytes`` count such packs and the bytes of their other members;
        ``repacked`` and ``repacked_bytes`` those repacked, whose old packs a later run
        frees once the grace period has passed; ``refused`` names each pack that could
        not be, and why (a damaged pack stays, for ``ama-server fsck``).
        """
        report = []
        for group in self.look(grace, repack_below):
            freed = (0, 0, 0, 0) if dry_run else self.sweep(group, self.mark(group, grace))
            repacked, repacked_bytes, refused = (0, 0, []) if dry_run else \
                self.repack(group, grace)
            report.append({"storage": group.url, "projects": group.names,
                           "objects": len(group.candidates),
                           "bytes": sum(group.candidates.values()),
                           "freed": freed[0], "freed_bytes": freed[1],
                           "packs": len(group.packs), "pack_bytes": sum(group.packs.values()),
                           "freed_packs": freed[2], "freed_pack_bytes": freed[3],
                           "repacks": len(group.repacks),
                           "repack_bytes": sum(r.reclaimable for r in group.repacks.values()),
                           "repacked": repacked, "repacked_bytes": repacked_bytes,
                           "refused": refused})
        return {"dry_run": dry_run, "storages": report}

    # -- step 1 --

    def look(self, grace: timedelta = GC_GRACE, repack_below: float = 0.0
             ) -> list[Collection]:
        """Step 1, read only: per storage, the objects and packs that nothing references
        and that no upload younger than ``grace`` has sent or announced, and the packs
        whose referenced members fill less than ``repack_below`` of them."""
        with self.db.read() as s:
            groups: dict[str, Collection] = {}
            for proj in s.scalars(select(Project).order_by(Project.name)):
                group = groups.setdefault(proj.storage_url,
                                          Collection(proj.storage_url, [], []))
                group.project_ids.append(proj.id)
                group.names.append(proj.name)
        for group in groups.values():
            self._look(group, grace, repack_below)
        return list(groups.values())

    def _look(self, group: Collection, grace: timedelta, repack_below: float) -> None:
        storage = self._storage(group.url)
        cutoff = self._now() - grace
        group.seen_version = self.db.run(_watermark)
        with self.db.read() as s:
            referenced = self._referenced(s, group.project_ids, 0)
            rows: dict[str, tuple[int, bool, bool]] = {}  # oid -> (size, verified, young)
            for oid, size, verified, created in s.execute(
                    select(StoredObject.oid, StoredObject.size, StoredObject.verified,
                           StoredObject.created)
                    .where(StoredObject.project_id.in_(group.project_ids))):
                _, was_verified, was_young = rows.get(oid, (0, False, False))
                rows[oid] = (size, verified or was_verified, created > cutoff or was_young)
            # Packed objects are never candidates alone: a pack is freed whole or not at all.
            placed: dict[str, dict[str, int]] = {}  # pid -> the oids placed in it, bytes
            in_packs: set[str] = set()
            for oid, pid, length in s.execute(
                    select(PackedObject.oid, PackedObject.pid, PackedObject.length).where(
                        PackedObject.project_id.in_(group.project_ids))):
                placed.setdefault(pid, {})[oid] = length
                in_packs.add(oid)
            packs: dict[str, tuple[int, bool]] = {}  # pid -> (size, kept)
            for pid, size, verified, created in s.execute(
                    select(Pack.pid, Pack.size, Pack.verified, Pack.created)
                    .where(Pack.project_id.in_(group.project_ids))):
                # A pack announced and never checked is left alone: an upload may be
                # sending it.
                kept = not verified or created > cutoff or packs.get(pid, (0, False))[1]
                packs[pid] = (size, kept)
        for pid, (size, kept) in packs.items():
            members = placed.get(pid, {})
            live = {oid: length for oid, length in members.items()
                    if oid in referenced or rows.get(oid, (0, False, False))[2]}
            if kept:
                continue
            if not live:
                group.packs[pid] = size
            elif len(live) < len(members) and sum(live.values()) < repack_below * size:
                group.repacks[pid] = Repack(size, live, set(members) - set(live))
        for oid, (size, verified, young) in rows.items():
            if not young and oid not in referenced and oid not in in_packs:
                # An upload negotiated but never verified may have sent nothing at all.
                group.candidates[oid] = size if verified else (
                    storage.stat(object_key(oid)) or 0)
        for key in storage.list("objects/"):
            oid = key.removeprefix("objects/").replace("/", "", 1)
            if not is_id(oid) or oid in referenced or oid in rows:
                continue
            stored = storage.stat(key)
            if stored is not None:
                group.candidates[oid] = stored

    def _referenced(self, s: Session, project_ids: list[int], after: int) -> set[str]:
        """Every object reachable from the versions (with an id above ``after``) of the
        projects: manifests, trees and blobs, read from the trees the database keeps."""
        found: set[str] = set()
        for project_id in project_ids:
            manifests = s.scalars(
                select(Version.manifest_id).join(Asset, Asset.id == Version.asset_id)
                .join(AssetClass, AssetClass.id == Asset.class_id)
                .where(AssetClass.project_id == project_id, Version.id > after)).all()
            found.update(manifests)
            level: set[str] = set()
            for row in self._object_rows(s, project_id, manifests, with_data=True).values():
                if row.data is not None:
                    try:
                        level.add(Manifest.deserialize(row.data).tree)
                    except InvalidObject:
                        continue
            seen: set[str] = set()
            while level:
                seen |= level
                found |= level
                below: set[str] = set()
                for row in self._object_rows(s, project_id, level, with_data=True).values():
                    if row.data is None:
                        continue
                    try:
                        entries = _tree_entries(row.data, row.kind == "tree")
                    except InvalidObject:
                        continue
                    for kind, entry_id, _size, _name in entries:
                        if kind == "tree":
                            if entry_id not in seen:
                                below.add(entry_id)
                        else:
                            found.add(entry_id)
                level = below
        return found

    # -- step 2 --

    def mark(self, group: Collection, grace: timedelta = GC_GRACE) -> Marked:
        """Step 2, in one transaction exclusive against commits: drop from ``group``'s
        candidates what a version committed since the look reaches or what turned young,
        and condemn the others. Returns what the sweep may delete."""
        if not group.candidates and not group.packs:
            return Marked([], {})
        cutoff = self._now() - grace

        def mark(s: Session) -> tuple[list[str], dict[str, list[str]]]:
            lock_against_marking(s, exclusive=True)
            newly = self._referenced(s, group.project_ids, group.seen_version)
            ids = sorted(set(group.candidates) - newly)
            young: set[str] = set()
            held: set[str] = set()
            earlier: dict[str, Any] = {}
            for start in range(0, len(ids), _IN_BATCH):
                chunk = ids[start:start + _IN_BATCH]
                for oid, created in s.execute(
                        select(StoredObject.oid, StoredObject.created).where(
                            StoredObject.project_id.in_(group.project_ids),
                            StoredObject.oid.in_(chunk))):
                    held.add(oid)
                    if created > cutoff:
                        young.add(oid)
                for oid, when in s.execute(select(GcMark.oid, GcMark.marked).where(
                        GcMark.project_id.in_(group.project_ids), GcMark.oid.in_(chunk),
                        GcMark.swept.is_(None))):
                    earlier[oid] = min(when, earlier.get(oid, when))
            now = self._now()
            chosen = [oid for oid in ids if oid not in young]
            sweep = []
            for start in range(0, len(chosen), _IN_BATCH):
                chunk = chosen[start:start + _IN_BATCH]
                _forget(s, group.project_ids, chunk)
                for oid in chunk:
                    # A key no project had a row for may be an upload writing it right now:
                    # it goes only once marked for the grace period (its mark keeps its age).
                    since = earlier.get(oid, now) if oid not in held else now
                    if oid in held or since <= cutoff:
                        sweep.append(oid)
                    s.add_all(GcMark(project_id=pid, oid=oid, marked=since, swept=None)
                              for pid in group.project_ids)
            packs = self._mark_packs(s, group, newly, cutoff, set(chosen), now)
            return sweep, packs

        return Marked(*self.db.run(mark))

    # -- step 3 --

    def sweep(self, group: Collection, marked: Marked) -> tuple[int, int, int, int]:
        """Step 3: delete from storage what ``marked`` condemned and is still marked in
        every project, a few hundred objects per transaction. Returns the objects, bytes,
        packs and pack bytes freed."""
        freed = freed_bytes = 0
        storage = self._storage(group.url)
        for start in range(0, len(marked.objects), _SWEEP_BATCH):
            chunk = marked.objects[start:start + _SWEEP_BATCH]

            def sweep(s: Session, chunk: list[str] = chunk) -> list[str]:
                marks: dict[str, int] = {}
                for oid in s.scalars(select(GcMark.oid).where(
                        GcMark.project_id.in_(group.project_ids), GcMark.oid.in_(chunk),
                        GcMark.swept.is_(None)).with_for_update()):
                    marks[oid] = marks.get(oid, 0) + 1
                held = set(s.scalars(select(StoredObject.oid).where(
                    StoredObject.project_id.in_(group.project_ids),
                    StoredObject.oid.in_(chunk))))
                gone = [oid for oid in chunk
                        if marks.get(oid) == len(group.project_ids) and oid not in held]
                for oid in gone:
                    # Inside the transaction: a commit's re-check waits for it, then finds
                    # the bytes gone.
                    storage.delete(object_key(oid))
                if gone:
                    s.execute(update(GcMark).where(
                        GcMark.project_id.in_(group.project_ids), GcMark.oid.in_(gone))
                        .values(swept=self._now()))
                return gone

            gone = self.db.run(sweep)
            freed += len(gone)
            freed_bytes += sum(group.candidates[oid] for oid in gone)
        freed_packs = freed_pack_bytes = 0
        for pid, members in marked.packs.items():
            if self.db.run(lambda s, pid=pid, members=members:  # type: ignore[misc]
                           self._sweep_pack(s, group, pid, members)):
                freed_packs += 1
                freed_pack_bytes += group.packs[pid]
        return freed, freed_bytes, freed_packs, freed_pack_bytes

    # -- step 4 --

    def repack(self, group: Collection, grace: timedelta = GC_GRACE
               ) -> tuple[int, int, list[str]]:
        """Step 4: copy the referenced members of each of ``group.repacks`` into a new pack
        and move their places there, forgetting the others; the old pack is retired (a
        pack with no member, as old as now), which a later run frees whole once the grace
        period has passed, so a download that was told to read the old pack still can.
        Returns the packs repacked, the bytes their retirement frees, and what was
        refused (a pack damaged in storage stays as it is)."""
        repacked = freed = 0
        refused: list[str] = []
        storage = self._storage(group.url)
        for pid, plan in sorted(group.repacks.items()):
            with tempfile.TemporaryDirectory(prefix="ama-repack-") as folder:
                try:
                    with contextlib.closing(storage.open(pack_key(pid))) as stream:
                        new, path, size, members = pack.rewrite(
                            stream, pid, plan.size, set(plan.live), folder)
                except pack.BadPack as e:
                    refused.append(f"{e.message}; it was not repacked")
                    continue
                except ObjectMissing:
                    refused.append(f"pack {pid} is not in storage; it was not repacked")
                    continue
                with open(path, "rb") as f:
                    created = storage.put(pack_key(new), f, size)
            if not created and not self._stored_whole(storage, new, size):
                # Bytes already under the new pack's name (an upload's, another gc run's,
                # or damage) are moved onto only once read and found to be that pack.
                refused.append(f"pack {new} in storage is not the pack {pid} repacks "
                               "into; it was not repacked")
                continue
            if self.db.run(lambda s, pid=pid, plan=plan, new=new, size=size,  # type: ignore[misc]
                           members=members: self._switch(s, group, grace, pid, plan, new,
                                                         size, members)):
                repacked += 1
                freed += plan.size - size
            elif created:
                # A version or an upload took one of the others since the look: the pack
                # stays as it is, and the copy goes unless something points to it now.
                self.db.run(lambda s, new=new: self._drop_copy(s, group, new))  # type: ignore[misc]
        return repacked, freed, refused

    @staticmethod
    def _stored_whole(storage: Backend, pid: str, size: int) -> bool:
        """Whether the bytes under pack ``pid``'s key are that pack, read and checked whole."""
        try:
            with contextlib.closing(storage.open(pack_key(pid))) as stream:
                pack.check(stream, pid, size)
        except (pack.BadPack, ObjectMissing):
            return False
        return True

    def _drop_copy(self, s: Session, group: Collection, new: str) -> None:
        """Delete the new pack ``new`` a refused repack wrote, unless a project of the
        storage holds it now (another gc run switched to the same bytes, or an upload
        announced them): exclusive against switches and announcements."""
        lock_against_marking(s, exclusive=True)
        if s.scalar(select(Pack.pid).where(Pack.project_id.in_(group.project_ids),
                                           Pack.pid == new).limit(1)) is None:
            self._storage(group.url).delete(pack_key(new))

    def _switch(self, s: Session, group: Collection, grace: timedelta, pid: str,
                plan: Repack, new: str, size: int, members: list[pack.Member]) -> bool:
        """In one transaction exclusive against commits: unless pack ``pid`` changed or one
        of the members it loses was referenced or sent again since the look, place its kept
        members in pack ``new`` and forget the others. Returns whether it did."""
        lock_against_marking(s, exclusive=True)
        ids = group.project_ids
        rows = s.execute(select(PackedObject.project_id, PackedObject.oid).where(
            PackedObject.project_id.in_(ids), PackedObject.pid == pid)).all()
        if {oid for _, oid in rows} != set(plan.live) | plan.dead:
            return False
        olds = s.execute(select(Pack.project_id, Pack.verified).where(
            Pack.project_id.in_(ids), Pack.pid == pid)).all()
        if not olds or not all(verified for _, verified in olds):
            return False  # an upload is sending it again
        if self._referenced(s, ids, group.seen_version) & plan.dead:
            return False
        dead = sorted(plan.dead)
        cutoff = self._now() - grace
        for start in range(0, len(dead), _IN_BATCH):
            if s.scalar(select(StoredObject.oid).where(
                    StoredObject.project_id.in_(ids),
                    StoredObject.oid.in_(dead[start:start + _IN_BATCH]),
                    StoredObject.created > cutoff).limit(1)) is not None:
                return False
        if s.scalar(select(Pack.pid).where(Pack.project_id.in_(ids), Pack.pid == new,
                                           Pack.verified.is_(False)).limit(1)) is not None:
            return False  # the same bytes announced by an upload: let it finish
        if self._storage(group.url).stat(pack_key(new)) is None:
            return False  # a refused run's copy, dropped since this one wrote or read it
        holders = {project_id for project_id, _ in olds}
        now = self._now()
        where = {m.id: m for m in members}
        moved = [{"project_id": project_id, "oid": oid, "pid": new,
                  "offset": where[oid].offset, "length": where[oid].length}
                 for project_id, oid in rows if oid in where]
        for start in range(0, len(moved), _IN_BATCH):
            s.execute(update(PackedObject), moved[start:start + _IN_BATCH])
        s.execute(delete(PackedObject).where(PackedObject.project_id.in_(ids),
                                             PackedObject.pid == pid))
        for start in range(0, len(dead), _IN_BATCH):
            _forget(s, ids, dead[start:start + _IN_BATCH])
        for project_id in holders:
            if s.get(Pack, (project_id, new)) is None:
                s.add(Pack(project_id=project_id, pid=new, size=size, verified=True,
                           count=sum(1 for p, oid in rows if p == project_id and oid in where),
                           created=now))
        # Retired: a pack no object lies in, as old as now, goes whole after the grace.
        s.execute(update(Pack).where(Pack.project_id.in_(ids), Pack.pid == pid)
                  .values(count=0, created=now))
        return True

    def _mark_packs(self, s: Session, group: Collection, newly: set[str], cutoff: Any,
                    taken: set[str], now: Any) -> dict[str, list[str]]:
        """In the mark's transaction: drop the candidate packs that a version committed
        since the look reaches, or that turned young, and condemn the others: delete the
        rows of the pack, of its members and of where they lie, and mark each member in
        every project. Returns pid -> its members, for the sweep."""
        condemned: dict[str, list[str]] = {}
        for pid in sorted(group.packs):
            rows = s.execute(select(Pack.verified, Pack.created).where(
                Pack.project_id.in_(group.project_ids), Pack.pid == pid)).all()
            if not rows or any(not verified or created > cutoff for verified, created in rows):
                continue
            members = sorted(set(s.scalars(select(PackedObject.oid).where(
                PackedObject.project_id.in_(group.project_ids), PackedObject.pid == pid))))
            if newly.intersection(members):
                continue
            fresh = False
            for start in range(0, len(members), _IN_BATCH):
                chunk = members[start:start + _IN_BATCH]
                fresh = fresh or s.scalar(select(StoredObject.oid).where(
                    StoredObject.project_id.in_(group.project_ids),
                    StoredObject.oid.in_(chunk), StoredObject.created > cutoff)
                    .limit(1)) is not None
            if fresh:
                continue
            s.execute(delete(PackedObject).where(
                PackedObject.project_id.in_(group.project_ids), PackedObject.pid == pid))
            s.execute(delete(Pack).where(Pack.project_id.in_(group.project_ids),
                                         Pack.pid == pid))
            new = [oid for oid in members if oid not in taken]
            taken.update(new)
            for start in range(0, len(new), _IN_BATCH):
                chunk = new[start:start + _IN_BATCH]
                _forget(s, group.project_ids, chunk)
                s.add_all(GcMark(project_id=project_id, oid=oid, marked=now, swept=None)
                          for oid in chunk for project_id in group.project_ids)
            condemned[pid] = members
        return condemned

    def _sweep_pack(self, s: Session, group: Collection, pid: str, members: list[str]) -> bool:
        """Delete pack ``pid``'s key while every member is still marked in every project (a
        commit that found its bytes lifted the mark; a mark swept with another pack holding
        the object stands) and no project holds the pack again; then record the members
        swept."""
        # Exclusive against announcing a pack: one announced after this check waits for the
        # key to be gone before its upload writes it.
        lock_against_marking(s, exclusive=True)
        counts: dict[str, int] = {}
        for start in range(0, len(members), _IN_BATCH):
            for oid in s.scalars(select(GcMark.oid).where(
                    GcMark.project_id.in_(group.project_ids),
                    GcMark.oid.in_(members[start:start + _IN_BATCH])).with_for_update()):
                counts[oid] = counts.get(oid, 0) + 1
        if any(counts.get(oid) != len(group.project_ids) for oid in members):
            return False  # a commit found a member's bytes, or gc marked it again since
        if s.scalar(select(Pack.pid).where(Pack.project_id.in_(group.project_ids),
                                           Pack.pid == pid).limit(1)) is not None:
            return False  # sent again
        # Inside the transaction: a commit's re-check of a member waits for it, then finds
        # the pack gone.
        self._storage(group.url).delete(pack_key(pid))
        for start in range(0, len(members), _IN_BATCH):
            s.execute(update(GcMark).where(
                GcMark.project_id.in_(group.project_ids),
                GcMark.oid.in_(members[start:start + _IN_BATCH]), GcMark.swept.is_(None))
                .values(swept=self._now()))
        return True


def _watermark(s: Session) -> int:
    """The highest version id, read while no commit runs: every version at or below it is
    committed and seen by the walk that follows, and any later one gets a higher id (on
    PostgreSQL a commit takes its id early, holding the lock shared, and ids do not come in
    commit order)."""
    lock_against_marking(s, exclusive=True)
    return s.scalar(select(Version.id).order_by(Version.id.desc()).limit(1)) or 0


def _forget(s: Session, project_ids: list[int], oids: list[str]) -> None:
    """Delete the rows of ``oids`` (one batch) and their marks in every project of a
    storage: the objects are gone, or about to be, from all of them at once."""
    s.execute(delete(StoredObject).where(StoredObject.project_id.in_(project_ids),
                                         StoredObject.oid.in_(oids)))
    s.execute(delete(GcMark).where(GcMark.project_id.in_(project_ids),
                                   GcMark.oid.in_(oids)))
