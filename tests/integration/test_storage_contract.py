"""One contract every storage backend keeps: file://, s3:// (moto) and gs:// (fake-gcs-server)."""

from __future__ import annotations

import io
import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from blake3 import blake3

from ama.plumbing.errors import BadInput, NotFound
from ama.plumbing.hashing import hash_bytes
from ama_remote.storage import Backend, ObjectMissing, object_key, open_backend
from ama_remote.storage.base import SizeMismatch, StorageUnreachable

PREFIX = "team/datasets"
MiB = 1 << 20


@dataclass
class Storage:
    kind: str
    backend: Backend
    raw_keys: Callable[[], list[str]]  # every key in the bucket or folder, prefix included


@pytest.fixture(params=["file", "s3", "gs"])
def storage(request: pytest.FixtureRequest, tmp_path: Path) -> Storage:
    return make_storage(request.param, request, tmp_path)


@pytest.fixture(params=["s3", "gs"])
def cloud_storage(request: pytest.FixtureRequest, tmp_path: Path) -> Storage:
    return make_storage(request.param, request, tmp_path)


def make_storage(kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> Storage:
    if kind == "file":
        root = tmp_path / "storage"

        def raw_keys() -> list[str]:
            return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())

        return Storage(kind, open_backend(f"file://{root}/{PREFIX}"), raw_keys)
    if kind == "s3":
        bucket = request.getfixturevalue("s3_bucket")

        def raw_keys() -> list[str]:
            listed = bucket.client.list_objects_v2(Bucket=bucket.name)
            return sorted(o["Key"] for o in listed.get("Contents", []))

        return Storage(kind, open_backend(bucket.storage_url(PREFIX)), raw_keys)
    bucket = request.getfixturevalue("gcs_bucket")

    def raw_keys() -> list[str]:
        return sorted(b.name for b in bucket.client.list_blobs(bucket.name))

    return Storage(kind, open_backend(bucket.storage_url(PREFIX)), raw_keys)


def put_bytes(backend: Backend, key: str, data: bytes) -> bool:
    return backend.put(key, io.BytesIO(data), len(data))


def read_all(backend: Backend, key: str) -> bytes:
    stream = backend.open(key)
    try:
        return stream.read()
    finally:
        stream.close()


class Generated:
    """A deterministic, non-seekable byte source: a backend must stream it, not seek it."""

    def __init__(self, size: int, seed: bytes = b"ama") -> None:
        self.left = size
        self.block = blake3(seed).digest(length=MiB + 7)  # odd length: parts do not align
        self.pos = 0

    def read(self, n: int = -1) -> bytes:
        n = self.left if n < 0 else min(n, self.left, 300_000)  # short reads, like a socket
        out = bytearray()
        while len(out) < n:
            take = self.block[self.pos : self.pos + n - len(out)]
            out += take
            self.pos = (self.pos + len(take)) % len(self.block)
        self.left -= n
        return bytes(out)


def generated_id(size: int) -> str:
    hasher, source = blake3(), Generated(size)
    while chunk := source.read(MiB):
        hasher.update(chunk)
    return hasher.hexdigest()


def test_put_open_stat_list_delete(storage: Storage) -> None:
    backend = storage.backend
    data = b"weights\n" * 1000
    key = object_key(hash_bytes(data))
    other = object_key(hash_bytes(b"other"))

    assert put_bytes(backend, key, data) is True
    assert put_bytes(backend, other, b"other") is True
    assert read_all(backend, key) == data
    assert backend.stat(key) == len(data)
    assert sorted(backend.list()) == sorted([key, other])
    assert list(backend.list(key[:10])) == [key]
    assert list(backend.list("manifests/")) == []

    backend.delete(key)
    assert backend.stat(key) is None
    assert list(backend.list()) == [other]
    backend.delete(key)  # deleting an absent key is fine
    with pytest.raises(ObjectMissing):
        backend.open(key)


def test_cloud_listings_tell_each_size(cloud_storage: Storage) -> None:
    from ama_remote.storage.base import ListsSizes

    backend = cloud_storage.backend
    assert isinstance(backend, ListsSizes)
    backend.put("a/one", io.BytesIO(b"1"), 1)
    backend.put("a/deep/three", io.BytesIO(b"333"), 3)
    backend.put("b/two", io.BytesIO(b"22"), 2)
    assert sorted(backend.list_sizes("a/")) == [("a/deep/three", 3), ("a/one", 1)]
    assert sorted(backend.list_sizes()) == [("a/deep/three", 3), ("a/one", 1), ("b/two", 2)]
    assert sorted(k for k, _ in backend.list_sizes()) == sorted(backend.list())


def test_keys_live_under_the_prefix_in_the_shared_layout(storage: Storage) -> None:
    data = b"config: 1\n"
    oid = hash_bytes(data)
    put_bytes(storage.backend, object_key(oid), data)
    assert storage.raw_keys() == [f"{PREFIX}/objects/{oid[:2]}/{oid[2:]}"]


def test_put_is_create_only(storage: Storage) -> None:
    key = object_key(hash_bytes(b"first"))
    assert put_bytes(storage.backend, key, b"first") is True
    assert put_bytes(storage.backend, key, b"second, and longer") is False
    assert read_all(storage.backend, key) == b"first"
    assert storage.backend.stat(key) == len(b"first")


def test_empty_object_round_trips(storage: Storage) -> None:
    key = object_key(hash_bytes(b""))
    assert put_bytes(storage.backend, key, b"") is True
    assert storage.backend.stat(key) == 0
    assert read_all(storage.backend, key) == b""


def test_streams_a_multi_mib_object_both_ways(storage: Storage) -> None:
    size = 20 * MiB + 12345  # several 8 MiB parts: S3 multipart, GCS resumable
    oid = generated_id(size)
    key = object_key(oid)

    assert storage.backend.put(key, Generated(size), size) is True  # type: ignore[arg-type]
    assert storage.backend.stat(key) == size
    assert storage.backend.put(key, Generated(size), size) is False  # type: ignore[arg-type]

    hasher, total = blake3(), 0
    with storage.backend.open(key) as stream:
        while chunk := stream.read(MiB):
            assert len(chunk) <= MiB
            hasher.update(chunk)
            total += len(chunk)
    assert (hasher.hexdigest(), total) == (oid, size)


@pytest.mark.parametrize("actual", [99, 101])
def test_a_stream_of_the_wrong_size_stores_nothing(storage: Storage, actual: int) -> None:
    key = object_key(hash_bytes(b"x" * actual))
    with pytest.raises(SizeMismatch):
        storage.backend.put(key, io.BytesIO(b"x" * actual), 100)
    assert storage.backend.stat(key) is None
    assert storage.raw_keys() == []


def test_a_large_stream_of_the_wrong_size_stores_nothing(storage: Storage) -> None:
    size = 17 * MiB
    key = object_key(generated_id(size))
    with pytest.raises(SizeMismatch):
        storage.backend.put(key, Generated(size - 1), size)  # type: ignore[arg-type]
    with pytest.raises(SizeMismatch):
        storage.backend.put(key, Generated(size + 1), size)  # type: ignore[arg-type]
    assert storage.backend.stat(key) is None
    assert storage.raw_keys() == []


def test_a_missing_key_is_object_missing(storage: Storage) -> None:
    key = object_key("0" * 64)
    with pytest.raises(ObjectMissing) as caught:
        storage.backend.open(key)
    assert isinstance(caught.value, NotFound)
    assert caught.value.exit_code == 3
    assert key in str(caught.value) and storage.backend.url in str(caught.value)
    assert storage.backend.stat(key) is None


def test_presigned_put_then_get_over_plain_http(storage: Storage) -> None:
    data = b"presigned bytes\n" * 64
    key = object_key(hash_bytes(data))
    put = storage.backend.presign(key, "PUT", 120, size=len(data))
    if storage.kind == "file":
        assert put is None
        assert storage.backend.presign(key, "GET", 120) is None
        return
    assert put is not None and put["method"] == "PUT" and put["expires"] == 120
    assert expiry_in_url(put["href"]) == "120"
    assert urlsplit(put["href"]).hostname == "127.0.0.1"

    answer = requests.put(put["href"], data=data, headers=put["headers"], timeout=30)
    assert answer.status_code == 200, answer.text
    assert storage.backend.stat(key) == len(data)

    get = storage.backend.presign(key, "GET", 60)
    assert get is not None and get["method"] == "GET" and get["expires"] == 60
    assert expiry_in_url(get["href"]) == "60"
    answer = requests.request(get["method"], get["href"], headers=get["headers"], timeout=30)
    assert answer.status_code == 200
    assert answer.content == data


def test_a_presigned_put_only_creates(cloud_storage: Storage) -> None:
    backend = cloud_storage.backend
    key = object_key(hash_bytes(b"kept"))
    put = backend.presign(key, "PUT", 60)
    assert put is not None
    # The create-only condition is a signed header, so a client cannot leave it out.
    signed = signed_headers(put["href"])
    assert {name.lower() for name in put["headers"]} <= signed
    condition = "if-none-match" if cloud_storage.kind == "s3" else "x-goog-if-generation-match"
    assert condition in signed

    assert put_bytes(backend, key, b"kept") is True
    answer = requests.put(put["href"], data=b"replaced", headers=put["headers"], timeout=30)
    if cloud_storage.kind == "s3":  # fake-gcs-server ignores the condition on signed PUTs
        assert answer.status_code == 412
        assert read_all(backend, key) == b"kept"


@pytest.fixture(params=["file", "s3"])
def racing_storage(request: pytest.FixtureRequest, tmp_path: Path) -> Storage:
    # Not gs: fake-gcs-server ignores ifGenerationMatch on resumable uploads (GCS honours it).
    return make_storage(request.param, request, tmp_path)


class RacedSource(Generated):
    """A large source that lets another writer store the same key while it is being read."""

    def __init__(self, size: int, race: Callable[[], None]) -> None:
        super().__init__(size)
        self.race: Callable[[], None] | None = race

    def read(self, n: int = -1) -> bytes:
        if self.race is not None and self.left < 5 * MiB:
            race, self.race = self.race, None
            race()
        return super().read(n)


def test_the_first_of_two_racing_uploads_wins(racing_storage: Storage) -> None:
    backend = racing_storage.backend
    size = 20 * MiB
    key = object_key(generated_id(size))
    results = []

    def other_writer() -> None:
        results.append(put_bytes(backend, key, b"winner"))

    assert backend.put(key, RacedSource(size, other_writer), size) is False  # type: ignore[arg-type]
    assert results == [True]
    assert read_all(backend, key) == b"winner"


def expiry_in_url(href: str) -> str:
    query = parse_qs(urlsplit(href).query)
    values = query.get("X-Amz-Expires") or query.get("X-Goog-Expires")
    assert values, f"no expiry in {href}"
    return values[0]


def signed_headers(href: str) -> set[str]:
    query = parse_qs(urlsplit(href).query)
    values = query.get("X-Amz-SignedHeaders") or query.get("X-Goog-SignedHeaders")
    assert values, f"no signed headers in {href}"
    return set(values[0].split(";"))


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def unreachable(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    yield request.param(tmp_path)


def _unreachable_file(tmp_path: Path) -> Backend:
    (tmp_path / "a-file").write_bytes(b"")
    return open_backend(f"file://{tmp_path}/a-file/storage")


def _unreachable_s3(tmp_path: Path) -> Backend:
    return open_backend(
        "s3://bucket/prefix",
        endpoint_url=f"http://127.0.0.1:{closed_port()}",
        region="us-east-1",
        access_key_id="testing",
        secret_access_key="testing",
        max_attempts=1,
    )


def _unreachable_gs(tmp_path: Path) -> Backend:
    return open_backend(
        "gs://bucket/prefix", emulator_host=f"http://127.0.0.1:{closed_port()}", retry_deadline=1
    )


@pytest.mark.parametrize(
    "unreachable", [_unreachable_file, _unreachable_s3, _unreachable_gs], indirect=True,
    ids=["file", "s3", "gs"],
)
def test_an_unreachable_storage_names_its_url_and_exits_5(unreachable: Backend) -> None:
    with pytest.raises(StorageUnreachable) as caught:
        put_bytes(unreachable, object_key(hash_bytes(b"x")), b"x")
    assert caught.value.exit_code == 5
    assert unreachable.url in str(caught.value)


@pytest.mark.parametrize(
    "url", ["ftp://host/x", "file://relative/path", "s3://", "gs:///prefix", "s3://b/p?x=1"]
)
def test_a_url_no_backend_serves_is_bad_input(url: str) -> None:
    from ama.plumbing.errors import BadInput

    with pytest.raises(BadInput):
        open_backend(url)


@pytest.mark.parametrize("expires", [0, 8 * 86400])
def test_presigned_urls_expire_within_a_week(cloud_storage: Storage, expires: int) -> None:
    from ama.plumbing.errors import BadInput

    with pytest.raises(BadInput):
        cloud_storage.backend.presign(object_key("0" * 64), "GET", expires)


def test_gcs_signs_with_the_configured_key_and_hands_out_no_url_without_one(
    gcs_bucket: Any, gcs_credentials: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("GOOGLE_APPLICATION_CREDENTIALS")
    key = object_key("0" * 64)
    # The server then carries the bytes itself (see test_wan_large).
    assert open_backend(gcs_bucket.storage_url("p")).presign(key, "GET", 60) is None
    assert open_backend(gcs_bucket.storage_url("p")).presign(key, "PUT", 60, 7) is None

    configured = open_backend(gcs_bucket.storage_url("p"), credentials_file=str(gcs_credentials))
    action = configured.presign(key, "GET", 60)
    assert action is not None
    credential = parse_qs(urlsplit(action["href"]).query)["X-Goog-Credential"][0]
    assert credential.startswith("ama-server@ama-test.iam.gserviceaccount.com/")


def test_what_an_upload_cut_off_leaves_is_listed_and_removed(
        storage: Storage, request: pytest.FixtureRequest, tmp_path: Path) -> None:
    from datetime import datetime, timedelta, timezone

    backend = storage.backend
    put_bytes(backend, "objects/aa/whole", b"whole")
    assert list(backend.leftovers()) == []
    started = datetime.now(timezone.utc) - timedelta(seconds=5)
    cut = f"{PREFIX}/objects/ab/cut"
    # What a process killed in the middle of a write leaves, for each kind of storage:
    if storage.kind == "file":
        from ama_remote.storage.local import _TEMP_PREFIX

        temp = tmp_path / "storage" / PREFIX / "objects" / "ab" / f"{_TEMP_PREFIX}cut-0123"
        temp.parent.mkdir(parents=True)
        temp.write_bytes(b"x" * 1000)
    elif storage.kind == "s3":
        client = request.getfixturevalue("s3_bucket").client
        bucket = request.getfixturevalue("s3_bucket").name
        # A part of an upload in parts is an object of its own; a multipart upload of S3's
        # own is what a join of them cut off (or an older server's upload) leaves.
        client.put_object(Bucket=bucket, Key=f"{PREFIX}/uploads/objects/ab/cut/0123abcd/1",
                          Body=b"x" * 1000)
        upload = client.create_multipart_upload(Bucket=bucket, Key=cut)
        client.upload_part(Bucket=bucket, Key=cut, UploadId=upload["UploadId"], PartNumber=1,
                           Body=b"y" * 1000)
        found = list(backend.leftovers())
        assert [(f.name.split(" ")[1:], f.size) for f in found] == [
            (["(upload", "in", "parts", "0123abcd)"], 1000),
            (["(multipart", "upload", f"{upload['UploadId']})"], 1000)]
        assert all(f.name.startswith("objects/ab/cut ") for f in found)
        assert found[0].modified >= started  # moto dates every multipart upload in 2010
        backend.remove_leftover(found[1])
        assert len(list(backend.leftovers())) == 1
    else:
        gcs = request.getfixturevalue("gcs_bucket")
        gcs.client.bucket(gcs.name).blob(cut).create_resumable_upload_session()
        # An unfinished resumable upload is no object: nothing to list or remove.
        assert list(backend.leftovers()) == []
        assert storage.raw_keys() == [f"{PREFIX}/objects/aa/whole"]
        # A part of an upload in parts is one.
        part = f"{PREFIX}/uploads/objects/ab/cut/0123abcd/1"
        gcs.client.bucket(gcs.name).blob(part).upload_from_string(b"x" * 1000)
    found = list(backend.leftovers())
    assert len(found) == 1
    assert found[0].name.startswith("objects/ab/") and found[0].size == 1000
    assert found[0].modified.tzinfo is not None
    assert found[0].modified >= started
    backend.remove_leftover(found[0])
    backend.remove_leftover(found[0])  # already gone is fine
    assert list(backend.leftovers()) == []
    assert storage.raw_keys() == [f"{PREFIX}/objects/aa/whole"]
    assert read_all(backend, "objects/aa/whole") == b"whole"


def test_s3_joins_the_parts_it_read_create_only(s3_bucket: Any) -> None:
    from ama_remote.storage.s3 import S3Backend

    backend = open_backend(s3_bucket.storage_url(PREFIX))
    assert isinstance(backend, S3Backend)
    key = "objects/ab/cdef"
    upload = backend.open_upload(key)
    data = [bytes([n]) * (5 << 20) for n in (1, 2)] + [b"end"]
    for n, part in enumerate(data, 1):
        action = backend.presign_part(key, upload, n, len(part), 60)
        assert action is not None
        response = requests.put(action["href"], data=part, headers=action["headers"])
        assert response.status_code == 200
        # Create-only: once stored, a part is what is hashed and joined.
        again = requests.put(action["href"], data=b"x" * len(part), headers=action["headers"])
        assert again.status_code == 412
    assert backend.open_upload(key) == upload  # found again by its parts
    tags = backend.part_tags(key, upload)
    assert {n: size for n, (size, _) in tags.items()} == {1: 5 << 20, 2: 5 << 20, 3: 3}
    stream, tag = backend.open_part(key, upload, 3)
    assert stream.read() == b"end" and tag == tags[3][1]
    with pytest.raises(ObjectMissing):
        backend.open_part(key, upload, 4)


    def join() -> bool:
        joining = backend.open_join(key)
        for n in (3, 1, 2):  # copied in any order, joined in the parts' order
            backend.copy_part(key, upload, joining, n, tags[n][1])
        return backend.finish_join(key, joining, [1, 2, 3])

    assert join() is True
    assert read_all(backend, key) == b"".join(data)
    assert join() is False  # never replaces the object
    joining = backend.open_join(key)
    backend.copy_part(key, upload, joining, 1, tags[1][1])
    with pytest.raises(StorageUnreachable):  # a part missing from the join: never stored
        backend.finish_join(key, joining, [1, 2])
    backend.abort_upload(key, upload)
    with pytest.raises(ObjectMissing):
        backend.copy_part(key, upload, backend.open_join(key), 1, tags[1][1])
    assert list(backend.list("")) == [key]
    uploads = s3_bucket.client.list_multipart_uploads(Bucket=s3_bucket.name)["Uploads"]
    assert len(uploads) == 1  # the join opened last; the refused ones left nothing
    backend.abort_join(key, uploads[0]["UploadId"])
    assert s3_bucket.client.list_multipart_uploads(Bucket=s3_bucket.name).get(
        "Uploads", []) == []


def test_gcs_joins_more_parts_than_one_compose_takes_in_order(gcs_bucket: Any) -> None:
    from ama_remote.storage.gcs import GCSBackend

    # 70 parts: a compose of 32, then appends of 31 and of 7 to it.
    backend = open_backend(gcs_bucket.storage_url(PREFIX))
    assert isinstance(backend, GCSBackend)
    key = "objects/ab/cdef"
    upload = backend.open_upload(key)
    data = bytes(range(256)) * 273 + b"end"
    size = -(-len(data) // 70)
    for n in range(70):
        part = data[n * size:(n + 1) * size]
        backend.put_part(key, upload, n + 1, io.BytesIO(part), len(part))
    assert backend.open_upload(key) == upload  # found again by its parts
    joined = backend.join_upload(key, upload)
    assert read_all(backend, joined.key) == data
    assert backend.publish_upload(key, upload, joined) is True
    backend.abort_upload(key, upload)
    assert read_all(backend, key) == data
    assert list(backend.list("")) == [key]


def test_file_joins_an_uploads_parts_aside_and_links_it_create_only(tmp_path: Path) -> None:
    """A file:// storage joins the parts into a file of the join's own (hashed by the
    server before it gets the object's key, after the completing request answered: a join
    of gigabytes outlasts a request), then links it to the key, create-only."""
    from ama_remote.storage.base import Joined
    from ama_remote.storage.local import LocalBackend

    backend = open_backend((tmp_path / "storage").as_uri())
    assert isinstance(backend, LocalBackend)
    key = "objects/ab/cdef"
    with pytest.raises(ObjectMissing):  # nothing stored: completed, or never begun
        backend.join_upload(key, backend.open_upload(key))
    upload = backend.open_upload(key)
    data = bytes(range(256)) * 273 + b"end"
    for n, at in enumerate(range(0, len(data), 10_000)):
        part = data[at:at + 10_000]
        backend.put_part(key, upload, n + 1, io.BytesIO(part), len(part))
    assert backend.open_upload(key) == upload  # found again by its parts
    joined = backend.join_upload(key, upload)
    again = backend.join_upload(key, upload)  # a completion run twice: a join each
    assert joined.key != again.key and key not in list(backend.list(""))
    assert read_all(backend, joined.key) == data and backend.stat(key) is None
    with pytest.raises(StorageUnreachable):  # not the file that was hashed
        backend.publish_upload(key, upload, Joined(again.key, "0"))
    with pytest.raises(BadInput):  # not a join of this upload: never linked to the key
        backend.publish_upload(key, upload, Joined("objects/ab/other", "0"))
    # Another client's upload of the same object, its parts stored: not needed once held.
    other = "f" * 32
    backend.put_part(key, other, 1, io.BytesIO(data[:10_000]), 10_000)
    assert backend.publish_upload(key, upload, joined) is True
    assert read_all(backend, key) == data
    assert list(backend.list("")) == [key]
    # No part of either upload, no join left (temp files, which only leftovers lists).
    assert [leftover.name for leftover in backend.leftovers()] == []
    backend.put_part(key, upload, 1, io.BytesIO(data[:10_000]), 10_000)
    assert backend.publish_upload(key, upload, backend.join_upload(key, upload)) is False
    assert read_all(backend, key) == data  # kept as it was
    assert [leftover.name for leftover in backend.leftovers()] == []
