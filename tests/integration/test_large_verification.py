"""The remote hashes an object sent in parts apart from the requests of its upload (on S3,
part by part as the parts land, joining them into the object once hashed): the object is
pending until its bytes hashed right, no version commits against it before, bytes that
hash wrong are deleted and refused, and a worker killed before hashing leaves the object
pending, for ``ama-server fsck --repair`` once the worker's lease ran out.

Each test holds the background hash at its hold point (``AMA_HOLD_AT=server.verify``) until
it creates the file ``AMA_HOLD_UNTIL`` names: what happens meanwhile is deterministic.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from ama.plumbing.errors import AmaError
from ama.plumbing.hashing import hash_bytes
from ama.plumbing.objects import Author, Manifest, Tree, TreeEntry
from ama.plumbing.odb import FileObjectDatabase
from ama.plumbing.transport import HttpTransport, Unreachable, ValidationFailed
from ama_remote.service.multipart import VERIFY_THREADS
from tests.integration.test_wan_large import _settled
from tests.services.server import RunningServer

PART = 5 << 20  # S3's smallest part but for the last


class Setup:
    """ama-server (gunicorn) on moto's S3 with objects sent in parts of 5 MiB, its
    background hash held until :meth:`release`; a version of one large file to send."""

    def __init__(self, tmp_path: Path, s3_bucket: object, database_url: str,
                 start_ama_server: Callable[..., RunningServer],
                 monkeypatch: pytest.MonkeyPatch) -> None:
        self.release_file = tmp_path / "release-verification"
        monkeypatch.setenv("AMA_HOLD_AT", "server.verify")
        monkeypatch.setenv("AMA_HOLD_UNTIL", str(self.release_file))
        monkeypatch.setenv("AWS_ENDPOINT_URL", s3_bucket.endpoint_url)  # type: ignore[attr-defined]
        monkeypatch.setenv("AMA_MULTIPART_PART_BYTES", str(PART))
        self.bucket = s3_bucket
        self.server = start_ama_server(database_url,
                                       s3_bucket.storage_url("ama"))  # type: ignore[attr-defined]
        self.client = HttpTransport(self.server.url, self.server.token)
        # Without retries, a commit refused as still verifying fails at once.
        self.once = HttpTransport(self.server.url, self.server.token, retries=0)
        self.client.put_class(self.server.project, "models")
        self.odb = FileObjectDatabase(tmp_path / "objects")
        self.data = os.urandom(2 * PART + 1000)
        with self.odb.batch():
            self.large = self.odb.write(self.data)
            tree = self.odb.write(Tree.of([TreeEntry("blob", self.large, len(self.data),
                                                     "weights.bin")]).serialize())
            self.manifest = self.odb.write(Manifest(
                tree=tree, author=Author("T", "t@example.org"),
                created="2026-12-04T22:00:00Z").serialize())
        self.small = [self.manifest, tree]

    def key(self) -> str:
        return f"ama/objects/{self.large[:2]}/{self.large[2:]}"

    def parts(self) -> list[str]:
        """The keys of the parts stored of the large object's uploads."""
        return sorted(k for k in self.keys() if k.startswith(f"ama/uploads/{self.key()[4:]}/"))

    def damage_part(self, number: int) -> None:
        """Replace stored part ``number`` with bytes that are not the object's."""
        part = next(k for k in self.parts() if k.endswith(f"/{number}"))
        client, name = self.bucket.client, self.bucket.name  # type: ignore[attr-defined]
        bad = bytearray(self.data[(number - 1) * PART:number * PART])
        bad[7] ^= 0xFF
        client.put_object(Bucket=name, Key=part, Body=bytes(bad))

    def send_small(self) -> None:
        """Upload and verify the manifest and tree (each in one request)."""
        project = self.server.project
        answer = self.client.batch(project, "upload", [
            {"id": oid, "size": self.odb.size(oid)} for oid in self.small])
        for item in answer["objects"]:
            actions = item.get("actions") or {}
            if "upload" in actions:
                self.client.upload(actions["upload"], self.odb.path(item["id"]))
        assert all(a.get("verified") for a in
                   self.client.verify(project, self.small)["objects"])

    def send_large(self, path: Path | None = None) -> dict[str, object]:
        """Send the large object's parts (from ``path``, else the store) and complete."""
        project, size = self.server.project, len(self.data)
        self.client.batch(project, "upload", [{"id": self.large, "size": size}])
        plan = self.client.start_multipart(project, self.large, size)
        for part in plan["parts"]:
            self.client.upload_part(part["action"], path or self.odb.path(self.large),
                                    part["offset"], part["size"])
        return self.client.complete_multipart(project, self.large, plan["upload_id"])

    def commit(self) -> dict[str, object]:
        return dict(self.once.commit(self.server.project, "models", None, None,
                                     self.manifest, "first"))

    def release(self) -> None:
        self.release_file.touch()

    def settled(self) -> dict[str, object]:
        """Ask about the large object until it is no longer pending (the background hash
        was released): its answer."""
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            answer = dict(self.client.verify(self.server.project, [self.large])["objects"][0])
            if not answer.get("pending"):
                return answer
            time.sleep(0.1)
        pytest.fail("the remote never finished hashing the object")

    def keys(self) -> list[str]:
        client, name = self.bucket.client, self.bucket.name  # type: ignore[attr-defined]
        return [i["Key"] for i in client.list_objects_v2(Bucket=name).get("Contents", [])]


@pytest.fixture
def setup(tmp_path: Path, s3_bucket: object, server_database_url: str,
          start_ama_server: Callable[..., RunningServer],
          monkeypatch: pytest.MonkeyPatch) -> Setup:
    return Setup(tmp_path, s3_bucket, server_database_url, start_ama_server, monkeypatch)


def _still_verifying(setup: Setup) -> AmaError:
    with pytest.raises(Unreachable) as e:  # 503 with a Retry-After: clients retry it
        setup.commit()
    assert "still being verified" in e.value.message and setup.manifest in e.value.message
    return e.value


def test_a_large_upload_completes_before_its_hash_and_commits_only_after(
        setup: Setup) -> None:
    setup.send_small()
    # The completing request answers while the hash is held: it did not wait for it.
    assert setup.send_large() == {"id": setup.large, "size": len(setup.data),
                                  "pending": True, "verifying": True}
    # Its parts are stored; the object's key holds nothing until they hashed right.
    assert len(setup.parts()) == 3 and setup.key() not in setup.keys()
    assert setup.client.verify(setup.server.project, [setup.large])["objects"] == [
        {"id": setup.large, "pending": True, "verifying": True}]
    _still_verifying(setup)
    assert list(setup.client.assets(setup.server.project, "models")) == []
    setup.release()
    assert setup.settled() == {"id": setup.large, "size": len(setup.data), "verified": True}
    assert setup.key() in setup.keys() and setup.parts() == []
    version = setup.commit()
    assert (version["ordinal"], version["version"]) == (1, "0.0.0")
    # Held now: a new upload of it sends nothing.
    answer = setup.client.batch(setup.server.project, "upload",
                                [{"id": setup.large, "size": len(setup.data)}])
    assert "actions" not in answer["objects"][0]


def test_bytes_damaged_before_the_hash_are_never_verified_and_the_commit_is_refused(
        setup: Setup) -> None:
    setup.send_small()
    assert setup.send_large()["pending"]
    # A stored part is damaged before it is hashed.
    setup.damage_part(2)
    setup.release()
    answer = setup.settled()
    assert answer["id"] == setup.large and "error" in answer
    message = answer["error"]["message"]  # type: ignore[index]
    assert "does not match its id" in message and "deleted" in message
    assert setup.key() not in setup.keys() and setup.parts() == []
    with pytest.raises(ValidationFailed) as e:
        setup.commit()
    assert "refused when the server hashed them" in e.value.message
    assert list(setup.client.assets(setup.server.project, "models")) == []
    # Still wanted: not verified; sent again, whole, it is verified and the commit goes.
    answer = setup.client.batch(setup.server.project, "upload",
                                [{"id": setup.large, "size": len(setup.data)}])
    assert "upload" in answer["objects"][0]["actions"]
    assert setup.send_large()["pending"]
    assert setup.settled()["verified"]
    assert setup.commit()["ordinal"] == 1


def _workers(master: int) -> list[int]:
    """The pids of gunicorn's workers: the children of its master."""
    children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
    return [int(pid) for pid in children]


def test_a_worker_killed_before_the_hash_leaves_the_object_pending_for_fsck(
        setup: Setup, monkeypatch: pytest.MonkeyPatch) -> None:
    setup.send_small()
    assert setup.send_large()["pending"]
    workers = _workers(setup.server.process.pid)
    assert workers
    for pid in workers:  # the one holding the hash among them
        os.kill(pid, signal.SIGKILL)
    setup.release()
    # gunicorn starts new workers; none of them hashes an object another one took on
    # (until its lease runs out), and nothing commits against it.
    assert setup.client.verify(setup.server.project, [setup.large])["objects"][0]["pending"]
    _still_verifying(setup)
    assert len(setup.parts()) == 3 and setup.key() not in setup.keys()
    monkeypatch.delenv("AMA_HOLD_AT")
    found = setup.server.run("fsck", check=False)
    assert found.returncode == 1
    assert f"demo\t{setup.large}\t\tpending" in found.stdout.splitlines()
    # Within the lease, the job is left to the worker that may hold it.
    held = setup.server.run("fsck", "--repair", check=False)
    assert f"demo\t{setup.large}\t\tpending" in held.stdout.splitlines(), held.stdout
    assert len(setup.parts()) == 3
    monkeypatch.setenv("AMA_VERIFY_LEASE_SECONDS", "0")
    repaired = setup.server.run("fsck", "--repair", check=False)
    assert f"demo\t{setup.large}\t\tpending\trepaired" in repaired.stdout.splitlines(), \
        repaired.stdout
    assert setup.server.run("fsck").stdout == ""
    assert setup.key() in setup.keys() and setup.parts() == []
    assert setup.client.verify(setup.server.project, [setup.large])["objects"] == [
        {"id": setup.large, "size": len(setup.data), "verified": True}]
    assert setup.commit()["ordinal"] == 1


def test_fsck_repair_deletes_pending_parts_that_hash_wrong(setup: Setup,
                                                          monkeypatch: pytest.MonkeyPatch
                                                          ) -> None:
    assert setup.send_large()["pending"]
    for pid in _workers(setup.server.process.pid):
        os.kill(pid, signal.SIGKILL)
    setup.damage_part(3)
    monkeypatch.delenv("AMA_HOLD_AT")
    monkeypatch.setenv("AMA_VERIFY_LEASE_SECONDS", "0")
    repaired = setup.server.run("fsck", "--repair", check=False)
    assert f"demo\t{setup.large}\t\tcorrupt\trepaired" in repaired.stdout.splitlines()
    assert setup.key() not in setup.keys() and setup.parts() == []
    answer = setup.client.verify(setup.server.project, [setup.large])["objects"][0]
    assert "does not match its id" in answer["error"]["message"]


def test_one_projects_queue_of_hashes_never_holds_up_anothers(
        tmp_path: Path, start_ama_server: Callable[..., RunningServer],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A writer of one project who completes more uploads in parts than a worker hashes at
    once fills only its own project's queue: another project's object, completed after,
    is taken up at once (held at the hold point beside the first project's, where one
    shared queue had it wait for them), and every object is verified once released."""
    release = tmp_path / "release-verification"
    monkeypatch.setenv("AMA_HOLD_AT", "server.verify")
    monkeypatch.setenv("AMA_HOLD_UNTIL", str(release))
    monkeypatch.setenv("AMA_MULTIPART_PART_BYTES", str(PART))
    server = start_ama_server(workers=1)  # one process: one set of background threads
    server.setup("project", "add", "other", "--storage", (tmp_path / "other").as_uri(),
                 "--no-check")
    server.setup("project", "grant", "other", "admin", "admin")
    client = HttpTransport(server.url, server.token)
    waiting = tmp_path / "release-verification.waiting"

    def completed(project: str, n: int) -> str:
        data = os.urandom(PART + 1000 + n)  # two parts
        path = tmp_path / f"{project}-{n}"
        path.write_bytes(data)
        oid = hash_bytes(data)
        client.batch(project, "upload", [{"id": oid, "size": len(data)}])
        plan = client.start_multipart(project, oid, len(data))
        for part in plan["parts"]:
            client.upload_part(part["action"], path, part["offset"], part["size"])
        assert client.complete_multipart(project, oid, plan["upload_id"])["pending"] is True
        return oid

    def arrivals(count: int = 0) -> int:
        """How many jobs reached the hold point, once ``count`` did (or 15 s went by)."""
        for _ in range(300):  # the jobs reach the hold point after their requests answered
            lines = waiting.read_text().splitlines() if waiting.exists() else []
            if len(lines) >= count:
                break
            time.sleep(0.05)
        return len(lines)

    mine = [completed(server.project, n) for n in range(VERIFY_THREADS + 2)]
    assert arrivals(VERIFY_THREADS) == VERIFY_THREADS  # as many as a project's threads
    time.sleep(0.5)
    assert arrivals() == VERIFY_THREADS  # the rest wait in its queue
    theirs = completed("other", 0)
    assert arrivals(VERIFY_THREADS + 1) == VERIFY_THREADS + 1  # not behind the first's
    release.touch()
    for project, oid in [*((server.project, o) for o in mine), ("other", theirs)]:
        answer = _settled(client, project, oid)
        assert answer == {"id": oid, "size": answer["size"], "verified": True}


def _file_upload_completed(tmp_path: Path, start_ama_server: Callable[..., RunningServer],
                           monkeypatch: pytest.MonkeyPatch
                           ) -> tuple[HttpTransport, RunningServer, bytes, str, Path, Path]:
    """ama-server on file:// storage, its background hash held until the file
    ``release-verification`` exists; an object of three parts sent and completed: the
    client, the server, the bytes, their id, the object's key and the release file."""
    release = tmp_path / "release-verification"
    monkeypatch.setenv("AMA_HOLD_AT", "server.verify")
    monkeypatch.setenv("AMA_HOLD_UNTIL", str(release))
    monkeypatch.setenv("AMA_MULTIPART_PART_BYTES", str(PART))
    storage = tmp_path / "storage"
    server = start_ama_server(storage_url=storage.as_uri())
    client = HttpTransport(server.url, server.token)
    data = os.urandom(2 * PART + 1000)
    oid = hash_bytes(data)
    path = tmp_path / "sent"
    path.write_bytes(data)
    client.batch(server.project, "upload", [{"id": oid, "size": len(data)}])
    plan = client.start_multipart(server.project, oid, len(data))
    for part in plan["parts"]:
        client.upload_part(part["action"], path, part["offset"], part["size"])
    answer = client.complete_multipart(server.project, oid, plan["upload_id"])
    assert answer == {"id": oid, "size": len(data), "pending": True, "verifying": True}
    return client, server, data, oid, storage / "objects" / oid[:2] / oid[2:], release


def test_a_file_storage_joins_the_parts_after_the_completing_request_answers(
        tmp_path: Path, start_ama_server: Callable[..., RunningServer],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Joining tens of gigabytes on the server's disk outlasts a request (gunicorn's
    timeout would kill the worker mid-join): the completing request answers at once, and
    the background joins the parts aside, hashes the join and only then links it to the
    object's key."""
    client, server, data, oid, key, release = _file_upload_completed(
        tmp_path, start_ama_server, monkeypatch)
    folder = [p.name for p in key.parent.iterdir()]
    assert not key.exists() and len(folder) == 3  # the three parts, not joined yet
    release.touch()
    answer = _settled(client, server.project, oid)
    assert answer == {"id": oid, "size": len(data), "verified": True}
    assert key.read_bytes() == data
    assert [p.name for p in key.parent.iterdir()] == [oid[2:]]  # no part, no join left


def test_a_file_storage_never_gives_a_join_that_hashed_wrong_the_objects_key(
        tmp_path: Path, start_ama_server: Callable[..., RunningServer],
        monkeypatch: pytest.MonkeyPatch) -> None:
    client, server, _, oid, key, release = _file_upload_completed(
        tmp_path, start_ama_server, monkeypatch)
    second = next(p for p in key.parent.iterdir() if p.name.endswith(".2"))
    damaged = bytearray(second.read_bytes())
    damaged[7] ^= 0xFF  # the disk, or a writer, changed a part after it was stored
    second.chmod(0o644)
    second.write_bytes(bytes(damaged))
    release.touch()
    answer = _settled(client, server.project, oid)
    assert answer["error"]["code"] == 422 and "deleted" in answer["error"]["message"]
    assert not key.exists() and list(key.parent.iterdir()) == []  # no object, part, join
    again = client.batch(server.project, "upload", [{"id": oid, "size": 2 * PART + 1000}])
    assert "upload" in again["objects"][0]["actions"]  # still wanted: never held
