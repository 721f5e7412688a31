"""The S3 follower of an upload in parts (the worker that hashes its parts as they land and
joins them) against what others do meanwhile: bytes put under the object's key, a start
sent twice, fsck --repair, a worker killed. Nothing that hashed right is lost, and no
upload whose parts are all stored is left pending or refused.

ama-server (gunicorn, sqlite) on moto's S3, objects in parts of 5 MiB; the object is just
over two parts (three parts)."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import requests

from ama.plumbing.hashing import hash_bytes
from ama.plumbing.transport import HttpTransport
from tests.services.server import RunningServer

PART = 5 << 20


class Up:
    """A server on moto's S3 and an object of three parts to send to it."""

    def __init__(self, tmp_path: Path, s3_bucket: Any,
                 start_ama_server: Callable[..., RunningServer],
                 monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("AWS_ENDPOINT_URL", s3_bucket.endpoint_url)
        monkeypatch.setenv("AMA_MULTIPART_PART_BYTES", str(PART))
        self.bucket = s3_bucket
        self.server = start_ama_server(storage_url=s3_bucket.storage_url("ama"))
        self.client = HttpTransport(self.server.url, self.server.token)
        self.project = self.server.project
        self.data = os.urandom(2 * PART + 1000)
        self.oid = hash_bytes(self.data)
        self.path = tmp_path / "big"
        self.path.write_bytes(self.data)

    def start(self) -> dict[str, Any]:
        self.client.batch(self.project, "upload", [{"id": self.oid, "size": len(self.data)}])
        return dict(self.client.start_multipart(self.project, self.oid, len(self.data)))

    def send(self, plan: dict[str, Any], numbers: list[int]) -> None:
        for part in plan["parts"]:
            if part["number"] in numbers:
                self.client.upload_part(part["action"], self.path, part["offset"],
                                        part["size"])

    def complete(self, plan: dict[str, Any]) -> dict[str, Any]:
        return dict(self.client.complete_multipart(self.project, self.oid, plan["upload_id"]))

    def answer(self) -> dict[str, Any]:
        return dict(self.client.verify(self.project, [self.oid])["objects"][0])

    def settled(self, seconds: float = 60) -> dict[str, Any]:
        deadline = time.monotonic() + seconds
        answer = self.answer()
        while answer.get("pending") and time.monotonic() < deadline:
            time.sleep(0.5)
            answer = self.answer()
        return answer

    def keys(self, prefix: str = "ama/") -> list[str]:
        c, name = self.bucket.client, self.bucket.name
        return [i["Key"] for i in c.list_objects_v2(Bucket=name, Prefix=prefix)
                .get("Contents", [])]

    def key(self) -> str:
        return f"ama/objects/{self.oid[:2]}/{self.oid[2:]}"

    def parts(self) -> list[str]:
        return self.keys(f"ama/uploads/objects/{self.oid[:2]}/{self.oid[2:]}/")

    def joins(self) -> list[dict[str, Any]]:
        c, name = self.bucket.client, self.bucket.name
        return list(c.list_multipart_uploads(Bucket=name).get("Uploads", []))


@pytest.fixture
def up(tmp_path: Path, s3_bucket: Any, start_ama_server: Callable[..., RunningServer],
       monkeypatch: pytest.MonkeyPatch) -> Up:
    return Up(tmp_path, s3_bucket, start_ama_server, monkeypatch)


def _wait_for(check: Callable[[], bool], seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.2)


def test_other_bytes_put_under_the_key_do_not_cost_the_parts_that_hashed_right(
        up: Up) -> None:
    """A writer of the project (hostile, or a client of another version) stores 10 bytes
    under the object's key, through the single PUT ``batch upload`` presigns for an object
    not yet verified, while a client sends the object in parts. The join of the parts is
    refused (the key is taken) and the key hashes wrong: it is deleted and refused, but the
    parts that hashed right are kept, and the next run completes them sending nothing."""
    plan = up.start()
    up.send(plan, [1, 2])
    answer = up.client.batch(up.project, "upload", [{"id": up.oid, "size": 10}])
    action = answer["objects"][0]["actions"]["upload"]
    put = requests.put(action["href"], data=b"0123456789", headers=action["headers"],
                       timeout=30)
    assert put.status_code == 200, put.text
    assert up.key() in up.keys()
    up.send(plan, [3])
    up.complete(plan)
    settled = up.settled()
    assert "does not match its id" in settled["error"]["message"]
    assert up.key() not in up.keys() and len(up.parts()) == 3
    again = up.start()
    assert again["upload_id"] == plan["upload_id"] and again["parts"] == []
    up.complete(again)
    assert up.settled().get("verified")
    assert up.key() in up.keys() and up.parts() == []


def test_a_retried_start_is_not_left_waiting_for_the_follower_of_an_upload_never_sent(
        up: Up) -> None:
    """The answer to the start of an upload in parts is lost (a proxy's 502, a read
    timeout) and the client sends the POST again: no part is stored yet, so the retry
    opens another upload. The follower of the first gives it up once parts land in the
    second, and the object is hashed and held within seconds, not after the follower's
    15 minutes of waiting."""
    first = up.start()   # its answer lost
    second = up.start()  # the client's retry
    assert first["upload_id"] != second["upload_id"]
    up.send(second, [1, 2, 3])
    up.complete(second)
    # Every byte is stored; hashing three parts of 5 MiB on loopback takes a second.
    answer = up.settled(seconds=30)
    assert answer.get("verified"), answer


def test_fsck_repair_leaves_the_join_of_an_upload_still_followed(up: Up) -> None:
    """The follower's join (an S3 multipart upload of the object's key) is dated by the
    newest part copied into it, not by when it began: an upload that runs longer than
    fsck's grace (hundreds of GiB over a slow link) keeps its join, as it keeps its parts.
    moto dates every multipart upload's start in 2010, so only its parts' dates can keep
    the join here."""
    plan = up.start()
    up.send(plan, [1])
    _wait_for(lambda: len(up.joins()) == 1)  # part 1 read, the join opened
    up.send(plan, [2])  # the upload still runs: its newest part is young
    fsck = up.server.run("fsck", "--repair", check=False)
    assert len(up.parts()) == 2, fsck.stdout  # the running upload's parts are kept
    assert len(up.joins()) == 1, fsck.stdout  # ... and so must be its follower's join
    up.send(plan, [3])
    up.complete(plan)
    answer = up.settled()
    assert answer.get("verified"), (answer, fsck.stdout)


def _workers(master: int) -> list[int]:
    return [int(p) for p in
            Path(f"/proc/{master}/task/{master}/children").read_text().split()]


def test_an_upload_still_sent_when_fsck_repair_finds_it_pending_completes(
        up: Up, monkeypatch: pytest.MonkeyPatch) -> None:
    """The worker following an upload is killed (a deploy) while its client, which sends
    its parts straight to S3, goes on. Once the worker's lease ran out (here: fsck run
    with a lease of 0), fsck --repair finds a part missing and says so, but records no
    refusal: its client may still be sending. The client stores its last part and
    completes, and the object is held."""
    plan = up.start()
    up.send(plan, [1, 2])
    for pid in _workers(up.server.process.pid):
        os.kill(pid, 9)
    monkeypatch.setenv("AMA_VERIFY_LEASE_SECONDS", "0")  # for fsck only: "15 minutes on"
    fsck = up.server.run("fsck", "--repair", check=False)
    monkeypatch.delenv("AMA_VERIFY_LEASE_SECONDS")
    assert len(up.parts()) == 2, fsck.stdout
    _wait_for(lambda: bool(_workers(up.server.process.pid)))
    up.send(plan, [3])
    _wait_for(lambda: _answers(up))
    up.complete(plan)
    answer = up.settled()
    assert answer.get("verified"), (answer, fsck.stdout)


def _answers(up: Up) -> bool:
    try:
        up.answer()
    except Exception:  # noqa: BLE001 - workers still booting
        return False
    return True


def test_a_project_that_opens_uploads_and_sends_nothing_keeps_no_other_from_being_followed(
        tmp_path: Path, s3_bucket: Any, start_ama_server: Callable[..., RunningServer],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A writer of one project opens uploads in parts of made-up objects and never sends a
    part: each is followed, waiting 15 minutes for its first part. The server's one worker
    follows at most half its uploads for one project, so an upload of another project is
    still followed: its first part is read, and the join of its key opened, while its
    client still sends the rest."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_bucket.endpoint_url)
    monkeypatch.setenv("AMA_MULTIPART_PART_BYTES", str(PART))
    server = start_ama_server(storage_url=s3_bucket.storage_url("ama"), workers=1)
    server.setup("project", "add", "other", "--storage", s3_bucket.storage_url("other"),
                 "--no-check")
    server.setup("project", "grant", "other", "admin", "admin")
    client = HttpTransport(server.url, server.token)
    size = 2 * PART + 1000
    for _ in range(8):  # as many as a worker follows
        made_up = hash_bytes(os.urandom(32))
        client.batch(server.project, "upload", [{"id": made_up, "size": size}])
        client.start_multipart(server.project, made_up, size)
    data = os.urandom(size)
    oid = hash_bytes(data)
    path = tmp_path / "big"
    path.write_bytes(data)
    client.batch("other", "upload", [{"id": oid, "size": size}])
    plan = client.start_multipart("other", oid, size)
    first = next(p for p in plan["parts"] if p["number"] == 1)
    client.upload_part(first["action"], path, first["offset"], first["size"])

    def joined() -> bool:
        uploads = s3_bucket.client.list_multipart_uploads(Bucket=s3_bucket.name)
        return any(u["Key"] == f"other/objects/{oid[:2]}/{oid[2:]}"
                   for u in uploads.get("Uploads", []))
    _wait_for(joined)



def test_a_follower_of_a_killed_run_gives_the_job_up_to_the_upload_completed(
        tmp_path: Path, s3_bucket: Any, start_ama_server: Callable[..., RunningServer],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A run is killed after it opened an upload (its follower, held here, holds the job)
    and sent a part still on its way. The re-run opens another upload (no part of the first
    was stored yet), sends every part and completes it, which names that upload as the
    job's. The first run's part lands a second later, the newest of all, and the follower
    reads it and waits for the next. It gives the job up within a poll, not after 15
    minutes, and the client's next verify follows the upload the completion named, not the
    one whose part is newest (which lacks parts: it would refuse the object as "not
    uploaded")."""
    released = tmp_path / "released"
    monkeypatch.setenv("AMA_HOLD_AT", "server.verify")
    monkeypatch.setenv("AMA_HOLD_UNTIL", str(released))
    up = Up(tmp_path, s3_bucket, start_ama_server, monkeypatch)
    killed = up.start()
    rerun = up.start()
    assert killed["upload_id"] != rerun["upload_id"]
    up.send(rerun, [1, 2, 3])
    assert up.complete(rerun).get("pending")
    time.sleep(1.1)  # S3 dates parts to the second: the late part is strictly the newest
    up.send(killed, [1])
    released.write_text("")
    answer = up.settled(seconds=30)
    assert answer.get("verified"), answer
    assert up.key() in up.keys()


def test_a_completion_naming_an_upload_with_no_part_leaves_the_follower_its_job(
        up: Up) -> None:
    """A writer completes the object naming an upload id of its own making while the
    client still sends its parts: no part of that upload is stored, so the job is not
    named after it, and the worker following the real upload goes on (a job named after
    it would have the follower give up, and the next verify refuse the object as not
    uploaded)."""
    plan = up.start()
    up.send(plan, [1, 2])
    made_up = {**plan, "upload_id": "0123456789abcdef0123456789abcdef"}
    assert up.complete(made_up).get("pending")
    time.sleep(1.5)  # longer than the follower's longest wait between two looks
    up.send(plan, [3])
    answer = up.settled()
    assert answer.get("verified"), answer
