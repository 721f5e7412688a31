"""Two ``ama-server serve`` processes sharing one PostgreSQL database and one S3 bucket
(moto) behave as one remote: sixteen clients commit through both at once."""

from __future__ import annotations

import os
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ama.plumbing.hashing import hash_bytes
from ama.plumbing.objects import Author, Manifest, Tree, TreeEntry
from ama.plumbing.transport import Conflict, HttpTransport
from tests.services.s3 import S3Bucket
from tests.services.server import run_ama_server, serving

CLIENTS = 16
NEW_ASSETS_EACH = 3
VERSIONS_EACH = 2
PROJECT = "demo"


@pytest.fixture
def two_servers(postgres_url: str, s3_bucket: S3Bucket, tmp_path: Path
                ) -> Iterator[tuple[list[str], str, list[Path]]]:
    """Yield the URLs of two servers on one database and one bucket, the admin's token and
    the servers' logs."""
    home = tmp_path / "server-home"
    storage = s3_bucket.storage_url("ama")
    env = {k: v for k, v in os.environ.items() if not k.startswith("AMA_")}
    env.update(AMA_SERVER_HOME=str(home), AMA_DATABASE_URL=postgres_url)
    token = run_ama_server(env, "init", "--admin", "admin", "--email", "admin@example.org",
                           "--storage", storage).stdout.strip()
    run_ama_server(env, "project", "add", PROJECT, "--storage", storage)
    run_ama_server(env, "project", "grant", PROJECT, "admin", "admin")
    logs = [tmp_path / f"server-{n}.log" for n in range(2)]
    with serving(env, logs[0]) as first, serving(env, logs[1]) as second:
        yield [first.url, second.url], token, logs


def _objects(count: int, tag: str) -> tuple[dict[str, bytes], list[str]]:
    """One blob and tree, and ``count`` distinct manifests of it; return {id: bytes} and
    the manifest ids."""
    blob = f"contents of {tag}\n".encode()
    tree = Tree.of([TreeEntry("blob", hash_bytes(blob), len(blob), "data.txt")]).serialize()
    objects = {hash_bytes(blob): blob, hash_bytes(tree): tree}
    manifests = []
    for n in range(count):
        data = Manifest(tree=hash_bytes(tree), author=Author("Racer", "racer@example.org"),
                        created="2026-11-27T16:00:00Z", message=f"{tag} {n}").serialize()
        objects[hash_bytes(data)] = data
        manifests.append(hash_bytes(data))
    return objects, manifests


def _push(upload_via: HttpTransport, verify_via: HttpTransport, objects: dict[str, bytes],
          folder: Path) -> None:
    """Negotiate through one server, upload straight to the bucket, verify through the other."""
    folder.mkdir()
    answer = upload_via.batch(PROJECT, "upload",
                              [{"id": oid, "size": len(data)} for oid, data in objects.items()])
    to_verify = []
    for item in answer["objects"]:
        actions = item.get("actions") or {}
        assert "error" not in item and "upload" in actions, item
        path = folder / item["id"]
        path.write_bytes(objects[item["id"]])
        upload_via.upload(actions["upload"], path)
        to_verify.append(item["id"])
    verified = verify_via.verify(PROJECT, to_verify)
    assert verified and "error" not in str(verified), verified


def _race(clients: list[HttpTransport], work: Any) -> tuple[list[Any], list[BaseException]]:
    """Run ``work(n, client)`` for every client at once; return the results and the errors
    other than the 409s the work itself handles."""
    start = threading.Barrier(len(clients))
    results: list[Any] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def run(n: int, client: HttpTransport) -> None:
        start.wait()
        try:
            out = work(n, client)
            with lock:
                results.append(out)
        except BaseException as e:  # noqa: BLE001 - every failure is reported by the test
            with lock:
                errors.append(e)

    threads = [threading.Thread(target=run, args=(n, c)) for n, c in enumerate(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    assert not any(t.is_alive() for t in threads), "a client hung"
    return results, errors


def test_two_servers_on_one_database_and_bucket_act_as_one_remote(
        two_servers: tuple[list[str], str, list[Path]], tmp_path: Path) -> None:
    urls, token, logs = two_servers
    a, b = (HttpTransport(url, token=token) for url in urls)
    a.put_class(PROJECT, "models")
    b.put_class(PROJECT, "shared")
    per_client = NEW_ASSETS_EACH + VERSIONS_EACH
    objects, manifests = _objects(1 + CLIENTS * per_client, "race")
    _push(a, b, objects, tmp_path / "objects")
    first = b.commit(PROJECT, "shared", None, None, manifests[0], "seed")
    shared = first["ordinal"]
    # Client n talks to server n % 2; each has its own manifests.
    clients = [HttpTransport(urls[n % 2], token=token) for n in range(CLIENTS)]
    pools = [manifests[1 + n * per_client:1 + (n + 1) * per_client] for n in range(CLIENTS)]

    def new_assets(n: int, client: HttpTransport) -> list[int]:
        return [client.commit(PROJECT, "models", None, None, m, uuid.uuid4().hex)["ordinal"]
                for m in pools[n][:NEW_ASSETS_EACH]]

    ordinals, errors = _race(clients, new_assets)
    assert errors == []
    assert sorted(o for mine in ordinals for o in mine) == \
        list(range(1, CLIENTS * NEW_ASSETS_EACH + 1))

    def new_versions(n: int, client: HttpTransport) -> tuple[list[dict[str, Any]], int]:
        """Land VERSIONS_EACH versions on the shared asset, retrying after each 409."""
        won, lost = [], 0
        parent = first["manifest"]
        for manifest in pools[n][NEW_ASSETS_EACH:]:
            while True:
                try:
                    won.append(client.commit(PROJECT, "shared", shared, parent, manifest,
                                             uuid.uuid4().hex))
                    parent = manifest
                    break
                except Conflict as e:  # a 409: someone else moved the asset first
                    assert e.latest and e.latest != parent
                    lost += 1
                    parent = e.latest
        return won, lost

    outcomes, errors = _race(clients, new_versions)
    assert errors == []
    wins = [w for won, _ in outcomes for w in won]
    losses = sum(lost for _, lost in outcomes)
    assert len(wins) == CLIENTS * VERSIONS_EACH
    assert losses > 0  # the clients did race
    # Exactly one winner per parent, and the winners form one unbroken line of versions.
    parents = [w["parent"] for w in wins]
    assert len(set(parents)) == len(parents)
    history = a.versions(PROJECT, "shared", str(shared))
    assert len(history) == 1 + CLIENTS * VERSIONS_EACH
    numbers = sorted(int(v["version"].split(".")[2]) for v in history)
    assert numbers == list(range(len(history)))
    by_version = {w["version"]: w for w in wins}
    chain = [first["manifest"]]
    for patch in range(1, len(history)):
        step = by_version[f"0.0.{patch}"]
        assert step["parent"] == chain[-1]
        chain.append(step["manifest"])
    assert b.asset(PROJECT, "shared", str(shared))["latest"]["manifest"] == chain[-1]

    # Every loser got a 409, and nothing else went wrong on either server.
    served = [log.read_text(errors="replace") for log in logs]
    for text in served:
        assert '" 500 ' not in text and "database is locked" not in text, text[-3000:]
        assert '" 201 ' in text  # both servers took commits
    assert sum(text.count('" 409 ') for text in served) == losses
