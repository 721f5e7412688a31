"""ama's transfers against storage far away (the proxy of tests/services/wan.py): the
remote's verification of uploads does not grow with objects × round trip inside one
request."""

from __future__ import annotations

import http.server
import os
import re
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from ama.plumbing import pack, ranged, wire
from ama.plumbing.hashing import hash_bytes
from ama.plumbing.odb import FileObjectDatabase
from ama.plumbing.transport import (
    HttpTransport,
    RemoteError,
    Unreachable,
)
from ama.porcelain.config import Config
from ama.porcelain.download import receive
from ama.porcelain.upload import send
from tests.e2e.conftest import installed
from tests.e2e.test_interruptions import kill_when
from tests.e2e.test_lifecycle import ama
from tests.e2e.test_progress_tty import frames, run
from tests.services.server import RunningServer
from tests.services.wan import Fault, WanProxy

SIGNED = "X-Amz-Signature="  # in the query of a presigned URL: the client's own requests


def _hostport(url: str) -> tuple[str, int]:
    host, _, port = url.removeprefix("http://").rpartition(":")
    return host, int(port)


def test_verify_of_many_objects_far_away_answers_within_the_clients_timeout(
        tmp_path: Path, s3_bucket: object, start_ama_server: Callable[..., RunningServer],
        wan_proxy: Callable[..., WanProxy], monkeypatch: pytest.MonkeyPatch) -> None:
    # Storage 300 ms away: reading 80 objects back one after the other takes 24 s or more,
    # six times the client's 4 s read timeout; read in parallel, and answered in parts of
    # about a second, every call comes back in time.
    s3 = wan_proxy(*_hostport(s3_bucket.endpoint_url), rtt_ms=300)  # type: ignore[attr-defined]
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3.url)
    server = start_ama_server(storage_url=s3_bucket.storage_url("ama"))  # type: ignore[attr-defined]
    odb = FileObjectDatabase(tmp_path / "objects")
    # At the pack threshold, so each goes loose (smaller ones travel in packs, checked whole).
    with odb.batch():
        objects = [(odb.write(f"object {n}\n".encode().ljust(pack.THRESHOLD, b".")),
                    pack.THRESHOLD) for n in range(80)]
    client = HttpTransport(server.url, server.token, timeout=(5.0, 4.0), retries=0)
    assert send(client, server.project, odb, objects) == (80, sum(s for _, s in objects))
    answer = client.batch(server.project, "upload", [{"id": o, "size": s} for o, s in objects])
    assert all("actions" not in item for item in answer["objects"])  # every one verified
    # The server read each object once, with no look before it (one GET, no HEAD).
    assert s3.count("HEAD") == 0
    assert s3.count("GET", "/objects/") == 80


# -- large objects in parts ---------------------------------------------------------------

PART = 5 << 20  # S3's smallest part but for the last
THRESHOLD = 6 << 20


def _large_server(s3_bucket: object, start_ama_server: Callable[..., RunningServer],
                  wan_proxy: Callable[..., WanProxy], monkeypatch: pytest.MonkeyPatch,
                  **proxy: Any) -> tuple[RunningServer, WanProxy]:
    """ama-server on moto's S3 behind the proxy, sending objects in parts of 5 MiB."""
    s3 = wan_proxy(*_hostport(s3_bucket.endpoint_url), **proxy)  # type: ignore[attr-defined]
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3.url)
    monkeypatch.setenv("AMA_MULTIPART_PART_BYTES", str(PART))
    server = start_ama_server(storage_url=s3_bucket.storage_url("ama"))  # type: ignore[attr-defined]
    return server, s3


def _sent_in_parts(tmp_path: Path, server: RunningServer
                   ) -> tuple[HttpTransport, str, bytes]:
    """Send an object just over two parts to ``server`` as an upload does: the client, the
    object's id and its bytes."""
    odb = FileObjectDatabase(tmp_path / "objects")
    data = os.urandom(2 * PART + 1000)
    with odb.batch():
        oid = odb.write(data)
    client = HttpTransport(server.url, server.token)
    assert send(client, server.project, odb, [(oid, len(data))],
                multipart_threshold=THRESHOLD) == (1, len(data))
    return client, oid, data


def test_an_object_over_the_threshold_goes_up_in_parts_and_comes_back_whole(
        tmp_path: Path, s3_bucket: object, start_ama_server: Callable[..., RunningServer],
        wan_proxy: Callable[..., WanProxy], monkeypatch: pytest.MonkeyPatch) -> None:
    server, s3 = _large_server(s3_bucket, start_ama_server, wan_proxy, monkeypatch, rtt_ms=20)
    client, oid, data = _sent_in_parts(tmp_path, server)
    key = f"/objects/{oid[:2]}/{oid[2:]}"
    # Three parts, each an object of its own sent create-only to a presigned URL; no
    # single PUT of the whole object.
    sent = [r for r in s3.requests if r.method == "PUT" and SIGNED in r.target]
    assert len(sent) == 3
    assert all(f"/uploads{key}/" in r.target for r in sent)
    # Hashed by the server part by part (each read once, as it landed), then joined into
    # the object's key by copies inside the storage: exactly the three parts hashed, each
    # as it was read. The object itself is never read back.
    reads = [r.target for r in s3.requests if r.method == "GET" and "/uploads/" in r.target]
    assert len(reads) == 3 and len(set(reads)) == 3
    assert not any(r.method == "GET" and r.target.endswith(key) for r in s3.requests)
    copies = [r for r in s3.requests if r.method == "PUT" and key + "?" in r.target
              and "partNumber=" in r.target]
    assert len(copies) == 3
    answer = client.batch(server.project, "download", [{"id": oid, "size": len(data)}])
    out = tmp_path / "back"
    client.download(answer["objects"][0]["actions"]["download"], oid, out)
    assert out.read_bytes() == data
    # Nothing left behind: no part, no multipart upload of the join.
    assert _keys(s3_bucket) == [f"ama/objects/{oid[:2]}/{oid[2:]}"]
    stored = s3_bucket.client.list_multipart_uploads(  # type: ignore[attr-defined]
        Bucket=s3_bucket.name).get("Uploads", [])  # type: ignore[attr-defined]
    assert stored == []


def test_the_server_hashes_each_part_as_it_lands_not_the_object_after(
        tmp_path: Path, s3_bucket: object, start_ama_server: Callable[..., RunningServer],
        wan_proxy: Callable[..., WanProxy], monkeypatch: pytest.MonkeyPatch) -> None:
    server, s3 = _large_server(s3_bucket, start_ama_server, wan_proxy, monkeypatch, rtt_ms=20)
    client, data, oid, path = _announced(tmp_path, server, 3 * PART + 1000)
    plan = client.start_multipart(server.project, oid, len(data))
    *first, last = plan["parts"]
    for part in first:
        client.upload_part(part["action"], path, part["offset"], part["size"])

    def read(number: int) -> bool:
        return any(r.method == "GET" and r.target.startswith("/") and "/uploads/" in r.target
                   and r.target.endswith(f"/{number}") for r in s3.requests)

    # The three first parts are read by the server while the last one is not sent yet.
    deadline = time.monotonic() + 60
    while not all(read(n) for n in (1, 2, 3)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert all(read(n) for n in (1, 2, 3)) and not read(4)
    assert client.verify(server.project, [oid])["objects"][0]["pending"]
    client.upload_part(last["action"], path, last["offset"], last["size"])
    client.complete_multipart(server.project, oid, plan["upload_id"])
    assert _settled(client, server.project, oid) == {"id": oid, "size": len(data),
                                                     "verified": True}
    assert sum(read(n) for n in (1, 2, 3, 4)) == 4
    key = f"/objects/{oid[:2]}/{oid[2:]}"
    assert not any(r.method == "GET" and r.target.endswith(key) for r in s3.requests)


def test_a_part_whose_answer_was_lost_is_sent_again_and_taken_as_stored(
        tmp_path: Path, s3_bucket: object, start_ama_server: Callable[..., RunningServer],
        wan_proxy: Callable[..., WanProxy], monkeypatch: pytest.MonkeyPatch) -> None:
    # The first part stored, its answer cut off: the retry finds it stored (412, parts are
    # create-only), which is what it wanted, and the object is whole.
    lost = Fault("reset-after", nth=[1], methods=["PUT"], path="/uploads/", partial=0)
    server, s3 = _large_server(s3_bucket, start_ama_server, wan_proxy, monkeypatch,
                               faults=[lost])
    client, oid, data = _sent_in_parts(tmp_path, server)
    assert lost.injected == 1
    sent = [r.target for r in s3.requests if r.method == "PUT" and SIGNED in r.target]
    assert len(sent) == 4 and len(set(sent)) == 3  # one part twice
    assert _settled(client, server.project, oid)["verified"]
    answer = client.batch(server.project, "download", [{"id": oid, "size": len(data)}])
    client.download(answer["objects"][0]["actions"]["download"], oid, tmp_path / "back")
    assert (tmp_path / "back").read_bytes() == data


def test_presigned_urls_name_the_clients_endpoint_while_the_server_reads_its_own(
        tmp_path: Path, s3_bucket: object, start_ama_server: Callable[..., RunningServer],
        wan_proxy: Callable[..., WanProxy], monkeypatch: pytest.MonkeyPatch) -> None:
    # A server beside its bucket, clients far away: the URLs it signs name the far address
    # (the proxy), its own read-back of what they sent goes straight to the storage.
    far = wan_proxy(*_hostport(s3_bucket.endpoint_url), rtt_ms=20)  # type: ignore[attr-defined]
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_bucket.endpoint_url)  # type: ignore[attr-defined]
    monkeypatch.setenv("AMA_S3_PRESIGN_ENDPOINT_URL", far.url)
    monkeypatch.setenv("AMA_MULTIPART_PART_BYTES", str(PART))
    server = start_ama_server(storage_url=s3_bucket.storage_url("ama"))  # type: ignore[attr-defined]
    odb = FileObjectDatabase(tmp_path / "objects")
    large = os.urandom(2 * PART + 1000)
    small = [f"small {n}\n".encode() for n in range(20)]
    with odb.batch():
        objects = [(odb.write(data), len(data)) for data in (large, *small)]
    client = HttpTransport(server.url, server.token)
    assert send(client, server.project, odb, objects,
                multipart_threshold=THRESHOLD) == (21, sum(s for _, s in objects))
    assert far.count("PUT", "/uploads/") == 3  # the parts went the client's way
    assert far.count("PUT", "/packs/") == 1  # and the pack of small ones
    assert all(SIGNED in r.target for r in far.requests)  # nothing of the server's
    answer = client.batch(server.project, "download",
                          [{"id": o, "size": s} for o, s in objects[:1]])
    since = len(far.requests)
    out = tmp_path / "back"
    client.download(answer["objects"][0]["actions"]["download"], objects[0][0], out)
    assert out.read_bytes() == large
    assert len(far.requests) > since  # the download too


def test_a_part_with_wrong_bytes_is_refused_and_nothing_is_verified(
        tmp_path: Path, s3_bucket: object, start_ama_server: Callable[..., RunningServer],
        wan_proxy: Callable[..., WanProxy], monkeypatch: pytest.MonkeyPatch) -> None:
    server, s3 = _large_server(s3_bucket, start_ama_server, wan_proxy, monkeypatch)
    data = os.urandom(2 * PART + 1000)
    oid = hash_bytes(data)
    bad = bytearray(data)
    bad[PART + 7] ^= 0xFF  # one bit of the second part flipped on the way
    path = tmp_path / "sent"
    path.write_bytes(bytes(bad))
    client = HttpTransport(server.url, server.token)
    client.batch(server.project, "upload", [{"id": oid, "size": len(data)}])
    plan = _send_parts(client, server.project, oid, path)
    assert client.complete_multipart(server.project, oid, plan["upload_id"])["pending"]
    error = _settled(client, server.project, oid)["error"]
    assert error["code"] == 422
    assert oid in error["message"] and "deleted" in error["message"]
    assert _keys(s3_bucket) == []  # the parts were deleted
    joins = s3_bucket.client.list_multipart_uploads(  # type: ignore[attr-defined]
        Bucket=s3_bucket.name).get("Uploads", [])  # type: ignore[attr-defined]
    assert joins == []  # and what was copied into a join of the object's key dropped
    answer = client.batch(server.project, "upload", [{"id": oid, "size": len(data)}])
    assert "upload" in answer["objects"][0]["actions"]  # still wanted: not verified
    assert "error" in client.verify(server.project, [oid])["objects"][0]


def _settled(client: HttpTransport, project: str, oid: str) -> dict[str, Any]:
    """Ask about ``oid`` until the remote's hash of it (after its upload in parts) is done:
    its answer."""
    for _ in range(1200):
        answer = dict(client.verify(project, [oid])["objects"][0])
        if not answer.get("pending"):
            return answer
        time.sleep(0.1)
    pytest.fail(f"the remote never finished hashing object {oid}")


def _keys(s3_bucket: object) -> list[str]:
    client, name = s3_bucket.client, s3_bucket.name  # type: ignore[attr-defined]
    return [item["Key"] for item in client.list_objects_v2(Bucket=name).get("Contents", [])]


def _send_parts(client: HttpTransport, project: str, oid: str, path: Path
                ) -> wire.MultipartUpload | wire.ObjectAnswer:
    """Open an upload in parts of object ``oid`` and send every part of the file ``path``
    as planned: the plan."""
    plan = client.start_multipart(project, oid, path.stat().st_size)
    for part in plan["parts"]:
        client.upload_part(part["action"], path, part["offset"], part["size"])
    return plan


def _announced(tmp_path: Path, server: RunningServer, size: int
               ) -> tuple[HttpTransport, bytes, str, Path]:
    """``size`` random bytes in a file, announced to ``server`` for upload: the client, the
    bytes, their id and the file."""
    data = os.urandom(size)
    oid = hash_bytes(data)
    path = tmp_path / "sent"
    path.write_bytes(data)
    client = HttpTransport(server.url, server.token)
    client.batch(server.project, "upload", [{"id": oid, "size": len(data)}])
    return client, data, oid, path


def _parts_sent(tmp_path: Path, server: RunningServer
                ) -> tuple[HttpTransport, bytes, str, dict[str, Any]]:
    """An object of three parts (just over two of PART bytes), announced and every part sent
    to ``server``, not completed: the client, the bytes, their id and the upload's plan."""
    client, data, oid, path = _announced(tmp_path, server, 2 * PART + 1000)
    return client, data, oid, dict(_send_parts(client, server.project, oid, path))


def _stored(tmp_path: Path, server: RunningServer, size: int) -> tuple[bytes, str]:
    """``size`` random bytes uploaded to ``server`` (in parts from the threshold set): the
    bytes and their id."""
    odb = FileObjectDatabase(tmp_path / "objects")
    data = os.urandom(size)
    with odb.batch():
        oid = odb.write(data)
    assert send(HttpTransport(server.url, server.token), server.project, odb,
                [(oid, len(data))]) == (1, len(data))
    return data, oid


def _cloned_elsewhere(tmp_path: Path, server: RunningServer) -> bytes:
    """Clone data/1 from ``server`` as another user's machine would, signed in with its
    token: the bytes of its weights.bin."""
    other = {"AMA_HOME": str(tmp_path / "other-home")}
    for args in (("remote", "add", "team", server.url), ("remote", "default", "team"),
                 ("config", "set", "project.active", server.project),
                 ("auth", "login", "--token", server.token)):
        ama(*args, cwd=tmp_path, env=other)
    ama("clone", "data/1", "-d", "clone", cwd=tmp_path, env=other)
    return (tmp_path / "clone" / "weights.bin").read_bytes()


def _join(home: Path, server: RunningServer, monkeypatch: pytest.MonkeyPatch) -> None:
    """Make ``server`` the default remote of ``ama`` run in ``home``, signed in, in its
    project, with class data, and objects from THRESHOLD bytes on moved in parts: set as
    a user does, in the settings, which uploads and downloads both follow."""
    monkeypatch.delenv("AMA_MULTIPART_THRESHOLD", raising=False)
    for args in (("config", "set", "transfer.multipart_threshold", str(THRESHOLD)),
                 ("remote", "add", "team", server.url), ("remote", "default", "team"),
                 ("auth", "login", "--token", server.token, "--remote", "team"),
                 ("project", "activate", server.project), ("class", "init", "data")):
        ama(*args, cwd=home)


def _staged_weights(tmp_path: Path, size: int) -> tuple[Path, bytes]:
    """An asset directory tmp_path/m of class data with ``size`` random bytes staged as
    weights.bin: the directory and the bytes."""
    m = tmp_path / "m"
    m.mkdir()
    ama("init", "data", cwd=m)
    data = os.urandom(size)
    (m / "weights.bin").write_bytes(data)
    ama("add", ".", cwd=m)
    return m, data


def _parts_stored(s3_bucket: object) -> int:
    return sum(1 for key in _keys(s3_bucket) if key.startswith("ama/uploads/"))


def test_an_upload_killed_half_way_goes_on_from_the_parts_stored(
        tmp_path: Path, s3_bucket: object, start_ama_server: Callable[..., RunningServer],
        wan_proxy: Callable[..., WanProxy], monkeypatch: pytest.MonkeyPatch) -> None:
    # 8 parts of 5 MiB, two at a time through a 10 MiB/s link: killed once 4 are stored;
    # the link uncapped after the kill, as nothing after it depends on its speed.
    server, s3 = _large_server(s3_bucket, start_ama_server, wan_proxy, monkeypatch,
                               rtt_ms=20, bandwidth=10 << 20)
    _join(tmp_path, server, monkeypatch)
    ama("config", "set", "transfer.parallelism", "2", cwd=tmp_path)
    m, data = _staged_weights(tmp_path, 8 * PART)
    # Asking moto only once 4 parts were sent: asked every few milliseconds from the start,
    # it slows the upload it watches.
    kill_when(["upload", "-m", "big"], m, {},
              lambda: s3.count("PUT", "/uploads/") >= 4 and _parts_stored(s3_bucket) >= 4)
    s3.set_bandwidth(None)
    # Counted on the re-run's own connections: the proxy may still read a request the
    # killed one left in its socket.
    since = s3.connections
    done = ama("upload", "-m", "big", cwd=m)
    # A part in flight at the kill may still have been stored: the re-run counts them.
    found = re.search(r"resuming: (\d+) of 40 MiB", done.stderr)
    assert found, done.stderr
    stored = int(found[1]) // 5
    assert 4 <= stored < 8
    # Only the parts not stored were sent again: fewer than half of the object's bytes.
    # Counted by part, not by request: a PUT repeated after a reset or a 5xx of a loaded
    # moto is one part sent, and a stored part sent again would still count once more.
    assert len({r.target.partition("?")[0] for r in s3.requests if r.method == "PUT"
                and SIGNED in r.target and r.connection > since}) == 8 - stored
    assert _cloned_elsewhere(tmp_path, server) == data


def test_the_bar_moves_with_the_parts_and_names_the_wait_for_the_remote_to_hash_them(
        tmp_path: Path, s3_bucket: object, start_ama_server: Callable[..., RunningServer],
        wan_proxy: Callable[..., WanProxy], monkeypatch: pytest.MonkeyPatch) -> None:
    """The bytes of a large object's parts move the bar as they are sent (through a link of
    10 MiB/s, 15 MiB take over a second: frames are drawn ten times a second). After the
    parts, the server reads the object back and hashes it before the version may commit:
    minutes for tens of gigabytes, which the bar names as a step of its own rather than
    standing still at its end."""
    server, _ = _large_server(s3_bucket, start_ama_server, wan_proxy, monkeypatch, rtt_ms=20,
                              bandwidth=10 << 20)
    _join(tmp_path, server, monkeypatch)
    m, _ = _staged_weights(tmp_path, 3 * PART)
    code, _, drawn = run(["upload", "-m", "big"], m, tty=True)
    assert code == 0, drawn[-2000:]
    shown = frames(drawn, "Uploading")
    sent = [i for i, f in enumerate(shown) if re.search(r"3/3 files +15\.0 MiB/15\.0 MiB", f)]
    verifying = [i for i, f in enumerate(shown) if "Uploading: remote verifying" in f]
    committing = [i for i, f in enumerate(shown) if "Uploading: committing" in f]
    assert sent and verifying and committing, shown
    assert sent[0] < verifying[0] < committing[0], shown
    # Within the large object, before it is done: some MiB of its 15 sent.
    moving = re.compile(r"[0-2]/3 files +([1-9][0-9.]*) MiB/15\.0 MiB")
    assert any((m := moving.search(f)) and float(m[1]) < 15 for f in shown[:sent[0]]), shown


def test_ctrl_c_stops_an_upload_whose_parts_are_in_flight_and_a_re_run_goes_on(
        tmp_path: Path, s3_bucket: object, start_ama_server: Callable[..., RunningServer],
        wan_proxy: Callable[..., WanProxy], monkeypatch: pytest.MonkeyPatch) -> None:
    """A Ctrl-C unwinds the command; threads still sending parts would keep it alive until
    the object is sent and completed (40 MiB through 4 MiB/s: ten seconds), so after a
    grace the process ends as a kill would, saying so. Nothing is completed behind the
    user's back, and the re-run sends what is missing."""
    server, s3 = _large_server(s3_bucket, start_ama_server, wan_proxy, monkeypatch,
                               rtt_ms=20, bandwidth=4 << 20)
    _join(tmp_path, server, monkeypatch)
    m, data = _staged_weights(tmp_path, 8 * PART)
    oid = hash_bytes(data)
    # Ctrl-C restored in the child, as a terminal has it: pytest run in the background
    # from a script (`cmd &`) starts with SIGINT ignored, an ignored signal stays ignored
    # across exec, and ama, like any program, then leaves it ignored.
    proc = subprocess.Popen([installed(), "upload", "-m", "big"], cwd=m,
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 60
    while s3.count("PUT", "/uploads/") < 8 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert proc.poll() is None, "the upload ended before it could be interrupted"
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert err.decode().count("ama: error: interrupted\nhint: run the command again") == 1
    assert "Traceback" not in err.decode()
    assert f"ama/objects/{oid[:2]}/{oid[2:]}" not in _keys(s3_bucket)  # never completed
    s3.set_bandwidth(None)
    ama("upload", "-m", "big", cwd=m)
    assert _cloned_elsewhere(tmp_path, server) == data


def test_fsck_repair_aborts_an_abandoned_upload_in_parts(
        tmp_path: Path, s3_bucket: object, start_ama_server: Callable[..., RunningServer],
        wan_proxy: Callable[..., WanProxy], monkeypatch: pytest.MonkeyPatch) -> None:
    # The server's follower held before it reads (and copies into a join) the part: what
    # is seen is the grace of the part itself (moto dates every multipart upload, as a
    # join is, in 2010).
    monkeypatch.setenv("AMA_HOLD_AT", "server.verify")
    monkeypatch.setenv("AMA_HOLD_UNTIL", str(tmp_path / "never"))
    server, _ = _large_server(s3_bucket, start_ama_server, wan_proxy, monkeypatch)
    data = os.urandom(2 * PART)
    oid = hash_bytes(data)
    (tmp_path / "big").write_bytes(data)
    client = HttpTransport(server.url, server.token)
    plan = client.start_multipart(server.project, oid, len(data))
    first = plan["parts"][0]
    client.upload_part(first["action"], tmp_path / "big", first["offset"], first["size"])
    assert _parts_stored(s3_bucket) == 1
    # Younger than the grace: an upload that may still be running is left alone.
    young = server.run("fsck", "--repair", check=False)
    assert "leftover" not in young.stdout and _parts_stored(s3_bucket) == 1
    old = server.run("fsck", "--repair", "--grace", "0", check=False)
    leftovers = [line.split("\t") for line in old.stdout.splitlines() if "leftover" in line]
    assert len(leftovers) == 1 and plan["upload_id"] in leftovers[0][1], old.stdout
    assert leftovers[0][-1] == "repaired"
    assert _parts_stored(s3_bucket) == 0


def _pieces(header: str, piece: int) -> set[int]:
    """The pieces of ``piece`` bytes a Range header ``bytes=a-b`` asks for."""
    first, last = (int(n) for n in header.removeprefix("bytes=").split("-"))
    return set(range(first // piece, last // piece + 1))


def _written(ranges: Path) -> set[int]:
    """The pieces a download's ``<id>.ranges`` lists as written (after its first line,
    which names their size)."""
    return {int(line) for line in ranges.read_text().splitlines()[1:]}


def _ranges_written(incoming: Path) -> int:
    return sum(len(_written(p)) for p in incoming.glob("*.ranges")) \
        if incoming.exists() else 0


def test_a_large_download_killed_half_way_goes_on_from_the_ranges_fetched(
        tmp_path: Path, s3_bucket: object, start_ama_server: Callable[..., RunningServer],
        wan_proxy: Callable[..., WanProxy], monkeypatch: pytest.MonkeyPatch) -> None:
    # 40 MiB in pieces of 1.5 MiB (a quarter of the threshold), two runs of them at a time
    # through a 10 MiB/s link: killed once 8 of the 27 pieces are in the partial file. The
    # link is
    # capped only for the clone that is killed: nothing else depends on its speed.
    server, s3 = _large_server(s3_bucket, start_ama_server, wan_proxy, monkeypatch,
                               rtt_ms=20)
    _join(tmp_path, server, monkeypatch)
    m, data = _staged_weights(tmp_path, 8 * PART)
    oid = hash_bytes(data)
    ama("upload", "-m", "big", cwd=m)
    home = tmp_path / "other-home"
    other = {"AMA_HOME": str(home)}
    for args in (("remote", "add", "team", server.url), ("remote", "default", "team"),
                 ("config", "set", "project.active", server.project),
                 ("auth", "login", "--token", server.token),
                 ("config", "set", "transfer.parallelism", "2"),
                 ("config", "set", "transfer.multipart_threshold", str(THRESHOLD))):
        ama(*args, cwd=tmp_path, env=other)
    s3.reset_counts()
    s3.set_bandwidth(10 << 20)
    kill_when(["clone", "data/1", "-d", str(tmp_path / "c")], tmp_path, other,
              lambda: _ranges_written(home / "incoming") >= 8)
    s3.set_bandwidth(None)
    done = set().union(*(_written(p) for p in (home / "incoming").glob("*.ranges")))
    fetched = len(done)
    assert 8 <= fetched < 27
    # Nothing partial or unverified entered the store.
    assert not (home / "objects" / oid[:2] / oid[2:]).exists()
    # Counted by connection: a request the killed clone sent just before it died may
    # reach the proxy's count after this line, half a round trip later.
    since = s3.connections
    ama("download", cwd=tmp_path / "c", env=other)
    assert (tmp_path / "c" / "weights.bin").read_bytes() == data
    # Only the ranges not in the partial file were fetched again. Compared by the ranges
    # asked for, not by requests: a request retried after a reset asks for a range twice.
    # The pieces not written are asked for in runs of pieces one after the other, a
    # request each: a run for each of the two streams and each gap the killed runs left,
    # and a few more where a stream done takes over from the other, where a request a
    # piece made one for each.
    asked = {r.range for r in s3.requests
             if r.method == "GET" and SIGNED in r.target and r.connection > since
             and f"{oid[:2]}/{oid[2:]}" in r.target and r.range is not None}
    again = set().union(*(_pieces(header, THRESHOLD // 4) for header in asked))
    assert again == set(range(27)) - done
    gaps = sum(1 for n in again if n - 1 not in again)
    assert 1 <= len(asked) <= max(1, len(again) // 2) + gaps, (asked, sorted(again))
    assert list((home / "incoming").glob(f"{oid}.*")) == []


def test_file_storage_takes_an_object_in_parts_through_the_server(
        tmp_path: Path, start_ama_server: Callable[..., RunningServer],
        wan_proxy: Callable[..., WanProxy], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AMA_MULTIPART_PART_BYTES", str(1 << 20))
    server = start_ama_server()  # file:// storage
    remote = wan_proxy(*_hostport(server.url), rtt_ms=20)
    odb = FileObjectDatabase(tmp_path / "objects")
    data = os.urandom(3 * (1 << 20) + 1000)
    with odb.batch():
        oid = odb.write(data)
    client = HttpTransport(remote.url, server.token)
    # Cut off after two parts: the parts written whole are kept, and the next try
    # sends only the rest.
    client.batch(server.project, "upload", [{"id": oid, "size": len(data)}])
    plan = client.start_multipart(server.project, oid, len(data))
    assert [p["size"] for p in plan["parts"]] == [1 << 20] * 3 + [1000]
    for part in plan["parts"][:2]:
        client.upload_part(part["action"], odb.path(oid), part["offset"], part["size"])
    storage = Path(server.storage_url.removeprefix("file://"))
    assert not (storage / "objects" / oid[:2] / oid[2:]).exists()
    remote.reset_counts()
    assert send(client, server.project, odb, [(oid, len(data))],
                multipart_threshold=2 << 20) == (1, (1 << 20) + 1000)
    assert remote.count("PUT", "/multipart/") == 2
    assert (storage / "objects" / oid[:2] / oid[2:]).read_bytes() == data
    # Nothing of the parts is left beside the object.
    assert [p.name for p in (storage / "objects" / oid[:2]).iterdir()] == [oid[2:]]


def test_an_object_stored_while_its_parts_were_sent_is_what_is_hashed(
        tmp_path: Path, s3_bucket: object, start_ama_server: Callable[..., RunningServer],
        wan_proxy: Callable[..., WanProxy], monkeypatch: pytest.MonkeyPatch) -> None:
    # The object's key stored by another way while this upload's parts were sent (its
    # follower held): what the key holds is hashed, never replaced by the parts, which go.
    release = tmp_path / "release-verification"
    monkeypatch.setenv("AMA_HOLD_AT", "server.verify")
    monkeypatch.setenv("AMA_HOLD_UNTIL", str(release))
    server, _ = _large_server(s3_bucket, start_ama_server, wan_proxy, monkeypatch)
    data = os.urandom(PART + 1000)
    oid = hash_bytes(data)
    (tmp_path / "big").write_bytes(data)
    client = HttpTransport(server.url, server.token)
    plan = _send_parts(client, server.project, oid, tmp_path / "big")
    s3, name = s3_bucket.client, s3_bucket.name  # type: ignore[attr-defined]
    key = f"ama/objects/{oid[:2]}/{oid[2:]}"
    s3.put_object(Bucket=name, Key=key, Body=data)
    answer = client.complete_multipart(server.project, oid, plan["upload_id"])
    assert answer == {"id": oid, "size": len(data), "pending": True, "verifying": True}
    release.touch()
    assert _settled(client, server.project, oid) == {"id": oid, "size": len(data),
                                                     "verified": True}
    assert _keys(s3_bucket) == [key]
    # A client cut off after asking to complete, run again: told it is held.
    assert client.complete_multipart(server.project, oid, plan["upload_id"]) == {
        "id": oid, "size": len(data), "verified": True}


def test_gcs_storage_takes_a_large_object_in_parts_and_hands_it_out_in_ranges(
        tmp_path: Path, gcs_bucket: object, start_ama_server: Callable[..., RunningServer],
        monkeypatch: pytest.MonkeyPatch) -> None:
    server = start_ama_server(storage_url=gcs_bucket.storage_url("ama"))  # type: ignore[attr-defined]
    client, oid, data = _sent_in_parts(tmp_path, server)
    assert _blobs(gcs_bucket) == [f"ama/objects/{oid[:2]}/{oid[2:]}"]  # no part left
    monkeypatch.setenv("AMA_MULTIPART_THRESHOLD", str(THRESHOLD))
    other = FileObjectDatabase(tmp_path / "home" / "objects")
    assert receive(client, server.project, other, [(oid, len(data))]) == 1
    assert Path(other.path(oid)).read_bytes() == data
    assert list((tmp_path / "home" / "incoming").iterdir()) == []


# -- large objects in parts on GCS: parts composed, hashed, then copied create-only --------

GCS_PARTS = "/ama/uploads/objects/"  # in the target of a part's signed PUT
GCS_OBJECTS = "/ama/objects/"  # in the target of a whole object's


def _blobs(bucket: object, prefix: str = "") -> list[str]:
    client, name = bucket.client, bucket.name  # type: ignore[attr-defined]
    return sorted(b.name for b in client.list_blobs(name, prefix=prefix))


def _gcs_server(far_gcs_bucket: Callable[..., tuple[Any, WanProxy]],
                start_ama_server: Callable[..., RunningServer],
                monkeypatch: pytest.MonkeyPatch, database_url: str | None = None,
                **proxy: Any) -> tuple[RunningServer, Any, WanProxy]:
    """ama-server on fake-gcs-server behind the proxy, sending objects in parts of 5 MiB."""
    bucket, gcs = far_gcs_bucket(**proxy)
    monkeypatch.setenv("AMA_MULTIPART_PART_BYTES", str(PART))
    server = start_ama_server(database_url, storage_url=bucket.storage_url("ama"))
    return server, bucket, gcs


def _database(name: str, request: pytest.FixtureRequest) -> str | None:
    return None if name == "sqlite" else str(request.getfixturevalue("postgres_url"))


def test_gcs_takes_an_object_over_the_threshold_in_parts_sent_straight_to_it(
        tmp_path: Path, far_gcs_bucket: Callable[..., tuple[Any, WanProxy]],
        start_ama_server: Callable[..., RunningServer],
        monkeypatch: pytest.MonkeyPatch) -> None:
    server, bucket, gcs = _gcs_server(far_gcs_bucket, start_ama_server, monkeypatch,
                                      rtt_ms=20)
    _join(tmp_path, server, monkeypatch)
    m, data = _staged_weights(tmp_path, 2 * PART + 1000)  # just over two parts
    oid = hash_bytes(data)
    ama("upload", "-m", "big", cwd=m)
    assert gcs.count("PUT", GCS_PARTS) == 3  # the parts, signed, from the client
    assert gcs.count("PUT", GCS_OBJECTS) == 0  # and no single PUT of the whole object
    # Joined, hashed and copied by the server; nothing of the upload is left.
    assert _blobs(bucket, "ama/objects/") == [f"ama/objects/{oid[:2]}/{oid[2:]}"]
    assert _blobs(bucket, "ama/uploads/") == []
    assert _cloned_elsewhere(tmp_path, server) == data


@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
def test_gcs_refuses_parts_with_wrong_bytes_and_keeps_nothing_of_them(
        tmp_path: Path, far_gcs_bucket: Callable[..., tuple[Any, WanProxy]],
        start_ama_server: Callable[..., RunningServer], monkeypatch: pytest.MonkeyPatch,
        database: str, request: pytest.FixtureRequest) -> None:
    server, bucket, _ = _gcs_server(far_gcs_bucket, start_ama_server, monkeypatch,
                                    _database(database, request))
    data = os.urandom(2 * PART + 1000)
    oid = hash_bytes(data)
    bad = bytearray(data)
    bad[PART + 7] ^= 0xFF  # one bit of the second part flipped on the way
    path = tmp_path / "sent"
    path.write_bytes(bytes(bad))
    client = HttpTransport(server.url, server.token)
    client.batch(server.project, "upload", [{"id": oid, "size": len(data)}])
    plan = _send_parts(client, server.project, oid, path)
    assert len(_blobs(bucket, "ama/uploads/")) == 3
    # Joined and hashed after the answer: a join of gigabytes outlasts any request.
    answer = client.complete_multipart(server.project, oid, plan["upload_id"])
    assert answer == {"id": oid, "size": len(data), "pending": True, "verifying": True}
    refused = _settled(client, server.project, oid)
    assert refused["error"]["code"] == 422
    assert oid in refused["error"]["message"] and "deleted" in refused["error"]["message"]
    assert _blobs(bucket) == []  # no object, no parts, no join of them
    answer = client.batch(server.project, "upload", [{"id": oid, "size": len(data)}])
    assert "upload" in answer["objects"][0]["actions"]  # still wanted: not verified
    assert "error" in client.verify(server.project, [oid])["objects"][0]


def test_gcs_joins_and_hashes_the_parts_after_the_completing_request_answers(
        tmp_path: Path, far_gcs_bucket: Callable[..., tuple[Any, WanProxy]],
        start_ama_server: Callable[..., RunningServer],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Joining tens of gigabytes and reading them back outlasts any request (the client's
    and gunicorn's timeouts): the completing request answers at once, the object stays
    pending, held at the background's hold point, and only the background joins it."""
    release = tmp_path / "release-verification"
    monkeypatch.setenv("AMA_HOLD_AT", "server.verify")
    monkeypatch.setenv("AMA_HOLD_UNTIL", str(release))
    server, bucket, _ = _gcs_server(far_gcs_bucket, start_ama_server, monkeypatch)
    client, data, oid, plan = _parts_sent(tmp_path, server)
    answer = client.complete_multipart(server.project, oid, plan["upload_id"])
    assert answer == {"id": oid, "size": len(data), "pending": True, "verifying": True}
    assert client.verify(server.project, [oid])["objects"] == [
        {"id": oid, "pending": True, "verifying": True}]
    # Nothing joined yet: the three parts, and no object under its key.
    assert len(_blobs(bucket, "ama/uploads/")) == 3 and _blobs(bucket, "ama/objects/") == []
    release.touch()
    assert _settled(client, server.project, oid) == {"id": oid, "size": len(data),
                                                     "verified": True}
    assert _blobs(bucket) == [f"ama/objects/{oid[:2]}/{oid[2:]}"]


def test_gcs_hash_of_a_join_outlasting_the_lease_keeps_its_claim_and_reads_it_once(
        tmp_path: Path, far_gcs_bucket: Callable[..., tuple[Any, WanProxy]],
        start_ama_server: Callable[..., RunningServer],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The worker hashing a join renews its claim while it reads: the client's verifies while
    the join is read back slowly, past the lease, find the job live and leave it, and the
    join is read once (a claim left to lapse had the job taken up and read again)."""
    monkeypatch.setenv("AMA_VERIFY_LEASE_SECONDS", "3")  # renewed every second
    server, bucket, gcs = _gcs_server(far_gcs_bucket, start_ama_server, monkeypatch)
    client, data, oid, plan = _parts_sent(tmp_path, server)
    gcs.set_bandwidth(1 << 20)  # the join comes back in about 10 s: three leases
    start = time.monotonic()
    assert client.complete_multipart(server.project, oid, plan["upload_id"])["pending"]
    answers = []
    while not (answer := dict(client.verify(server.project, [oid])["objects"][0])).get(
            "verified") and time.monotonic() - start < 60:
        answers.append(answer)
        time.sleep(0.25)
    assert answer == {"id": oid, "size": len(data), "verified": True}
    assert time.monotonic() - start > 3 * 3  # the hash did outlast the lease
    assert answers and all(a == {"id": oid, "pending": True, "verifying": True}
                           for a in answers)
    # One join made, and read from its first byte once.
    reads = [r for r in gcs.requests if r.method == "GET" and "joined-" in r.target
             and "alt=media" in r.target]
    assert len({r.target for r in reads}) == 1, reads
    assert sum(1 for r in reads if (r.range or "bytes=0-").startswith("bytes=0-")) == 1, reads
    assert _blobs(bucket) == [f"ama/objects/{oid[:2]}/{oid[2:]}"]


def test_gcs_never_joins_an_upload_no_completing_request_named(
        tmp_path: Path, far_gcs_bucket: Callable[..., tuple[Any, WanProxy]],
        start_ama_server: Callable[..., RunningServer],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Two clients upload one object: A completes (its join held at the hold point), B is
    still sending parts. ``fsck --repair`` meanwhile neither joins B's parts (refused, they
    would be deleted under B) nor refuses A's object, whose join a worker holds; A's
    object is verified once its join is done, B's part is still there, and B's completion
    finds the object held and drops it."""
    release = tmp_path / "release-verification"
    monkeypatch.setenv("AMA_HOLD_AT", "server.verify")
    monkeypatch.setenv("AMA_HOLD_UNTIL", str(release))
    server, bucket, _ = _gcs_server(far_gcs_bucket, start_ama_server, monkeypatch)
    monkeypatch.delenv("AMA_HOLD_AT")  # for fsck's own process
    data = os.urandom(2 * PART + 1000)
    oid = hash_bytes(data)
    path = tmp_path / "sent"
    path.write_bytes(data)
    a = HttpTransport(server.url, server.token)
    b = HttpTransport(server.url, server.token)
    a.batch(server.project, "upload", [{"id": oid, "size": len(data)}])
    plan_a = a.start_multipart(server.project, oid, len(data))
    plan_b = b.start_multipart(server.project, oid, len(data))
    assert plan_a["upload_id"] != plan_b["upload_id"]  # no part of either was stored yet
    for part in plan_a["parts"]:
        a.upload_part(part["action"], path, part["offset"], part["size"])
    first = plan_b["parts"][0]
    b.upload_part(first["action"], path, first["offset"], first["size"])
    assert a.complete_multipart(server.project, oid, plan_a["upload_id"])["pending"]
    b_part = f"ama/uploads/objects/{oid[:2]}/{oid[2:]}/{plan_b['upload_id']}/1"
    fsck = server.run("fsck", "--repair", check=False)
    assert f"demo\t{oid}\t\tpending" in fsck.stdout.splitlines(), fsck.stdout
    assert b_part in _blobs(bucket, "ama/uploads/")
    assert a.verify(server.project, [oid])["objects"] == [
        {"id": oid, "pending": True, "verifying": True}]
    release.touch()
    assert _settled(a, server.project, oid) == {"id": oid, "size": len(data),
                                                "verified": True}
    assert b_part in _blobs(bucket, "ama/uploads/")
    # B completes in its turn: the object is held already, and B's parts go.
    assert b.complete_multipart(server.project, oid, plan_b["upload_id"]) == {
        "id": oid, "size": len(data), "verified": True}
    assert _blobs(bucket) == [f"ama/objects/{oid[:2]}/{oid[2:]}"]


def test_gcs_upload_killed_half_way_goes_on_from_the_parts_stored(
        tmp_path: Path, far_gcs_bucket: Callable[..., tuple[Any, WanProxy]],
        start_ama_server: Callable[..., RunningServer],
        monkeypatch: pytest.MonkeyPatch) -> None:
    # 8 parts of 5 MiB, two at a time through a 10 MiB/s link: killed once 4 are stored.
    server, bucket, gcs = _gcs_server(far_gcs_bucket, start_ama_server, monkeypatch,
                                      rtt_ms=20, bandwidth=10 << 20)
    _join(tmp_path, server, monkeypatch)
    ama("config", "set", "transfer.parallelism", "2", cwd=tmp_path)
    m, data = _staged_weights(tmp_path, 8 * PART)
    kill_when(["upload", "-m", "big"], m, {},
              lambda: gcs.count("PUT", GCS_PARTS) >= 4
              and len(_blobs(bucket, "ama/uploads/")) >= 4)
    gcs.set_bandwidth(None)
    since = gcs.connections
    done = ama("upload", "-m", "big", cwd=m)
    found = re.search(r"resuming: (\d+) of 40 MiB", done.stderr)
    assert found, done.stderr
    stored = int(found[1]) // 5
    assert 4 <= stored < 8
    # Only the parts not stored were sent again: fewer than half of the object's bytes.
    assert sum(1 for r in gcs.requests if r.method == "PUT" and GCS_PARTS in r.target
               and r.connection > since) == 8 - stored
    assert _blobs(bucket, "ama/uploads/") == []
    assert _cloned_elsewhere(tmp_path, server) == data


@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
def test_gcs_upload_in_parts_never_replaces_an_object_stored_meanwhile(
        tmp_path: Path, far_gcs_bucket: Callable[..., tuple[Any, WanProxy]],
        start_ama_server: Callable[..., RunningServer], monkeypatch: pytest.MonkeyPatch,
        database: str, request: pytest.FixtureRequest) -> None:
    # Parts of wrong bytes sent, then the object stored whole by another upload before
    # the first completes: the completion keeps that object (the same generation), checks
    # it, and drops the parts.
    server, bucket, _ = _gcs_server(far_gcs_bucket, start_ama_server, monkeypatch,
                                    _database(database, request))
    data = os.urandom(PART + 1000)
    oid = hash_bytes(data)
    path = tmp_path / "sent"
    path.write_bytes(bytes(len(data)))
    client = HttpTransport(server.url, server.token)
    client.batch(server.project, "upload", [{"id": oid, "size": len(data)}])
    plan = _send_parts(client, server.project, oid, path)
    name = f"ama/objects/{oid[:2]}/{oid[2:]}"
    whole = bucket.client.bucket(bucket.name).blob(name)
    whole.upload_from_string(data, if_generation_match=0)
    generation = whole.generation
    answer = client.complete_multipart(server.project, oid, plan["upload_id"])
    # The object stored meanwhile is hashed like any upload's, after the answer.
    assert answer == {"id": oid, "size": len(data), "pending": True, "verifying": True}
    assert _settled(client, server.project, oid) == {"id": oid, "size": len(data),
                                                     "verified": True}
    kept = bucket.client.bucket(bucket.name).get_blob(name)
    assert kept.generation == generation and kept.download_as_bytes() == data
    assert _blobs(bucket) == [name]


def test_gcs_parts_go_through_the_server_without_a_key_to_sign_with(
        tmp_path: Path, far_gcs_bucket: Callable[..., tuple[Any, WanProxy]],
        start_ama_server: Callable[..., RunningServer],
        monkeypatch: pytest.MonkeyPatch) -> None:
    bucket, gcs = far_gcs_bucket()
    monkeypatch.delenv("GOOGLE_APPLICATION_CREDENTIALS")
    monkeypatch.setenv("AMA_MULTIPART_PART_BYTES", str(PART))
    server = start_ama_server(storage_url=bucket.storage_url("ama"))
    data = os.urandom(2 * PART + 1000)
    oid = hash_bytes(data)
    (tmp_path / "big").write_bytes(data)
    client = HttpTransport(server.url, server.token)
    plan = client.start_multipart(server.project, oid, len(data))
    assert all(p["action"]["href"].startswith(server.url) for p in plan["parts"])
    # Cut off after one part: the next plan lacks only the others.
    first = plan["parts"][0]
    client.upload_part(first["action"], tmp_path / "big", first["offset"], first["size"])
    again = client.start_multipart(server.project, oid, len(data))
    assert again["upload_id"] == plan["upload_id"] and again["stored_bytes"] == PART
    for part in again["parts"]:
        client.upload_part(part["action"], tmp_path / "big", part["offset"], part["size"])
    answer = client.complete_multipart(server.project, oid, plan["upload_id"])
    assert answer == {"id": oid, "size": len(data), "pending": True, "verifying": True}
    assert _settled(client, server.project, oid) == {"id": oid, "size": len(data),
                                                     "verified": True}
    assert _blobs(bucket) == [f"ama/objects/{oid[:2]}/{oid[2:]}"]
    assert gcs.count("PUT", GCS_OBJECTS) == 0


def test_gcs_without_a_key_to_sign_with_carries_every_transfer_itself(
        tmp_path: Path, far_gcs_bucket: Callable[..., tuple[Any, WanProxy]],
        start_ama_server: Callable[..., RunningServer],
        monkeypatch: pytest.MonkeyPatch) -> None:
    # A server on machine credentials that cannot sign URLs: small files (in a pack), a
    # loose one and a large one (in parts) go up and come back through the server.
    bucket, gcs = far_gcs_bucket()
    monkeypatch.delenv("GOOGLE_APPLICATION_CREDENTIALS")
    monkeypatch.setenv("AMA_MULTIPART_PART_BYTES", str(PART))
    server = start_ama_server(storage_url=bucket.storage_url("ama"))
    _join(tmp_path, server, monkeypatch)
    m = tmp_path / "m"
    m.mkdir()
    ama("init", "data", cwd=m)
    files = {f"small/{i}.txt": os.urandom(100 + i) for i in range(20)}
    files["loose.bin"] = os.urandom(1 << 20)
    files["weights.bin"] = os.urandom(2 * PART + 1000)
    for name, data in files.items():
        (m / name).parent.mkdir(exist_ok=True)
        (m / name).write_bytes(data)
    ama("add", ".", cwd=m)
    ama("upload", "-m", "no key", cwd=m)
    assert _cloned_elsewhere(tmp_path, server) == files["weights.bin"]
    clone = tmp_path / "clone"
    assert {p.relative_to(clone).as_posix(): p.read_bytes() for p in clone.rglob("*")
            if p.is_file() and ".ama" not in p.relative_to(clone).parts} == files
    assert gcs.requests and not any("Signature=" in r.target for r in gcs.requests)


def test_fsck_repair_removes_the_parts_of_an_abandoned_gcs_upload_once_old_enough(
        tmp_path: Path, far_gcs_bucket: Callable[..., tuple[Any, WanProxy]],
        start_ama_server: Callable[..., RunningServer],
        monkeypatch: pytest.MonkeyPatch) -> None:
    server, bucket, _ = _gcs_server(far_gcs_bucket, start_ama_server, monkeypatch)
    data = os.urandom(2 * PART)
    oid = hash_bytes(data)
    (tmp_path / "big").write_bytes(data)
    client = HttpTransport(server.url, server.token)
    plan = client.start_multipart(server.project, oid, len(data))
    first = plan["parts"][0]
    client.upload_part(first["action"], tmp_path / "big", first["offset"], first["size"])
    young = server.run("fsck", "--repair", "--grace", "3600", check=False)
    assert "leftover" not in young.stdout  # perhaps an upload still running: left alone
    assert len(_blobs(bucket, "ama/uploads/")) == 1
    old = server.run("fsck", "--repair", "--grace", "0", check=False)
    leftovers = [line.split("\t") for line in old.stdout.splitlines() if "leftover" in line]
    assert len(leftovers) == 1 and plan["upload_id"] in leftovers[0][1], old.stdout
    assert leftovers[0][-1] == "repaired"
    assert _blobs(bucket) == []


def test_the_threshold_of_ranged_downloads_is_read_from_the_settings(
        tmp_path: Path, start_ama_server: Callable[..., RunningServer],
        wan_proxy: Callable[..., WanProxy], monkeypatch: pytest.MonkeyPatch) -> None:
    # Set with 'ama config set', not in the environment: a 4 MiB object comes in ranges of
    # 1 MiB (a quarter of a 2 MiB threshold), five GETs instead of one.
    monkeypatch.delenv("AMA_MULTIPART_THRESHOLD", raising=False)
    server = start_ama_server()  # file:// storage
    remote = wan_proxy(*_hostport(server.url))
    odb = FileObjectDatabase(tmp_path / "objects")
    data = os.urandom(4 * (1 << 20) + 1000)
    with odb.batch():
        oid = odb.write(data)
    client = HttpTransport(remote.url, server.token)
    assert send(client, server.project, odb, [(oid, len(data))]) == (1, len(data))
    home = tmp_path / "home"
    Config(home).set("transfer.multipart_threshold", str(2 << 20))
    remote.reset_counts()
    assert receive(client, server.project, FileObjectDatabase(home / "objects"),
                   [(oid, len(data))]) == 1
    assert (home / "objects" / oid[:2] / oid[2:]).read_bytes() == data
    assert remote.count("GET", oid[2:]) == 5
    # The environment still overrides the file for one command.
    monkeypatch.setenv("AMA_MULTIPART_THRESHOLD", str(64 << 20))
    again = tmp_path / "again"
    Config(again).set("transfer.multipart_threshold", str(2 << 20))
    remote.reset_counts()
    assert receive(client, server.project, FileObjectDatabase(again / "objects"),
                   [(oid, len(data))]) == 1
    assert remote.count("GET", oid[2:]) == 1


class _CountingRanges(HttpTransport):
    """The HTTP transport, counting the ranged reads it runs at once."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._lock = threading.Lock()
        self.running = self.most = 0

    def write_range(self, action: Any, oid: str, start: int, length: int, fd: int,
                    written: Callable[[int], None] | None = None) -> None:
        with self._lock:
            self.running += 1
            self.most = max(self.most, self.running)
        try:
            super().write_range(action, oid, start, length, fd, written)
        finally:
            with self._lock:
                self.running -= 1


def test_large_downloads_at_once_hold_a_bounded_number_of_ranges(
        tmp_path: Path, start_ama_server: Callable[..., RunningServer],
        wan_proxy: Callable[..., WanProxy], monkeypatch: pytest.MonkeyPatch) -> None:
    # Two objects of 16 pieces of 1 MiB, each fetched in 8 runs by 8 threads, 50 ms away:
    # 16 requests at once before, where 8 fill a far link.
    monkeypatch.setenv("AMA_MULTIPART_THRESHOLD", str(4 << 20))
    server = start_ama_server()  # file:// storage
    remote = wan_proxy(*_hostport(server.url), rtt_ms=50)
    odb = FileObjectDatabase(tmp_path / "objects")
    blobs = [os.urandom(16 << 20) for _ in range(2)]
    with odb.batch():
        objects = [(odb.write(data), len(data)) for data in blobs]
    assert send(HttpTransport(server.url, server.token), server.project, odb,
                objects) == (2, 32 << 20)
    client = _CountingRanges(remote.url, server.token)
    other = FileObjectDatabase(tmp_path / "home" / "objects")
    assert receive(client, server.project, other, objects, parallelism=8) == 2
    assert 1 < client.most <= ranged.RANGES_IN_FLIGHT
    for (oid, _), data in zip(objects, blobs, strict=True):
        assert Path(other.path(oid)).read_bytes() == data


def test_two_downloads_of_one_large_object_at_once_share_its_fetch(
        tmp_path: Path, start_ama_server: Callable[..., RunningServer],
        wan_proxy: Callable[..., WanProxy], monkeypatch: pytest.MonkeyPatch) -> None:
    # Two clients of one store (two notebooks, or two clones of versions that share a
    # shard) download the same large object at once: the second waits for the first's
    # partial file, and takes the object from the store; nothing is written twice over.
    monkeypatch.setenv("AMA_MULTIPART_THRESHOLD", str(1 << 20))
    server = start_ama_server()  # file:// storage
    data, oid = _stored(tmp_path, server, 4 << 20)
    remote = wan_proxy(*_hostport(server.url), bandwidth=2 << 20)  # about 2 s a fetch
    home = tmp_path / "home"
    got: list[int] = []
    errors: list[BaseException] = []

    def download() -> None:
        try:
            got.append(receive(HttpTransport(remote.url, server.token), server.project,
                               FileObjectDatabase(home / "objects"), [(oid, len(data))],
                               parallelism=2))
        except BaseException as e:  # noqa: BLE001 - handed to the test's thread
            errors.append(e)

    threads = [threading.Thread(target=download) for _ in range(2)]
    for thread in threads:
        thread.start()
        time.sleep(0.3)  # the first has its partial file by then
    for thread in threads:
        thread.join(60)
    assert errors == [] and got == [1, 1]
    assert FileObjectDatabase(home / "objects").get(oid) == data
    assert remote.count("GET", oid[2:]) <= 2  # one fetch: its runs, not a second one's
    assert list((home / "incoming").iterdir()) == []


def test_a_piece_cut_off_half_way_is_fetched_again_whole_by_the_next_run(
        tmp_path: Path, start_ama_server: Callable[..., RunningServer],
        wan_proxy: Callable[..., WanProxy], monkeypatch: pytest.MonkeyPatch) -> None:
    # An object of 8 pieces of 1 MiB, one stream: one run, one request. Its answer is
    # reset after two pieces and 300,000 bytes of the third passed. At 20 MiB/s, so that
    # the client has read what passed when the reset comes (a reset drops what it has not
    # read).
    monkeypatch.setenv("AMA_MULTIPART_THRESHOLD", str(4 << 20))
    server = start_ama_server()  # file:// storage: the server answers the ranges itself
    data, oid = _stored(tmp_path, server, 8 << 20)
    remote = wan_proxy(*_hostport(server.url), bandwidth=20 << 20, faults=[
        Fault("reset-after", nth=[1], methods=["GET"], path=oid[2:],
              partial=(2 << 20) + 300_000)])
    client = HttpTransport(remote.url, server.token, retries=0)
    home = tmp_path / "home"
    other = FileObjectDatabase(home / "objects")
    with pytest.raises(Unreachable, match="broke off"):
        receive(client, server.project, other, [(oid, len(data))], parallelism=1)
    assert remote.count(fault="reset-after") == 1
    written = _written(home / "incoming" / f"{oid}.ranges")
    # The cut piece is not counted as written.
    assert written == {0, 1}
    assert not other.has(oid)
    remote.reset_counts()
    assert receive(client, server.project, other, [(oid, len(data))], parallelism=1) == 1
    assert Path(other.path(oid)).read_bytes() == data
    asked = [r.range for r in remote.requests if r.method == "GET" and r.range]
    assert asked == [f"bytes={2 << 20}-{(8 << 20) - 1}"]


def test_a_range_answered_short_is_refused_never_written_as_whole(tmp_path: Path) -> None:
    # A server that answers a range with fewer bytes than asked, and says so in its
    # headers: the answer is refused, and a ranged read returns nothing short.
    class Short(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - the handler's name
            self.send_response(206)
            self.send_header("Content-Range", "bytes 0-99/1000")
            self.send_header("Content-Length", "60")
            self.end_headers()
            self.wfile.write(b"x" * 60)

        def log_message(self, *args: Any) -> None:
            pass

    with http.server.ThreadingHTTPServer(("127.0.0.1", 0), Short) as httpd:
        threading.Thread(target=httpd.serve_forever, daemon=True).start()
        client = HttpTransport(f"http://127.0.0.1:{httpd.server_port}", "token", retries=0)
        action = {"href": f"http://127.0.0.1:{httpd.server_port}/o", "method": "GET"}
        with pytest.raises(RemoteError, match="60 bytes of object"):
            client.read_range(action, "a" * 64, 0, 100)
        path = tmp_path / "partial"
        with open(path, "wb+") as f:
            with pytest.raises(RemoteError, match="60 bytes of object"):
                client.write_range(action, "a" * 64, 0, 100, f.fileno())
        httpd.shutdown()
