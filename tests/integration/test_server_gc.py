"""``ama-server gc`` against a real ama-server under gunicorn, on SQLite and PostgreSQL: a dry
run changes nothing, the grace period keeps recent uploads, objects of uploads never
committed are freed, a commit naming freed objects fails cleanly and succeeds once they are
sent again, and uploads racing repeated collections with no grace lose nothing."""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from ama.plumbing.errors import ValidationFailed
from ama.plumbing.hashing import hash_bytes
from ama.plumbing.transport import HttpTransport
from ama_remote.db import Database
from ama_remote.service import Service
from ama_remote.storage.base import object_key
from tests.integration.test_gunicorn import push, write_version
from tests.services.server import RunningServer

VERSIONS = 8


def gc(server: RunningServer, *args: str) -> dict:
    done = server.run("gc", "--json", *args)
    return json.loads(done.stdout)


def totals(report: dict) -> tuple[int, int, int, int]:
    rows = report["storages"]
    return (sum(r["objects"] for r in rows), sum(r["bytes"] for r in rows),
            sum(r["freed"] for r in rows), sum(r["freed_bytes"] for r in rows))


def stored(server: RunningServer, oid: str) -> bool:
    return (Path(urlsplit(server.storage_url).path) / object_key(oid)).exists()


def check_cloneable(client: HttpTransport, project: str, versions: list[dict[str, Path]],
                    tmp_path: Path) -> None:
    """Every object of every version downloads and hashes to its id."""
    wanted = {oid: path for paths in versions for oid, path in paths.items()}
    answer = client.batch(project, "download",
                          [{"id": oid, "size": p.stat().st_size} for oid, p in wanted.items()])
    out = tmp_path / "downloaded"
    out.mkdir(exist_ok=True)
    for item in answer["objects"]:
        assert "error" not in item, item
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
    assert done.stdout.split("\t")[2:] == [str(len(unreferenced) + 1), str(size + len(orphan)),
                                           str(len(unreferenced) + 1),
                                           f"{size + len(orphan)}\n"]
    assert f"freed {len(unreferenced) + 1} object(s), {size + len(orphan)} bytes" in done.stderr
    assert not any(stored(server, oid) for oid in unreferenced) and not orphan_path.exists()
    assert all(stored(server, oid) for oid in kept)
    check_cloneable(client, server.project, [kept], tmp_path)
    assert totals(gc(server, "--grace", "0")) == (0, 0, 0, 0)
    assert server.run("fsck").returncode == 0


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


def test_uploads_racing_repeated_collections_without_grace_lose_nothing(
        racing_server: RunningServer, tmp_path: Path) -> None:
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
                        push(client, server.project, paths)
                        made = client.commit(server.project, "models", asset, parent, manifest,
                                             f"u{n}-v{v}-{attempt}")
                        break
                    except ValidationFailed:  # gc freed some: send them again
                        continue
                else:
                    raise AssertionError(f"uploader {n} never committed version {v}")
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
    server.run("gc", "--grace", "0")
    check_cloneable(setup, server.project, committed, tmp_path)
    assert server.run("fsck").returncode == 0
