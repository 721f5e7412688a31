"""``ama-server gc`` repacks a pack whose referenced objects fill less than a share of it:
they move to a new pack, the others are forgotten, and the old pack goes at a later run.
On SQLite and PostgreSQL, on a folder and S3, with gc's steps run one at a time where an
upload or a commit falls between them."""

from __future__ import annotations

import contextlib
import io
import os
import tempfile
import threading
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import boto3
import pytest
from sqlalchemy import select

import ama_remote.service.commit as commit_module
from ama.plumbing import pack
from ama.plumbing.errors import ValidationFailed
from ama.plumbing.hashing import hash_bytes
from ama.plumbing.transport import HttpTransport
from ama_remote.db import Database
from ama_remote.models import User
from ama_remote.service import Service
from ama_remote.service.common import Caller
from ama_remote.service.packs import pack_key
from ama_remote.storage import open_backend
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
    assert server.invoke("fsck").returncode == 0
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

    run = server.invoke("gc", "--grace", "0", "--json", check=False)
    assert run.returncode == 1, run.stderr
    assert f"pack {old} is refused" in run.stderr
    assert "ama-server fsck" in run.stderr
    assert _read_stored(server, old) == bytes(data)  # left as it was, nothing copied
    # Its objects are still recorded where they were: fsck names the damage.
    assert _asks_for(client, server.project, others) == set()
    fsck = server.invoke("fsck", check=False)
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
    assert server.invoke("fsck").returncode == 0


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
    assert server.invoke("fsck").returncode == 0


def test_two_gc_runs_at_once_keep_the_new_pack_the_winner_moved_to(
        server: RunningServer, collector: Service, tmp_path: Path) -> None:
    # Both runs plan the same repack, so both write the same new pack (named by its
    # bytes). Run B goes whole while run A is between writing it and its switch: B finds
    # the pack stored, reads it, and moves the objects there; A's switch is refused, and
    # the copy A wrote stays, since B's rows point to it.
    client = HttpTransport(server.url, server.token)
    paths, _, _, old = _one_live_in_a_pack(client, server.project, tmp_path)
    other = Service(Database(server.database_url))
    try:
        [group_a] = collector.look(NO_GRACE, 0.5)
        [group_b] = other.look(NO_GRACE, 0.5)
        assert set(group_a.repacks) == set(group_b.repacks) == {old}
        switch = collector._switch
        seen: dict[str, object] = {}

        def b_runs_first(*args: Any) -> bool:
            seen["new"], seen["b"] = args[5], other.repack(group_b, NO_GRACE)
            return switch(*args)

        collector._switch = b_runs_first  # type: ignore[method-assign]
        assert collector.repack(group_a, NO_GRACE) == (0, 0, [])
        assert seen["b"] == (1, group_b.repacks[old].size - _size_of(server, seen["new"]), [])
        assert pack_stored(server, str(seen["new"]))
        # A run after the grace frees the old pack; the version lives on in the new one.
        [group] = collector.look(NO_GRACE, 0.5)
        collector.sweep(group, collector.mark(group, NO_GRACE))
        assert not pack_stored(server, old)
        check_cloneable(client, server.project, [paths], tmp_path)
        assert server.invoke("fsck").returncode == 0
    finally:
        other.db.dispose()


def test_bytes_already_under_the_new_packs_name_are_read_before_anything_moves_there(
        server: RunningServer, collector: Service, tmp_path: Path) -> None:
    # Bytes under the new pack's name that are not that pack (an upload of another project
    # on the storage that sent it damaged, or damage in storage): the repack is refused,
    # and the old pack keeps the objects.
    client = HttpTransport(server.url, server.token)
    paths, _, _, old = _one_live_in_a_pack(client, server.project, tmp_path)
    [group] = collector.look(NO_GRACE, 0.5)
    plan = group.repacks[old]
    storage = collector._storage(group.url)
    with tempfile.TemporaryDirectory() as folder, \
            contextlib.closing(storage.open(pack_key(old))) as stream:
        new, _, size, _ = pack.rewrite(stream, old, plan.size, set(plan.live), folder)
    assert storage.put(pack_key(new), io.BytesIO(b"\0" * size), size)
    repacked, freed, refused = collector.repack(group, NO_GRACE)
    assert (repacked, freed) == (0, 0)
    assert len(refused) == 1 and new in refused[0] and "not repacked" in refused[0]
    [group] = collector.look(NO_GRACE, 0.5)
    collector.sweep(group, collector.mark(group, NO_GRACE))
    assert pack_stored(server, old)
    check_cloneable(client, server.project, [paths], tmp_path)


def _size_of(server: RunningServer, pid: object) -> int:
    return open_backend(server.storage_url).stat(pack_key(str(pid))) or 0


@pytest.fixture
def pg_server(start_ama_server: Callable[..., RunningServer],
              postgres_url: str) -> RunningServer:
    """ama-server on PostgreSQL, where commits run side by side and take their version ids
    in another order than they end."""
    return start_ama_server(postgres_url, None)


def test_a_commit_in_flight_at_gcs_look_is_waited_for_and_keeps_what_it_names(
        pg_server: RunningServer, tmp_path: Path) -> None:
    # Commit T1 takes its version id and stops before it ends; commit T2 takes a higher
    # id and ends first. gc's look waits for T1 (its watermark is read while no commit
    # runs), so T1's version is walked and the object it names from the pack stays.
    server = pg_server
    collector = Service(Database(server.database_url))
    client = HttpTransport(server.url, server.token)
    try:
        _, others, first, old = _one_live_in_a_pack(client, server.project, tmp_path)
        reused = next(iter(others))
        paths, manifest = write_version(tmp_path, {"again.bin": others[reused].read_bytes()},
                                        parent=first)
        push_packed(client, server.project,
                    {oid: p for oid, p in paths.items() if oid != reused}, tmp_path / "p1")
        with collector.db.read() as s:
            user = s.scalars(select(User).order_by(User.id)).one()
            caller = Caller(user_id=user.id, username=user.username, is_admin=True)
        inside, release = threading.Event(), threading.Event()
        point = commit_module.crash_point

        def held(name: str) -> None:
            if name == "server.commit.recorded" and threading.current_thread().name == "T1":
                inside.set()
                release.wait(60)
            point(name)

        commit_module.crash_point = held  # type: ignore[assignment]
        done: dict[str, Any] = {}
        t1 = threading.Thread(name="T1", target=lambda: done.update(v=collector.commit(
            caller, server.project, "models", None, None, manifest, "t1")))
        t1.start()
        try:
            assert inside.wait(30)
            client.put_class(server.project, "other")
            p2, m2 = write_version(tmp_path, {"t2.txt": b"second commit\n"})
            push_packed(client, server.project, p2, tmp_path / "p2")
            client.commit(server.project, "other", None, None, m2, "t2")
            looked: list[Any] = []
            look = threading.Thread(target=lambda: looked.extend(
                collector.look(NO_GRACE, 0.5)))
            look.start()
            look.join(2)
            assert look.is_alive(), "gc's look read its watermark while a commit was in flight"
        finally:
            release.set()
            t1.join(60)
            commit_module.crash_point = point  # type: ignore[assignment]
        look.join(60)
        assert done["v"]["version"] == "0.0.0"  # a new asset of the class
        [group] = looked
        assert reused not in group.repacks[old].dead
        collector.repack(group, NO_GRACE)
        check_cloneable(client, server.project, [paths], tmp_path)
        assert server.invoke("fsck").returncode == 0
    finally:
        collector.db.dispose()
