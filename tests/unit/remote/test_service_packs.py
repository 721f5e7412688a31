"""Packs through the service layer on a real database and file:// storage: stored and
checked whole, located for downloads, refused whole with a bad member, and fsck's checks.

tests/integration/test_service_db.py runs these on PostgreSQL too.
"""

# ruff: noqa: F811  (the suite's fixtures, imported by name, are the tests' arguments)

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any

import pytest

from ama.plumbing import pack
from ama_remote.errors import NotFound, ValidationFailed
from ama_remote.service import Caller, Service
from ama_remote.service.packs import pack_key
from tests.unit.remote.test_service import (  # noqa: F401  (fixtures)
    admin,
    build,
    clock,
    db_url,
    service,
)


def _pack(objects: dict[str, bytes]) -> tuple[str, bytes]:
    out = io.BytesIO()
    name = pack.write([(oid, len(b)) for oid, b in objects.items()],
                      lambda oid, size: objects[oid], out)
    return name, out.getvalue()


def _stored(tmp_path: Path, pid: str) -> Path:
    return tmp_path / "storage" / pack_key(pid)


def test_a_pack_makes_every_member_present_and_downloads_name_its_ranges(
        service: Service, admin: Caller, tmp_path: Path) -> None:
    manifest, objects = build({"a.txt": b"alpha", "d/b.txt": b"beta", "link": "a.txt"})
    pid, data = _pack(objects)
    assert service.announce_pack(admin, "lab", pid, len(data))["actions"]["upload"]["method"] \
        == "PUT"
    answer = service.put_pack(admin, "lab", pid, io.BytesIO(data), len(data))
    assert answer == {"id": pid, "size": len(data), "objects": len(objects)}
    # Trees, the manifest and the link's blob are read from the pack by the commit.
    version = service.commit(admin, "lab", "models", None, None, manifest, "k1")
    assert version["version"] == "0.0.0"
    ask = [{"id": oid, "size": len(b)} for oid, b in objects.items()]
    assert all("actions" not in o for o in service.batch(admin, "lab", "upload", ask)["objects"])
    full = service.batch(admin, "lab", "download", ask)
    assert set(full["packs"]) == {pid}
    for item in full["objects"]:
        where = item["pack"]
        assert where["id"] == pid
        assert data[where["offset"]:where["offset"] + where["length"]] == objects[item["id"]]
    compact = service.batch(admin, "lab", "download", ask, compact=True)
    assert set(compact["packed"]) == set(objects) and compact["present"] == {}
    oid = next(iter(objects))
    stream, size = service.open_object(admin, "lab", oid)
    assert stream.read() == objects[oid] and size == len(objects[oid])
    assert service.announce_pack(admin, "lab", pid, len(data)) == {
        "id": pid, "size": len(data), "objects": len(objects)}
    assert service.fsck() == []


def test_object_files_places_packed_and_loose_objects_in_one_query(
        service: Service, admin: Caller, tmp_path: Path) -> None:
    from sqlalchemy import event

    from tests.unit.remote.test_bulk_objects import write_objects

    _, packed = build({f"f{i}.bin": os.urandom(100 + i) for i in range(40)})
    pid, data = _pack(packed)
    service.put_pack(admin, "lab", pid, io.BytesIO(data), len(data))
    loose = {oid: b for oid, b in build({"loose.txt": os.urandom(3000)})[1].items()
             if oid not in packed}
    service.put_object_files(admin, "lab", write_objects(tmp_path / "client", loose))
    unknown = "0" * 64

    def placed(ids: list[str]) -> tuple[list[dict[str, Any]], int]:
        statements: list[str] = []

        def count(conn: object, cursor: object, statement: str, *args: object) -> None:
            statements.append(statement)

        event.listen(service.db.engine, "before_cursor_execute", count)
        try:
            answer = service.object_files(admin, "lab", ids)["objects"]
        finally:
            event.remove(service.db.engine, "before_cursor_execute", count)
        # Statements that read objects or where they lie (not the project's and role's).
        return answer, sum("objects" in q.partition("FROM")[2].split()[0] for q in statements
                           if "FROM" in q)

    ids = [*packed, *loose, unknown]
    answer, queries = placed(ids)
    assert [a["id"] for a in answer] == ids
    for item in answer[:len(packed)]:
        where = item["pack"]
        assert item["path"] is None and where["path"] == str(_stored(tmp_path, pid))
        assert data[where["offset"]:where["offset"] + where["length"]] == packed[item["id"]]
        assert item["size"] == len(packed[item["id"]])
    for item in answer[len(packed):-1]:
        assert Path(item["path"]).read_bytes() == loose[item["id"]] and "pack" not in item
    assert answer[-1]["error"]["code"] == 404
    # The objects with their places in one query, for 2 ids as for 40.
    assert queries == 1 and placed(ids[:2])[1] == 1


def test_a_pack_with_one_bad_member_is_refused_whole(service: Service, admin: Caller,
                                                     tmp_path: Path) -> None:
    objects = {o: b for o, b in build({"a": b"one", "b": b"two", "c": b"three"})[1].items()}
    pid, data = _pack(objects)
    members = pack.read_index(io.BytesIO(data), pid)
    broken = bytearray(data)
    broken[members[1].offset] ^= 0xFF
    with pytest.raises(ValidationFailed) as e:
        service.put_pack(admin, "lab", pid, io.BytesIO(bytes(broken)), len(broken))
    assert e.value.problems == [f"hash mismatch: {members[1].id}"]
    assert not _stored(tmp_path, pid).exists()
    ask = [{"id": oid, "size": len(b)} for oid, b in objects.items()]
    assert all("actions" in o for o in service.batch(admin, "lab", "upload", ask)["objects"])
    with pytest.raises(NotFound):
        service.verify_pack(admin, "lab", pid)


def test_fsck_reads_packs_and_names_a_damaged_one_and_its_members(
        service: Service, admin: Caller, tmp_path: Path) -> None:
    manifest, objects = build({"a.txt": b"alpha", "b.txt": b"beta"})
    pid, data = _pack(objects)
    service.put_pack(admin, "lab", pid, io.BytesIO(data), len(data))
    service.commit(admin, "lab", "models", None, None, manifest, "k1")
    path = _stored(tmp_path, pid)
    os.chmod(path, 0o644)
    damaged = bytearray(path.read_bytes())
    damaged[-1] ^= 1
    path.write_bytes(bytes(damaged))
    problems = service.fsck()
    kinds = {(p["object"], p["problem"]) for p in problems}
    assert (pid, "corrupt-pack") in kinds
    assert any(p["problem"] == "corrupt" and p["versions"] == ["models/1/0.0.0"]
               for p in problems)
    path.unlink()
    assert (pid, "missing-pack") in {(p["object"], p["problem"]) for p in service.fsck()}
