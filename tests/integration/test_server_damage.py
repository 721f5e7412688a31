"""What ama-server does about damage it finds in its storage, under a real gunicorn on
127.0.0.1: an object whose stored bytes no longer match its id, and what a worker killed
in the middle of an upload leaves behind."""

from __future__ import annotations

import http.client
import os
import signal
import socket
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

from sqlalchemy import select

from ama.plumbing.hashing import hash_bytes
from ama.plumbing.transport import HttpTransport
from ama_remote.db import Database
from ama_remote.models import StoredObject
from ama_remote.storage.base import object_key
from tests.integration.test_gunicorn import push, write_version
from tests.services.server import RunningServer


def get_object(server: RunningServer, oid: str) -> tuple[int, bytes, bool]:
    """GET objects/{id} raw: (status, the body bytes that arrived, whether it was whole)."""
    parts = urlsplit(server.url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
    try:
        conn.request("GET", f"/v1/projects/{server.project}/objects/{oid}",
                     headers={"Authorization": f"Bearer {server.token}"})
        response = conn.getresponse()
        try:
            return response.status, response.read(), True
        except http.client.IncompleteRead as cut:
            return response.status, cut.partial, False
    finally:
        conn.close()


def flip_a_bit(path: Path, offset: int) -> None:
    path.chmod(0o644)
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x01
    path.write_bytes(bytes(data))


def verified(server: RunningServer) -> dict[str, bool]:
    db = Database(server.database_url)
    try:
        with db.read() as s:
            return {r.oid: r.verified for r in s.scalars(select(StoredObject))}
    finally:
        db.dispose()


def test_an_object_whose_stored_bytes_changed_is_never_served_whole_and_fsck_lists_it(
        start_ama_server: Callable[..., RunningServer], tmp_path: Path) -> None:
    server = start_ama_server()
    client = HttpTransport(server.url, server.token)
    client.put_class(server.project, "models")
    big = os.urandom(5 << 20)
    small = b"a small file\n" * 100
    paths, manifest = write_version(tmp_path, {"big.bin": big, "small.txt": small})
    push(client, server.project, paths)
    client.commit(server.project, "models", None, None, manifest, "k")
    assert server.invoke("fsck").returncode == 0
    storage = Path(urlsplit(server.storage_url).path)
    status, body, whole = get_object(server, hash_bytes(big))
    assert (status, body, whole) == (200, big, True)

    flip_a_bit(storage / object_key(hash_bytes(big)), len(big) // 2)
    flip_a_bit(storage / object_key(hash_bytes(small)), 0)
    status, body, whole = get_object(server, hash_bytes(big))
    # The headers were out before the damage showed: the body stops short of its length.
    assert status == 200 and not whole and len(body) < len(big)
    status, body, whole = get_object(server, hash_bytes(small))
    assert status == 404 and b"corrupt" in body and whole

    rows = verified(server)
    assert not rows[hash_bytes(big)] and not rows[hash_bytes(small)]
    assert rows[manifest]
    again = client.batch(server.project, "download", [{"id": hash_bytes(big), "size": 0}])
    assert again["objects"][0]["error"]["code"] == 404
    fsck = server.invoke("fsck", check=False)
    assert fsck.returncode == 1
    assert sorted(fsck.stdout.splitlines()) == sorted(
        f"{server.project}\t{oid}\tmodels/1/0.0.0\tcorrupt"
        for oid in (hash_bytes(big), hash_bytes(small)))


def worker_holding(server: RunningServer, path: Path) -> int | None:
    """The gunicorn worker (a child of the server this test started) with ``path`` open."""
    pid = server.process.pid
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    for child in children:
        try:
            fds = list(Path(f"/proc/{child}/fd").iterdir())
        except FileNotFoundError:
            continue
        for fd in fds:
            try:
                if os.readlink(fd) == str(path):
                    return int(child)
            except FileNotFoundError:
                continue
    return None


def test_fsck_lists_and_repair_removes_what_a_killed_upload_left_but_not_one_in_flight(
        start_ama_server: Callable[..., RunningServer]) -> None:
    server = start_ama_server()
    storage = Path(urlsplit(server.storage_url).path)
    size = 10 << 20
    oid = hash_bytes(b"\0" * size)
    parts = urlsplit(server.url)
    with socket.create_connection((parts.hostname, parts.port), timeout=60) as conn:
        conn.sendall(
            f"PUT /v1/projects/{server.project}/objects/{oid} HTTP/1.1\r\n"
            f"Host: {parts.netloc}\r\nAuthorization: Bearer {server.token}\r\n"
            f"Content-Type: application/octet-stream\r\nContent-Length: {size}\r\n\r\n"
            .encode())
        conn.sendall(b"\0" * (9 << 20))  # past the first piece the storage writes
        deadline = time.monotonic() + 60
        temp: Path | None = None
        while time.monotonic() < deadline:
            temps = [p for p in storage.rglob(".tmp-*") if p.stat().st_size >= 8 << 20]
            if temps:
                temp = temps[0]
                break
            time.sleep(0.05)
        assert temp is not None, "the upload never reached the storage"
        worker = worker_holding(server, temp)
        assert worker is not None
        os.kill(worker, signal.SIGKILL)
        try:  # the connection died with its worker (reset: it left bytes unread)
            assert conn.recv(1) == b""
        except ConnectionResetError:
            pass
    assert temp.exists()

    # Young: it could be an upload still running, so it is neither listed nor removed.
    assert server.invoke("fsck", "--repair").returncode == 0
    assert temp.exists()
    two_days_ago = time.time() - 2 * 86400
    os.utime(temp, (two_days_ago, two_days_ago))
    name = temp.relative_to(storage).as_posix()
    listed = server.invoke("fsck", check=False)
    assert listed.returncode == 1
    assert listed.stdout == f"{server.project}\t{name}\t\tleftover\n"
    assert temp.exists()
    repaired = server.invoke("fsck", "--repair")
    assert repaired.stdout == f"{server.project}\t{name}\t\tleftover\trepaired\n"
    assert not temp.exists()
    assert server.invoke("fsck").stdout == ""
