"""Packs end to end (ama-format(5) PACKS, ama-protocol(7) Packs): many small files go up
in one pack and come back with a few requests, through ama-server on file://, S3 and GCS
storage and on SQLite and PostgreSQL, and through the embedded ``file://`` remote; what
the remote holds is never sent again; a pack with one bad member is refused whole; a
clone that needs a few objects of a large pack reads their byte ranges only. Requests are
counted by the proxy of tests/services/wan.py in front of the server and its storage."""

from __future__ import annotations

import io
import json
import os
import shutil
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import requests
from blake3 import blake3

from ama.plumbing import pack
from ama.plumbing.odb import FileObjectDatabase
from ama.plumbing.transport import HttpTransport, ValidationFailed
from ama.porcelain import download
from ama.porcelain.download import receive
from tests.e2e.test_lifecycle import ama, files
from tests.integration.test_wan import _behind, _lifecycle
from tests.services.server import RunningServer
from tests.services.wan import WanProxy

RTT_MS = 5
FILES = 300


def _far_server(request: pytest.FixtureRequest, storage: str, database: str,
                start_ama_server: Callable[..., RunningServer],
                wan_proxy: Callable[..., WanProxy], monkeypatch: pytest.MonkeyPatch,
                ) -> tuple[RunningServer, WanProxy, WanProxy | None]:
    """ama-server on ``storage`` and ``database``, behind a proxy; S3 behind its own, which
    the server reaches it through, so presigned URLs name it too. (fake-gcs-server answers
    a signed URL only on its own host and port, so GCS is reached directly.)"""
    database_url = None if database == "sqlite" else request.getfixturevalue("postgres_url")
    store = None
    storage_url = None
    if storage != "file":
        bucket = request.getfixturevalue(f"{storage}_bucket")
        if storage == "s3":
            store = _behind(wan_proxy, bucket.endpoint_url, rtt_ms=RTT_MS)
            monkeypatch.setenv("AWS_ENDPOINT_URL", store.url)
        storage_url = bucket.storage_url("ama")
    server = start_ama_server(database_url=database_url, storage_url=storage_url)
    return server, _behind(wan_proxy, server.url, rtt_ms=RTT_MS), store


def _pack_bytes(objects: dict[str, bytes]) -> tuple[str, bytes]:
    out = io.BytesIO()
    name = pack.write([(oid, len(b)) for oid, b in objects.items()],
                      lambda oid, size: objects[oid], out)
    return name, out.getvalue()


@pytest.mark.parametrize("storage, database", [
    ("file", "sqlite"), ("file", "postgresql"), ("s3", "sqlite"), ("gcs", "postgresql")])
def test_many_small_files_travel_in_one_pack_and_are_never_sent_again(
        storage: str, database: str, request: pytest.FixtureRequest, tmp_path: Path,
        start_ama_server: Callable[..., RunningServer], wan_proxy: Callable[..., WanProxy],
        monkeypatch: pytest.MonkeyPatch) -> None:
    server, remote, store = _far_server(request, storage, database, start_ama_server,
                                        wan_proxy, monkeypatch)
    uploaded, sent, clone = _lifecycle(tmp_path, server, remote.url, count=FILES)
    assert files(clone) == sent
    assert uploaded["objects_sent"] == FILES + 3 + 2 + 1  # files, 2 trees, the manifest
    # Not one request per object: one pack up, read back by a few ranges and one GET.
    assert remote.count(path="/objects/") == remote.count("POST", "/objects/batch")
    assert remote.count("POST", "/objects/batch") <= 8
    # Announced, then checked (by the server's own PUT on file:// storage).
    checks = 1 if storage == "file" else 2
    assert remote.count("POST", "/packs") == checks
    if storage == "file":
        assert remote.count("PUT", "/packs/") == 1
        assert 1 <= remote.count("GET", "/packs/") <= 4
    else:  # presigned, straight to the storage
        assert remote.count("PUT", "/packs/") == remote.count("GET", "/packs/") == 0
    if store is not None:
        assert store.count("PUT", "/packs/") == 1
        # The server reads the pack back once; the clone reads the manifest's and trees'
        # ranges level by level, then the rest of the pack.
        assert 2 <= store.count("GET", "/packs/") <= 5
        assert store.count("GET", "/objects/") == 0
    assert remote.count() + (store.count() if store else 0) < 60
    # The same files in another asset: only its manifest is new, and travels alone.
    remote.reset_counts()
    again = tmp_path / "again"
    shutil.copytree(tmp_path / "m", again, ignore=shutil.ignore_patterns(".ama"))
    ama("init", "data", cwd=again)
    ama("add", ".", cwd=again)
    second = json.loads(ama("upload", "-m", "same files", "--json", cwd=again).stdout)
    assert second["objects_sent"] == 1
    assert remote.count("POST", "/packs") == checks
    if storage == "file":
        assert remote.count("PUT", "/packs/") == 1
    if store is not None:
        assert store.count("PUT", "/packs/") == 2  # the first upload's, and this one's


@pytest.mark.parametrize("storage", ["file", "s3"])
def test_a_pack_with_one_corrupt_member_is_refused_whole(
        storage: str, request: pytest.FixtureRequest, tmp_path: Path,
        start_ama_server: Callable[..., RunningServer], wan_proxy: Callable[..., WanProxy],
        monkeypatch: pytest.MonkeyPatch) -> None:
    server, remote, store = _far_server(request, storage, "sqlite", start_ama_server,
                                        wan_proxy, monkeypatch)
    client = HttpTransport(remote.url, server.token)
    objects = {blake3(b).hexdigest(): b for b in (os.urandom(900) for _ in range(20))}
    name, data = _pack_bytes(objects)
    members = pack.read_index(io.BytesIO(data), name)
    bad = bytearray(data)
    bad[members[7].offset + 3] ^= 0x55
    # Named by its own bytes, so only the member's hash gives it away.
    name = blake3(bytes(bad)).hexdigest()
    path = tmp_path / "bad.pack"
    path.write_bytes(bytes(bad))
    with pytest.raises(ValidationFailed) as e:
        client.send_pack(server.project, name, path, len(bad))
    assert e.value.problems == [f"hash mismatch: {members[7].id}"]
    answer = client.batch(server.project, "upload",
                          [{"id": oid, "size": len(b)} for oid, b in objects.items()])
    assert all("actions" in item for item in answer["objects"])  # none of them is present
    if storage == "s3":
        bucket = request.getfixturevalue("s3_bucket")
        assert bucket.client.list_objects_v2(Bucket=bucket.name).get("KeyCount", 0) == 0
    else:
        assert not [p for p in Path(server.storage_url.removeprefix("file://")).rglob("*")
                    if p.is_file() and "packs" in p.parts]
    # The intact pack goes up.
    good = tmp_path / "good.pack"
    good_name, good_data = _pack_bytes(objects)
    good.write_bytes(good_data)
    assert client.send_pack(server.project, good_name, good, len(good_data))["objects"] == 20


def test_a_clone_needing_three_objects_of_a_large_pack_reads_only_their_ranges(
        request: pytest.FixtureRequest, tmp_path: Path,
        start_ama_server: Callable[..., RunningServer], wan_proxy: Callable[..., WanProxy],
        monkeypatch: pytest.MonkeyPatch) -> None:
    server, remote, store = _far_server(request, "s3", "sqlite", start_ama_server,
                                        wan_proxy, monkeypatch)
    assert store is not None
    client = HttpTransport(remote.url, server.token)
    blobs = [os.urandom(1024) for _ in range(10_000)]
    objects = {blake3(b).hexdigest(): b for b in blobs}
    name, data = _pack_bytes(objects)
    path = tmp_path / "big.pack"
    path.write_bytes(data)
    assert client.send_pack(server.project, name, path, len(data))["objects"] == 10_000
    store.reset_counts()
    wanted = [blobs[5], blobs[6], blobs[8_000]]  # two neighbours and one far away
    odb = FileObjectDatabase(tmp_path / "home" / "objects")
    odb.root.mkdir(parents=True)
    got = receive(client, server.project, odb, [(blake3(b).hexdigest(), len(b))
                                                 for b in wanted])
    assert got == 3
    assert [odb.get(blake3(b).hexdigest()) for b in wanted] == wanted
    reads = [r for r in store.requests if r.method == "GET" and "/packs/" in r.target]
    assert len(reads) == 2  # the neighbours joined into one range
    assert all(r.range is not None for r in reads)
    assert remote.count("GET") == 0


def test_the_embedded_remote_round_trips_small_files_in_packs(tmp_path: Path) -> None:
    home = Path(os.environ["AMA_HOME"])
    ama("class", "init", "data", cwd=tmp_path)
    m = tmp_path / "m"
    m.mkdir()
    ama("init", "data", cwd=m)
    for n in range(200):
        (m / f"f{n:03}.txt").write_text(f"small file {n}\n")
    (m / "big.bin").write_bytes(os.urandom(pack.THRESHOLD + 1))
    ama("add", ".", cwd=m)
    uploaded = json.loads(ama("upload", "-m", "first", "--json", cwd=m).stdout)
    assert uploaded["objects_sent"] == 200 + 1 + 2
    storage = home / "remote" / "storage"
    packs = [p for p in (storage / "packs").rglob("*") if p.is_file()]
    loose = [p for p in (storage / "objects").rglob("*") if p.is_file()]
    assert len(packs) == 1 and len(loose) == 1  # the big file alone goes loose
    other = {"AMA_HOME": str(tmp_path / "other-home")}
    ama("remote", "add", "team", (home / "remote").as_uri(), cwd=tmp_path, env=other)
    ama("remote", "default", "team", cwd=tmp_path, env=other)
    ama("clone", "data/1", "-d", "clone", cwd=tmp_path, env=other)
    assert files(tmp_path / "clone") == files(m)
    # Each object entered the other store loose, as every store keeps them.
    store = tmp_path / "other-home" / "objects"
    assert sum(1 for p in store.rglob("*") if p.is_file() and len(p.name) == 62) == 203
    # A member changed in the pack file: a clone reads the run of members holding it at
    # once and hashes each; it refuses the lot, and none of them enters a third store.
    changed = blake3(b"small file 100\n").hexdigest()
    with open(packs[0], "rb") as f:
        members = pack.read_index(f, "on disk")
    hit = next(member for member in members if member.id == changed)
    packs[0].chmod(0o644)
    with open(packs[0], "r+b") as f:
        f.seek(hit.offset)
        f.write(b"S")
    third = {"AMA_HOME": str(tmp_path / "third-home")}
    ama("remote", "add", "team", (home / "remote").as_uri(), cwd=tmp_path, env=third)
    ama("remote", "default", "team", cwd=tmp_path, env=third)
    refused = ama("clone", "data/1", "-d", "clone3", cwd=tmp_path, env=third, code=1)
    assert changed in refused.stderr and "corrupt" in refused.stderr
    store = tmp_path / "third-home" / "objects"
    blobs = {blake3(f"small file {n}\n".encode()).hexdigest() for n in range(200)}
    assert not [p for p in store.rglob("*") if p.parent.name + p.name in blobs]


def test_a_download_of_many_packs_holds_a_bounded_share_of_them_in_memory(
        tmp_path: Path, start_ama_server: Callable[..., RunningServer],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Eight threads fetch eight packs of 2 MiB; at most 5 MiB of their members wait for the
    store at once (two packs), counted from the first byte a pack's fetch asks for to the
    store's write of each member."""
    server = start_ama_server()
    limit, count, per_pack, size = 5 << 20, 8, 100, 20 << 10
    needed: dict[str, int] = {}
    wanted: list[tuple[str, int]] = []
    lock = threading.Lock()
    held = [0, 0]  # now, at most

    def hold(n: int) -> None:
        with lock:
            held[0] += n
            held[1] = max(held)

    class Counting(HttpTransport):
        def download(self, action: Any, oid: str, path: Any, **kw: Any) -> Any:
            hold(needed.get(oid, 0))
            return super().download(action, oid, path, **kw)

    class Store(FileObjectDatabase):
        def write_hashed(self, oid: str, data: Any, lacking: bool = False) -> bool:
            added = super().write_hashed(oid, data, lacking)
            hold(-len(data))
            return added

    client = Counting(server.url, server.token)
    for _ in range(count):
        blobs = [os.urandom(size) for _ in range(per_pack)]
        objects = {blake3(b).hexdigest(): b for b in blobs}
        name, data = _pack_bytes(objects)
        (tmp_path / name).write_bytes(data)
        assert client.send_pack(server.project, name, tmp_path / name,
                                len(data))["objects"] == per_pack
        needed[name] = per_pack * size
        wanted += [(oid, size) for oid in objects]
    monkeypatch.setattr(download, "HELD_BYTES", limit)
    odb = Store(tmp_path / "home" / "objects")
    odb.root.mkdir(parents=True)
    assert receive(client, server.project, odb, wanted, parallelism=8) == len(wanted)
    assert held[0] == 0  # every member fetched was stored
    assert held[1] <= limit
    assert all(odb.get(oid) is not None for oid, _ in wanted[::97])


@pytest.mark.parametrize("database, removed", [
    ("sqlite", True), ("postgresql", True), ("sqlite", False)],
    ids=["removed-sqlite", "removed-postgresql", "sent-twice"])
def test_a_pack_fsck_removes_as_abandoned_while_it_is_checked_records_nothing(
        database: str, removed: bool, request: pytest.FixtureRequest, tmp_path: Path,
        start_ama_server: Callable[..., RunningServer],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """``ama-server fsck --repair`` removes a pack announced and never checked (an upload
    cut off) once it is older than the grace; one whose check is under way when that
    happens must record none of its objects as held, their bytes being gone. Without the
    repair, another upload of the same pack announcing it during the check (two pushes of
    the same files at once) does not make that check fail."""
    release = tmp_path / "release"
    monkeypatch.setenv("AMA_HOLD_AT", "server.pack.record")
    monkeypatch.setenv("AMA_HOLD_UNTIL", str(release))
    server = start_ama_server(database_url=None if database == "sqlite"
                              else request.getfixturevalue("postgres_url"))
    client = HttpTransport(server.url, server.token)
    objects = {blake3(data).hexdigest(): data for data in (b"late\n" * 20, b"checked\n")}
    name, data = _pack_bytes(objects)
    path = tmp_path / f"{name}.pack"
    path.write_bytes(data)
    failed: list[BaseException] = []

    def send() -> None:
        try:
            client.send_pack(server.project, name, path, len(data))
        except BaseException as e:  # noqa: BLE001 (handed to the test)
            failed.append(e)

    sending = threading.Thread(target=send)
    sending.start()
    waiting = Path(f"{release}.waiting")
    for _ in range(600):  # the server has read the pack whole and is about to record it
        if waiting.exists():
            break
        threading.Event().wait(0.05)
    assert waiting.read_text().startswith("server.pack.record ")
    key = f"packs/{name[:2]}/{name[2:]}"
    if removed:
        done = server.invoke("fsck", "--repair", "--grace", "0")
        assert done.stdout.split("\n")[0].split("\t") == [
            server.project, key, "", "leftover", "repaired"], done.stdout
    # Another upload announces the pack (after the repair: anew, a day later in real life,
    # and is cut off before sending it): the check under way must not take a new row for
    # its own, and must not fail for the same one.
    time.sleep(1.1)  # a row is dated to the second
    announced = requests.post(f"{server.url}/v1/projects/{server.project}/packs",
                              json={"id": name, "size": len(data)}, timeout=30,
                              headers={"Authorization": f"Bearer {server.token}"})
    assert "upload" in announced.json()["actions"]
    release.touch()
    sending.join(timeout=60)
    answer = client.batch(server.project, "upload",
                          [{"id": oid, "size": len(b)} for oid, b in objects.items()])
    if not removed:
        assert not failed, failed
        assert not any(item.get("actions") for item in answer["objects"])  # all held
        assert server.invoke("fsck", "--repair", "--grace", "0").stdout == ""
        return
    assert len(failed) == 1 and "announced again, or removed" in str(failed[0])
    assert all(item.get("actions") for item in answer["objects"])  # none held
    # Sent again, it is checked and recorded, and nothing is left over.
    assert client.send_pack(server.project, name, path, len(data))["objects"] == 2
    assert server.invoke("fsck", "--repair", "--grace", "0").stdout == ""
