"""The ``s3://bucket/prefix`` storage backend, through boto3 (imported only here).

Create-only writes use S3 conditional writes: every PutObject and CompleteMultipartUpload
this backend sends carries ``If-None-Match: *`` (added by a client event hook, so boto3's own
multipart transfer keeps it too). S3 then stores an object only if its key is absent, and a
multipart upload becomes visible atomically at completion, so a concurrent or repeated
upload of a key never replaces the bytes already there. Objects up to one part (8 MiB) go up
in one request; larger ones, unless already stored, stream in 8 MiB parts. Presigned URLs use SigV4.

Configuration: the options of :func:`~ama_remote.storage.open_backend`, else boto3's own
(``AWS_ENDPOINT_URL``, ``AWS_REGION``, ``AWS_ACCESS_KEY_ID``, …). Addressing is path-style.

Where clients reach the storage by another address than the server does (a server beside
its bucket on a private endpoint, clients far away on the public one; an S3-compatible
store behind a proxy), ``AMA_S3_PRESIGN_ENDPOINT_URL`` (or the ``presign_endpoint_url``
option) names the endpoint the presigned URLs point at: SigV4 signs the host, so such a URL
must be made for the address the client will send it to. The server's own reads (the
read-back that hashes what clients sent) still go to ``endpoint_url``.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections import Counter
from collections.abc import Iterator, Sequence
from typing import Any, BinaryIO, cast

import boto3
import botocore.exceptions
from boto3.s3.transfer import TransferConfig
from botocore.config import Config

from ama.plumbing import wire
from ama.plumbing.errors import BadInput
from ama_remote.storage.base import (
    CHUNK,
    UPLOADS,
    Leftover,
    ObjectMissing,
    SizedReader,
    StorageDenied,
    StorageUnreachable,
    TaggedStream,
    check_key,
    check_method,
    newest_upload,
    upload_prefix,
    uploads_left,
)

MAX_EXPIRES = 7 * 86400  # SigV4 presigned URLs live at most a week
_DENIED = {"AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "403"}
_ABSENT = {"NoSuchKey", "NoSuchUpload", "404", "NotFound"}


def _create_only(params: dict[str, Any], **_: Any) -> None:
    params.setdefault("IfNoneMatch", "*")


class S3Backend:
    """Objects in ``bucket`` below ``prefix``."""

    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        *,
        endpoint_url: str | None = None,
        presign_endpoint_url: str | None = None,
        region: str | None = None,
        access_key_id: str | None = None,
        secret_access_key: str | None = None,
        max_attempts: int = 5,
        part_size: int = CHUNK,
    ) -> None:
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.url = f"s3://{bucket}/{self.prefix}" if self.prefix else f"s3://{bucket}"
        self.part_size = part_size
        session = boto3.session.Session(
            aws_access_key_id=access_key_id,
            aws_secret_access_key=secret_access_key,
            region_name=region,
        )
        # botocore's standard retries: throttling (SlowDown), 5xx and broken connections,
        # with jittered backoff and a retry quota that stops retrying when most calls fail.
        # Every call here is safe to repeat: reads, and create-only writes (a repeat of a
        # put that arrived is refused as a precondition, and taken as stored).
        config = Config(
            signature_version="s3v4",
            s3={"addressing_style": "path"},
            retries={"max_attempts": max_attempts, "mode": "standard"},
            connect_timeout=10,
            read_timeout=60,
        )
        self._client = session.client("s3", endpoint_url=endpoint_url, config=config)
        presign_endpoint_url = presign_endpoint_url or os.environ.get(
            "AMA_S3_PRESIGN_ENDPOINT_URL")
        # Presigning is computed locally: this client never sends a request.
        self._signer = self._client if not presign_endpoint_url else session.client(
            "s3", endpoint_url=presign_endpoint_url, config=config)
        events = self._client.meta.events
        events.register("before-parameter-build.s3.PutObject", _create_only)
        events.register("before-parameter-build.s3.CompleteMultipartUpload", _create_only)
        self._transfer = TransferConfig(
            multipart_threshold=part_size + 1,
            multipart_chunksize=part_size,
            max_concurrency=2,
        )

    def _name(self, key: str) -> str:
        check_key(key)
        return f"{self.prefix}/{key}" if self.prefix else key

    def put(self, key: str, stream: BinaryIO, size: int) -> bool:
        """Store ``size`` bytes of ``stream`` under ``key`` unless it exists; see Backend.put."""
        name = self._name(key)
        reader = SizedReader(stream, size, key)
        try:
            with self._errors():
                if size <= self.part_size:
                    body = reader.read()
                    self._client.put_object(Bucket=self.bucket, Key=name, Body=body)
                elif self.stat(key) is not None:
                    # Re-sending a large object that is already stored is common (an
                    # interrupted push, run again): answer it without streaming every part.
                    return False
                else:
                    self._client.upload_fileobj(reader, self.bucket, name, Config=self._transfer)
        except _Precondition:
            return False
        return True

    def open(self, key: str) -> BinaryIO:
        """Return a stream of the bytes under ``key``; raises ObjectMissing."""
        name = self._name(key)
        try:
            with self._errors():
                answer = self._client.get_object(Bucket=self.bucket, Key=name)
        except _Absent:
            raise ObjectMissing(key, self.url) from None
        return cast(BinaryIO, TaggedStream(answer["Body"], _tag_of(answer)))

    def read_range(self, key: str, offset: int, length: int) -> bytes:
        """Return ``length`` bytes of ``key`` from ``offset`` (fewer at its end); raises
        ObjectMissing."""
        name = self._name(key)
        try:
            with self._errors():
                answer = self._client.get_object(
                    Bucket=self.bucket, Key=name, Range=f"bytes={offset}-{offset + length - 1}")
                return bytes(answer["Body"].read())
        except _Absent:
            raise ObjectMissing(key, self.url) from None

    def stat(self, key: str) -> int | None:
        """Return the size of ``key``, or None when absent."""
        name = self._name(key)
        try:
            with self._errors():
                answer = self._client.head_object(Bucket=self.bucket, Key=name)
        except _Absent:
            return None
        return int(answer["ContentLength"])

    def tag(self, key: str) -> tuple[int, str, str] | None:
        """Return ``(size, ETag, version id or "")`` of ``key``, or None when absent."""
        name = self._name(key)
        try:
            with self._errors():
                answer = self._client.head_object(Bucket=self.bucket, Key=name)
        except _Absent:
            return None
        return _tag_of(answer)

    def delete(self, key: str) -> None:
        """Remove ``key``; absent is fine."""
        name = self._name(key)
        with contextlib.suppress(_Absent), self._errors():
            self._client.delete_object(Bucket=self.bucket, Key=name)

    def _listed(self, prefix: str) -> Iterator[tuple[str, dict[str, Any]]]:
        """Yield ``(key, listing entry)`` for the keys below the backend's prefix that start
        with ``prefix``, page by page (ListObjectsV2: size, ETag, last write)."""
        base = f"{self.prefix}/" if self.prefix else ""
        pages = self._client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=base + prefix
        )
        with self._errors():
            for page in pages:
                for item in page.get("Contents", []):
                    yield item["Key"][len(base) :], item

    def list(self, prefix: str = "") -> Iterator[str]:
        """Yield the keys below the backend's prefix that start with ``prefix``."""
        return (key for key, _ in self._listed(prefix))

    def list_sizes(self, prefix: str = "") -> Iterator[tuple[str, int]]:
        """Yield ``(key, size)`` for the keys :meth:`list` yields, from the same pages."""
        return ((key, int(item["Size"])) for key, item in self._listed(prefix))

    def leftovers(self) -> Iterator[Leftover]:
        """Yield the uploads in parts never completed or aborted, whose parts are billed
        until removed: those whose parts are objects below ``uploads/`` (dated by their
        newest part), and multipart uploads of S3's own (a join cut off, or an upload of
        an older server)."""
        yield from uploads_left((key, int(item["Size"]), item["LastModified"])
                                for key, item in self._listed(UPLOADS))
        base = f"{self.prefix}/" if self.prefix else ""
        pages = self._client.get_paginator("list_multipart_uploads").paginate(
            Bucket=self.bucket, Prefix=base
        )
        with self._errors():
            for page in pages:
                for upload in page.get("Uploads", []):
                    key, upload_id = upload["Key"], upload["UploadId"]
                    parts = self._client.list_parts(
                        Bucket=self.bucket, Key=key, UploadId=upload_id
                    ).get("Parts", [])
                    # Dated by its newest part: a join a server is still copying parts
                    # into is as young as its last copy, whenever it began.
                    yield Leftover(
                        f"{key[len(base):]} (multipart upload {upload_id})",
                        sum(int(p["Size"]) for p in parts),
                        max([upload["Initiated"], *(p["LastModified"] for p in parts)]),
                        f"{upload_id}/{key}",
                    )

    def remove_leftover(self, leftover: Leftover) -> None:
        """Delete the parts of an upload :meth:`leftovers` found; gone already is fine."""
        if leftover.handle.startswith(UPLOADS):
            if not leftover.handle.endswith("/"):
                raise BadInput(f"{leftover.handle} is not an upload in parts of this storage")
            self._delete_below(leftover.handle)
            return
        upload_id, _, name = leftover.handle.partition("/")
        self._abort(name, upload_id)

    def presign(
        self, key: str, method: str, expires: int, size: int | None = None
    ) -> wire.Action | None:
        """Return a SigV4 presigned GET or PUT; a PUT only creates (412 when the key exists)."""
        name = self._name(key)
        method = check_method(method)
        if not 1 <= expires <= MAX_EXPIRES:
            raise BadInput(f"presigned URLs expire after 1 to {MAX_EXPIRES} seconds, not {expires}")
        params: dict[str, Any] = {"Bucket": self.bucket, "Key": name}
        headers: dict[str, str] = {}
        if method == "PUT":
            params["IfNoneMatch"] = headers["If-None-Match"] = "*"
            if size is not None:
                params["ContentLength"] = size
                headers["Content-Length"] = str(size)
        with self._errors():
            href = self._signer.generate_presigned_url(
                "put_object" if method == "PUT" else "get_object",
                Params=params,
                ExpiresIn=expires,
                HttpMethod=method,
            )
        return {"href": href, "method": method, "headers": headers, "expires": expires}

    # -- uploads in parts (ama_remote.service.multipart) --
    #
    # Each part is an object of its own, ``uploads/<object key>/<upload id>/<number>``, sent
    # create-only to a presigned PUT. The parts of an S3 multipart upload cannot be read
    # before the upload completes; these can, as soon as each is stored: the server hashes
    # the object part by part while the client still sends the rest, then joins exactly the
    # parts it hashed into the object's key by copies inside S3 (UploadPartCopy, each
    # conditional on the ETag the server read) into a multipart upload completed
    # create-only. What was hashed is never read back.

    min_part = 5 << 20  # S3 joins no smaller part, but for the last

    def open_upload(self, key: str) -> str:
        """Return the id of the upload of ``key`` of which a part is stored (the newest), or
        a new one: an upload cut off keeps its parts, and the next one goes on from them. A
        new upload exists in the bucket only once a part of it is stored."""
        prefix = f"{UPLOADS}{check_key(key)}/"
        found = newest_upload((name[len(prefix):], item["LastModified"])
                              for name, item in self._listed(prefix))
        return found or secrets.token_hex(16)

    def upload_parts(self, key: str) -> dict[str, int]:
        """Return upload id → number of parts stored, for every upload of ``key``."""
        prefix = f"{UPLOADS}{check_key(key)}/"
        return dict(Counter(name[len(prefix):].partition("/")[0]
                            for name, _ in self._listed(prefix)))

    def part_tags(self, key: str, upload_id: str) -> dict[int, tuple[int, str]]:
        """Return part number → (size, ETag) of the parts of the upload stored (each whole:
        an object exists only once all of it arrived)."""
        prefix = upload_prefix(key, upload_id)
        return {int(name[len(prefix):]): (int(item["Size"]), str(item["ETag"]))
                for name, item in self._listed(prefix) if name[len(prefix):].isdigit()}

    def stored_parts(self, key: str, upload_id: str) -> dict[int, int]:
        """Return part number → size of the parts of the upload stored."""
        return {n: size for n, (size, _) in self.part_tags(key, upload_id).items()}

    def presign_part(self, key: str, upload_id: str, number: int, size: int,
                     expires: int) -> wire.Action | None:
        """Return a presigned PUT of part ``number`` (``size`` bytes), create-only: a part,
        once stored, is what the server hashes and joins, and nobody replaces it."""
        return self.presign(f"{upload_prefix(key, upload_id)}{number}", "PUT", expires, size)

    def open_part(self, key: str, upload_id: str, number: int) -> tuple[BinaryIO, str]:
        """Return a stream of part ``number`` and the ETag of what it streams (the join
        copies the part only as it was with that ETag). Raises ObjectMissing."""
        part = f"{upload_prefix(key, upload_id)}{number}"
        try:
            with self._errors():
                answer = self._client.get_object(Bucket=self.bucket, Key=self._name(part))
        except _Absent:
            raise ObjectMissing(part, self.url) from None
        return answer["Body"], str(answer["ETag"])

    def open_join(self, key: str) -> str:
        """Open the join of an upload's parts into ``key``: a multipart upload of S3's own,
        which only this server writes to. Returns its id."""
        with self._errors():
            return str(self._client.create_multipart_upload(
                Bucket=self.bucket, Key=self._name(key))["UploadId"])

    def copy_part(self, key: str, upload_id: str, joining: str, number: int, tag: str) -> None:
        """Copy part ``number`` of the upload, as it was with ETag ``tag``, into the join
        ``joining`` (a copy inside S3). Raises ObjectMissing when the part is gone or is
        another now."""
        part = f"{upload_prefix(key, upload_id)}{number}"
        try:
            with self._errors():
                self._client.upload_part_copy(
                    Bucket=self.bucket, Key=self._name(key), UploadId=joining,
                    PartNumber=number, CopySource={"Bucket": self.bucket,
                                                   "Key": self._name(part)},
                    CopySourceIfMatch=tag)
        except (_Absent, _Precondition):
            raise ObjectMissing(part, self.url) from None

    def finish_join(self, key: str, joining: str, numbers: Sequence[int]) -> bool:
        """Complete the join ``joining`` into ``key``, create-only, once it holds exactly
        the parts ``numbers``. Returns True when stored, False when ``key`` existed already
        (its bytes are kept, the join dropped)."""
        name = self._name(key)
        # Completed with the parts as the join lists them (only this server writes to it):
        # an S3 stand-in may answer a copy with another ETag than it then stores.
        copied = self._stored_parts_of(name, joining)
        if [p["PartNumber"] for p in copied] != list(numbers):
            self._abort(name, joining)
            raise StorageUnreachable(self.url, f"the join of {key} lists other parts than "
                                     "were copied into it", "run the upload again")
        try:
            with self._errors():
                self._client.complete_multipart_upload(
                    Bucket=self.bucket, Key=name, UploadId=joining,
                    MultipartUpload={"Parts": copied})
        except _Precondition:
            self._abort(name, joining)
            return False
        return True

    def abort_join(self, key: str, joining: str) -> None:
        """Drop the join ``joining`` and what was copied into it; gone already is fine."""
        self._abort(self._name(key), joining)

    def abort_upload(self, key: str, upload_id: str) -> None:
        """Delete the parts of the upload; gone already is fine."""
        self._delete_below(upload_prefix(key, upload_id))

    def _delete_below(self, prefix: str) -> None:
        names = [self._name(k) for k in self.list(prefix)]
        with self._errors():
            for start in range(0, len(names), 1000):  # the most one request deletes
                self._client.delete_objects(Bucket=self.bucket, Delete={
                    "Objects": [{"Key": n} for n in names[start:start + 1000]],
                    "Quiet": True})

    def _stored_parts_of(self, name: str, upload_id: str) -> Sequence[dict[str, Any]]:
        """The parts of multipart upload ``upload_id`` of ``name`` (the full key), in order,
        as CompleteMultipartUpload names them."""
        pages = self._client.get_paginator("list_parts").paginate(
            Bucket=self.bucket, Key=name, UploadId=upload_id)
        with self._errors():
            return [{"PartNumber": p["PartNumber"], "ETag": p["ETag"]}
                    for page in pages for p in page.get("Parts", [])]

    def _abort(self, name: str, upload_id: str) -> None:
        """Drop a multipart upload of ``name`` (the full key) and its parts; one already
        gone is fine."""
        with contextlib.suppress(_Absent), self._errors():
            self._client.abort_multipart_upload(Bucket=self.bucket, Key=name,
                                                UploadId=upload_id)

    @contextlib.contextmanager
    def _errors(self) -> Iterator[None]:
        """Turn boto3's errors into ours: absent, precondition, denied, unreachable."""
        try:
            yield
        except botocore.exceptions.ClientError as e:
            error = e.response.get("Error", {})
            code = str(error.get("Code", ""))
            status = e.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            message = error.get("Message") or code
            if code in ("PreconditionFailed", "412") or status == 412:
                raise _Precondition from None
            if code == "NoSuchBucket":
                raise StorageUnreachable(
                    self.url, f"bucket {self.bucket} does not exist", "create the bucket"
                ) from None
            if code in _ABSENT or status == 404:
                raise _Absent from None
            if code in _DENIED or status == 403:
                raise StorageDenied(self.url, f"{code}: {message}") from None
            raise StorageUnreachable(self.url, f"{code}: {message}") from None
        except botocore.exceptions.NoCredentialsError:
            raise StorageDenied(
                self.url,
                "no credentials",
                "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or a profile) for the server",
            ) from None
        except (
            botocore.exceptions.EndpointConnectionError,
            botocore.exceptions.ConnectionClosedError,
            botocore.exceptions.ConnectTimeoutError,
            botocore.exceptions.ReadTimeoutError,
        ) as e:
            raise StorageUnreachable(self.url, str(e)) from None


class _Precondition(Exception):
    """The key already exists (If-None-Match: * failed)."""


class _Absent(Exception):
    """The key does not exist."""


def _tag_of(answer: dict[str, Any]) -> tuple[int, str, str]:
    """The :meth:`S3Backend.tag` an answer of GetObject or HeadObject tells: its size, ETag
    and version id ("" for none, or S3's "null")."""
    version = answer.get("VersionId") or ""
    return (int(answer["ContentLength"]), str(answer.get("ETag") or ""),
            "" if version == "null" else str(version))
