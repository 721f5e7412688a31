"""The ``gs://bucket/prefix`` storage backend, through google-cloud-storage (imported only here).

Create-only writes use ``if_generation_match=0``: GCS stores the object only if no live
version of the key exists, for one-request and resumable uploads alike, so a repeated or
concurrent upload never replaces the bytes already there. Objects up to one part (8 MiB) go
up in one request; larger ones, unless already stored, stream through a resumable upload in
8 MiB chunks (fake-gcs-server enforces the precondition only on one-request uploads; GCS
enforces it on both). Reads
stream in ranged chunks of the generation that was found. Large objects from clients come
as composite uploads (parts under ``uploads/``, composed; ama_remote.service.multipart).

Configuration: ``STORAGE_EMULATOR_HOST`` (or the ``emulator_host`` option) selects an
emulator, reached with anonymous credentials. Otherwise the client authenticates with the
service-account key named by the ``credentials_file`` option or
``GOOGLE_APPLICATION_CREDENTIALS``, else with the machine's default credentials. V4 signed
URLs need a service-account key (the same option); without one, no URL is signed and the
server carries every transfer itself.
"""

from __future__ import annotations

import contextlib
import datetime
import functools
import os
import secrets
from collections.abc import Iterator
from typing import Any, BinaryIO, cast

import google.api_core.exceptions as api_errors
import google.auth.exceptions
import requests
from google.auth.credentials import AnonymousCredentials
from google.cloud import storage
from google.cloud.storage.retry import DEFAULT_RETRY
from google.oauth2 import service_account

from ama.plumbing import wire
from ama.plumbing.errors import BadInput
from ama_remote.storage.base import (
    CHUNK,
    UPLOADS,
    Joined,
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

MAX_EXPIRES = 7 * 86400  # V4 signed URLs live at most a week
_JOINED = "joined-"  # an upload's parts composed, under the upload's prefix, to be hashed
_COMPOSE_MAX = 32  # sources one compose request takes
_SCOPES = ["https://www.googleapis.com/auth/devstorage.read_write"]
_SIGNING_HINT = (
    "give the server a service-account key: the credentials_file storage option "
    "or GOOGLE_APPLICATION_CREDENTIALS"
)


class GCSBackend:
    """Objects in ``bucket`` below ``prefix``."""

    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        *,
        credentials_file: str | None = None,
        project: str | None = None,
        emulator_host: str | None = None,
        retry_deadline: float = 60.0,
        part_size: int = CHUNK,
    ) -> None:
        self.bucket_name = bucket
        self.prefix = prefix.strip("/")
        self.url = f"gs://{bucket}/{self.prefix}" if self.prefix else f"gs://{bucket}"
        self.part_size = part_size
        self._credentials_file = credentials_file or os.environ.get(
            "GOOGLE_APPLICATION_CREDENTIALS"
        )
        self._project = project
        self._emulator_host = emulator_host or os.environ.get("STORAGE_EMULATOR_HOST")
        self._retry = DEFAULT_RETRY.with_timeout(retry_deadline)

    # The client is made on first use: making it may read key files or probe for credentials.
    @functools.cached_property
    def _signer(self) -> service_account.Credentials | None:
        if not self._credentials_file:
            return None
        with self._errors():
            return service_account.Credentials.from_service_account_file(
                self._credentials_file, scopes=_SCOPES
            )

    @functools.cached_property
    def _bucket(self) -> storage.Bucket:
        with self._errors():
            if self._emulator_host:
                client = storage.Client(
                    project=self._project or os.environ.get("GOOGLE_CLOUD_PROJECT") or "ama",
                    credentials=AnonymousCredentials(),
                    client_options={"api_endpoint": self._emulator_host},
                )
            elif self._signer is not None:
                client = storage.Client(
                    project=self._project or self._signer.project_id, credentials=self._signer
                )
            else:
                client = storage.Client(project=self._project)
        return client.bucket(self.bucket_name)

    def _name(self, key: str) -> str:
        check_key(key)
        return f"{self.prefix}/{key}" if self.prefix else key

    def put(self, key: str, stream: BinaryIO, size: int) -> bool:
        """Store ``size`` bytes of ``stream`` under ``key`` unless it exists; see Backend.put."""
        name = self._name(key)
        reader = SizedReader(stream, size, key)
        blob = self._bucket.blob(name)
        try:
            with self._errors():
                if size <= self.part_size:
                    blob.upload_from_string(
                        reader.read(),
                        content_type="application/octet-stream",
                        if_generation_match=0,
                        retry=self._retry,
                    )
                    return True
                # Re-sending a large object that is already stored is common (an interrupted
                # push, run again): answer it without streaming. The precondition below still
                # decides a race between two uploads.
                if self.stat(key) is not None:
                    return False
                writer = blob.open(
                    "wb",
                    chunk_size=self.part_size,
                    content_type="application/octet-stream",
                    if_generation_match=0,
                    retry=self._retry,
                    ignore_flush=True,
                )
                with writer:  # on an error the resumable upload is cancelled, never finished
                    while chunk := reader.read(self.part_size):
                        writer.write(chunk)
        except _Precondition:
            return False
        return True

    def open(self, key: str) -> BinaryIO:
        """Return a stream of the bytes under ``key``; raises ObjectMissing."""
        name = self._name(key)
        with self._errors():
            blob = self._bucket.get_blob(name, retry=self._retry)
        if blob is None:
            raise ObjectMissing(key, self.url)
        return cast(BinaryIO, _ErrorMapping(
            blob.open("rb", chunk_size=self.part_size, retry=self._retry), self, _tag_of(blob)))

    def stat(self, key: str) -> int | None:
        """Return the size of ``key``, or None when absent."""
        name = self._name(key)
        with self._errors():
            blob = self._bucket.get_blob(name, retry=self._retry)
        return None if blob is None else int(blob.size)

    def tag(self, key: str) -> tuple[int, str, str] | None:
        """Return ``(size, generation, "")`` of ``key``, or None when absent: a generation
        names one version of an object already."""
        name = self._name(key)
        with self._errors():
            blob = self._bucket.get_blob(name, retry=self._retry)
        return None if blob is None else _tag_of(blob)

    def delete(self, key: str) -> None:
        """Remove ``key``; absent is fine."""
        name = self._name(key)
        with self._errors(), contextlib.suppress(api_errors.NotFound):
            self._bucket.blob(name).delete(retry=self._retry)

    def list(self, prefix: str = "") -> Iterator[str]:
        """Yield the keys below the backend's prefix that start with ``prefix``."""
        base = f"{self.prefix}/" if self.prefix else ""
        with self._errors():
            for blob in self._bucket.list_blobs(prefix=base + prefix, retry=self._retry):
                yield blob.name[len(base) :]

    def list_sizes(self, prefix: str = "") -> Iterator[tuple[str, int]]:
        """Yield ``(key, size)`` for the keys :meth:`list` yields, from the same pages."""
        base = f"{self.prefix}/" if self.prefix else ""
        with self._errors():
            for blob in self._bucket.list_blobs(prefix=base + prefix, retry=self._retry):
                yield blob.name[len(base) :], int(blob.size)

    def leftovers(self) -> Iterator[Leftover]:
        """Yield the uploads in parts never completed or aborted (their parts, and a join
        of them, under ``uploads/``), each dated by its last part. A one-request upload is
        stored whole or not at all, and an unfinished resumable upload never appears in the
        bucket (GCS drops its session a week after it began)."""
        base = f"{self.prefix}/" if self.prefix else ""
        with self._errors():
            yield from uploads_left(
                (blob.name[len(base):], int(blob.size), blob.updated)
                for blob in self._bucket.list_blobs(prefix=base + UPLOADS, retry=self._retry))

    def remove_leftover(self, leftover: Leftover) -> None:
        """Delete the parts of an upload :meth:`leftovers` found; gone already is fine."""
        if not leftover.handle.startswith(UPLOADS) or not leftover.handle.endswith("/"):
            raise BadInput(f"{leftover.handle} is not an upload in parts of this storage")
        for key in list(self.list(leftover.handle)):
            self.delete(key)

    def presign(
        self, key: str, method: str, expires: int, size: int | None = None
    ) -> wire.Action | None:
        """Return a V4 signed GET or PUT; a PUT only creates (412 when the key exists).
        Without a key to sign with (the machine's default credentials), None: the server
        then carries the bytes through its own routes, as for a ``file://`` storage."""
        name = self._name(key)
        method = check_method(method)
        if not 1 <= expires <= MAX_EXPIRES:
            raise BadInput(f"signed URLs expire after 1 to {MAX_EXPIRES} seconds, not {expires}")
        if self._signer is None:
            return None
        headers: dict[str, str] = {}
        if method == "PUT":
            headers["x-goog-if-generation-match"] = "0"
            if size is not None:
                headers["x-goog-content-length-range"] = f"{size},{size}"
        with self._errors():
            try:
                href = self._bucket.blob(name).generate_signed_url(
                    version="v4",
                    expiration=datetime.timedelta(seconds=expires),
                    method=method,
                    headers=headers or None,
                    credentials=self._signer,
                )
            except AttributeError as e:  # credentials without a private key cannot sign
                raise StorageDenied(self.url, f"cannot sign URLs: {e}", _SIGNING_HINT) from None
        return {"href": href, "method": method, "headers": headers, "expires": expires}

    # -- uploads in parts (ama_remote.service.multipart) --
    #
    # GCS's own answer to a large upload that goes on after a cut and in parallel is the
    # composite upload: each part an object of its own, sent at once with the others, then
    # composed (up to 32 sources a request) into one object. The parts stored are listed like
    # S3's; a resumable session would instead be one sequential stream whose offset (on
    # fake-gcs-server) cannot even be asked without ending it. The parts live under
    # ``uploads/<object key>/<upload id>/<number>``, outside ``objects/``.

    min_part = 1  # compose takes sources of any size

    def open_upload(self, key: str) -> str:
        """Return the id of the upload of ``key`` of which a part is stored (the newest), or
        a new one: an upload cut off keeps its parts, and the next one goes on from them. A
        new upload exists in the bucket only once a part of it is stored."""
        prefix = f"{self.prefix}/" if self.prefix else ""
        prefix += f"{UPLOADS}{check_key(key)}/"
        with self._errors():
            found = newest_upload(
                (blob.name[len(prefix):], blob.updated)
                for blob in self._bucket.list_blobs(prefix=prefix, retry=self._retry))
        return found or secrets.token_hex(16)

    def stored_parts(self, key: str, upload_id: str) -> dict[int, int]:
        """Return part number → size of the parts of the upload stored (each whole: an
        object exists only once all of it arrived)."""
        prefix = upload_prefix(key, upload_id)
        return {int(name[len(prefix):]): size for name, size in self.list_sizes(prefix)
                if name[len(prefix):].isdigit()}

    def presign_part(self, key: str, upload_id: str, number: int, size: int,
                     expires: int) -> wire.Action | None:
        """Return a signed PUT of part ``number`` (``size`` bytes), or None without a key to
        sign with: the client then sends the part through the server (:meth:`put_part`).
        A part is sent again over one that was cut short or had another size: not
        create-only, and checked only by hashing the joined object."""
        if self._signer is None:
            return None
        name = self._name(f"{upload_prefix(key, upload_id)}{number}")
        headers = {"x-goog-content-length-range": f"{size},{size}"}
        with self._errors():
            href = self._bucket.blob(name).generate_signed_url(
                version="v4", expiration=datetime.timedelta(seconds=expires), method="PUT",
                headers=headers, credentials=self._signer)
        return {"href": href, "method": "PUT", "headers": headers, "expires": expires}

    def put_part(self, key: str, upload_id: str, number: int, stream: BinaryIO,
                 size: int) -> None:
        """Store part ``number`` of the upload: exactly ``size`` bytes of ``stream``."""
        name = self._name(f"{upload_prefix(key, upload_id)}{number}")
        with self._errors():
            # Not retried: the request's body cannot be read twice; the client sends it again.
            self._bucket.blob(name, chunk_size=self.part_size).upload_from_file(
                SizedReader(stream, size, key), size=size,
                content_type="application/octet-stream", retry=None)

    def join_upload(self, key: str, upload_id: str) -> Joined:
        """Compose the stored parts, in order, into a new key below the upload's, which only
        this call writes. Returns it and its generation. Raises ObjectMissing when no part
        is stored (the upload was completed, or aborted, by another request)."""
        prefix = upload_prefix(key, upload_id)
        parts = [f"{prefix}{n}" for n in sorted(self.stored_parts(key, upload_id))]
        if not parts:
            raise ObjectMissing(f"{prefix}1", self.url)
        # A name of this join's own: a join that another completion of the same upload
        # makes meanwhile (a client cut off, run again) is never the one hashed here.
        name = f"{prefix}{_JOINED}{secrets.token_hex(8)}"
        joined = self._bucket.blob(self._name(name))
        try:
            with self._errors():
                # An object composed last is a source of the next compose: an append. Each
                # is conditional on the generation it appends to, so that a retried one
                # never appends twice.
                sources = parts[:_COMPOSE_MAX]
                joined.compose([self._bucket.blob(self._name(p)) for p in sources],
                               if_generation_match=0, retry=self._retry)
                for start in range(_COMPOSE_MAX, len(parts), _COMPOSE_MAX - 1):
                    more = parts[start:start + _COMPOSE_MAX - 1]
                    joined.compose([joined, *(self._bucket.blob(self._name(p)) for p in more)],
                                   if_generation_match=joined.generation, retry=self._retry)
        except _Precondition:
            raise StorageUnreachable(self.url, f"the join of upload {upload_id} changed while "
                                     "it was composed", "run the upload again") from None
        except StorageUnreachable:
            if not self.stored_parts(key, upload_id):  # its parts removed meanwhile
                raise ObjectMissing(f"{prefix}1", self.url) from None
            raise
        return Joined(name, str(joined.generation))

    def publish_upload(self, key: str, upload_id: str, joined: Joined) -> bool:
        """Copy the generation of the joined object that was hashed to ``key``, create-only.
        Returns True when stored, False when ``key`` existed already (its bytes are kept)."""
        upload_prefix(key, upload_id)
        source = self._bucket.blob(self._name(joined.key))
        target = self._bucket.blob(self._name(key))
        try:
            with self._errors():
                token: str | None = None
                while True:  # a rewrite of a large object may take several calls
                    token, _, _ = target.rewrite(
                        source, token=token, if_generation_match=0,
                        if_source_generation_match=int(joined.version), retry=self._retry)
                    if token is None:
                        return True
        except _Precondition:
            return False

    def abort_upload(self, key: str, upload_id: str) -> None:
        """Delete the parts of the upload, and their join; none left is fine."""
        for name in list(self.list(upload_prefix(key, upload_id))):
            self.delete(name)

    @contextlib.contextmanager
    def _errors(self) -> Iterator[None]:
        """Turn google's errors into ours: precondition, denied, unreachable."""
        try:
            yield
        except api_errors.PreconditionFailed:
            raise _Precondition from None
        except api_errors.NotFound:
            raise StorageUnreachable(
                self.url, f"bucket {self.bucket_name} does not exist", "create the bucket"
            ) from None
        except (api_errors.Forbidden, api_errors.Unauthorized) as e:
            raise StorageDenied(self.url, e.message) from None
        except (google.auth.exceptions.DefaultCredentialsError, FileNotFoundError) as e:
            raise StorageDenied(self.url, f"no usable credentials: {e}", _SIGNING_HINT) from None
        except (
            api_errors.GoogleAPICallError,
            api_errors.RetryError,
            google.auth.exceptions.TransportError,
            requests.exceptions.ConnectionError,
            requests.exceptions.Timeout,
        ) as e:
            raise StorageUnreachable(self.url, str(e)) from None


def _tag_of(blob: Any) -> tuple[int, str, str]:
    """The :meth:`GCSBackend.tag` of a blob as read: its size and generation."""
    return (int(blob.size), str(blob.generation or ""), "")


class _ErrorMapping(TaggedStream):
    """A reading stream of a generation (its tag) whose storage errors come out as ours."""

    def __init__(self, reader: Any, backend: GCSBackend, tag: tuple[int, str, str]) -> None:
        super().__init__(reader, tag)
        self._backend = backend

    def read(self, n: int = -1) -> bytes:
        with self._backend._errors():
            return self._stream.read(n)  # type: ignore[no-any-return]


class _Precondition(Exception):
    """The key already exists (if_generation_match=0 failed)."""
