"""ama over a far network: the remote and its storage behind the proxy of
tests/services/wan.py, tens of milliseconds away, answering some requests with 503s or
resetting the connection. Uploads and clones still complete, byte for byte, nothing twice
and nothing lost, and the proxy's request counts are what the protocol implies: one
request per object and call, plus exactly one per injected fault."""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import requests

from ama.plumbing.hashing import hash_bytes
from ama.plumbing.odb import FileObjectDatabase
from ama.plumbing.transport import HttpTransport, Unreachable
from tests.e2e.test_lifecycle import ama, files
from tests.integration.test_gunicorn import push, write_version
from tests.integration.test_wan_proxy import _Origin, origin  # noqa: F401 - a fixture
from tests.services.server import RunningServer
from tests.services.wan import Fault, WanProxy

RTT_MS = 20
SIGNED = "X-Amz-Signature="  # in the query of a presigned URL: the client's own requests


def _hostport(url: str) -> tuple[str, int]:
    host, _, port = url.removeprefix("http://").rpartition(":")
    return host, int(port)


def _behind(wan_proxy: Callable[..., WanProxy], url: str, **kwargs: object) -> WanProxy:
    return wan_proxy(*_hostport(url), **kwargs)


# -- the transport's retries, against ama-server itself ----------------------------------------

def test_a_read_is_sent_again_after_503s_and_a_reset(
        start_ama_server: Callable[..., RunningServer],
        wan_proxy: Callable[..., WanProxy]) -> None:
    server = start_ama_server()
    proxy = _behind(wan_proxy, server.url, rtt_ms=RTT_MS, faults=[
        Fault("503", nth=[1], path="/v1/auth/me"),
        Fault("slowdown", nth=[1], path="/v1/auth/me"),
        Fault("reset", nth=[1], path="/v1/auth/me")])
    assert HttpTransport(proxy.url, server.token).me()["username"] == "admin"
    assert [r.fault for r in proxy.requests] == ["503", "slowdown", "reset", None]


def test_gives_up_naming_the_url_the_status_and_the_tries(
        start_ama_server: Callable[..., RunningServer],
        wan_proxy: Callable[..., WanProxy]) -> None:
    server = start_ama_server()
    proxy = _behind(wan_proxy, server.url, faults=[Fault("503", fraction=1.0)])
    with pytest.raises(Unreachable) as e:
        HttpTransport(proxy.url, server.token, retries=2).me()
    assert e.value.exit_code == 5
    assert f"{proxy.url}/v1/auth/me" in e.value.message
    assert "503" in e.value.message and "after 3 tries" in e.value.message
    assert proxy.count() == proxy.count(fault="503") == 3


def test_a_broken_connection_is_given_up_after_the_tries(
        start_ama_server: Callable[..., RunningServer],
        wan_proxy: Callable[..., WanProxy]) -> None:
    server = start_ama_server()
    proxy = _behind(wan_proxy, server.url, faults=[Fault("reset", fraction=1.0)])
    with pytest.raises(Unreachable) as e:
        HttpTransport(proxy.url, server.token, retries=3).projects()
    assert f"{proxy.url}/v1/projects" in e.value.message
    assert "after 4 tries" in e.value.message
    assert proxy.count(fault="reset") == 4


def test_a_commit_whose_answer_was_lost_is_sent_again_and_recorded_once(
        start_ama_server: Callable[..., RunningServer], wan_proxy: Callable[..., WanProxy],
        tmp_path: Path) -> None:
    server = start_ama_server()
    proxy = _behind(wan_proxy, server.url, rtt_ms=RTT_MS, faults=[
        Fault("reset-after", nth=[1], methods=["POST"], path="/versions", partial=12)])
    client = HttpTransport(proxy.url, server.token)
    client.put_class(server.project, "models")
    paths, manifest = write_version(tmp_path, {"a": b"first", "b": b"second"})
    push(client, server.project, paths)
    result = client.commit(server.project, "models", None, None, manifest, "key-1")
    assert (result["ordinal"], result["version"]) == (1, "0.0.0")
    # The first POST did commit; its repeat, with the same idempotency key, got its answer.
    assert [v["version"] for v in client.versions(server.project, "models", "1")] == ["0.0.0"]
    assert proxy.count("POST", "/versions") == 2
    assert proxy.count("POST", "/versions", fault=False) == 1


def test_signup_and_token_exchange_are_not_sent_twice(
        start_ama_server: Callable[..., RunningServer],
        wan_proxy: Callable[..., WanProxy]) -> None:
    server = start_ama_server()
    proxy = _behind(wan_proxy, server.url, faults=[
        Fault("reset-after", nth=[1], path="/v1/auth/token", partial=12),
        Fault("503", nth=[1], path="/v1/auth/signup")])
    client = HttpTransport(proxy.url, server.token)
    with pytest.raises(Unreachable):
        client.rotate_token()
    with pytest.raises(Unreachable) as e:
        client.signup("rita", "rita@example.org")
    assert "503" in e.value.message and "tries" not in e.value.message
    assert proxy.count(path="/v1/auth/token") == 1
    assert proxy.count(path="/v1/auth/signup") == 1


def test_an_upload_is_sent_again_whole(start_ama_server: Callable[..., RunningServer],
                                       wan_proxy: Callable[..., WanProxy],
                                       tmp_path: Path) -> None:
    server = start_ama_server()
    # The first PUT is reset, the second refused: the third must carry every byte again.
    proxy = _behind(wan_proxy, server.url, rtt_ms=RTT_MS, faults=[
        Fault("reset", nth=[1], methods=["PUT"], path="/objects/"),
        Fault("503", nth=[1], methods=["PUT"], path="/objects/")])
    client = HttpTransport(proxy.url, server.token)
    data = os.urandom(700_000)
    paths, manifest = write_version(tmp_path, {"big": data})
    assert push(client, server.project, paths) == 3
    assert proxy.count("PUT", "/objects/") == 3 + 2
    client.put_class(server.project, "models")
    client.commit(server.project, "models", None, None, manifest, "key-1")
    oid = next(o for o, p in paths.items() if p.read_bytes() == data)
    answer = client.batch(server.project, "download", [{"id": oid, "size": len(data)}])
    out = tmp_path / "back"
    client.download(answer["objects"][0]["actions"]["download"], oid, out)
    assert out.read_bytes() == data


# -- the whole lifecycle, the remote and its S3 storage both far away -------------------------

def _far_s3_server(s3_bucket: object, start_ama_server: Callable[..., RunningServer],
                   wan_proxy: Callable[..., WanProxy], monkeypatch: pytest.MonkeyPatch,
                   faults: Callable[[], list[Fault]]) -> tuple[RunningServer, WanProxy, WanProxy]:
    """ama-server on moto's S3, each behind its own proxy; the server reaches S3 through its
    proxy, so the presigned URLs it hands out name the proxy too."""
    s3 = _behind(wan_proxy, s3_bucket.endpoint_url, rtt_ms=RTT_MS,  # type: ignore[attr-defined]
                 faults=faults())
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3.url)
    server = start_ama_server(storage_url=s3_bucket.storage_url("ama"))  # type: ignore[attr-defined]
    remote = _behind(wan_proxy, server.url, rtt_ms=RTT_MS, faults=faults())
    return server, remote, s3


def _lifecycle(tmp_path: Path, server: RunningServer, url: str,
               count: int = 40) -> tuple[dict[str, object], dict[str, bytes], Path]:
    """Upload ``count`` small files (and a folder of a few) through ``url``; clone them on
    another machine. Returns the upload's answer, the files, and the clone's folder."""
    ama("remote", "add", "team", url, cwd=tmp_path)
    ama("remote", "default", "team", cwd=tmp_path)
    ama("auth", "login", "--token", server.token, "--remote", "team", cwd=tmp_path)
    ama("project", "activate", server.project, cwd=tmp_path)
    ama("class", "init", "data", cwd=tmp_path)
    m = tmp_path / "m"
    (m / "sub").mkdir(parents=True)
    ama("init", "data", cwd=m)
    for n in range(count):
        (m / f"f{n:03}.bin").write_bytes(os.urandom(1024))
    for n in range(3):
        (m / "sub" / f"g{n}.txt").write_text(f"line {n}\n")
    ama("add", ".", cwd=m)
    uploaded = json.loads(ama("upload", "-m", "far", "--json", cwd=m).stdout)
    other = {"AMA_HOME": str(tmp_path / "other-home")}
    ama("remote", "add", "team", url, cwd=tmp_path, env=other)
    ama("remote", "default", "team", cwd=tmp_path, env=other)
    ama("config", "set", "project.active", server.project, cwd=tmp_path, env=other)
    ama("auth", "login", "--token", server.token, cwd=tmp_path, env=other)
    ama("clone", "data/1", "-d", "clone", cwd=tmp_path, env=other)
    return uploaded, files(m), tmp_path / "clone"


def _stored(s3_bucket: object) -> list[str]:
    client, name = s3_bucket.client, s3_bucket.name  # type: ignore[attr-defined]
    keys: list[str] = []
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=name):
        keys += [item["Key"] for item in page.get("Contents", [])]
    return keys


def test_upload_and_clone_20ms_away(tmp_path: Path, s3_bucket: object,
                                    start_ama_server: Callable[..., RunningServer],
                                    wan_proxy: Callable[..., WanProxy],
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    server, remote, s3 = _far_s3_server(s3_bucket, start_ama_server, wan_proxy, monkeypatch,
                                        list)
    uploaded, sent, clone = _lifecycle(tmp_path, server, remote.url)
    assert files(clone) == sent
    # 43 files (all different), 2 trees and the manifest, all small: one pack, sent with
    # one presigned PUT straight to S3 and read back once by the server (its own requests
    # to S3 are signed in headers); the clone reads the manifest's and the trees' byte
    # ranges level by level, then the rest of the pack whole.
    assert uploaded["objects_sent"] == 43 + 2 + 1
    [key] = _stored(s3_bucket)
    assert key.startswith("ama/packs/")
    assert s3.count("PUT", SIGNED) == 1
    assert s3.count("GET", SIGNED) <= 4
    assert remote.count("POST", "/packs") == 2  # announced, then checked
    assert remote.count("POST", "/verify") == 1
    assert remote.count("POST", "/versions") == 1


def test_upload_and_clone_through_503s_and_resets(
        tmp_path: Path, s3_bucket: object, start_ama_server: Callable[..., RunningServer],
        wan_proxy: Callable[..., WanProxy], monkeypatch: pytest.MonkeyPatch) -> None:
    seeds = iter(range(100))

    def faults() -> list[Fault]:
        # partial: the answer is cut inside its status line and headers.
        return [Fault("slowdown", fraction=0.03, seed=next(seeds)),
                Fault("503", fraction=0.03, seed=next(seeds)),
                Fault("reset", fraction=0.02, seed=next(seeds)),
                Fault("reset-after", fraction=0.02, seed=next(seeds), partial=20)]

    server, remote, s3 = _far_s3_server(s3_bucket, start_ama_server, wan_proxy, monkeypatch,
                                        faults)
    # And for sure: the answer to a presigned PUT lost once (its repeat is answered 412),
    # the server's own reads of S3 slowed down once, the commit's answer lost once, the
    # verify refused once.
    s3.faults[:0] = [Fault("reset-after", nth=[1], methods=["PUT"], path=SIGNED, partial=20),
                     Fault("slowdown", nth=[1], methods=["GET"])]
    remote.faults[:0] = [Fault("reset-after", nth=[1], methods=["POST"], path="/versions",
                               partial=20),
                         Fault("503", nth=[1], methods=["POST"], path="/verify")]
    uploaded, sent, clone = _lifecycle(tmp_path, server, remote.url)
    assert files(clone) == sent
    assert s3.count("PUT", SIGNED, fault="reset-after") >= 1
    assert s3.count("GET", fault="slowdown") >= 1
    # Exactly one version, and each object stored once.
    listed = json.loads(ama("versions", "--json", cwd=clone,
                            env={"AMA_HOME": str(tmp_path / "other-home")}).stdout)
    assert [v["version"] for v in listed] == ["0.0.0"]
    keys = _stored(s3_bucket)
    assert uploaded["objects_sent"] == 46
    assert len(keys) == len(set(keys)) == 1  # the one pack
    # Every fault cost exactly one more request: of the presigned PUTs, one per object
    # was not a fault (a reset-after's repeat is answered 412, taken as stored).
    assert s3.count("PUT", SIGNED, fault=False) == len(keys)
    assert s3.count("PUT", SIGNED) == len(keys) + s3.count("PUT", SIGNED, fault=True)
    assert remote.count("POST", "/versions", fault=False) == 1
    assert remote.count("POST", "/versions", fault=False) == 1
    assert remote.count("POST", "/versions", fault="reset-after") >= 1
    assert remote.count("POST", "/verify", fault=False) == 1
    assert remote.count("POST", "/verify", fault="503") >= 1


def test_transfers_reuse_one_kept_alive_connection(
        origin: _Origin, wan_proxy: Callable[..., WanProxy],  # noqa: F811 - the fixture
        tmp_path: Path) -> None:
    # moto's server and gunicorn's sync workers close every connection after one answer;
    # this origin keeps it open, as S3 and GCS do.
    proxy = wan_proxy("127.0.0.1", int(origin.server_address[1]), rtt_ms=RTT_MS,
                      faults=[Fault("503", nth=[3])])
    client = HttpTransport(proxy.url, "t")
    for n in range(6):
        path = tmp_path / f"o{n}"
        path.write_bytes(bytes([n]) * 5000)
        client.upload({"href": f"{proxy.url}/o{n}", "method": "PUT"}, path)
    assert [(m, p, size) for m, p, size in origin.seen] == [
        ("PUT", f"/o{n}", 5000) for n in range(6)]
    assert proxy.count("PUT") == 7
    assert proxy.connections == 1


def test_a_hash_that_read_bad_bytes_never_deletes_the_right_ones_stored_since(
        s3_bucket: object, start_ama_server: Callable[..., RunningServer],
        wan_proxy: Callable[..., WanProxy], monkeypatch: pytest.MonkeyPatch) -> None:
    """A writer PUTs bad bytes to an object's presigned URL and asks to verify it twice.
    While the second hash still reads them, the first has deleted them and the right bytes
    were stored (here: by hand, the end of the first hash and another client's upload).
    The second hash finds the bad bytes it read, and deletes nothing: the right bytes stay,
    and are verified (a delete would have left the key empty for the bad bytes' URL, which
    outlives it, and the object recorded as held by nothing)."""
    s3 = _behind(wan_proxy, s3_bucket.endpoint_url)  # type: ignore[attr-defined]
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3.url)
    server = start_ama_server(storage_url=s3_bucket.storage_url("ama"))  # type: ignore[attr-defined]
    client = HttpTransport(server.url, server.token)
    right = os.urandom(3 << 20)
    bad = bytearray(right)
    bad[5] ^= 0xFF
    oid = hash_bytes(right)
    key = f"ama/objects/{oid[:2]}/{oid[2:]}"
    bucket, name = s3_bucket.client, s3_bucket.name  # type: ignore[attr-defined]
    answer = client.batch(server.project, "upload", [{"id": oid, "size": len(right)}])
    action = answer["objects"][0]["actions"]["upload"]
    put = requests.put(action["href"], data=bytes(bad), headers=action["headers"], timeout=30)
    assert put.status_code == 200, put.text
    s3.set_bandwidth(1 << 20)  # the server reads the 3 MiB back in about 3 s
    result: dict[str, object] = {}
    hashing = threading.Thread(target=lambda: result.update(
        client.verify(server.project, [oid])["objects"][0]))
    hashing.start()
    deadline = time.monotonic() + 10
    while s3.count("GET", key) == 0:  # the hash began reading the bad bytes
        assert time.monotonic() < deadline
        time.sleep(0.05)
    bucket.delete_object(Bucket=name, Key=key)
    bucket.put_object(Bucket=name, Key=key, Body=right)
    hashing.join(60)
    assert [o["Key"] for o in bucket.list_objects_v2(Bucket=name, Prefix=key)
            .get("Contents", [])] == [key]
    assert bucket.get_object(Bucket=name, Key=key)["Body"].read() == right
    assert "does not match its id" in str(result["error"])  # type: ignore[index]
    assert "left to their own check" in str(result["error"])  # type: ignore[index]
    s3.set_bandwidth(None)
    assert client.verify(server.project, [oid])["objects"][0] == {
        "id": oid, "size": len(right), "verified": True}


def test_a_commit_reads_storage_outside_its_transaction_and_each_blob_once(
        tmp_path: Path, s3_bucket: object, start_ama_server: Callable[..., RunningServer],
        wan_proxy: Callable[..., WanProxy], monkeypatch: pytest.MonkeyPatch) -> None:
    """A commit checks the target of every link in its version, read from storage (far
    away, and slow for a tree of thousands): held at that read, it holds no lock of the
    database, so another commit (on SQLite, of any project) goes through meanwhile; and a
    blob that a hundred links share is read once."""
    from ama.plumbing.objects import Author, Manifest, Tree, TreeEntry
    from ama.porcelain.upload import send

    s3 = _behind(wan_proxy, s3_bucket.endpoint_url)  # type: ignore[attr-defined]
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3.url)
    release = tmp_path / "release"
    monkeypatch.setenv("AMA_HOLD_AT", "server.commit.read")
    monkeypatch.setenv("AMA_HOLD_UNTIL", str(release))
    server = start_ama_server(storage_url=s3_bucket.storage_url("ama"))  # type: ignore[attr-defined]
    client = HttpTransport(server.url, server.token)
    client.put_class(server.project, "data")
    odb = FileObjectDatabase(tmp_path / "objects")
    author = Author("T", "t@example.org")
    with odb.batch():
        target, a = odb.write(b"a.txt"), odb.write(b"A")
        plain = [TreeEntry("blob", a, 1, "a.txt")]
        linked = odb.write(Tree.of([*plain, *(TreeEntry("link", target, 5, f"to-a-{n}")
                                               for n in range(100))]).serialize())
        alone = odb.write(Tree.of(plain).serialize())
        first, second = (odb.write(Manifest(tree=tree, author=author,
                                            created="2026-12-06T03:00:00Z").serialize())
                         for tree in (linked, alone))
    objects = [target, a, linked, alone, first, second]
    send(client, server.project, odb, [(o, odb.size(o)) for o in objects])
    s3.reset_counts()
    held: dict[str, object] = {}
    committing = threading.Thread(target=lambda: held.update(client.commit(
        server.project, "data", None, None, first, "with-links")))
    committing.start()
    time.sleep(1.0)  # at its read of the links' blob by now
    other = HttpTransport(server.url, server.token, timeout=(5.0, 10.0), retries=0)
    assert other.commit(server.project, "data", None, None, second, "alone")["name"] == "data/1"
    assert held == {}  # still at its read
    release.touch()
    committing.join(60)
    assert held["name"] == "data/2"
    assert s3.count("GET") == 1  # the blob of a hundred links, once


def test_a_wrong_size_announced_first_does_not_cost_the_right_upload(
        s3_bucket: object, start_ama_server: Callable[..., RunningServer],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A writer announces an object with a size of 1 byte and sends nothing; the row kept
    that size. Another member uploads the object's true bytes to the URL they were given:
    the bytes hash to the id, so they are the object, kept and recorded with their own
    size (they were deleted as "not matching", every time, for as long as the row lived)."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_bucket.endpoint_url)  # type: ignore[attr-defined]
    server = start_ama_server(storage_url=s3_bucket.storage_url("ama"))  # type: ignore[attr-defined]
    client = HttpTransport(server.url, server.token)
    data = os.urandom(300 << 10)  # above the pack threshold: sent alone, to a presigned URL
    oid = hash_bytes(data)
    client.batch(server.project, "upload", [{"id": oid, "size": 1}])
    answer = client.batch(server.project, "upload", [{"id": oid, "size": len(data)}])
    action = answer["objects"][0]["actions"]["upload"]
    put = requests.put(action["href"], data=data, headers=action["headers"], timeout=30)
    assert put.status_code == 200, put.text
    assert client.verify(server.project, [oid])["objects"][0] == {
        "id": oid, "size": len(data), "verified": True}
    again = client.batch(server.project, "upload", [{"id": oid, "size": len(data)}])
    assert again["objects"][0] == {"id": oid, "size": len(data)}  # held, with its size
