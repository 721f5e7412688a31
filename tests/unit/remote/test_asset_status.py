"""Asset status and soft deletion in the service layer, on SQLite (and on PostgreSQL through
tests/integration/test_asset_status_db.py): who may change them, what a deleted asset
hides, that its objects stay, and the audit trail; and the class rules on an asset's tags,
title and description, and the class's visualisation rules."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from ama_remote.db import Database
from ama_remote.errors import BadInput, Forbidden, NotFound, ValidationFailed
from ama_remote.models import AuditEntry, StoredObject
from ama_remote.service import Caller, Service
from tests.unit.remote.test_service import Clock, Counter, build, commit_files, make_caller


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'ama.db'}"


@pytest.fixture
def service(db_url: str, tmp_path: Path) -> Iterator[Service]:
    db = Database(db_url)
    db.migrate()
    svc = Service(db, clock=Clock(), token_bytes=Counter())
    svc.create_project("lab", (tmp_path / "storage").as_uri())
    yield svc
    db.dispose()


@pytest.fixture
def admin(service: Service) -> Caller:
    caller = make_caller(service, "ada", "admin")
    service.put_class(caller, "lab", "models")
    return caller


def test_writers_set_the_status_readers_may_not(service: Service, admin: Caller) -> None:
    commit_files(service, admin, {"a": b"1"})
    writer = make_caller(service, "wes", "writer")
    reader = make_caller(service, "rea", "reader")
    assert service.get_asset(reader, "lab", "models", 1)["status"] == "active"
    assert service.update_asset(writer, "lab", "models", 1, status="deprecated")["status"] == \
        "deprecated"
    assert [a["status"] for a in service.list_assets(reader, "lab", "models")["items"]] == [
        "deprecated"]
    with pytest.raises(Forbidden):
        service.update_asset(reader, "lab", "models", 1, status="obsolete")
    with pytest.raises(BadInput, match="'retired'"):
        service.update_asset(writer, "lab", "models", 1, status="retired")
    with service.db.read() as s:
        audit = [(e.field, e.old, e.new) for e in s.scalars(
            select(AuditEntry).where(AuditEntry.field == "status"))]
    assert audit == [("status", "active", "deprecated")]


def test_a_deleted_asset_is_hidden_until_restored_and_keeps_its_objects(
        service: Service, admin: Caller) -> None:
    first = commit_files(service, admin, {"a": b"kept bytes"})
    # models/2: the same tree, another manifest
    other = commit_files(service, admin, {"a": b"kept bytes"}, metadata={"copy": True})
    service.put_alias(admin, "lab", "models", "prod", 1)
    writer = make_caller(service, "wes", "writer")
    with pytest.raises(Forbidden, match="needs admin"):
        service.delete_asset(writer, "lab", "models", 1)

    gone = service.delete_asset(admin, "lab", "models", "prod")
    assert gone["name"] == "models/1" and gone["deleted"] is not None
    assert [a["name"] for a in service.list_assets(admin, "lab", "models")["items"]] == [
        "models/2"]
    assert [a["name"] for a in service.list_assets(admin, "lab", "models",
                                                   deleted=True)["items"]] == ["models/1"]
    for call in (lambda: service.get_asset(writer, "lab", "models", 1),
                 lambda: service.list_versions(writer, "lab", "models", "prod"),
                 lambda: service.version_size(writer, "lab", "models", 1, "0.0.0"),
                 lambda: commit_files(service, admin, {"a": b"2"}, asset=1,
                                      parent=first["manifest"])):
        with pytest.raises(NotFound) as hidden:
            call()
        assert "models/1 was deleted" in hidden.value.message
        assert "ama asset restore models/1" in (hidden.value.hint or "")
    # Neither found by its hash or alias, nor named as an input's version.
    assert [v["name"] for v in service.find(writer, "lab", hash=first["tree"])] == ["models/2"]
    assert service.find(writer, "lab", alias="prod") == []
    with pytest.raises(NotFound):
        service.inputs(writer, "lab", first["manifest"])
    # Its objects stay: the project still holds them, verified.
    _, objects = build({"a": b"kept bytes"})
    with service.db.read() as s:
        held = set(s.scalars(select(StoredObject.oid).where(StoredObject.verified)))
    assert set(objects) <= held
    assert service.delete_asset(admin, "lab", "models", 1)["deleted"] == gone["deleted"]

    back = service.delete_asset(admin, "lab", "models", 1, restore=True)
    assert back["deleted"] is None and back["latest"]["manifest"] == first["manifest"]
    assert [v["version"] for v in service.list_versions(writer, "lab", "models", "prod")] == [
        "0.0.0"]
    assert other["tree"] == first["tree"]
    with service.db.read() as s:
        audit = [(e.field, e.target, e.old is None, e.new is None)
                 for e in s.scalars(select(AuditEntry).where(AuditEntry.field == "deleted")
                                    .order_by(AuditEntry.id))]
    assert audit == [("deleted", "models/1", True, False), ("deleted", "models/1", False, True)]


def test_the_migration_makes_every_existing_asset_active(db_url: str) -> None:
    from sqlalchemy import text

    db = Database(db_url)
    db.migrate("0002")
    with db.transaction() as s:
        s.execute(text("INSERT INTO projects (id, name, storage_url, created) "
                       "VALUES (1, 'lab', 'file:///nowhere', '2026-12-01 00:00:00')"))
        s.execute(text("INSERT INTO classes (id, project_id, name, description, next_ordinal, "
                       "created) VALUES (1, 1, 'models', '', 2, '2026-12-01 00:00:00')"))
        s.execute(text("INSERT INTO assets (id, class_id, ordinal, title, description, tags, "
                       "created) VALUES (1, 1, 1, 'old', '', '[]', '2026-12-01 00:00:00')"))
    db.migrate()
    with db.read() as s:
        assert s.execute(text("SELECT title, status, deleted FROM assets")).all() == [
            ("old", "active", None)]
    db.dispose()


def test_tag_title_and_description_rules_are_enforced_on_every_change(
        service: Service, admin: Caller) -> None:
    service.put_class(admin, "lab", "models", rules={
        "max_tags": 2, "tag_pattern": "[a-z]+", "max_title_length": 10,
        "max_description_length": 20})
    commit_files(service, admin, {"a": b"1"})
    with pytest.raises(ValidationFailed) as broken:
        service.update_asset(admin, "lab", "models", 1, tags=["a", "b", "c"], title="x" * 11,
                             description="y" * 21)
    assert broken.value.problems == [
        "max_tags: 3 tags, over 2", "max_title_length: 11 characters, over 10",
        "max_description_length: 21 characters, over 20"]
    with pytest.raises(ValidationFailed, match="tag_pattern: tag 'Vision2' does not match"):
        service.update_asset(admin, "lab", "models", 1, tags=["ok", "Vision2"])
    asset = service.get_asset(admin, "lab", "models", 1)
    assert (asset["tags"], asset["title"], asset["description"]) == ([], "", "")
    done = service.update_asset(admin, "lab", "models", 1, tags=["vision", "prod"],
                                title="x" * 10)
    assert (done["tags"], done["title"]) == (["prod", "vision"], "x" * 10)


@pytest.mark.parametrize(("rules", "why"), [
    ({"max_tags": -1}, "max_tags must be a non-negative integer"),
    ({"tag_pattern": "(a)\\1"}, "tag_pattern"),
    ({"max_title_length": "ten"}, "max_title_length must be a non-negative integer"),
])
def test_bad_asset_rules_are_refused(service: Service, admin: Caller, rules: dict[str, object],
                                     why: str) -> None:
    with pytest.raises(BadInput, match=why):
        service.put_class(admin, "lab", "models", rules=rules)


def test_visualisation_rules_are_checked_and_kept(service: Service, admin: Caller
                                                  ) -> None:
    rules = {"*.csv": "table", "plots/**/*.png": {"viewer": "image", "options": {"w": 200}}}
    assert service.put_class(admin, "lab", "models", visualisation=rules)["visualisation"] == \
        rules
    assert service.get_class(admin, "lab", "models")["visualisation"] == rules
    for bad, why in (([], "JSON object"), ({"*.csv": "spreadsheet"}, "'spreadsheet'"),
                     ({"*.csv": {"viewer": "table", "colour": 1}}, "only"),
                     ({"*.csv": {"viewer": "table", "options": 3}}, "only")):
        with pytest.raises(BadInput, match=why):
            service.put_class(admin, "lab", "models", visualisation=bad)  # type: ignore[arg-type]
