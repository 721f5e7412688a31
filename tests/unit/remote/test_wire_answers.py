"""The JSON the remote answers, pinned key by key: a representative request of each kind
(negotiations of loose, packed and unknown objects, full and compact; uploads in parts;
packs; a commit; administration; errors) through the HTTP app, and the embedded remote's
bulk answers through the service it calls in process.

Each answer is reduced to its shape (every key, in the order sent, and the JSON type of
every value), so that typing or moving the code that builds an answer cannot change a
byte a client reads without this test saying which answer changed and how.
"""

from __future__ import annotations

import io
import json
import time
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import falcon.testing
import pytest

from ama.plumbing import pack
from ama.plumbing.hashing import hash_bytes, is_id
from ama_remote.app import create_app
from ama_remote.config import load_config
from ama_remote.db import Database
from ama_remote.service import Service
from tests.unit.remote.test_service import build

HOST = "ama.test"
UNKNOWN = "f" * 64


def shape(value: Any) -> Any:
    """``value`` with every scalar replaced by the name of its JSON type, and every key that
    is an object id by ``<id>`` and its place; dicts keep their keys in order (compared
    through :func:`json.dumps`, which keeps it too)."""
    if isinstance(value, dict):
        return {f"<id{n}>" if is_id(k) else k: shape(v)
                for n, (k, v) in enumerate(value.items())}
    if isinstance(value, list):
        return [shape(v) for v in value]
    if value is None:
        return "null"
    return {bool: "bool", int: "int", float: "float", str: "str"}[type(value)]


class Remote:
    """A remote on SQLite and file:// storage, called through its HTTP app."""

    def __init__(self, tmp_path: Path) -> None:
        now = datetime(2026, 11, 27, 16, 0, tzinfo=timezone.utc)
        self.db = Database(f"sqlite:///{tmp_path / 'ama.db'}")
        self.db.migrate()
        self.service = Service(self.db, clock=lambda: now)
        self.service.add_user("admin", "admin@example.org", admin=True)
        self.service.create_project("demo", (tmp_path / "storage").as_uri())
        self.service.add_user("wendy", "wendy@example.org")
        self.service.grant("demo", "wendy", "writer")
        self.token = self.service.issue_token("admin")
        settings = load_config(environ={}, home=tmp_path / "home", multipart_part_bytes=4)
        self.client = falcon.testing.TestClient(create_app(self.service, settings))
        self.answers: dict[str, Any] = {}

    def call(self, name: str, method: str, path: str, status: int = 200,
             **kwargs: Any) -> Any:
        """Send a request; keep its answer's shape under ``name``; return its JSON."""
        headers = {"Authorization": f"Bearer {self.token}", **kwargs.pop("headers", {})}
        result = self.client.simulate_request(method, "/v1" + path, headers=headers,
                                              host=HOST, **kwargs)
        assert result.status_code == status, (name, result.text)
        body = json.loads(result.text) if result.text else None
        self.answers[name] = shape(body)
        return body

    def put(self, name: str, path: str, data: bytes, status: int = 201) -> Any:
        return self.call(name, "PUT", path, status, body=data,
                         headers={"Content-Type": "application/octet-stream"})


@pytest.fixture
def remote(tmp_path: Path) -> Iterator[Remote]:
    remote = Remote(tmp_path)
    yield remote
    remote.db.dispose()


def _ask(objects: dict[str, bytes]) -> list[dict[str, Any]]:
    return [{"id": oid, "size": len(data)} for oid, data in objects.items()]


ACTION = {"href": "str", "method": "str", "headers": {}, "expires": "int"}
HELD = {"id": "str", "size": "int", "verified": "bool"}
VERSION = {"class": "str", "ordinal": "int", "name": "str", "version": "str",
           "manifest": "str", "parent": "null", "tree": "str", "author": "str",
           "author_email": "str", "created": "str", "message": "str", "uploader": "str",
           "uploaded": "str"}
IDS3 = {"<id0>": "int", "<id1>": "int", "<id2>": "int"}
PIN: dict[str, Any] = {
    "me": {"username": "str", "email": "str", "admin": "bool",
           "projects": [{"name": "str", "role": "str"}]},
    "class": {"name": "str", "description": "str", "schema": "null", "rules": {},
              "visualisation": "null", "created": "str"},
    "negotiate upload": {"objects": [
        {"id": "str", "size": "int", "actions": {"upload": ACTION}}] * 3},
    "negotiate upload, compact": {
        "compact": "int", "objects": [], "present": {},
        "transfer": {"href": "str", "method": "str", "headers": {}, "expires": "int",
                     "objects": IDS3}},
    "put object": HELD,
    "negotiate upload of held objects": {"objects": [{"id": "str", "size": "int"}] * 3},
    "negotiate upload of held objects, compact": {
        "compact": "int", "objects": [], "present": IDS3,
        "transfer": {"href": "str", "method": "str", "headers": {}, "expires": "int",
                     "objects": {}}},
    "negotiate upload for packs": {"objects": [
        {"id": "str", "size": "int", "actions": {"upload": ACTION}}] * 3},
    "verify": {"objects": [HELD, {"id": "str", "error": {"code": "int", "message": "str"}}]},
    "announce pack": {"id": "str", "size": "int", "actions": {"upload": ACTION}},
    "put pack": {"id": "str", "size": "int", "objects": "int"},
    "announce held pack": {"id": "str", "size": "int", "objects": "int"},
    "verify pack": {"id": "str", "size": "int", "objects": "int"},
    "open multipart": {"id": "str", "size": "int", "part_size": "int", "upload_id": "str",
                       "parts": [{"number": "int", "offset": "int", "size": "int",
                                  "action": ACTION}] * 3,
                       "stored_bytes": "int"},
    "put part": {"number": "int", "size": "int"},
    "open multipart again": {"id": "str", "size": "int", "part_size": "int",
                             "upload_id": "str",
                             "parts": [{"number": "int", "offset": "int", "size": "int",
                                        "action": ACTION}] * 2,
                             "stored_bytes": "int"},
    "complete multipart": {"id": "str", "size": "int", "pending": "bool", "verifying": "bool"},
    "verify once hashed": {"objects": [HELD]},
    "open multipart of a held object": HELD,
    "commit": VERSION,
    "commit again, a conflict": {"error": {"code": "str", "message": "str", "hint": "str",
                                           "latest": "str"}},
    "commit of missing objects": {"error": {"code": "str", "message": "str", "hint": "str",
                                            "problems": ["str"]}},
    "negotiate download": {
        "objects": [{"id": "str", "size": "int", "actions": {"download": ACTION}}] * 3
        + [{"id": "str", "size": "int", "pack": {"id": "str", "offset": "int",
                                                 "length": "int"}}] * 2
        + [{"id": "str", "error": {"code": "int", "message": "str"}}],
        "packs": {"<id0>": {"size": "int", "actions": {"download": ACTION}}}},
    "negotiate download, compact": {
        "compact": "int",
        "objects": [{"id": "str", "error": {"code": "int", "message": "str"}}],
        "present": {},
        "transfer": {"href": "str", "method": "str", "headers": {}, "expires": "int",
                     "objects": IDS3},
        "packs": {"<id0>": {"size": "int", "actions": {"download": ACTION}}},
        "packed": {"<id0>": ["str", "int", "int"], "<id1>": ["str", "int", "int"]}},
    "users": {"items": [
        {"username": "str", "email": "str", "admin": "bool", "active": "bool",
         "created": "str", "projects": []},
        {"username": "str", "email": "str", "admin": "bool", "active": "bool",
         "created": "str", "projects": [{"name": "str", "role": "str"}]}],
        "next_page": "null"},
    "set role": {"project": "str", "username": "str", "role": "str"},
    "members": {"items": [{"username": "str", "email": "str", "active": "bool",
                           "role": "str"}], "next_page": "null"},
    "bad request": {"error": {"code": "str", "message": "str", "hint": "null"}},
}


def test_every_answer_keeps_its_keys_and_types(remote: Remote) -> None:
    remote.call("me", "GET", "/auth/me")
    remote.call("class", "POST", "/projects/demo/classes", 201,
                json={"name": "models", "description": "trained models"})
    manifest, objects = build({"a.txt": b"alpha"})
    ask = _ask(objects)
    batch = "/projects/demo/objects/batch"
    remote.call("negotiate upload", "POST", batch,
                json={"operation": "upload", "objects": ask})
    remote.call("negotiate upload, compact", "POST", batch,
                json={"operation": "upload", "objects": ask, "compact": 1})
    for oid, data in objects.items():
        remote.put("put object", f"/projects/demo/objects/{oid}", data)
    remote.call("negotiate upload of held objects", "POST", batch,
                json={"operation": "upload", "objects": ask})
    remote.call("negotiate upload of held objects, compact", "POST", batch,
                json={"operation": "upload", "objects": ask, "compact": 1})
    remote.call("verify", "POST", "/projects/demo/objects/verify",
                json={"ids": [manifest, UNKNOWN]})

    # A second version, its small objects in a pack and its large file in parts.
    large = b"0123456789"  # parts of 4 bytes here
    manifest2, objects2 = build({"a.txt": b"alpha", "b.txt": b"beta", "large": large})
    small = {oid: data for oid, data in objects2.items()
             if oid not in objects and data != large}
    remote.call("negotiate upload for packs", "POST", batch,
                json={"operation": "upload", "objects": _ask(small), "packs": 1})
    out = io.BytesIO()
    pid = pack.write([(oid, len(data)) for oid, data in small.items()],
                     lambda oid, size: small[oid], out)
    packed = out.getvalue()
    packs = "/projects/demo/packs"
    remote.call("announce pack", "POST", packs, json={"id": pid, "size": len(packed)})
    remote.put("put pack", f"{packs}/{pid}", packed)
    remote.call("announce held pack", "POST", packs, json={"id": pid, "size": len(packed)})
    remote.call("verify pack", "POST", f"{packs}/{pid}/verify", json={})

    oid = hash_bytes(large)
    multipart = f"/projects/demo/objects/{oid}/multipart"
    plan = remote.call("open multipart", "POST", multipart, json={"size": len(large)})
    first = plan["parts"][0]
    path = first["action"]["href"].removeprefix(f"http://{HOST}/v1")
    remote.put("put part", path, large[first["offset"]:first["offset"] + first["size"]])
    plan = remote.call("open multipart again", "POST", multipart, json={"size": len(large)})
    for part in plan["parts"]:
        path = part["action"]["href"].removeprefix(f"http://{HOST}/v1")
        remote.put("put part", path, large[part["offset"]:part["offset"] + part["size"]])
    remote.call("complete multipart", "POST", multipart + "/complete",
                json={"upload_id": plan["upload_id"]})
    # The object is hashed after that answer, by a thread of this process: ask until it is.
    for _ in range(1200):
        if remote.call("verify once hashed", "POST", "/projects/demo/objects/verify",
                       json={"ids": [oid]})["objects"][0].get("verified"):
            break
        time.sleep(0.05)
    remote.call("open multipart of a held object", "POST", multipart,
                json={"size": len(large)})

    versions = "/projects/demo/classes/models/versions"
    remote.call("commit", "POST", versions, 201,
                json={"asset": None, "parent": None, "manifest": manifest,
                      "idempotency_key": "k1"})
    remote.call("commit again, a conflict", "POST", versions, 409,
                json={"asset": 1, "parent": None, "manifest": manifest2,
                      "idempotency_key": "k2"})
    missing, _ = build({"c.txt": b"never sent"})
    remote.call("commit of missing objects", "POST", versions, 422,
                json={"asset": None, "parent": None, "manifest": missing,
                      "idempotency_key": "k3"})

    down = _ask(objects) + _ask({k: v for k, v in small.items() if k not in objects})[:2] \
        + [{"id": UNKNOWN, "size": 1}]
    remote.call("negotiate download", "POST", batch,
                json={"operation": "download", "objects": down})
    remote.call("negotiate download, compact", "POST", batch,
                json={"operation": "download", "objects": down, "compact": 1})

    remote.call("users", "GET", "/admin/users")
    remote.call("set role", "PUT", "/projects/demo/members/wendy", json={"role": "reader"})
    remote.call("members", "GET", "/projects/demo/members")
    remote.call("bad request", "POST", batch, 400, json={"operation": "sideways",
                                                         "objects": []})

    assert {name: json.dumps(answer) for name, answer in remote.answers.items()} \
        == {name: json.dumps(pinned) for name, pinned in PIN.items()}


def test_the_embedded_remotes_bulk_answers_keep_their_keys(tmp_path: Path) -> None:
    remote = Remote(tmp_path)
    caller = remote.service.authenticate(remote.token)
    _, objects = build({"a.txt": b"alpha"})
    files = []
    for oid, data in objects.items():
        (tmp_path / oid).write_bytes(data)
        files.append((oid, len(data), str(tmp_path / oid)))
    (tmp_path / "wrong").write_bytes(b"not it")
    stored = remote.service.put_object_files(
        caller, "demo", files + [(UNKNOWN, 6, str(tmp_path / "wrong"))])
    assert json.dumps(shape(stored)) == json.dumps({"objects": [
        {"id": "str", "size": "int", "verified": "bool", "stored": "bool"}] * 3
        + [{"id": "str", "error": {"code": "int", "message": "str"}}]})
    _, more = build({"b.txt": b"beta"})
    small = {oid: data for oid, data in more.items() if oid not in objects}
    with open(tmp_path / "pack", "wb") as out:
        pid = pack.write([(oid, len(data)) for oid, data in small.items()],
                         lambda oid, size: small[oid], out)
    remote.service.put_pack_file(caller, "demo", pid, str(tmp_path / "pack"),
                                 (tmp_path / "pack").stat().st_size)
    found = remote.service.object_files(caller, "demo", [oid for oid, _, _ in files]
                                        + list(small) + [UNKNOWN])
    assert json.dumps(shape(found)) == json.dumps({"objects": [
        {"id": "str", "size": "int", "path": "str"}] * 3
        + [{"id": "str", "size": "int", "path": "null",
            "pack": {"path": "str", "offset": "int", "length": "int"}}] * len(small)
        + [{"id": "str", "error": {"code": "int", "message": "str"}}]})
    remote.db.dispose()
