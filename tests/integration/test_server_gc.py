"""``ama-server gc`` against a real ama-server under gunicorn, on SQLite and PostgreSQL: a dry
run changes nothing, the grace period keeps recent uploads, objects of uploads never
committed are freed, a commit naming freed objects fails cleanly and succeeds once they are
sent again, and uploads racing repeated collections with no grace lose nothing, loose or
in packs; a pack is freed whole once none of its objects is referenced, and kept whole
while one is."""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from ama.plumbing import pack
from ama.plumbing.errors import ValidationFailed
from ama.plumbing.hashing import hash_bytes
from ama.plumbing.transport import HttpTransport
from ama_remote.db import Database
from ama_remote.service import Service
from ama_remote.service.packs import pack_key
from ama_remote.storage import open_backend
from ama_remote.storage.base import object_key
from tests.integration.test_gunicorn import push, write_version
from tests.services.server import RunningServer

VERSIONS = 8


def gc(server: RunningServer, *args: str) -> dict:
    """``ama-server gc --json ARGS``, run in this process: its report. (The installed
    command's own output is read where a test runs it with ``server.run``.)"""
    done = server.invoke("gc", "--json", *args)
    return json.loads(done.stdout)


def totals(report: dict) -> tuple[int, int, int, int]:
    rows = report["storages"]
    return (sum(r["objects"] for r in rows), sum(r["bytes"] for r in rows),
            sum(r["freed"] for r in rows), sum(r["freed_bytes"] for r in rows))


def stored(server: RunningServer, oid: str) -> bool:
    return (Path(urlsplit(server.storage_url).path) / object_key(oid)).exists()


def pack_stored(server: RunningServer, pid: str) -> bool:
    return open_backend(server.storage_url).stat(pack_key(pid)) is not None


def push_packed(client: HttpTransport, project: str, paths: dict[str, Path],
                folder: Path) -> str | None:
    """Upload what the remote lacks in one pack, as the porcelain does with small objects;
    return the pack's name (None when nothing was missing)."""
    answer = client.batch(project, "upload",
                          [{"id": oid, "size": p.stat().st_size} for oid, p in paths.items()])
    missing = [(item["id"], item["size"]) for item in answer["objects"]
               if (item.get("actions") or {}).get("upload")]
    if not missing:
        return None
    folder.mkdir(exist_ok=True)
    name, path, size = pack.write_file(missing, lambda oid: str(paths[oid]), str(folder))
    assert client.send_pack(project, name, path, size)["objects"] == len(missing)
    return name


def check_cloneable(client: HttpTransport, project: str, versions: list[dict[str, Path]],
                    tmp_path: Path) -> None:
    """Every object of every version downloads, loose or from its pack, and hashes to its
    id."""
    wanted = {oid: path for paths in versions for oid, path in paths.items()}
    answer = client.batch(project, "download",
                          [{"id": oid, "size": p.stat().st_size} for oid, p in wanted.items()])
    out = tmp_path / "downloaded"
    out.mkdir(exist_ok=True)
    for item in answer["objects"]:
        assert "error" not in item, item
        if "pack" in item:
            where = item["pack"]
            action = answer["packs"][where["id"]]["actions"]["download"]
            data = client.read_range(action, item["id"], where["offset"], where["length"])
            assert hash_bytes(data) == item["id"]
            continue
        client.download(item["actions"]["download"], item["id"], out / item["id"])
        assert hash_bytes((out / item["id"]).read_bytes()) == item["id"]


@pytest.fixture
def server(start_ama_server: Callable[..., RunningServer],
           server_database_url: str) -> RunningServer:
    return start_ama_server(server_database_url)


def test_dry_run_grace_and_freeing_what_no_version_references(
        server: RunningServer, tmp_path: Path) -> None:
    client = HttpTransport(server.url, server.token)
    client.put_class(server.project, "models")
    kept, manifest = write_version(tmp_path, {"a": b"kept\n" * 100, "shared": b"both\n"})
    push(client, server.project, kept)
    client.commit(server.project, "models", None, None, manifest, "k1")
    # An upload never committed: its objects, one shared with the version.
    aborted, _ = write_version(tmp_path, {"b": b"abandoned\n" * 300, "shared": b"both\n"})
    push(client, server.project, aborted)
    # Bytes in storage no project has a record of, as an upload cut off leaves them.
    orphan = b"orphan bytes\n"
    orphan_path = Path(urlsplit(server.storage_url).path) / object_key(hash_bytes(orphan))
    orphan_path.parent.mkdir(parents=True, exist_ok=True)
    orphan_path.write_bytes(orphan)
    unreferenced = set(aborted) - set(kept)
    size = sum(aborted[oid].stat().st_size for oid in unreferenced)

    assert totals(gc(server, "--dry-run", "--grace", "0")) == (
        len(unreferenced) + 1, size + len(orphan), 0, 0)
    assert all(stored(server, oid) for oid in aborted) and orphan_path.exists()
    # A week's grace keeps the upload, and only marks the orphan: it may be an upload
    # writing it right now.
    assert totals(gc(server, "--grace", "7d")) == (1, len(orphan), 0, 0)
    assert all(stored(server, oid) for oid in aborted) and orphan_path.exists()

    done = server.run("gc", "--grace", "0")
    assert done.stdout.rstrip("\n").split("\t")[2:] == [
        str(len(unreferenced) + 1), str(size + len(orphan)), str(len(unreferenced) + 1),
        str(size + len(orphan)), "0", "0", "0", "0", "0", "0", "0", "0"]
    assert f"freed {len(unreferenced) + 1} object(s), {size + len(orphan)} bytes" in done.stderr
    assert not any(stored(server, oid) for oid in unreferenced) and not orphan_path.exists()
    assert all(stored(server, oid) for oid in kept)
    check_cloneable(client, server.project, [kept], tmp_path)
    assert totals(gc(server, "--grace", "0")) == (0, 0, 0, 0)
    assert server.invoke("fsck").returncode == 0


def test_a_commit_naming_freed_objects_fails_cleanly_until_they_are_sent_again(
        server: RunningServer, tmp_path: Path) -> None:
    client = HttpTransport(server.url, server.token)
    client.put_class(server.project, "models")
    paths, manifest = write_version(tmp_path, {"w": os.urandom(3000), "x": b"x\n"})
    push(client, server.project, paths)
    assert totals(gc(server, "--grace", "0"))[2] == len(paths)
    with pytest.raises(ValidationFailed, match="missing") as failed:
        client.commit(server.project, "models", None, None, manifest, "k1")
    assert failed.value.problems
    assert push(client, server.project, paths) == len(paths)  # all asked for again
    version = client.commit(server.project, "models", None, None, manifest, "k2")
    assert version["version"] == "0.0.0"
    check_cloneable(client, server.project, [paths], tmp_path)


@pytest.fixture(params=["file", "s3"])
def racing_server(request: pytest.FixtureRequest,
                  start_ama_server: Callable[..., RunningServer],
                  server_database_url: str) -> RunningServer:
    """A server on each database, storing in a folder (uploads streamed through the server)
    or in S3 (uploads to presigned URLs, which the negotiation remembers until verified)."""
    storage = None if request.param == "file" else \
        request.getfixturevalue("s3_bucket").storage_url("ama")
    return start_ama_server(server_database_url, storage)


def test_a_pack_goes_whole_when_nothing_references_its_objects_and_stays_whole_otherwise(
        racing_server: RunningServer, tmp_path: Path) -> None:
    server = racing_server
    client = HttpTransport(server.url, server.token)
    client.put_class(server.project, "models")
    # An upload never committed, in one pack: every object of it unreferenced.
    dead_paths, _ = write_version(tmp_path, {"a": b"abandoned\n" * 30, "b": b"left\n"})
    dead = push_packed(client, server.project, dead_paths, tmp_path / "packs")
    # A pack holding a committed version's objects and one object no version names.
    live_paths, manifest = write_version(tmp_path, {"kept": b"kept\n" * 40})
    extra = tmp_path / "extra"
    extra.write_bytes(b"in the pack, in no version\n")
    live = push_packed(client, server.project,
                       {**live_paths, hash_bytes(extra.read_bytes()): extra}, tmp_path / "packs")
    client.commit(server.project, "models", None, None, manifest, "k1")
    assert dead and live and pack_stored(server, dead) and pack_stored(server, live)
    dead_size = open_backend(server.storage_url).stat(pack_key(dead))

    # A week's grace keeps the young pack; a dry run counts it and changes nothing.
    report = gc(server, "--grace", "7d")["storages"][0]
    assert (report["packs"], report["freed_packs"]) == (0, 0)
    report = gc(server, "--dry-run", "--grace", "0")["storages"][0]
    assert (report["packs"], report["pack_bytes"], report["freed_packs"]) == (1, dead_size, 0)
    assert pack_stored(server, dead)
    done = server.run("gc", "--dry-run", "--grace", "0")
    assert done.stdout.rstrip("\n").split("\t")[6:] == ["1", str(dead_size), "0", "0",
                                                        "0", "0", "0", "0"]
    assert f"1 pack(s), {dead_size} bytes" in done.stderr
    assert push_packed(client, server.project, dead_paths, tmp_path / "packs") is None

    report = gc(server, "--grace", "0")["storages"][0]
    assert (report["packs"], report["freed_packs"], report["freed_pack_bytes"]) == (
        1, 1, dead_size)
    assert not pack_stored(server, dead) and pack_stored(server, live)
    check_cloneable(client, server.project, [live_paths], tmp_path)
    # The freed objects are asked for again, and come back in the same pack.
    assert push_packed(client, server.project, dead_paths, tmp_path / "packs") == dead
    assert pack_stored(server, dead)
    assert gc(server, "--grace", "0")["storages"][0]["freed_packs"] == 1
    assert gc(server, "--grace", "0")["storages"][0]["packs"] == 0
    assert server.invoke("fsck").returncode == 0


@pytest.mark.parametrize("packed", [False, True], ids=["loose", "packed"])
def test_uploads_racing_repeated_collections_without_grace_lose_nothing(
        racing_server: RunningServer, packed: bool, tmp_path: Path) -> None:
    server = racing_server
    setup = HttpTransport(server.url, server.token)
    setup.put_class(server.project, "models")
    committed: list[dict[str, Path]] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def uploader(n: int) -> None:
        client = HttpTransport(server.url, server.token)
        parent = None
        asset = None
        try:
            for v in range(VERSIONS):
                # A file every version of every uploader shares, one per uploader, one new.
                paths, manifest = write_version(tmp_path, {
                    "common": b"common to all\n", f"mine-{n}": f"uploader {n}\n".encode(),
                    "new": os.urandom(2000 + v)}, parent)
                for attempt in range(20):
                    try:
                        if packed:
                            push_packed(client, server.project, paths, tmp_path / f"packs-{n}")
                        else:
                            push(client, server.project, paths)
                        made = client.commit(server.project, "models", asset, parent, manifest,
                                             f"u{n}-v{v}-{attempt}")
                        break
                    except ValidationFailed as e:  # gc freed some: send them again
                        last = e
                        continue
                else:
                    raise AssertionError(f"uploader {n} never committed version {v}: {last}")
                asset, parent = made["ordinal"], manifest
                with lock:
                    committed.append(paths)
        except BaseException as e:  # reported below, in the test's thread
            errors.append(e)

    threads = [threading.Thread(target=uploader, args=(n,)) for n in range(3)]
    for t in threads:
        t.start()
    # Collections as fast as they go, in this process on the server's database and storage,
    # beside ama-server gc itself, until every uploader is done.
    collector = Service(Database(server.database_url))
    runs = 0
    while any(t.is_alive() for t in threads) or runs < 2:
        collector.gc(timedelta(0))
        if runs % 10 == 0:
            server.run("gc", "--grace", "0")
        runs += 1
    for t in threads:
        t.join()
    collector.db.dispose()
    assert not errors, errors
    assert len(committed) == 3 * VERSIONS
    server.invoke("gc", "--grace", "0")
    check_cloneable(setup, server.project, committed, tmp_path)
    assert server.invoke("fsck").returncode == 0
