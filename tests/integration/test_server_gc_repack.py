"""``ama-server gc`` repacks a pack whose referenced objects fill less than a share of it:
they move to a new pack, the others are forgotten, and the old pack goes at a later run.
On SQLite and PostgreSQL, on a folder and S3, with gc's steps run one at a time where an
upload or a commit falls between them."""

from __future__ import annotations

import io
import os
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

import boto3
import pytest

from ama.plumbing import pack
from ama.plumbing.errors import ValidationFailed
from ama.plumbing.hashing import hash_bytes
from ama.plumbing.transport import HttpTransport
from ama_remote.service import Service
from ama_remote.service.packs import pack_key
from tests.integration.test_gunicorn import write_version
from tests.integration.test_server_gc import check_cloneable, gc, pack_stored, push_packed
from tests.services.server import RunningServer

NO_GRACE = timedelta(0)


@pytest.fixture
def server(phased_server: RunningServer) -> RunningServer:
    """ama-server on SQLite and PostgreSQL, storing in a folder and in S3."""
    return phased_server


def _extra(tmp_path: Path, count: int, size: int) -> dict[str, Path]:
    """``count`` objects of ``size`` random bytes as files: {id: path}."""
    folder = tmp_path / f"extra-{count}-{size}"
    folder.mkdir()
    found = {}
    for _ in range(count):
        data = os.urandom(size)
        path = folder / hash_bytes(data)
        path.write_bytes(data)
        found[hash_bytes(data)] = path
    return found


def _one_live_in_a_pack(client: HttpTransport, project: str, tmp_path: Path,
                        dead: int = 9, size: int = 4096
                        ) -> tuple[dict[str, Path], dict[str, Path], str, str]:
    """One pack holding a committed version's objects and ``dead`` objects of ``size``
    bytes that no version names (an upload cut off before its commit sent them with
    it). Returns the version's objects, the others, the manifest and the pack."""
    client.put_class(project, "models")
    paths, manifest = write_version(tmp_path, {"weights.txt": b"the one file kept\n"})
    others = _extra(tmp_path, dead, size)
    pid = push_packed(client, project, {**paths, **others}, tmp_path / "packs")
    assert pid is not None
    client.commit(project, "models", None, None, manifest, "one file")
    return paths, others, manifest, pid


def _pack_bytes(server: RunningServer) -> int:
    """The bytes of every pack in the server's storage."""
    url = urlsplit(server.storage_url)
    if url.scheme == "file":
        return sum(p.stat().st_size for p in Path(url.path, "packs").rglob("*") if p.is_file())
    pages = boto3.client("s3").get_paginator("list_objects_v2").paginate(
        Bucket=url.netloc, Prefix=f"{url.path.strip('/')}/packs/")
    return sum(o["Size"] for page in pages for o in page.get("Contents", []))


def _overwrite(server: RunningServer, key: str, data: bytes) -> None:
    """Replace the bytes under ``key`` in the server's storage, as a failing disk or a
    hand in the bucket would."""
    url = urlsplit(server.storage_url)
    if url.scheme == "file":
        path = Path(url.path, key)
        path.chmod(0o644)
        path.write_bytes(data)
        return
    boto3.client("s3").put_object(Bucket=url.netloc, Key=f"{url.path.strip('/')}/{key}",
                                  Body=data)


def _asks_for(client: HttpTransport, project: str, objects: dict[str, Path]) -> set[str]:
    """The ids of ``objects`` an upload would be asked to send."""
    answer = client.batch(project, "upload",
                          [{"id": oid, "size": p.stat().st_size} for oid, p in objects.items()])
    return {item["id"] for item in answer["objects"]
            if (item.get("actions") or {}).get("upload")}


def test_a_mostly_unreferenced_pack_is_repacked_and_the_old_one_freed_after_the_grace(
        server: RunningServer, tmp_path: Path) -> None:
    client = HttpTransport(server.url, server.token)
    paths, others, _, old = _one_live_in_a_pack(client, server.project, tmp_path)
    before = _pack_bytes(server)

    dry = gc(server, "--dry-run", "--grace", "0")["storages"][0]
    assert (dry["repacks"], dry["repacked"]) == (1, 0)
    assert dry["repack_bytes"] >= 9 * 4096
    assert _pack_bytes(server) == before  # a dry run changes nothing

    report = gc(server, "--grace", "0")["storages"][0]
    assert (report["repacks"], report["repacked"], report["refused"]) == (1, 1, [])
    assert report["repacked_bytes"] >= 9 * 4096
    # The old pack stays until a run after the grace: a download told to read it may be
    # under way. The version's objects now lie in the new pack.
    assert pack_stored(server, old)
    check_cloneable(client, server.project, [paths], tmp_path)
    # The others are forgotten: an upload is asked for them again.
    assert _asks_for(client, server.project, others) == set(others)
    assert _asks_for(client, server.project, paths) == set()

    again = gc(server, "--grace", "0")["storages"][0]
    assert (again["freed_packs"], again["repacks"]) == (1, 0)
    assert not pack_stored(server, old)
    assert _pack_bytes(server) < before - 9 * 4096
    check_cloneable(client, server.project, [paths], tmp_path)
    assert server.run("fsck").returncode == 0
    # Nothing more to do.
    last = gc(server, "--grace", "0")["storages"][0]
    assert (last["freed_packs"], last["repacks"], last["packs"]) == (0, 0, 0)


def test_a_pack_mostly_referenced_or_with_repacking_off_is_left_whole(
        server: RunningServer, tmp_path: Path) -> None:
    client = HttpTransport(server.url, server.token)
    # The version's objects fill most of this pack: kept whole, its one other object too.
    client.put_class(server.project, "models")
    paths, manifest = write_version(tmp_path, {"big.bin": os.urandom(60_000)})
    other = _extra(tmp_path, 1, 1000)
    full = push_packed(client, server.project, {**paths, **other}, tmp_path / "packs")
    client.commit(server.project, "models", None, None, manifest, "mostly")
    report = gc(server, "--grace", "0")["storages"][0]
    assert (report["repacks"], report["repacked"], report["freed_packs"]) == (0, 0, 0)
    assert full is not None and pack_stored(server, full)
    assert _asks_for(client, server.project, other) == set()

    # A mostly unreferenced pack, with repacking turned off, is kept whole too.
    (tmp_path / "b").mkdir()
    _, others, _, old = _one_live_in_a_pack(client, server.project, tmp_path / "b")
    report = gc(server, "--grace", "0", "--repack-below", "0")["storages"][0]
    assert (report["repacks"], report["repacked"]) == (0, 0)
    assert pack_stored(server, old)
    assert _asks_for(client, server.project, others) == set()


def test_a_pack_damaged_in_storage_is_not_repacked(server: RunningServer,
                                                  tmp_path: Path) -> None:
    client = HttpTransport(server.url, server.token)
    paths, others, _, old = _one_live_in_a_pack(client, server.project, tmp_path)
    kept = next(oid for oid, p in paths.items() if p.read_bytes() == b"the one file kept\n")
    # The kept file's bytes flipped in the stored pack.
    data = bytearray(_read_stored(server, old))
    where = {m.id: m for m in pack.read_index(io.BytesIO(bytes(data)), old)}[kept]
    data[where.offset] ^= 0xFF
    _overwrite(server, pack_key(old), bytes(data))

    run = server.run("gc", "--grace", "0", "--json", check=False)
    assert run.returncode == 1, run.stderr
    assert f"pack {old} is refused" in run.stderr
    assert "ama-server fsck" in run.stderr
    assert _read_stored(server, old) == bytes(data)  # left as it was, nothing copied
    # Its objects are still recorded where they were: fsck names the damage.
    assert _asks_for(client, server.project, others) == set()
    fsck = server.run("fsck", check=False)
    assert fsck.returncode != 0 and old in fsck.stdout + fsck.stderr


def _read_stored(server: RunningServer, pid: str) -> bytes:
    url = urlsplit(server.storage_url)
    if url.scheme == "file":
        return Path(url.path, pack_key(pid)).read_bytes()
    answer = boto3.client("s3").get_object(Bucket=url.netloc,
                                           Key=f"{url.path.strip('/')}/{pack_key(pid)}")
    return bytes(answer["Body"].read())


def test_an_upload_that_found_an_object_in_the_pack_before_its_repack_sends_it_again(
        server: RunningServer, collector: Service, tmp_path: Path) -> None:
    client = HttpTransport(server.url, server.token)
    _, others, first, old = _one_live_in_a_pack(client, server.project, tmp_path)
    # A second version names one of the unreferenced objects: its upload finds it held.
    reused = next(iter(others))
    paths, manifest = write_version(tmp_path, {"again.bin": others[reused].read_bytes()},
                                    parent=first)
    rest = {oid: p for oid, p in paths.items() if oid != reused}
    assert _asks_for(client, server.project, {reused: others[reused]}) == set()
    push_packed(client, server.project, rest, tmp_path / "packs")
    # Before its commit, gc repacks the first pack without the object and, at the next
    # run, frees the old pack (and, with no grace, the pack of the new tree and manifest).
    [group] = collector.look(NO_GRACE, 0.5)
    assert set(group.repacks) == {old}
    assert collector.repack(group, NO_GRACE)[0] == 1
    [group] = collector.look(NO_GRACE, 0.5)
    assert old in group.packs
    assert collector.sweep(group, collector.mark(group, NO_GRACE))[2] == 2
    assert not pack_stored(server, old)

    with pytest.raises(ValidationFailed, match="missing"):
        client.commit(server.project, "models", None, None, manifest, "after-repack")
    # Run again, the upload is asked for the object and sends it; the commit is made.
    assert reused in _asks_for(client, server.project, paths)
    push_packed(client, server.project, paths, tmp_path / "packs")
    version = client.commit(server.project, "models", None, None, manifest, "again")
    assert version["version"] == "0.0.0"  # of a new asset
    check_cloneable(client, server.project, [paths], tmp_path)
    assert server.run("fsck").returncode == 0


def test_a_commit_between_the_look_and_the_repack_keeps_the_pack_whole(
        server: RunningServer, collector: Service, tmp_path: Path) -> None:
    client = HttpTransport(server.url, server.token)
    _, others, first, old = _one_live_in_a_pack(client, server.project, tmp_path)
    [group] = collector.look(NO_GRACE, 0.5)
    assert set(group.repacks) == {old}
    # After the look, a version comes to name one of the objects the repack would forget.
    reused = next(iter(others))
    paths, manifest = write_version(tmp_path, {"again.bin": others[reused].read_bytes()},
                                    parent=first)
    push_packed(client, server.project, paths, tmp_path / "packs")
    client.commit(server.project, "models", None, None, manifest, "meanwhile")
    before = _pack_bytes(server)
    assert collector.repack(group, NO_GRACE) == (0, 0, [])
    # Nothing moved, and the copy the repack made is gone again.
    assert _pack_bytes(server) == before
    assert _asks_for(client, server.project, others) == set()
    check_cloneable(client, server.project, [paths], tmp_path)
    assert server.run("fsck").returncode == 0
