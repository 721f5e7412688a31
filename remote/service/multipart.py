"""Large objects in parts: opening (or finding again) an upload whose parts the client
sends in parallel to presigned URLs, joining them into the object, create-only, and
verifying it by hashing what was stored, apart from the requests of the upload.

A single PUT is refused by S3 above 5 GiB and starts again from byte 0 when cut off; in
parts, an upload cut off goes on from the parts already stored, which the storage lists.

Hashing a stored object means reading it back whole from the storage: for gigabytes far
away, about as long again as sending them. Where the parts are objects of their own that
can be read as soon as each is stored (S3: :class:`JoinsHashedParts`), the worker that
opened the upload *follows* it instead: one of its threads hashes the parts in order as
they land, while the client sends the next ones, and joins exactly the parts it read into
the object's key; nothing is read back. Elsewhere (GCS, ``file://``) the completing
request answers at once, and a background thread of the worker joins the parts aside,
hashes the join and only then gives it the object's key.

Until hashed, the object is *pending* (a row of ``verifications``, the claim of the job);
only then is it verified, and only a verified object may be in a version (a commit naming
a pending one is refused with :class:`~ama_remote.errors.StillVerifying`, which clients
retry). Bytes that hash wrong are deleted and the refusal is kept for the client's next
question. While a job runs, a thread of its worker renews its claim every
:func:`heartbeat` seconds (a third of the lease, at most :data:`HEARTBEAT`), however long
one read of storage takes; a worker that dies
leaves the object pending, and a later ``verify`` of it once the claim is older than
:func:`verify_lease`, or ``ama-server fsck --repair``, hashes it again. Where the parts
are joined aside and the worker died before the join reached the object's key, the job
taken up again joins the upload its completing request named (kept with the job); only
without one is the object "not uploaded", and its client's next upload goes on from its
parts and completes them again.
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import timedelta
from functools import partial
from typing import Any, BinaryIO, Protocol, cast, runtime_checkable

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from ama.plumbing import wire
from ama.plumbing.crash import hold_point
from ama.plumbing.errors import AmaError
from ama.plumbing.hashing import check_id
from ama_remote.config import HEARTBEAT, lease_seconds
from ama_remote.errors import BadInput, NotFound, ValidationFailed
from ama_remote.models import Project, StoredObject, Verification
from ama_remote.service.common import Caller, Problem, upsert_objects
from ama_remote.service.objects import LEFTOVER_GRACE, READ_CHUNK, Objects
from ama_remote.storage.base import (
    Backend,
    Joined,
    ObjectMissing,
    ReadsRanges,
    StorageFull,
    Tags,
    object_key,
    upload_prefix,
)

# S3 holds at most this many parts in one upload.
MAX_PARTS = 10_000
PART_TTL = 3600
# A worker that began hashing an object this long ago without finishing is taken for dead
# (killed, restarted): the next verify of the object hashes it again. A hash that takes
# longer (tens of gigabytes far away) may so be done twice, which costs reads, not safety.
VERIFY_LEASE = timedelta(minutes=15)
# The shortest time between two renewals of a claim, however short the lease.
HEARTBEAT_MIN = 0.05
# Objects of one project one worker hashes at once in the background, and of all projects:
# each waits on its storage more than it hashes, and each more costs a connection, a
# database session, up to 32 MiB held and a core's share.
VERIFY_THREADS = 2
VERIFY_THREADS_TOTAL = 8

# Uploads in parts one worker follows at once (hashing each part as it lands, on a storage
# whose parts are objects of their own): each is a thread that mostly waits, and holds up
# to PARTS_AHEAD * CHUNKS_AHEAD chunks (24 MiB) while it reads. An upload not followed is
# hashed whole once its completing request came.
FOLLOWERS = 8
# A follower looks for the part it waits for again after POLL seconds, then less often
# (up to POLL_MAX), and gives the upload up after FOLLOW_IDLE seconds without that part
# (its client is gone: its next run, or its completing request, has it followed again).
POLL, POLL_MAX = 0.2, 1.0
FOLLOW_IDLE = 900.0
# A follower streams this many parts at once (one request each, read as it is hashed),
# each holding at most CHUNKS_AHEAD chunks of READ_CHUNK bytes that wait for the hash.
PARTS_AHEAD = 3
CHUNKS_AHEAD = 8
# Parts copied into the join of the object's key at once (copies inside the storage).
JOIN_THREADS = 4

# A pending object is read back in ranges of this many bytes, this many requests in
# flight, on a storage that reads ranges: one stream from storage far away goes at one
# connection's pace; overlapped, the ranges go at the link's. At most RANGE_AHEAD ranges
# are held at once (32 MiB per object hashed).
RANGE_BYTES = 8 << 20
RANGE_AHEAD = 4

_log = logging.getLogger(__name__)


class _Background:
    """Daemon threads of this process that run the jobs requests queue, so that a request
    answers before its job is done. Each project's jobs wait in a queue of their own; at
    most ``per_project`` of one project run at once and at most ``total`` in all, a thread
    that finishes a job taking the next of the project running fewest (the projects in
    turn among equals). One project's jobs so
    never wait behind another's: a writer who completes a thousand uploads of 50 GiB
    delays only its own project's, and a busy server runs ``total`` hashes, not more.
    Threads start as jobs come and end when no job may run; a gunicorn worker forked from
    a parent that had some starts afresh (the parent's threads are not in it)."""

    def __init__(self, per_project: int, total: int) -> None:
        self._per_project = per_project
        self._total = total
        self._lock = threading.Lock()
        self._pid: int | None = None
        # Project -> its jobs waiting, in the order projects take turns (taken: to the back).
        self._queued: dict[int, deque[Callable[[], object]]] = {}
        self._running: dict[int, int] = {}
        self._threads = 0

    def submit(self, project_id: int, job: Callable[[], object]) -> None:
        with self._lock:
            if self._pid != os.getpid():
                self._pid, self._queued, self._running, self._threads = os.getpid(), {}, {}, 0
            self._queued.setdefault(project_id, deque()).append(job)
            taken = self._take() if self._threads < self._total else None
            if taken is None:
                return  # a thread that finishes a job takes it
            self._threads += 1
        try:
            threading.Thread(target=self._run, args=taken, daemon=True,
                             name="ama-verify").start()
        except BaseException:  # no thread to be had (a limit of the machine's): queued again
            with self._lock:
                self._threads -= 1
                self._done(taken[0])
                self._queued[taken[0]] = deque([taken[1], *self._queued.get(taken[0], ())])
            raise

    def _take(self) -> tuple[int, Callable[[], object]] | None:
        """The next job to run (its lock held), counted as running: of the projects with a
        job waiting, the one with fewest running (under ``per_project``), the first in
        turn of those."""
        running = self._running.get
        waiting_ones = [p for p in self._queued if running(p, 0) < self._per_project]
        if not waiting_ones:
            return None
        project_id = min(waiting_ones, key=lambda p: running(p, 0))  # the first of the least
        waiting = self._queued.pop(project_id)
        job = waiting.popleft()
        if waiting:
            self._queued[project_id] = waiting  # its next turn after the others'
        self._running[project_id] = running(project_id, 0) + 1
        return project_id, job

    def _done(self, project_id: int) -> None:
        left = self._running[project_id] - 1
        if left:
            self._running[project_id] = left
        else:
            del self._running[project_id]

    def _run(self, project_id: int, job: Callable[[], object]) -> None:
        try:
            while True:
                try:
                    job()
                except Exception:  # the object stays pending: a later verify or fsck takes it
                    _log.exception("verifying an object in the background failed")
                finally:
                    with self._lock:
                        self._done(project_id)
                with self._lock:
                    taken = self._take()
                if taken is None:
                    return
                project_id, job = taken
        finally:
            with self._lock:
                self._threads -= 1


_BACKGROUND = _Background(VERIFY_THREADS, VERIFY_THREADS_TOTAL)


class _Followers:
    """The uploads this worker follows: at most ``total`` at once, and at most half of
    them of one project, so that a writer who opens uploads and never sends their parts
    (each followed until :data:`FOLLOW_IDLE`) keeps no other project's from being
    followed."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.per_project = max(1, total // 2)
        self._lock = threading.Lock()
        self._held: dict[int, int] = {}

    def take(self, project_id: int) -> bool:
        with self._lock:
            if (sum(self._held.values()) >= self.total
                    or self._held.get(project_id, 0) >= self.per_project):
                return False
            self._held[project_id] = self._held.get(project_id, 0) + 1
            return True

    def release(self, project_id: int) -> None:
        with self._lock:
            left = self._held[project_id] - 1
            if left:
                self._held[project_id] = left
            else:
                del self._held[project_id]


_FOLLOWING = _Followers(FOLLOWERS)


def verify_lease() -> timedelta:
    """:data:`VERIFY_LEASE`, or ``AMA_VERIFY_LEASE_SECONDS`` when set (a server whose
    workers are restarted often may want its objects taken up sooner; a live job renews
    its claim three times a lease, so only a dead worker's job is taken up again). The
    server refuses to start with a value that is not a number of seconds."""
    seconds = lease_seconds()
    return VERIFY_LEASE if seconds is None else timedelta(seconds=seconds)


def heartbeat() -> float:
    """Seconds between two renewals of a job's claim: :data:`HEARTBEAT`, or a third of a
    lease shorter than three of them (a job outlives its lease only if its worker died),
    at least :data:`HEARTBEAT_MIN`; 0 for a lease of 0, under which no claim holds and none
    is renewed."""
    lease = verify_lease().total_seconds()
    return max(min(HEARTBEAT, lease / 3), HEARTBEAT_MIN) if lease > 0 else 0.0


@runtime_checkable
class UploadsInParts(Protocol):
    """A storage that takes an object in parts sent straight to it (S3 multipart, GCS
    composite uploads), and lists the parts it stored."""

    min_part: int

    def open_upload(self, key: str) -> str: ...
    def stored_parts(self, key: str, upload_id: str) -> dict[int, int]: ...
    def presign_part(self, key: str, upload_id: str, number: int, size: int,
                     expires: int) -> wire.Action | None: ...
    def abort_upload(self, key: str, upload_id: str) -> None: ...


@runtime_checkable
class JoinsAside(UploadsInParts, Protocol):
    """A storage that joins an upload's parts under a key of their own (GCS compose, a
    file of ``file://``'s own), which the server hashes before :meth:`publish_upload`
    copies (or links) it to the object's key, create-only. Only bytes that are the object
    ever reach its key: a storage that ignored the create-only precondition
    (fake-gcs-server ignores it on compose and copy) would at worst replace an object with
    the same bytes."""

    def join_upload(self, key: str, upload_id: str) -> Joined: ...
    def publish_upload(self, key: str, upload_id: str, joined: Joined) -> bool: ...


class _StorageJoiningAside(JoinsAside, Backend, Protocol):
    """A storage (:class:`Backend`) that joins aside, as the server uses it."""


@runtime_checkable
class JoinsHashedParts(UploadsInParts, Protocol):
    """A storage whose parts are objects of their own that the server reads as soon as
    each is stored (S3): the object is hashed part by part while the client still sends
    the rest (:meth:`open_part` answers the ETag of what it streams); each part read is
    copied, as it was with that ETag, into a join of the object's key
    (:meth:`copy_part`), which :meth:`finish_join` stores, create-only, once the whole
    hashed right. Parts are create-only: nobody with a part's URL replaces one once
    stored."""

    def upload_parts(self, key: str) -> dict[str, int]: ...
    def part_tags(self, key: str, upload_id: str) -> dict[int, tuple[int, str]]: ...
    def open_part(self, key: str, upload_id: str, number: int) -> tuple[BinaryIO, str]: ...
    def open_join(self, key: str) -> str: ...
    def copy_part(self, key: str, upload_id: str, joining: str, number: int,
                  tag: str) -> None: ...
    def finish_join(self, key: str, joining: str, numbers: Sequence[int]) -> bool: ...
    def abort_join(self, key: str, joining: str) -> None: ...


class _StorageJoiningHashed(JoinsHashedParts, Backend, Protocol):
    """A storage (:class:`Backend`) that joins the parts it hashed."""


@runtime_checkable
class TakesParts(Protocol):
    """A storage whose parts the server writes (``file://``): its :meth:`presign_part`
    gives None, and the client sends each part to the server's own route."""

    def put_part(self, key: str, upload_id: str, number: int, stream: BinaryIO,
                 size: int) -> None: ...


def part_plan(size: int, part_size: int) -> list[tuple[int, int, int]]:
    """The parts of an object of ``size`` bytes: (number from 1, offset, size) each, of
    ``part_size`` bytes, raised as needed to stay within :data:`MAX_PARTS`."""
    part_size = max(part_size, -(-size // MAX_PARTS), 1)
    return [(n + 1, offset, min(part_size, size - offset))
            for n, offset in enumerate(range(0, max(size, 1), part_size))]


class Multipart(Objects):
    """Uploads of large objects in parts (over :class:`Objects`, whose verification and
    neighbour checks it shares)."""

    def start_multipart(self, caller: Caller, project: str, oid: str, size: int,
                        part_size: int, href_prefix: str = ""
                        ) -> wire.MultipartUpload | wire.ObjectAnswer:
        """Open, or find again, the multipart upload of object ``oid`` (writers).

        Returns ``{"id","size","verified": True}`` when the project holds it already, else
        ``{"id","size","upload_id","part_size","parts","stored_bytes"}``: ``parts`` lists
        the parts still to send, ``{"number","offset","size","action"}`` each, and
        ``stored_bytes`` what the parts already stored hold (an upload cut off goes on from
        them). ``upload_id`` is None when the storage holds the object's key already: the
        client then only asks to complete. Raises BadInput for a storage without
        multipart uploads (send the object in one request instead). A part's action on a
        storage without URLs of its own (``file://``) is this server's own route, after
        ``href_prefix`` (the HTTP app's scheme and host).
        """
        held, project_id, storage_url = self._about_to_store(caller, project, oid, size)
        if held is not None:
            return held
        if size < 1:
            raise BadInput(f"object {oid} is empty", "send it in one request")
        storage = self._storage(storage_url)
        if not isinstance(storage, UploadsInParts):
            raise BadInput(f"the storage of project {project!r} takes no multipart uploads",
                           "send the object in one request")
        now = self._now()
        self.db.run(lambda s: upsert_objects(s, [{
            "project_id": project_id, "oid": oid, "size": size, "verified": False,
            "kind": None, "data": None, "created": now}], replace=False))
        key = object_key(oid)
        plan = part_plan(size, max(part_size, storage.min_part))
        answer: wire.MultipartUpload = {"id": oid, "size": size, "part_size": plan[0][2],
                                  "upload_id": None, "parts": [], "stored_bytes": 0}
        if storage.stat(key) is not None:
            answer["stored_bytes"] = size
            return answer
        # Bytes refused by a hash were deleted: this upload starts them again.
        self.db.run(lambda s: s.execute(delete(Verification).where(
            Verification.project_id == project_id, Verification.oid == oid,
            Verification.failure.is_not(None))))
        upload_id = storage.open_upload(key)
        stored = storage.stored_parts(key, upload_id)
        if len(plan) > 1 and stored.get(1, plan[0][2]) != plan[0][2] \
                and stored[1] >= storage.min_part:
            # Parts sent for another part size (the server's setting changed since): the
            # upload goes on in them.
            plan = part_plan(size, stored[1])
            answer["part_size"] = plan[0][2]
        answer["upload_id"] = upload_id
        for number, offset, length in plan:
            if stored.get(number) == length:
                answer["stored_bytes"] += length
                continue
            action = storage.presign_part(key, upload_id, number, length, PART_TTL) or {
                "href": f"{href_prefix}/v1/projects/{project}/objects/{oid}/multipart/"
                        f"{upload_id}/{number}",
                "method": "PUT", "headers": {}, "expires": PART_TTL}
            answer["parts"].append({"number": number, "offset": offset, "size": length,
                                    "action": action})
        if isinstance(storage, JoinsHashedParts):
            self._follow(project_id, storage_url, oid, size, upload_id, plan[0][2])
        return answer

    def _follow(self, project_id: int, storage_url: str, oid: str, size: int,
                upload_id: str, part_size: int) -> None:
        """Have a thread of this worker hash the parts of ``upload_id`` as they land and
        join them, unless another worker holds the job (a follower of an earlier run of
        the same upload, still waiting for its parts) or this one follows
        :data:`FOLLOWERS` uploads already, or half as many of this project (the completing
        request then has it hashed)."""
        if not _FOLLOWING.take(project_id):
            return
        try:
            claimed = self._claim(project_id, oid)
        except BaseException:
            _FOLLOWING.release(project_id)
            raise
        if not claimed:
            _FOLLOWING.release(project_id)
            return

        def follow() -> None:
            try:
                self._verify_pending(project_id, storage_url, oid, size, upload_id,
                                     part_size=part_size, wait=True)
            except Exception:  # the object stays pending: its completing request takes it
                _log.exception("following an upload in parts failed")
            finally:
                _FOLLOWING.release(project_id)

        threading.Thread(target=follow, daemon=True, name="ama-follow").start()

    def complete_multipart(self, caller: Caller, project: str, oid: str,
                           upload_id: str | None) -> wire.ObjectAnswer:
        """Join the parts of ``upload_id`` into object ``oid`` (unless its key is stored
        already), and have this worker hash the stored bytes after answering: returns
        ``{"id","size","pending": True,"verifying": True}`` (ask :meth:`verify_objects`
        for the outcome), or ``{"id","size","verified": True}`` for an object held already.
        Where a storage joins the parts aside (GCS), the join too is the background's:
        a join of tens of gigabytes, hashed, outlasts any request.

        Raises NotFound for an object this project did not open an upload of, and
        ValidationFailed (422) when nothing is stored under its key.
        """
        check_id(oid)
        with self.db.read() as s:
            proj = self._project(s, caller, project, "writer")
            row = self._object_rows(s, proj.id, [oid]).get(oid)
            project_id, storage_url = proj.id, proj.storage_url
            others = self._held_by_neighbours(s, proj, [oid])
        storage = self._storage(storage_url)
        if row is not None and row.verified:
            if upload_id is not None and isinstance(storage, UploadsInParts):
                # Held already (another client's upload of it came first): the parts of
                # this one are not needed. Left, they would wait for fsck's grace.
                with contextlib.suppress(AmaError):
                    storage.abort_upload(object_key(oid), upload_id)
            return {"id": oid, "size": row.size, "verified": True}
        if row is None or oid in others:
            raise NotFound(f"object {oid} was not uploaded",
                           "start its upload again with 'ama upload'")
        key = object_key(oid)
        aside = isinstance(storage, JoinsAside)
        if upload_id is not None and (aside or (isinstance(storage, JoinsHashedParts)
                                                and storage.stat(key) is None)):
            # Joined (aside) after the answer, a refusal recorded for earlier bytes
            # forgotten; or followed as its parts landed (by a worker that may be joining
            # them now), else hashed here from its parts, once: a refusal recorded is kept.
            # The upload is named to the job only when a part of it is stored (which also
            # checks the id is one of this storage's): a made-up id takes the job from no
            # worker.
            parts = cast(UploadsInParts, storage).stored_parts(key, upload_id)
            self._hash_later(project_id, storage_url, oid, row.size, completed=aside,
                             upload_id=upload_id if parts else None)
            return {"id": oid, "size": row.size, "pending": True, "verifying": True}
        if upload_id is None:
            if storage.stat(key) is None:
                raise ValidationFailed(f"object {oid} was not uploaded",
                                       "run the upload again", problems=[oid])
        # A storage that joins the parts it hashed comes here with its key stored already
        # (joined by its follower, or by another way): that is hashed below.
        elif not isinstance(storage, JoinsHashedParts):
            raise BadInput(f"the storage of project {project!r} takes no multipart "
                           "uploads", "send the object in one request")
        self._hash_later(project_id, storage_url, oid, row.size, completed=True)
        return {"id": oid, "size": row.size, "pending": True, "verifying": True}

    def _hash_later(self, project_id: int, storage_url: str, oid: str, size: int,
                    completed: bool = False, upload_id: str | None = None) -> None:
        """Have a background thread of this worker hash the pending object ``oid`` (join
        the parts of ``upload_id``, the upload its completing request named, with a part
        stored, first on a storage that joins aside), unless another worker holds the job
        (see :meth:`_claim`); the job keeps ``upload_id`` either way."""
        if self._claim(project_id, oid, completed, named=upload_id):
            _BACKGROUND.submit(project_id, partial(self._verify_pending, project_id,
                                                   storage_url, oid, size, upload_id))

    def _claim(self, project_id: int, oid: str, completed: bool = False,
               named: str | None = None) -> bool:
        """Make hashing object ``oid`` the caller's job: True when no worker holds it (none
        began, or the one that did renewed its claim longer than :func:`verify_lease` ago). With
        ``completed`` (its upload was just completed), a refusal recorded for earlier bytes
        is forgotten and the job begins again. ``named``, the upload a completing request
        named (with a part stored), becomes the job's whether or not the caller takes it: a
        worker holding the job to follow another upload of the object (a killed run's)
        then gives it up, and whoever takes the job up later follows the upload completed,
        not a guess at the newest."""
        now = self._now()

        def claim(s: Session) -> bool:
            job = s.get(Verification, (project_id, oid), with_for_update=True)
            if job is None:
                s.add(Verification(project_id=project_id, oid=oid, claimed=now,
                                   upload_id=named))
                s.flush()
                return True
            if named is not None:
                job.upload_id = named
            if job.failure is not None and not completed:
                return False
            if (job.failure is None and job.claimed is not None
                    and job.claimed > now - verify_lease()):
                return False
            job.claimed, job.failure, job.failure_code = now, None, None
            return True

        return self.db.run(claim)

    def _verify_pending(self, project_id: int, storage_url: str, oid: str, size: int,
                        upload_id: str | None = None, part_size: int | None = None,
                        wait: bool = False, keep_missing: bool = True
                        ) -> wire.ObjectAnswer:
        """Hash the pending object ``oid`` from storage and settle its job: verified, or
        its bytes deleted and the refusal recorded. Returns the object's answer. On a
        storage that joins aside, an object whose key is not stored yet is first joined
        from the parts of ``upload_id``, the upload its completing request named. On a
        storage that joins the parts it hashed, such an object is hashed from the parts of
        ``upload_id`` (else of the upload its job names, else of the newest upload of it)
        in order, and joined: with ``wait``, each part is waited for as the client sends it
        (``part_size`` bytes each; else the first part's size), and the job is given up,
        still pending, after :data:`FOLLOW_IDLE` seconds without one. Without
        ``keep_missing`` (fsck, which no client asked), an object found not uploaded is
        left pending, not refused: its client may still be sending it."""
        hold_point("server.verify")
        with self.db.read() as s:
            row = self._object_rows(s, project_id, [oid]).get(oid)
            if upload_id is None:  # taken up again: the upload its job names
                job = s.get(Verification, (project_id, oid))
                upload_id = job.upload_id if job is not None else None
        if row is not None and row.verified:  # settled by the job that held it before
            self.db.run(lambda s: s.execute(delete(Verification).where(
                Verification.project_id == project_id, Verification.oid == oid)))
            return {"id": oid, "size": row.size, "verified": True}
        storage = self._storage(storage_url)
        key = object_key(oid)
        try:
            with _Heartbeat(self, project_id, oid):
                settled = None
                if isinstance(storage, JoinsHashedParts) and storage.stat(key) is None:
                    settled = self._follow_parts(cast(_StorageJoiningHashed, storage), project_id,
                                                 oid, size, upload_id, part_size, wait)
                # Only the upload a completing request named is joined: another client's
                # upload of the same object may still be sending its parts, and a guess at
                # which is done would join (and, refused, delete) parts still on their way.
                # A job taken up again (after a dead worker's lease, by fsck) joins the upload
                # its completing request named. Without one, the key is hashed, and an object
                # whose parts were never joined is "not uploaded": its client's next upload
                # goes on from its parts and completes them again.
                elif isinstance(storage, JoinsAside) and upload_id is not None:
                    settled = self._join_aside(storage, oid, size, upload_id)
                if settled is not None:
                    answer, verified = settled
                else:  # held by the key (or nothing is): that is what is hashed
                    reader = storage
                    if (isinstance(storage, ReadsRanges) and size > RANGE_BYTES
                            and storage.stat(key) == size):
                        # Another length is read whole, counted and refused as ever.
                        reader = cast(Backend, _InRanges(storage, size))
                    answer, verified = self._verify_stored(reader, oid)
                    if (isinstance(storage, JoinsHashedParts) and upload_id is not None
                            and verified is not None):
                        storage.abort_upload(key, upload_id)  # stored by another way: not needed
        except _GaveUp:
            self.db.run(lambda s: _release(s, project_id, oid))
            return {"id": oid, "pending": True, "verifying": True}
        except StorageFull as e:
            # Asked again it would fail again: its client is told (it would wait an hour
            # otherwise), and its next upload, once space is freed, completes the parts kept.
            message = e.message

            def full(s: Session) -> None:
                job = s.get(Verification, (project_id, oid))
                if job is not None:
                    job.claimed, job.failure, job.failure_code = None, message, 507

            self.db.run(full)
            return {"id": oid, "error": {"code": 507, "message": message}}
        except Exception:
            # Let the next verify of it try again at once, rather than after the lease.
            self.db.run(lambda s: _release(s, project_id, oid))
            raise

        if not keep_missing and verified is None and answer["error"]["code"] == 404:
            self.db.run(lambda s: _release(s, project_id, oid))
            return answer

        def settle(s: Session) -> None:
            if verified is not None:
                self._upsert_object(s, project_id, *verified)
                s.execute(delete(Verification).where(Verification.project_id == project_id,
                                                     Verification.oid == oid))
                return
            job = s.get(Verification, (project_id, oid))
            if job is not None:
                job.claimed, job.failure = None, str(answer["error"]["message"])

        self.db.run(settle)
        return answer

    def _join_aside(self, storage: _StorageJoiningAside, oid: str, size: int,
                    upload_id: str
                    ) -> tuple[wire.ObjectAnswer, tuple[Any, ...] | None] | None:
        """Join the parts of ``upload_id`` aside, hash the join and copy it to the object's
        key. Returns what :meth:`_verify_stored` returns of the join (the object's answer,
        and its verified row's arguments, None when the join is not the object: the parts
        and the join are then deleted, and the next upload sends every part again), or None
        when the key holds an object already (kept, and hashed by the caller like any) or
        no part is stored. The parts are removed once the outcome is known, and kept on
        any other error."""
        key = object_key(oid)
        if storage.stat(key) is not None:
            storage.abort_upload(key, upload_id)
            return None
        try:
            joined = storage.join_upload(key, upload_id)
        except ObjectMissing:  # joined and removed by another request (cut off, re-run)
            return None
        # Kept on any other error (the storage unreachable a moment): a re-run joins again.
        answer, verified = self._verify_stored(storage, oid, joined.key)
        if verified is None:
            storage.abort_upload(key, upload_id)
            return answer, None
        # The copy is of the generation hashed: its bytes are not read a second time.
        published = storage.publish_upload(key, upload_id, joined)
        storage.abort_upload(key, upload_id)
        return (answer, verified) if published else None

    def _follow_parts(self, storage: _StorageJoiningHashed, project_id: int, oid: str,
                      size: int, upload_id: str | None, part_size: int | None, wait: bool
                      ) -> tuple[wire.ObjectAnswer, tuple[Any, ...] | None] | None:
        """Hash the parts of ``upload_id`` (else of the newest upload of ``oid``) in order
        as :class:`_LandingParts` hands them out, and join the parts hashed into the
        object's key (each part copied into the join as soon as it is read, the join stored
        once the whole hashed right). Returns what :meth:`_verify_stored` returns (bytes
        that are not the object, or a part of a size the upload did not plan, have the
        upload's parts deleted; a part missing, without ``wait``, is "not uploaded"), or
        None when the key was stored meanwhile by another (the caller hashes it). Raises
        :class:`_GaveUp`, also once the job of ``project_id``'s ``oid`` names another
        upload."""
        key = object_key(oid)
        if upload_id is None:
            upload_id = storage.open_upload(key)
        join = _Join(storage, key, upload_id)
        followed = upload_id
        parts = _LandingParts(storage, key, upload_id, size, part_size,
                              FOLLOW_IDLE if wait else 0.0, join.add,
                              lambda: self._names_another(project_id, oid, followed))
        try:
            answer, verified = self._verify_stored(
                cast(Backend, _Landed(parts, storage, upload_id)), oid)
        except _WrongPart as e:
            join.abort()
            storage.abort_upload(key, upload_id)
            return {"id": oid, "error": {"code": 422, "message": f"object {oid}: {e}; the "
                                         "upload's parts were deleted"}}, None
        except BaseException:
            join.abort()
            raise
        if verified is None:
            join.abort()
            return answer, None
        try:
            joined = join.finish([number for number, _ in parts.tags])
        except ObjectMissing:  # its parts removed meanwhile (fsck, another's refusal)
            return {"id": oid, "error": {"code": 404,
                                         "message": f"object {oid} was not uploaded"}}, None
        if not joined:  # the key taken meanwhile: hashed by the caller, the parts kept
            return None
        storage.abort_upload(key, upload_id)
        return answer, verified

    def _names_another(self, project_id: int, oid: str, upload_id: str) -> bool:
        """Whether the job of hashing ``oid`` names an upload other than ``upload_id``: a
        request completed that one, and the follower of this one gives the job up to it."""
        with self.db.read() as s:
            job = s.get(Verification, (project_id, oid))
            return job is not None and job.upload_id not in (None, upload_id)

    def verify_objects(self, caller: Caller, project: str, ids: list[str],
                       seconds: float | None = None) -> wire.Verification:
        """As :meth:`Objects.verify_objects`, and for objects of uploads in parts completed
        and not yet hashed: ``{"id","pending": True,"verifying": True}`` while a worker
        hashes them (one whose worker died is taken up again here), or the error that
        refused their bytes."""
        for oid in ids:
            check_id(oid)
        with self.db.read() as s:
            proj = self._project(s, caller, project, "writer")
            project_id, storage_url = proj.id, proj.storage_url
            jobs = {job.oid: (job.failure, job.failure_code or 422)
                    for job in s.scalars(select(Verification).where(
                        Verification.project_id == project_id,
                        Verification.oid.in_(set(ids))))}
            rows = self._object_rows(s, project_id, jobs)
        if not jobs:
            return super().verify_objects(caller, project, ids, seconds)
        rest = [oid for oid in ids if oid not in jobs]
        answers: dict[str, wire.ObjectAnswer] = {}
        if rest:
            answers = {a["id"]: a for a in
                       super().verify_objects(caller, project, rest, seconds)["objects"]}
        for oid, (failure, code) in jobs.items():
            row = rows.get(oid)
            if row is not None and row.verified:  # settled since the read above
                answers[oid] = {"id": oid, "size": row.size, "verified": True}
            elif failure is not None or row is None:
                answers[oid] = {"id": oid, "error": {
                    "code": code if failure is not None else 422,
                    "message": failure or f"object {oid} was not uploaded"}}
            else:
                self._hash_later(project_id, storage_url, oid, row.size)
                answers[oid] = {"id": oid, "pending": True, "verifying": True}
        return {"objects": [answers[oid] for oid in dict.fromkeys(ids)]}

    def fsck(self, project: str | None = None, repair: bool = False,
             grace: timedelta = LEFTOVER_GRACE) -> list[Problem]:
        """As :meth:`Objects.fsck`, first reporting each object of an upload in parts whose
        bytes were not hashed yet (``problem`` ``pending``): a worker may be hashing it, or
        have died doing so. With ``repair``, each is hashed here from its key (a worker
        hashing it meanwhile comes to the same verdict; on a storage that joins aside, only
        parts of the upload its completing request named are joined here): a match is
        recorded as held (``repaired``), bytes that do not match are deleted (``problem``
        ``corrupt``, ``repaired``), and an object of which nothing is stored under its key
        is ``missing`` (its client's next upload goes on from its parts), unless a worker
        holds its job: its parts are being joined (GCS), and it is left to that worker."""
        with self.db.read() as s:
            query = (select(Project.name, Project.id, Project.storage_url, StoredObject.oid,
                            StoredObject.size)
                     .join(Verification, Verification.project_id == Project.id)
                     .join(StoredObject, (StoredObject.project_id == Project.id)
                           & (StoredObject.oid == Verification.oid))
                     .where(Verification.failure.is_(None))
                     .order_by(Project.name, StoredObject.oid))
            if project is not None:
                query = query.where(Project.name == project)
            pending = s.execute(query).all()
        problems: list[Problem] = []
        for name, project_id, storage_url, oid, size in pending:
            entry: Problem = {"project": name, "object": oid, "problem": "pending",
                                     "versions": []}
            if repair and (self._storage(storage_url).stat(object_key(oid)) is not None
                           or self._claim(project_id, oid)):
                answer = self._verify_pending(project_id, storage_url, oid, size,
                                              keep_missing=False)
                code = answer["error"]["code"] if "error" in answer else None
                if code is not None:
                    entry["problem"] = {404: "missing", 507: "storage-full"}.get(code, "corrupt")
                entry["repaired"] = code != 507  # kept as it was, for its next upload
            problems.append(entry)
        return problems + super().fsck(project, repair, grace)

    def put_part(self, caller: Caller, project: str, oid: str, upload_id: str, number: int,
                 stream: BinaryIO, size: int) -> wire.PartStored:
        """Write part ``number`` (``size`` bytes of ``stream``) of an upload in parts to a
        storage whose parts the server writes (writers). Returns ``{"number","size"}``.
        Raises NotFound for an object this project did not open an upload of, BadInput
        for a storage that takes its parts straight from the client.
        """
        check_id(oid)
        if not 1 <= number <= MAX_PARTS:
            raise BadInput(f"part number {number} is not between 1 and {MAX_PARTS}")
        with self.db.read() as s:
            proj = self._project(s, caller, project, "writer")
            row = self._object_rows(s, proj.id, [oid]).get(oid)
            storage_url = proj.storage_url
        if row is None:
            raise NotFound(f"object {oid} was not uploaded",
                           "start its upload again with 'ama upload'")
        # Not against the row's size: the first size announced, which a writer may have
        # got wrong; the bytes' hash decides.
        if row.verified:
            raise BadInput(f"object {oid} is held already: none of its parts is needed")
        storage = self._storage(storage_url)
        if not isinstance(storage, TakesParts):
            raise BadInput(f"the storage of project {project!r} takes parts from the "
                           "client directly", "send them to the part's presigned URL")
        storage.put_part(object_key(oid), upload_id, number, stream, size)
        return {"number": number, "size": size}


def _release(s: Session, project_id: int, oid: str) -> None:
    """Give up the job of hashing ``oid``, which failed for want of the storage."""
    job = s.get(Verification, (project_id, oid))
    if job is not None and job.failure is None:
        job.claimed = None


class _InRanges:
    """A storage's object of ``size`` bytes opened as :class:`_Ranges` (and deleted from the
    storage): what :meth:`Objects._verify_stored` reads and, on a mismatch, deletes."""

    def __init__(self, storage: ReadsRanges, size: int) -> None:
        self._storage = storage
        self._size = size

    def open(self, key: str) -> BinaryIO:
        # What is read, so that its bytes are deleted only while the key holds them.
        return cast(BinaryIO, _Ranges(self._storage, key, self._size, self.tag(key)))

    def delete(self, key: str) -> None:
        cast(Backend, self._storage).delete(key)

    def tag(self, key: str) -> tuple[int, str, str] | None:
        return self._storage.tag(key) if isinstance(self._storage, Tags) else None


class _Ranges:
    """The bytes of ``key`` as a stream, read as ranges of :data:`RANGE_BYTES`,
    :data:`RANGE_AHEAD` of them in flight, handed out in order."""

    def __init__(self, storage: ReadsRanges, key: str, size: int,
                 tag: tuple[int, str, str] | None) -> None:
        self._storage = storage
        self._key = key
        self._size = size
        self.tag = tag
        self._offsets = iter(range(0, size, RANGE_BYTES))
        self._pool = ThreadPoolExecutor(max_workers=RANGE_AHEAD, thread_name_prefix="ama-range")
        self._ahead: deque[Future[bytes]] = deque()
        self._piece = memoryview(b"")
        for _ in range(RANGE_AHEAD):
            self._ask()

    def _ask(self) -> None:
        offset = next(self._offsets, None)
        if offset is not None:
            self._ahead.append(self._pool.submit(
                self._storage.read_range, self._key, offset,
                min(RANGE_BYTES, self._size - offset)))

    def read(self, n: int = -1) -> bytes:
        if not self._piece:
            if not self._ahead:
                return b""
            self._piece = memoryview(self._ahead.popleft().result())
            self._ask()
        n = len(self._piece) if n is None or n < 0 else n
        data, self._piece = self._piece[:n], self._piece[n:]
        return bytes(data)

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


class _Heartbeat:
    """While entered, renews the claim of the job of hashing ``oid`` every
    :func:`heartbeat` seconds from a thread of its own: a job that runs long (one read of
    storage may take longer than a lease) is not taken for a dead worker's, and only a
    dead worker's claim outlives the lease."""

    def __init__(self, service: Multipart, project_id: int, oid: str) -> None:
        self._service = service
        self._project_id = project_id
        self._oid = oid
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, name="ama-heartbeat", daemon=True)

    def __enter__(self) -> _Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        self._thread.join()

    def _run(self) -> None:
        every = heartbeat()
        while every > 0 and not self._done.wait(every):
            try:
                self._renew()
            except Exception:  # the database out of reach a moment: the next beat tries
                _log.warning("renewing the claim on object %s failed", self._oid,
                             exc_info=True)

    def _renew(self) -> None:
        now = self._service._now()
        self._service.db.run(lambda s: s.execute(
            update(Verification).where(Verification.project_id == self._project_id,
                                       Verification.oid == self._oid,
                                       Verification.failure.is_(None))
            .values(claimed=now)))


class _GaveUp(Exception):
    """No part came for :data:`FOLLOW_IDLE` seconds: the upload's client is gone."""


class _WrongPart(Exception):
    """A part stored with another size than its upload planned (sent for another part
    size, or by someone else)."""


class _LandingParts:
    """The parts of an upload of an object of ``size`` bytes, in order, as one stream: each
    part read once it is stored (listed), in one request streamed while it is hashed; up
    to :data:`PARTS_AHEAD` parts are streamed at once, each holding at most
    :data:`CHUNKS_AHEAD` chunks that wait for the hash. ``tags`` lists ``(number, ETag)``
    of the parts read, in order, once all are; ``on_read`` is told of each part read
    whole, from the thread that read it.

    A part not stored yet is waited for (looked for every :data:`POLL` to
    :data:`POLL_MAX` seconds) while no part is being read, for ``idle`` seconds, then
    :class:`_GaveUp` is raised (ObjectMissing when ``idle`` is 0: not uploaded); so it is
    as soon as another upload of the object stores a part meanwhile, or ``moved_on``
    says the job went to another upload (a request completed it). Raises
    :class:`_WrongPart` for a part of another size than planned (parts of ``part_size``
    bytes, else of the first part's size)."""

    def __init__(self, storage: _StorageJoiningHashed, key: str, upload_id: str, size: int,
                 part_size: int | None, idle: float,
                 on_read: Callable[[int, str], None],
                 moved_on: Callable[[], bool] = lambda: False) -> None:
        self._storage = storage
        self._key = key
        self._upload_id = upload_id
        self._size = size
        self._part_size = part_size
        self._moved_on = moved_on
        self._idle = idle
        self._on_read = on_read
        self._known: dict[int, tuple[int, str]] = {}
        self._looked = -POLL
        self._plan: list[tuple[int, int, int]] | None = None
        self._next = 0  # the index in the plan of the next part to begin
        self._tags: dict[int, str] = {}
        self._closed = threading.Event()
        self._pool = ThreadPoolExecutor(max_workers=PARTS_AHEAD, thread_name_prefix="ama-part")
        self._streams: deque[queue.Queue[bytes | BaseException]] = deque()
        self._piece = b""

    def _look(self) -> None:
        self._known = self._storage.part_tags(self._key, self._upload_id)
        self._looked = time.monotonic()

    def _present(self, number: int, wait: bool) -> bool:
        """Whether part ``number`` is stored, looked for again if not known (at most every
        POLL seconds without ``wait``; waited for with it)."""
        if number in self._known:
            return True
        if wait or time.monotonic() - self._looked >= POLL:
            self._look()
        delay, deadline = POLL, time.monotonic() + self._idle
        others: dict[str, int] | None = None
        while wait and number not in self._known:
            if time.monotonic() >= deadline:
                if self._idle:
                    raise _GaveUp()
                raise ObjectMissing(f"{upload_prefix(self._key, self._upload_id)}{number}",
                                    self._storage.url)
            # Parts stored meanwhile in another upload of the object: its client moved on
            # (a run after a kill that began anew), and the job is left to that upload's.
            now = {u: n for u, n in self._storage.upload_parts(self._key).items()
                   if u != self._upload_id}
            if ((others is not None and any(n > others.get(u, 0) for u, n in now.items()))
                    or (not self._known and any(now.values())) or self._moved_on()):
                raise _GaveUp()
            others = now
            time.sleep(delay)
            delay = min(2 * delay, POLL_MAX)
            self._look()
        return number in self._known

    def _fill(self, wait: bool) -> None:
        """Begin reading the next parts stored, up to PARTS_AHEAD at once; with ``wait`` and
        none being read, wait for the next part."""
        while len(self._streams) < PARTS_AHEAD:
            if self._plan is None:
                if not self._present(1, wait and not self._streams):
                    return
                self._plan = part_plan(self._size, self._part_size or self._known[1][0])
            if self._next == len(self._plan):
                return
            number, _, length = self._plan[self._next]
            if not self._present(number, wait and not self._streams):
                return
            stored, _ = self._known[number]
            if stored != length:
                raise _WrongPart(f"part {number} of upload {self._upload_id} holds {stored} "
                                 f"bytes, not {length}")
            self._next += 1
            chunks: queue.Queue[bytes | BaseException] = queue.Queue(CHUNKS_AHEAD)
            self._streams.append(chunks)
            self._pool.submit(self._pump, number, chunks)

    @property
    def tags(self) -> list[tuple[int, str]]:
        return sorted(self._tags.items())

    def _pump(self, number: int, chunks: queue.Queue[bytes | BaseException]) -> None:
        """Read part ``number`` into ``chunks``, then an empty chunk (or the error)."""
        try:
            stream, self._tags[number] = self._storage.open_part(self._key, self._upload_id,
                                                                 number)
            try:
                while not self._closed.is_set():
                    chunk = stream.read(READ_CHUNK)
                    if not chunk:
                        if not self._closed.is_set():
                            self._on_read(number, self._tags[number])
                        self._put(chunks, chunk)
                        return
                    self._put(chunks, chunk)
            finally:
                stream.close()
        except BaseException as e:  # handed to the reader, which raises it
            self._put(chunks, e)

    def _put(self, chunks: queue.Queue[bytes | BaseException], item: bytes | BaseException
             ) -> None:
        while not self._closed.is_set():
            with contextlib.suppress(queue.Full):
                chunks.put(item, timeout=1.0)
                return

    def read(self, n: int = -1) -> bytes:
        while not self._piece:
            if not self._streams:
                self._fill(wait=True)
                if not self._streams:
                    return b""  # every part read
            item = self._streams[0].get()
            if isinstance(item, BaseException):
                raise item
            if not item:  # the end of this part
                self._streams.popleft()
            self._piece = item
            self._fill(wait=False)
        n = len(self._piece) if n is None or n < 0 else n
        data, self._piece = self._piece[:n], self._piece[n:]
        return data

    def close(self) -> None:
        self._closed.set()
        self._pool.shutdown(wait=False, cancel_futures=True)


class _Join:
    """The parts of an upload copied into a join of the object's key as each is read
    (:meth:`add`), :data:`JOIN_THREADS` at once, so that little is left to copy when the
    hash is done: the join is stored (:meth:`finish`) only once the whole hashed right,
    else dropped (:meth:`abort`)."""

    def __init__(self, storage: _StorageJoiningHashed, key: str, upload_id: str) -> None:
        self._storage = storage
        self._key = key
        self._upload_id = upload_id
        self._lock = threading.Lock()
        self._joining: str | None = None
        self._dropped = False
        self._pool = ThreadPoolExecutor(max_workers=JOIN_THREADS, thread_name_prefix="ama-join")
        self._copies: list[Future[None]] = []

    def add(self, number: int, tag: str) -> None:
        with self._lock:
            if self._dropped:
                return
            if self._joining is None:
                self._joining = self._storage.open_join(self._key)
            self._copies.append(self._pool.submit(self._storage.copy_part, self._key,
                                                  self._upload_id, self._joining, number, tag))

    def finish(self, numbers: list[int]) -> bool:
        """Wait for the copies and store the join; see ``finish_join``."""
        try:
            for copy in self._copies:
                copy.result()
        except BaseException:
            self.abort()
            raise
        self._pool.shutdown()
        assert self._joining is not None  # a hashed object has a part
        return self._storage.finish_join(self._key, self._joining, numbers)

    def abort(self) -> None:
        with self._lock:
            self._dropped = True
        self._pool.shutdown(wait=True, cancel_futures=True)
        if self._joining is not None:
            self._storage.abort_join(self._key, self._joining)


class _Landed:
    """An upload's :class:`_LandingParts` as what :meth:`Objects._verify_stored` reads and,
    when the bytes are not the object, deletes (the upload's parts)."""

    def __init__(self, parts: _LandingParts, storage: _StorageJoiningHashed,
                 upload_id: str) -> None:
        self._parts = parts
        self._storage = storage
        self._upload_id = upload_id

    def open(self, key: str) -> BinaryIO:
        return cast(BinaryIO, self._parts)

    def delete(self, key: str) -> None:
        self._storage.abort_upload(key, self._upload_id)
