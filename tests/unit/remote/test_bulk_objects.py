"""The service's bulk object calls for the embedded remote (put_object_files, object_files),
against a real SQLite database and a real file:// storage."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from sqlalchemy import select

from ama_remote.errors import Forbidden, NotFound
from ama_remote.models import StoredObject
from ama_remote.service import Caller, Service
from ama_remote.storage.base import object_key
from tests.unit.remote.test_service import admin, build, clock, db_url, make_caller, service

__all__ = ["admin", "clock", "db_url", "service"]


def write_objects(folder: Path, objects: dict[str, bytes], mode: int = 0o444
                  ) -> list[tuple[str, int, str]]:
    """Write each object as a file named by its id, as a client's store holds them."""
    folder.mkdir(parents=True, exist_ok=True)
    files = []
    for oid, data in objects.items():
        path = folder / oid
        path.write_bytes(data)
        path.chmod(mode)
        files.append((oid, len(data), str(path)))
    return files


def rows(service: Service) -> dict[str, StoredObject]:
    with service.db.read() as s:
        return {r.oid: r for r in s.scalars(select(StoredObject))}


def stored_path(tmp_path: Path, oid: str) -> Path:
    return tmp_path / "storage" / object_key(oid)


def test_bulk_upload_copies_read_only_files_verifies_and_commits(
        service: Service, admin: Caller, tmp_path: Path) -> None:
    manifest, objects = build({"a.txt": b"alpha\n", "d/b.bin": os.urandom(3000)})
    files = write_objects(tmp_path / "client", objects)
    seen: list[int] = []
    answer = service.put_object_files(admin, "lab", files, progress=seen.append)
    assert [a["id"] for a in answer["objects"]] == [f[0] for f in files]
    assert all(a["verified"] and a["stored"] for a in answer["objects"])
    assert seen[-1] == len(files)
    for oid, _, path in files:
        stored = stored_path(tmp_path, oid)
        assert stored.read_bytes() == objects[oid]
        # Its own inode: a client file made writable and written to cannot change it.
        assert os.stat(stored).st_ino != os.stat(path).st_ino
        assert not os.stat(stored).st_mode & 0o222
    recorded = rows(service)
    assert {oid for oid in objects} == set(recorded)
    assert all(r.verified for r in recorded.values())
    assert recorded[manifest].kind == "manifest" and recorded[manifest].data == objects[manifest]
    result = service.commit(admin, "lab", "models", None, None, manifest, "k1")
    assert result["version"] == "0.0.0"
    # Again: every object is held, none is stored twice.
    again = service.put_object_files(admin, "lab", files)
    assert not any(a["stored"] for a in again["objects"])


def test_bulk_upload_copies_writable_files(service: Service, admin: Caller,
                                           tmp_path: Path) -> None:
    _, objects = build({"a.txt": b"alpha\n"})
    files = write_objects(tmp_path / "client", objects, mode=0o644)
    service.put_object_files(admin, "lab", files)
    for oid, _, path in files:
        stored = stored_path(tmp_path, oid)
        assert os.stat(stored).st_ino != os.stat(path).st_ino
        assert stored.read_bytes() == objects[oid]
        assert not os.stat(stored).st_mode & 0o222
        Path(path).write_bytes(b"changed later")  # never reaches the remote's copy
        assert stored.read_bytes() == objects[oid]


def test_bulk_upload_refuses_bytes_that_are_not_their_id(service: Service, admin: Caller,
                                                         tmp_path: Path) -> None:
    manifest, objects = build({"a.txt": b"alpha\n", "b.txt": b"beta\n"})
    files = write_objects(tmp_path / "client", objects)
    good, bad = files[0], files[1]
    wrong = tmp_path / "wrong"
    wrong.write_bytes(b"X" * bad[1])  # right size, wrong bytes
    wrong.chmod(0o444)
    short = tmp_path / "short"
    short.write_bytes(b"x")
    short.chmod(0o444)
    answer = service.put_object_files(admin, "lab", [good, (bad[0], bad[1], str(wrong)),
                                                     (files[2][0], files[2][1] + 1, str(short))])
    first, second, third = answer["objects"]
    assert first["verified"] is True
    assert "hash to" in second["error"]["message"] and second["error"]["code"] == 422
    assert "announced" in third["error"]["message"]
    assert not stored_path(tmp_path, bad[0]).exists()  # deleted, never served
    assert not stored_path(tmp_path, files[2][0]).exists()
    assert set(rows(service)) == {good[0]}
    with pytest.raises(NotFound):
        service.open_object(admin, "lab", bad[0])


def test_bulk_upload_needs_a_writer(service: Service, admin: Caller, tmp_path: Path) -> None:
    _, objects = build({"a.txt": b"alpha\n"})
    reader = make_caller(service, "rita", "reader")
    with pytest.raises(Forbidden):
        service.put_object_files(reader, "lab", write_objects(tmp_path / "c", objects))
    assert rows(service) == {}


def test_object_files_names_verified_objects_only(service: Service, admin: Caller,
                                                  tmp_path: Path) -> None:
    _, objects = build({"a.txt": b"alpha\n"})
    files = write_objects(tmp_path / "client", objects)
    service.put_object_files(admin, "lab", files)
    unknown = "0" * 64
    answer = service.object_files(admin, "lab", [files[0][0], unknown])
    found, missing = answer["objects"]
    assert Path(found["path"]).read_bytes() == objects[files[0][0]]
    assert found["size"] == files[0][1]
    assert missing["error"]["code"] == 404 and "path" not in missing
    outsider = make_caller(service, "olga", None)
    with pytest.raises(NotFound):
        service.object_files(outsider, "lab", [files[0][0]])


@pytest.mark.parametrize("mode", [0o444, 0o644])
def test_bulk_upload_takes_bytes_already_in_storage_only_from_a_file_that_holds_them(
        service: Service, admin: Caller, tmp_path: Path, mode: int) -> None:
    import io

    from ama.plumbing.hashing import hash_bytes
    from ama_remote.storage import open_backend

    data = b"someone else's bytes"
    oid = hash_bytes(data)
    open_backend((tmp_path / "storage").as_uri()).put(object_key(oid), io.BytesIO(data),
                                                      len(data))
    forged = write_objects(tmp_path / "client", {oid: b"x" * len(data)}, mode)
    answer = service.put_object_files(admin, "lab", forged)["objects"]
    assert answer[0]["error"]["code"] == 422 and str(forged[0][2]) in answer[0]["error"]["message"]
    assert oid not in rows(service)
    genuine = write_objects(tmp_path / "genuine", {oid: data}, mode)
    answer = service.put_object_files(admin, "lab", genuine)["objects"]
    assert answer == [{"id": oid, "size": len(data), "verified": True, "stored": False}]
    assert rows(service)[oid].verified
