"""Large objects in parts: opening (or finding again) a multipart upload whose parts the
client sends in parallel to presigned URLs, and completing it into the object, create-only,
verified by hashing what was stored (or, where the parts are joined aside, by hashing the
join before it is copied to the object's key).

A single PUT is refused by S3 above 5 GiB and starts again from byte 0 when cut off; in
parts, an upload cut off goes on from the parts already stored, which the storage lists.
"""

from __future__ import annotations

from typing import Any, BinaryIO, Protocol, runtime_checkable

from ama.plumbing import wire
from ama.plumbing.errors import AmaError
from ama.plumbing.hashing import check_id
from ama_remote.errors import BadInput, NotFound, ValidationFailed
from ama_remote.service.common import Caller, upsert_objects
from ama_remote.service.objects import Objects
from ama_remote.storage.base import Backend, Joined, ObjectMissing, object_key

# S3 holds at most this many parts in one upload.
MAX_PARTS = 10_000
PART_TTL = 3600


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
class CompletesInPlace(Protocol):
    """A storage that joins an upload's parts into the object's key itself, create-only
    (S3's CompleteMultipartUpload with If-None-Match, ``file://``): what it joined is
    hashed there, and deleted if it is not the object."""

    def complete_upload(self, key: str, upload_id: str) -> bool: ...


@runtime_checkable
class JoinsAside(UploadsInParts, Protocol):
    """A storage that joins an upload's parts under a key of their own (GCS
    compose), which the server hashes before :meth:`publish_upload` copies it to the
    object's key, create-only. Only bytes that are the object ever reach its key: a
    storage that ignored the create-only precondition (fake-gcs-server ignores it on
    compose and copy) would at worst replace an object with the same bytes."""

    def join_upload(self, key: str, upload_id: str) -> Joined: ...
    def publish_upload(self, key: str, upload_id: str, joined: Joined) -> bool: ...


class _StorageJoiningAside(JoinsAside, Backend, Protocol):
    """A storage (:class:`Backend`) that joins aside, as the server uses it."""


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
        held, project_id, storage = self._about_to_store(caller, project, oid, size)
        if held is not None:
            return held
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
        upload_id = storage.open_upload(key)
        stored = storage.stored_parts(key, upload_id)
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
        return answer

    def complete_multipart(self, caller: Caller, project: str, oid: str,
                           upload_id: str | None) -> wire.ObjectAnswer:
        """Join the parts of ``upload_id`` into object ``oid`` (unless its key is stored
        already), then hash the stored bytes: returns ``{"id","size","verified": True}``.

        Raises NotFound for an object this project did not open an upload of, and
        ValidationFailed (422) when the stored bytes are not the object: they are deleted.
        """
        check_id(oid)
        with self.db.read() as s:
            proj = self._project(s, caller, project, "writer")
            row = self._object_rows(s, proj.id, [oid]).get(oid)
            project_id, storage_url = proj.id, proj.storage_url
            others = self._held_by_neighbours(s, proj, [oid])
        if row is not None and row.verified:
            return {"id": oid, "size": row.size, "verified": True}
        if row is None or oid in others:
            raise NotFound(f"object {oid} was not uploaded",
                           "start its upload again with 'ama upload'")
        storage = self._storage(storage_url)
        if upload_id is not None and isinstance(storage, JoinsAside):
            joined = self._join_aside(storage, oid, row.size, upload_id)
            if joined is not None:
                self.db.run(lambda s: self._upsert_object(s, project_id, *joined))
                return {"id": oid, "size": row.size, "verified": True}
        elif upload_id is not None:
            if not isinstance(storage, CompletesInPlace):
                raise BadInput(f"the storage of project {project!r} takes no multipart "
                               "uploads", "send the object in one request")
            try:
                storage.complete_upload(object_key(oid), upload_id)
            except AmaError:
                # Completed meanwhile by another request (the same client's, cut off after
                # it asked, and run again): what is stored is checked below all the same.
                if storage.stat(object_key(oid)) is None:
                    raise
        answer, verified = self._verify_stored(storage, oid, row.size)
        if verified is None:
            raise ValidationFailed(str(answer["error"]["message"]), "run the upload again",
                                   problems=[oid])
        self.db.run(lambda s: self._upsert_object(s, project_id, *verified))
        return answer

    def _join_aside(self, storage: _StorageJoiningAside, oid: str, size: int,
                    upload_id: str) -> tuple[Any, ...] | None:
        """Join the parts of ``upload_id`` aside, hash the join and copy it to the object's
        key: the verified row's arguments after ``project_id``, or None when the key holds
        an object already (kept, and checked by the caller like any). The parts are removed
        once that is known, and kept on any other error. Raises ValidationFailed when the
        join is not the object (the parts and the join are deleted: the next upload sends
        every part again)."""
        key = object_key(oid)
        if storage.stat(key) is not None:
            storage.abort_upload(key, upload_id)
            return None
        try:
            joined = storage.join_upload(key, upload_id)
        except ObjectMissing:  # joined and removed by another request (cut off, re-run)
            return None
        # Kept on any other error (the storage unreachable a moment): a re-run joins again.
        answer, verified = self._verify_stored(storage, oid, size, joined.key)
        if verified is None:
            storage.abort_upload(key, upload_id)
            raise ValidationFailed(str(answer["error"]["message"]), "run the upload again",
                                   problems=[oid])
        # The copy is of the generation hashed: its bytes are not read a second time.
        published = storage.publish_upload(key, upload_id, joined)
        storage.abort_upload(key, upload_id)
        return verified if published else None

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
        storage = self._storage(storage_url)
        if not isinstance(storage, TakesParts):
            raise BadInput(f"the storage of project {project!r} takes parts from the "
                           "client directly", "send them to the part's presigned URL")
        storage.put_part(object_key(oid), upload_id, number, stream, size)
        return {"number": number, "size": size}
