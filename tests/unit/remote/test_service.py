"""The service layer against a real database and a real file:// storage.

This module runs on SQLite; tests/integration/test_service_db.py runs the same tests on
PostgreSQL by overriding the ``db_url`` fixture.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, update

from ama.plumbing import pack
from ama.plumbing.hashing import hash_bytes
from ama.plumbing.objects import Author, Input, Manifest, Tree, TreeEntry
from ama_remote.db import Database
from ama_remote.errors import (
    BadInput,
    Conflict,
    Forbidden,
    NotFound,
    Unauthenticated,
    ValidationFailed,
)
from ama_remote.models import AuditEntry, Pack, Project, StoredObject, Version
from ama_remote.service import Caller, Service
from ama_remote.service.packs import pack_key
from ama_remote.storage import open_backend
from ama_remote.storage.base import object_key

T0 = datetime(2026, 11, 27, 16, 0, 0, tzinfo=timezone.utc)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


class Counter:
    """Deterministic token bytes: each call returns fresh, distinct bytes."""

    def __init__(self) -> None:
        self.n = 0

    def __call__(self, size: int) -> bytes:
        self.n += 1
        return self.n.to_bytes(size, "big")


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'ama.db'}"


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def service(db_url: str, tmp_path: Path, clock: Clock) -> Iterator[Service]:
    db = Database(db_url)
    db.migrate()
    svc = Service(db, clock=clock, token_bytes=Counter(), open_signup_domains=("example.org",))
    svc.create_project("lab", (tmp_path / "storage").as_uri())
    yield svc
    db.dispose()


def make_caller(service: Service, name: str, role: str | None, project: str = "lab") -> Caller:
    service.add_user(name, f"{name}@example.org")
    if role:
        service.grant(project, name, role)
    return service.authenticate(service.issue_token(name))


@pytest.fixture
def admin(service: Service) -> Caller:
    caller = make_caller(service, "ada", "admin")
    service.put_class(caller, "lab", "models")
    return caller


ADA = Author("Ada", "ada@example.org")


def build(files: dict[str, bytes | str | tuple[bytes, int]], metadata: dict[str, Any] | None = None,
          inputs: tuple[Input, ...] = (), message: str = "",
          author: Author = ADA) -> tuple[str, dict[str, bytes]]:
    """Return (manifest id, every object id -> bytes) for a version holding ``files``."""
    objects: dict[str, bytes] = {}

    def tree_of(entries: dict[str, Any]) -> tuple[str, int]:
        items = []
        for name, value in entries.items():
            if isinstance(value, dict):
                oid, size = tree_of(value)
                items.append(TreeEntry("tree", oid, size, name))
            elif isinstance(value, tuple):  # a proxy: (its descriptor's bytes, its size)
                data, size = value
                objects[hash_bytes(data)] = data
                items.append(TreeEntry("proxy", hash_bytes(data), size, name))
            elif isinstance(value, str):  # a symbolic link to this target
                data = value.encode()
                objects[hash_bytes(data)] = data
                items.append(TreeEntry("link", hash_bytes(data), len(data), name))
            else:
                oid = hash_bytes(value)
                objects[oid] = value
                items.append(TreeEntry("blob", oid, len(value), name))
        tree = Tree.of(items)
        data = tree.serialize()
        objects[hash_bytes(data)] = data
        return hash_bytes(data), tree.size

    nested: dict[str, Any] = {}
    for path, data in files.items():
        *dirs, leaf = path.split("/")
        node = nested
        for d in dirs:
            node = node.setdefault(d, {})
        node[leaf] = data
    root, _ = tree_of(nested)
    manifest = Manifest.create(root, author, T0, message=message, inputs=inputs,
                               metadata=metadata or {})
    data = manifest.serialize()
    objects[hash_bytes(data)] = data
    return hash_bytes(data), objects


def upload(service: Service, caller: Caller, objects: dict[str, bytes],
           project: str = "lab") -> None:
    for oid, data in objects.items():
        service.put_object(caller, project, oid, io.BytesIO(data), len(data))


def commit_files(service: Service, caller: Caller, files: dict[str, bytes],
                 asset: int | None = None, parent: str | None = None, key: str | None = None,
                 cls: str = "models", **kwargs: Any) -> dict[str, Any]:
    metadata = kwargs.pop("metadata", None)
    inputs = kwargs.pop("inputs", ())
    manifest, objects = build(files, metadata, inputs)
    upload(service, caller, objects)
    return service.commit(caller, "lab", cls, asset, parent, manifest,
                          key or f"key-{cls}-{asset}-{manifest}", **kwargs)


# -- ordinals, versions, compare-and-swap ------------------------------------------------------

def test_first_uploads_get_ordinals_one_two_three_per_class(service: Service, admin: Caller
                                                           ) -> None:
    service.put_class(admin, "lab", "datasets")
    got = [commit_files(service, admin, {"a.txt": f"{i}".encode()}) for i in range(3)]
    assert [(r["name"], r["version"], r["parent"]) for r in got] == [
        ("models/1", "0.0.0", None), ("models/2", "0.0.0", None), ("models/3", "0.0.0", None)]
    other = commit_files(service, admin, {"a.txt": b"x"}, cls="datasets")
    assert other["name"] == "datasets/1"
    assert [a["ordinal"] for a in service.list_assets(admin, "lab", "models")["items"]] == [1, 2, 3]


def test_versions_bump_patch_then_minor_and_major_on_request(service: Service, admin: Caller
                                                            ) -> None:
    first = commit_files(service, admin, {"a": b"1"})
    second = commit_files(service, admin, {"a": b"2"}, asset=1, parent=first["manifest"])
    third = commit_files(service, admin, {"a": b"3"}, asset=1, parent=second["manifest"],
                         bump="minor")
    fourth = commit_files(service, admin, {"a": b"4"}, asset=1, parent=third["manifest"],
                          bump="major")
    assert [v["version"] for v in (first, second, third, fourth)] == [
        "0.0.0", "0.0.1", "0.1.0", "1.0.0"]
    assert second["parent"] == first["manifest"]
    listed = service.list_versions(admin, "lab", "models", 1)
    assert [v["version"] for v in listed] == ["0.0.0", "0.0.1", "0.1.0", "1.0.0"]
    assert service.get_asset(admin, "lab", "models", "1")["latest"]["version"] == "1.0.0"


def test_a_stale_parent_is_a_conflict_naming_the_latest(service: Service, admin: Caller) -> None:
    first = commit_files(service, admin, {"a": b"1"})
    second = commit_files(service, admin, {"a": b"2"}, asset=1, parent=first["manifest"])
    with pytest.raises(Conflict) as stale:
        commit_files(service, admin, {"a": b"3"}, asset=1, parent=first["manifest"])
    assert stale.value.latest == second["manifest"]
    assert "0.0.1" in stale.value.message and second["manifest"] in stale.value.message
    with pytest.raises(Conflict) as missing_parent:
        commit_files(service, admin, {"a": b"4"}, asset=1, parent=None)
    assert missing_parent.value.latest == second["manifest"]
    assert len(service.list_versions(admin, "lab", "models", 1)) == 2


def test_committing_to_a_missing_asset_or_class_is_not_found(service: Service, admin: Caller
                                                            ) -> None:
    with pytest.raises(NotFound, match="models/7"):
        commit_files(service, admin, {"a": b"1"}, asset=7, parent="0" * 64)
    with pytest.raises(NotFound, match="class 'nope'"):
        commit_files(service, admin, {"a": b"1"}, cls="nope")


def test_missing_objects_are_listed_and_nothing_is_recorded(service: Service, admin: Caller
                                                           ) -> None:
    manifest, objects = build({"data/big.bin": b"big", "README.md": b"hi"})
    blob = hash_bytes(b"big")
    upload(service, admin, {k: v for k, v in objects.items() if k != blob})
    with pytest.raises(ValidationFailed) as failed:
        service.commit(admin, "lab", "models", None, None, manifest, "k1")
    assert failed.value.problems == [f"missing blob {blob} (data/big.bin)"]
    with pytest.raises(ValidationFailed) as no_manifest:
        service.commit(admin, "lab", "models", None, None, "e" * 64, "k2")
    assert no_manifest.value.problems == [f"missing manifest {'e' * 64}"]
    # The failed commits used no ordinal: the next new asset is still 1.
    upload(service, admin, {blob: b"big"})
    assert service.commit(admin, "lab", "models", None, None, manifest, "k1")["ordinal"] == 1


def test_a_blob_held_with_another_size_or_not_verified_is_named_at_each_path(
        service: Service, admin: Caller) -> None:
    """The commit's check of the blobs asks the database only for those not held verified
    with the size the tree gives: a blob of 3 bytes named at one path with 3 and at another
    with 5 is wrong at the second only (and at a third with a size no database integer
    holds), and a blob whose upload in parts was started but never completed is
    missing."""
    good, unsent = hash_bytes(b"big"), hash_bytes(b"never sent")
    tree = Tree.of([TreeEntry("blob", good, 3, "a"), TreeEntry("blob", good, 5, "b"),
                    TreeEntry("blob", unsent, 10, "c"),
                    TreeEntry("blob", good, 1 << 63, "d")]).serialize()
    manifest = Manifest.create(hash_bytes(tree), ADA, T0).serialize()
    upload(service, admin, {good: b"big", hash_bytes(tree): tree,
                            hash_bytes(manifest): manifest})
    service.batch(admin, "lab", "upload", [{"id": unsent, "size": 10}])
    service.start_multipart(admin, "lab", unsent, 10, 5 << 20)  # a row, not verified
    with pytest.raises(ValidationFailed) as failed:
        service.commit(admin, "lab", "models", None, None, hash_bytes(manifest), "k1")
    assert failed.value.problems == [f"blob {good} (b) is 3 bytes, the tree says 5",
                                     f"missing blob {unsent} (c)",
                                     f"blob {good} (d) is 3 bytes, the tree says {1 << 63}"]


RULES = [
    ({"schema": {"type": "object", "required": ["accuracy"]}}, {"a": b"1"}, {},
     "schema: metadata (root): 'accuracy' is a required property"),
    ({"schema": {"type": "object", "properties": {"accuracy": {"type": "number"}}}},
     {"a": b"1"}, {"accuracy": "high"}, "schema: metadata accuracy: 'high' is not of type"),
    ({"rules": {"required_files": ["*.onnx"]}}, {"a.txt": b"1"}, {},
     "required_files: no file matches '*.onnx'"),
    ({"rules": {"forbidden_files": ["*.tmp"]}}, {"x/y.tmp": b"1"}, {},
     "forbidden_files: x/y.tmp matches '*.tmp'"),
    ({"rules": {"max_total_size": 3}}, {"a": b"12", "b": b"34"}, {},
     "max_total_size: the files total 4 bytes, over 3"),
    ({"rules": {"max_file_size": 2}}, {"a": b"12", "b": b"345"}, {},
     "max_file_size: b is 3 bytes, over 2"),
    ({"rules": {"max_file_count": 1}}, {"a": b"1", "b": b"2"}, {},
     "max_file_count: 2 files, over 1"),
]


@pytest.mark.parametrize(("spec", "files", "metadata", "problem"), RULES)
def test_each_class_rule_is_checked_and_named(service: Service, admin: Caller,
                                              spec: dict[str, Any], files: dict[str, bytes],
                                              metadata: dict[str, Any], problem: str) -> None:
    service.put_class(admin, "lab", "strict", **spec)
    with pytest.raises(ValidationFailed) as failed:
        commit_files(service, admin, files, cls="strict", metadata=metadata)
    assert len(failed.value.problems) == 1
    assert failed.value.problems[0].startswith(problem)
    assert service.list_assets(admin, "lab", "strict")["items"] == []


def test_a_version_holding_a_path_through_ama_is_refused_naming_it(service: Service,
                                                                  admin: Caller) -> None:
    manifest, objects = build({".ama/HEAD": b"class: x\n", "sub/.AMA/index": b"i",
                               "ok.txt": b"fine"})
    upload(service, admin, objects)
    with pytest.raises(ValidationFailed) as refused:
        service.commit(admin, "lab", "models", None, None, manifest, "k")
    assert [p.split(":")[0] for p in refused.value.problems] == [".ama/HEAD", "sub/.AMA/index"]
    assert "'.ama/HEAD'" in refused.value.message
    assert service.list_assets(admin, "lab", "models")["items"] == []


def test_a_version_holding_links_inside_it_is_recorded(service: Service,
                                                       admin: Caller) -> None:
    manifest, objects = build({"zoneinfo/Europe/Paris": b"CET\n",
                               "zoneinfo/Europe/Monaco": "Paris", "posix": "zoneinfo",
                               "zoneinfo/Dangling": "../gone"})
    upload(service, admin, objects)
    done = service.commit(admin, "lab", "models", None, None, manifest, "k")
    assert done["version"] == "0.0.0"


@pytest.mark.parametrize("target", ["/etc/passwd", "../../outside", "a/../../x",
                                    ".ama/index"])
def test_a_version_holding_a_link_leaving_it_is_refused_naming_it(service: Service,
                                                                  admin: Caller,
                                                                  target: str) -> None:
    manifest, objects = build({"d/escape": target, "d/fine": "../ok.txt",
                               "ok.txt": b"fine"})
    upload(service, admin, objects)
    with pytest.raises(ValidationFailed) as refused:
        service.commit(admin, "lab", "models", None, None, manifest, "k")
    assert [p.split(":")[0] for p in refused.value.problems] == ["d/escape"]
    assert "'d/escape'" in refused.value.message
    assert service.list_assets(admin, "lab", "models")["items"] == []


def _descriptor(url: str, size: int = 7, content: bytes = b"content") -> bytes:
    return json.dumps({"etag": '"e1"', "format": "ama-proxy/1", "id": hash_bytes(content),
                       "size": size, "url": url, "version": ""},
                      sort_keys=True, separators=(",", ":")).encode()


def test_a_version_holding_proxies_is_recorded_without_their_bytes(service: Service,
                                                                   admin: Caller) -> None:
    manifest, objects = build({
        "data/a.bin": (_descriptor("s3://bucket/a.bin"), 7),
        "data/b.bin": (_descriptor("https://example.org/b.bin"), 7),
        "ok.txt": b"fine"})
    upload(service, admin, objects)
    done = service.commit(admin, "lab", "models", None, None, manifest, "k")
    assert done["version"] == "0.0.0"
    # Only the descriptors were stored: the content's id is no object of the project.
    with service.db.transaction() as s:
        stored = set(s.scalars(select(StoredObject.oid)))
    assert hash_bytes(b"content") not in stored


@pytest.mark.parametrize("descriptor, entry_size, said", [
    (_descriptor("file:///etc/shadow"), 7, "scheme 'file'"),
    (_descriptor("gopher://127.0.0.1:70/x"), 7, "scheme 'gopher'"),
    (_descriptor("https://user:secret@example.org/x"), 7, "holds credentials"),
    (_descriptor("s3://bucket"), 7, "is not s3://BUCKET/KEY"),
    (_descriptor("s3://bucket/k", size=6 * 2**40), 6 * 2**40, "over the"),
    (_descriptor("s3://bucket/k", size=8), 7, "says 8 bytes, the tree 7"),
    (_descriptor("s3://bucket/k").replace(b",", b", "), 7, "canonical"),
    (b"not json", 7, "not a proxy descriptor"),
])
def test_a_version_holding_a_hostile_proxy_is_refused_naming_it(
        service: Service, admin: Caller, descriptor: bytes, entry_size: int,
        said: str) -> None:
    manifest, objects = build({"d/evil.bin": (descriptor, entry_size),
                               "d/fine.bin": (_descriptor("gs://bucket/fine.bin"), 7)})
    upload(service, admin, objects)
    with pytest.raises(ValidationFailed) as refused:
        service.commit(admin, "lab", "models", None, None, manifest, "k")
    assert [p.split(":")[0] for p in refused.value.problems] == ["d/evil.bin"]
    assert said in refused.value.problems[0]
    assert "'d/evil.bin'" in refused.value.message
    assert service.list_assets(admin, "lab", "models")["items"] == []


def test_fsck_lists_paths_no_version_may_hold_that_an_older_server_recorded(
        service: Service, admin: Caller) -> None:
    first = commit_files(service, admin, {"ok.txt": b"fine"})
    manifest, objects = build({".ama/HEAD": b"class: x\n", "ok.txt": b"fine"})
    upload(service, admin, objects)
    with service.db.transaction() as s:  # as a server without the rule recorded it
        old = s.scalar(select(Version).where(Version.manifest_id == first["manifest"]))
        s.add(Version(asset_id=old.asset_id, major=0, minor=0, patch=1, manifest_id=manifest,
                      tree_id=Manifest.deserialize(objects[manifest]).tree,
                      parent_id=old.id, author_id=old.author_id,
                      created=T0.replace(tzinfo=None)))
    assert service.fsck() == [{"project": "lab", "object": ".ama/HEAD",
                               "problem": "unsafe-path", "versions": ["models/1/0.0.1"]}]


def test_a_version_that_keeps_every_rule_is_recorded(service: Service, admin: Caller) -> None:
    service.put_class(admin, "lab", "strict", schema={"type": "object",
                                                      "required": ["accuracy"]},
                      rules={"required_files": ["model.onnx"], "forbidden_files": ["*.tmp"],
                             "max_total_size": 10, "max_file_size": 5, "max_file_count": 2})
    got = commit_files(service, admin, {"model.onnx": b"12345", "README": b"hi"}, cls="strict",
                       metadata={"accuracy": 0.9})
    assert got["name"] == "strict/1"


def test_bad_class_definitions_are_refused(service: Service, admin: Caller) -> None:
    with pytest.raises(BadInput, match="JSON Schema"):
        service.put_class(admin, "lab", "c", schema={"type": 12})
    with pytest.raises(BadInput, match="unknown class rule"):
        service.put_class(admin, "lab", "c", rules={"max_size": 1})
    with pytest.raises(BadInput, match="class name"):
        service.put_class(admin, "lab", "Bad Name")


# -- idempotency -----------------------------------------------------------------------------

def test_the_same_idempotency_key_returns_the_first_result(service: Service, admin: Caller
                                                          ) -> None:
    manifest, objects = build({"a": b"1"})
    upload(service, admin, objects)
    first = service.commit(admin, "lab", "models", None, None, manifest, "once")
    again = service.commit(admin, "lab", "models", None, None, manifest, "once")
    assert again == first
    assert [a["ordinal"] for a in service.list_assets(admin, "lab", "models")["items"]] == [1]
    assert len(service.list_versions(admin, "lab", "models", 1)) == 1
    other, objects = build({"a": b"2"})
    upload(service, admin, objects)
    with pytest.raises(BadInput, match="already used"):
        service.commit(admin, "lab", "models", None, None, other, "once")


# -- roles, projects, users and tokens -------------------------------------------------------

def test_a_reader_reads_but_cannot_write(service: Service, admin: Caller) -> None:
    commit_files(service, admin, {"a": b"1"})
    reader = make_caller(service, "rita", "reader")
    assert service.get_asset(reader, "lab", "models", 1)["ordinal"] == 1
    manifest, objects = build({"a": b"2"})
    with pytest.raises(Forbidden, match="rita is a reader of project 'lab'; this needs writer"):
        service.commit(reader, "lab", "models", None, None, manifest, "k")
    oid, data = next(iter(objects.items()))
    with pytest.raises(Forbidden):
        service.put_object(reader, "lab", oid, io.BytesIO(data), len(data))
    with pytest.raises(Forbidden):
        service.batch(reader, "lab", "upload", [{"id": oid, "size": len(data)}])
    with pytest.raises(Forbidden):
        service.put_alias(reader, "lab", "models", "best", 1)
    writer = make_caller(service, "will", "writer")
    service.put_alias(writer, "lab", "models", "best", 1)
    with pytest.raises(Forbidden, match="needs admin"):
        service.put_class(writer, "lab", "other")


def test_a_non_member_sees_not_found_exactly_like_a_missing_project(service: Service,
                                                                    admin: Caller) -> None:
    stranger = make_caller(service, "sam", None)
    with pytest.raises(NotFound) as hidden:
        service.get_project(stranger, "lab")
    with pytest.raises(NotFound) as missing:
        service.get_project(stranger, "nope")
    assert hidden.value.message == missing.value.message.replace("nope", "lab")
    assert hidden.value.hint == missing.value.hint
    with pytest.raises(NotFound):
        service.list_classes(stranger, "lab")
    assert service.list_projects(stranger) == []
    assert service.me(stranger)["projects"] == []
    assert service.me(admin)["projects"] == [{"name": "lab", "role": "admin"}]


def test_tokens_expire_are_revocable_and_need_an_active_user(service: Service, clock: Clock
                                                           ) -> None:
    service.add_user("tom", "tom@example.org")
    token = service.issue_token("tom", ttl=60)
    assert service.authenticate(token).username == "tom"
    with pytest.raises(Unauthenticated, match="no token"):
        service.authenticate(None)
    with pytest.raises(Unauthenticated, match="not valid"):
        service.authenticate(token[:-2] + ("AA" if not token.endswith("AA") else "BB"))
    service.disable_user("tom")
    with pytest.raises(Unauthenticated, match="'tom' is disabled"):
        service.authenticate(token)
    service.activate_user("tom")
    assert service.authenticate(token).username == "tom"
    clock.now = T0 + timedelta(seconds=61)
    with pytest.raises(Unauthenticated, match="expired"):
        service.authenticate(token)
    fresh = service.issue_token("tom")
    service.revoke_token(fresh)
    with pytest.raises(Unauthenticated, match="revoked"):
        service.authenticate(fresh)


def test_a_rotated_token_lives_as_long_as_the_one_it_replaces(service: Service,
                                                              clock: Clock) -> None:
    """A dashboard session (12 hours) rotated through the API stays a token of 12 hours:
    a stolen session cookie is not made a token of a month."""
    service.add_user("tom", "tom@example.org")
    session = service.issue_token("tom", ttl=12 * 3600)
    rotated, username = service.rotate_token(session)
    assert username == "tom" and service.authenticate(rotated).username == "tom"
    with pytest.raises(Unauthenticated, match="revoked"):
        service.authenticate(session)
    clock.now = T0 + timedelta(hours=12, seconds=1)
    with pytest.raises(Unauthenticated, match="expired"):
        service.authenticate(rotated)
    # A token of the usual lifetime rotates into one of the usual lifetime.
    clock.now = T0
    usual = service.issue_token("tom")
    renewed, _ = service.rotate_token(usual)
    clock.now = T0 + timedelta(seconds=service.token_ttl - 1)
    assert service.authenticate(renewed).username == "tom"


def test_tokens_are_stored_only_as_hashes(service: Service, db_url: str) -> None:
    service.add_user("tom", "tom@example.org")
    token = service.issue_token("tom")
    with service.db.engine.connect() as conn:
        dump = repr(conn.exec_driver_sql("SELECT * FROM tokens").all())
    assert token not in dump and token[4:] not in dump


def test_signup_is_active_only_for_open_domains(service: Service) -> None:
    assert service.signup("amy", "amy@example.org")["active"] is True
    assert service.signup("bob", "bob@elsewhere.com")["active"] is False
    with pytest.raises(Conflict, match="'amy' already exists"):
        service.signup("amy", "amy@example.org")
    assert [u["username"] for u in service.list_users()] == ["amy", "bob"]


# -- aliases, titles, tags and their audit ---------------------------------------------------

def test_alias_with_an_expected_target_is_a_compare_and_swap(service: Service,
                                                             admin: Caller) -> None:
    commit_files(service, admin, {"a": b"1"})
    commit_files(service, admin, {"a": b"2"})
    service.put_alias(admin, "lab", "models", "prod", 1, expected=None)
    with pytest.raises(Conflict, match="models/prod exists already: it points at models/1"):
        service.put_alias(admin, "lab", "models", "prod", 2, expected=None)
    service.put_alias(admin, "lab", "models", "prod", 2, expected=1)
    with pytest.raises(Conflict, match="points at models/2, not models/1"):
        service.put_alias(admin, "lab", "models", "prod", 1, expected=1)
    assert service.get_asset(admin, "lab", "models", "prod")["ordinal"] == 2


def test_alias_title_and_tag_changes_are_audited(service: Service, admin: Caller,
                                                 clock: Clock) -> None:
    commit_files(service, admin, {"a": b"1"})
    commit_files(service, admin, {"a": b"2"})
    service.update_asset(admin, "lab", "models", 1, title="ResNet", tags=["cv", "prod"])
    service.put_alias(admin, "lab", "models", "prod-resnet", 1)
    clock.now = T0 + timedelta(hours=1)
    service.put_alias(admin, "lab", "models", "prod-resnet", 2)
    assert service.get_asset(admin, "lab", "models", "prod-resnet")["ordinal"] == 2
    service.delete_alias(admin, "lab", "models", "prod-resnet")
    with service.db.read() as s:
        rows = [(r.field, r.target, r.old, r.new, r.at) for r in
                s.scalars(select(AuditEntry).where(AuditEntry.class_id.is_not(None))
                          .order_by(AuditEntry.id))]
    later = (T0 + timedelta(hours=1)).replace(tzinfo=None)
    assert rows == [
        ("title", "models/1", "", "ResNet", T0.replace(tzinfo=None)),
        ("tags", "models/1", [], ["cv", "prod"], T0.replace(tzinfo=None)),
        ("alias", "models/prod-resnet", None, "models/1", T0.replace(tzinfo=None)),
        ("alias", "models/prod-resnet", "models/1", "models/2", later),
        ("alias", "models/prod-resnet", "models/2", None, later),
    ]
    with pytest.raises(NotFound, match="alias models/prod-resnet"):
        service.delete_alias(admin, "lab", "models", "prod-resnet")


@pytest.mark.parametrize("alias", ["123", "temp_abc", "Big", "-x", "a/b", ""])
def test_aliases_follow_the_name_rules(service: Service, admin: Caller, alias: str) -> None:
    commit_files(service, admin, {"a": b"1"})
    with pytest.raises(BadInput, match="invalid alias"):
        service.put_alias(admin, "lab", "models", alias, 1)


# -- objects ----------------------------------------------------------------------------------

def test_put_object_verifies_and_keeps_tree_and_manifest_bytes(service: Service, admin: Caller,
                                                               tmp_path: Path) -> None:
    manifest, objects = build({"a": b"hello"})
    upload(service, admin, objects)
    with service.db.read() as s:
        rows = {r.oid: r for r in s.scalars(select(StoredObject))}
    assert all(r.verified for r in rows.values())
    assert rows[manifest].kind == "manifest" and rows[manifest].data == objects[manifest]
    assert rows[hash_bytes(b"hello")].data is None
    stream, size = service.open_object(admin, "lab", hash_bytes(b"hello"))
    with stream:
        assert (stream.read(), size) == (b"hello", 5)


def test_put_object_deletes_bytes_that_do_not_match(service: Service, admin: Caller,
                                                    tmp_path: Path) -> None:
    storage = open_backend((tmp_path / "storage").as_uri())
    oid = hash_bytes(b"right")
    with pytest.raises(ValidationFailed, match="does not match") as wrong:
        service.put_object(admin, "lab", oid, io.BytesIO(b"wrong"), 5)
    assert wrong.value.problems == [f"hash mismatch: {oid}"]
    assert storage.stat(object_key(oid)) is None
    with pytest.raises(ValidationFailed) as short:
        service.put_object(admin, "lab", oid, io.BytesIO(b"righ"), 5)
    assert short.value.problems == [f"size mismatch: {oid}"]
    assert storage.stat(object_key(oid)) is None
    with pytest.raises(NotFound):
        service.open_object(admin, "lab", oid)
    assert service.put_object(admin, "lab", oid, io.BytesIO(b"right"), 5)["verified"]


def test_batch_answers_present_missing_and_invalid_ids(service: Service, admin: Caller) -> None:
    have = hash_bytes(b"have")
    service.put_object(admin, "lab", have, io.BytesIO(b"have"), 4)
    need = hash_bytes(b"need")
    up = service.batch(admin, "lab", "upload", [
        {"id": have, "size": 4}, {"id": need, "size": 4}, {"id": "nope", "size": 1}])
    assert up["objects"][0] == {"id": have, "size": 4}
    assert up["objects"][1]["actions"]["upload"]["href"] == f"/v1/projects/lab/objects/{need}"
    assert up["objects"][1]["actions"]["upload"]["method"] == "PUT"
    assert up["objects"][2]["error"]["code"] == 400
    down = service.batch(admin, "lab", "download", [{"id": have}, {"id": need}])
    assert down["objects"][0]["actions"]["download"]["method"] == "GET"
    assert down["objects"][1]["error"]["code"] == 404


def test_a_compact_batch_answer_says_the_same_without_an_action_per_object(
        service: Service, admin: Caller) -> None:
    held = [hash_bytes(b"held %d" % i) for i in range(3)]
    for i, oid in enumerate(held):
        data = b"held %d" % i
        service.put_object(admin, "lab", oid, io.BytesIO(data), len(data))
    new = [hash_bytes(b"new %d" % i) for i in range(3)]
    asked = [{"id": oid, "size": 7} for oid in [*new, *held]] + [{"id": "nope", "size": 1}]
    up = service.batch(admin, "lab", "upload", asked, href_prefix="http://h", compact=True)
    assert up == {"compact": 1, "present": {oid: 6 for oid in held},
                  "transfer": {"href": "http://h/v1/projects/lab/objects/{id}",
                               "method": "PUT", "headers": {}, "expires": 3600,
                               "objects": {oid: 7 for oid in new}},
                  "objects": [{"id": "nope", "error": {
                      "code": 400, "message": "'nope' is not an object id"}}]}
    down = service.batch(admin, "lab", "download", asked[:-1], compact=True)
    assert down["present"] == {}
    assert down["transfer"]["objects"] == {oid: 6 for oid in held}
    assert down["transfer"]["method"] == "GET"
    assert [(o["id"], o["error"]["code"]) for o in down["objects"]] == [(n, 404) for n in new]


def test_batch_negotiates_a_hundred_thousand_ids_in_one_call(service: Service, admin: Caller
                                                            ) -> None:
    present = [hash_bytes(b"%d" % i) for i in range(5)]
    for i, oid in enumerate(present):
        data = b"%d" % i
        service.put_object(admin, "lab", oid, io.BytesIO(data), len(data))
    ids = present + [hash_bytes(b"x%d" % i) for i in range(100_000 - len(present))]
    answer = service.batch(admin, "lab", "upload", [{"id": i, "size": 1} for i in ids])
    assert len(answer["objects"]) == 100_000
    assert [o["id"] for o in answer["objects"] if "actions" not in o] == present


def negotiated(service: Service, project: str, ids: dict[str, int]) -> None:
    """Leave the rows an upload negotiation through presigned URLs leaves: not verified."""
    with service.db.transaction() as s:
        project_id = s.scalar(select(Project.id).where(Project.name == project))
        for oid, size in ids.items():
            s.add(StoredObject(project_id=project_id, oid=oid, size=size, verified=False,
                               created=T0.replace(tzinfo=None)))


def test_verify_objects_hashes_what_reached_storage(service: Service, admin: Caller,
                                                    tmp_path: Path) -> None:
    storage = open_backend((tmp_path / "storage").as_uri())
    good, bad = hash_bytes(b"good"), hash_bytes(b"bad")
    storage.put(object_key(good), io.BytesIO(b"good"), 4)
    storage.put(object_key(bad), io.BytesIO(b"evil"), 4)
    negotiated(service, "lab", {good: 4, bad: 3, hash_bytes(b"absent"): 6})
    answer = service.verify_objects(admin, "lab", [good, bad, hash_bytes(b"absent")])
    assert answer["objects"][0] == {"id": good, "size": 4, "verified": True}
    assert answer["objects"][1]["error"]["code"] == 422
    assert answer["objects"][2]["error"]["code"] == 404
    assert storage.stat(object_key(bad)) is None
    assert service.open_object(admin, "lab", good)[1] == 4


def test_verify_reads_only_ids_the_project_negotiated(service: Service, admin: Caller,
                                                     tmp_path: Path) -> None:
    storage = open_backend((tmp_path / "storage").as_uri())
    stray = hash_bytes(b"put there by someone else")
    storage.put(object_key(stray), io.BytesIO(b"put there by someone else"), 25)
    absent = hash_bytes(b"absent")
    answer = service.verify_objects(admin, "lab", [stray, absent])["objects"]
    # The same answer for bytes in storage and for no bytes at all: no existence oracle.
    assert answer == [{"id": oid, "error": {"code": 404, "message":
                                            f"object {oid} was not uploaded"}}
                      for oid in (stray, absent)]
    with pytest.raises(NotFound):
        service.open_object(admin, "lab", stray)


def legacy_project(service: Service, name: str, storage_url: str) -> None:
    """Add a project row directly, as a server that let projects share a storage did."""
    with service.db.transaction() as s:
        s.add(Project(name=name, storage_url=storage_url, created=T0.replace(tzinfo=None)))


def test_a_project_sharing_a_storage_cannot_claim_the_others_objects(
        service: Service, admin: Caller, tmp_path: Path) -> None:
    legacy_project(service, "thieves", (tmp_path / "storage").as_uri() + "/")
    thief = make_caller(service, "mallory", "writer", project="thieves")
    service.put_class(make_caller(service, "tom", "admin", project="thieves"),
                      "thieves", "models")
    manifest, objects = build({"secret.bin": b"the lab's weights"})
    upload(service, admin, objects)
    absent = hash_bytes(b"never uploaded anywhere")
    answers = service.verify_objects(thief, "thieves", [*objects, absent])["objects"]
    assert answers == [{"id": oid, "error": {"code": 404, "message":
                                             f"object {oid} was not uploaded"}}
                       for oid in [*objects, absent]]
    # Negotiating first does not help either: the bytes may be the other project's.
    negotiated(service, "thieves", {oid: len(data) for oid, data in objects.items()})
    answers = service.verify_objects(thief, "thieves", list(objects))["objects"]
    assert all(a["error"]["code"] == 404 for a in answers)
    with pytest.raises(ValidationFailed):
        service.commit(thief, "thieves", "models", None, None, manifest, "steal")
    assert service.batch(thief, "thieves", "download", [
        {"id": oid, "size": 0} for oid in objects])["objects"][0]["error"]["code"] == 404
    problems = [(p["project"], p["problem"], p["versions"]) for p in service.fsck()]
    assert ("lab", "shared-storage", ["thieves"]) in problems
    assert ("thieves", "shared-storage", ["lab"]) in problems
    # Bytes actually sent to the project are still taken, and hashed on the way in.
    blob = hash_bytes(b"the lab's weights")
    assert service.put_object(thief, "thieves", blob, io.BytesIO(b"the lab's weights"),
                              17)["verified"]


@pytest.mark.parametrize("url", [
    "{root}/storage", "{root}/storage/", "{root}/./storage", "{root}/storage/inside",
    "{root}", "{link}", "{link}/inside"])
def test_a_project_may_not_share_nest_in_or_hold_another_projects_storage(
        service: Service, tmp_path: Path, url: str) -> None:
    (tmp_path / "link").symlink_to(tmp_path / "storage", target_is_directory=True)
    storage_url = "file://" + url.format(root=tmp_path, link=tmp_path / "link")
    with pytest.raises(Conflict) as refused:
        service.create_project("other", storage_url)
    assert "'lab'" in refused.value.message and "own" in refused.value.message
    assert [p["name"] for p in service.all_projects()] == ["lab"]


def test_cloud_storages_are_compared_by_bucket_and_prefix(service: Service) -> None:
    service.create_project("a", "s3://bucket/team/a")
    service.create_project("b", "s3://bucket/team/ab")
    service.create_project("c", "gs://bucket/team/a")
    service.create_project("d", "s3://other/team/a")
    for taken in ("s3://bucket/team/a/", "s3://BUCKET//team/a", "s3://bucket/team",
                  "s3://bucket", "s3://bucket/team/a/x", "gs://bucket/team/a/y"):
        with pytest.raises(Conflict):
            service.create_project("e", taken)


def test_fsck_reports_objects_changed_or_lost_in_storage(service: Service, admin: Caller,
                                                         tmp_path: Path) -> None:
    commit_files(service, admin, {"a": b"one", "b": b"two"})
    assert service.fsck() == []
    storage = open_backend((tmp_path / "storage").as_uri())
    storage.delete(object_key(hash_bytes(b"one")))
    problems = service.fsck("lab")
    assert [(p["object"], p["problem"], p["versions"]) for p in problems] == [
        (hash_bytes(b"one"), "missing", ["models/1/0.0.0"])]


def test_a_read_that_finds_changed_bytes_fails_before_the_end_and_fsck_can_restore_it(
        service: Service, admin: Caller, tmp_path: Path) -> None:
    from ama_remote.errors import ObjectCorrupt

    big, small = bytes(range(256)) * (12 << 10), b"small"
    commit_files(service, admin, {"big": big, "small": small})
    paths = {data: tmp_path / "storage" / object_key(hash_bytes(data)) for data in (big, small)}
    for data, path in paths.items():
        path.chmod(0o644)
        path.write_bytes(bytes([data[0] ^ 1]) + data[1:])
    stream, size = service.open_object(admin, "lab", hash_bytes(big))
    got = bytearray()
    with pytest.raises(ObjectCorrupt):
        while chunk := stream.read(1 << 20):
            got += chunk
    assert size == len(big) and len(got) < size
    with pytest.raises(ObjectCorrupt):
        service.open_object(admin, "lab", hash_bytes(small))
    with pytest.raises(NotFound):  # no longer offered
        service.open_object(admin, "lab", hash_bytes(big))
    assert {(p["object"], p["problem"]) for p in service.fsck()} == {
        (hash_bytes(big), "corrupt"), (hash_bytes(small), "corrupt")}

    for data, path in paths.items():  # restored from a backup, say
        path.write_bytes(data)
    assert {(p["object"], p["problem"], p["repaired"]) for p in service.fsck()} == {
        (hash_bytes(big), "unverified", False), (hash_bytes(small), "unverified", False)}
    assert len(service.fsck(repair=True)) == 2
    assert service.fsck() == []
    assert service.open_object(admin, "lab", hash_bytes(small))[0].read() == small


def test_fsck_lists_leftovers_of_uploads_older_than_the_grace_and_repair_removes_them(
        service: Service, clock: Clock, tmp_path: Path) -> None:
    import os

    from ama_remote.storage.local import _TEMP_PREFIX

    folder = tmp_path / "storage" / "objects" / "ab"
    folder.mkdir(parents=True)
    temp = folder / f"{_TEMP_PREFIX}abcdef012345-0011223344556677"
    temp.write_bytes(b"x" * 100)
    written = T0.timestamp()
    os.utime(temp, (written, written))
    clock.now = T0 + timedelta(minutes=30)
    assert service.fsck() == []  # perhaps still being written
    assert service.fsck(grace=timedelta(minutes=10)) == [{
        "project": "lab", "object": "objects/ab/" + temp.name, "problem": "leftover",
        "versions": [], "repaired": False}]
    assert temp.exists()
    clock.now = T0 + timedelta(days=2)
    assert [p["repaired"] for p in service.fsck(repair=True)] == [True]
    assert not temp.exists()
    assert service.fsck() == []


@pytest.mark.parametrize("database", ["sqlite", "postgres"])
def test_a_pack_announced_and_never_checked_is_a_leftover_fsck_repair_removes(
        database: str, request: pytest.FixtureRequest, clock: Clock, tmp_path: Path) -> None:
    """A client cut off between announcing (and perhaps storing) a pack and having it
    checked leaves a row and maybe the bytes that gc never frees; fsck names them once the
    grace is over, and --repair removes them, so that a check of it that comes late
    records nothing."""
    db = Database(request.getfixturevalue("postgres_url") if database == "postgres"
                  else f"sqlite:///{tmp_path / 'ama.db'}")
    db.migrate()
    service = Service(db, clock=clock, token_bytes=Counter())
    service.create_project("lab", (tmp_path / "storage").as_uri())
    admin = make_caller(service, "ada", "admin")
    _, objects = build({"a": b"cut off\n" * 10, "b": b"before its check\n"})
    folder = tmp_path / "incoming"
    folder.mkdir()
    for oid, data in objects.items():
        (folder / oid).write_bytes(data)
    members = [(oid, len(d)) for oid, d in objects.items()]
    name, path, size = pack.write_file(members, lambda oid: str(folder / oid), str(folder))
    storage = service._storage((tmp_path / "storage").as_uri())
    key = pack_key(name)

    def send() -> None:  # announced and stored (a presigned PUT), never checked
        service.announce_pack(admin, "lab", name, size)
        with open(path, "rb") as f:
            storage.put(key, f, size)

    send()
    leftover = {"project": "lab", "object": key, "problem": "leftover", "versions": []}
    clock.now = T0 + timedelta(hours=23)
    assert service.fsck() == []  # perhaps an upload still running
    # The same upload run again a day later is young again.
    service.announce_pack(admin, "lab", name, size)
    clock.now = T0 + timedelta(hours=46)
    assert service.fsck() == []
    clock.now = T0 + timedelta(days=3)
    assert service.fsck() == [{**leftover, "repaired": False}]
    assert storage.stat(key) == size
    assert service.fsck(repair=True) == [{**leftover, "repaired": True}]
    assert storage.stat(key) is None and service.fsck() == []
    # Its check coming after the repair finds nothing to check, and records nothing.
    with pytest.raises(NotFound):
        service.verify_pack(admin, "lab", name)
    assert all("actions" in item for item in service.batch(
        admin, "lab", "upload", [{"id": oid, "size": n} for oid, n in members])["objects"])
    # A check that recorded the pack first keeps it: it is no leftover any more.
    send()
    service.verify_pack(admin, "lab", name)
    clock.now = T0 + timedelta(days=9)
    assert service.fsck(repair=True) == [] and storage.stat(key) == size
    # Checked once, then sent again (a member found bad meanwhile) by an upload cut off:
    # its other objects still lie in it, so it is no leftover and nothing is removed, but
    # until checked again none of them can be read through the server; repair checks it.
    with db.transaction() as s:
        s.execute(update(StoredObject).where(StoredObject.oid == members[0][0])
                  .values(verified=False))
    assert "actions" in service.announce_pack(admin, "lab", name, size)
    with db.read() as s:
        assert s.scalars(select(Pack.verified)).all() == [False]  # to be checked again
    with pytest.raises(NotFound):
        service.open_pack(admin, "lab", name)
    clock.now = T0 + timedelta(days=12)
    unchecked = {**leftover, "problem": "unchecked-pack"}
    assert service.fsck() == [{**unchecked, "repaired": False}]
    assert service.fsck(repair=True) == [{**unchecked, "repaired": True}]
    assert storage.stat(key) == size and service.fsck() == []
    with db.read() as s:
        assert s.scalars(select(StoredObject.verified)).all() == [True] * len(members)
    stream, length = service.open_pack(admin, "lab", name)
    stream.close()
    assert length == size
    # Sent again once more, the same: held, nothing to send.
    assert service.put_pack_file(admin, "lab", name, path, size)["objects"] == len(members)
    # Damaged in storage meanwhile, such a pack is not checked good, and kept as it is
    # (its good objects are held: what to do is the administrator's, told by corrupt-pack).
    stored = tmp_path / "storage" / key
    stored.chmod(0o644)
    damaged = bytearray(stored.read_bytes())
    damaged[-1] ^= 1
    stored.write_bytes(bytes(damaged))
    with db.transaction() as s:
        s.execute(update(StoredObject).where(StoredObject.oid == members[0][0])
                  .values(verified=False))
    assert "actions" in service.announce_pack(admin, "lab", name, size)
    clock.now = T0 + timedelta(days=15)
    assert {**unchecked, "repaired": False} in service.fsck(repair=True)
    assert stored.read_bytes() == bytes(damaged)
    db.dispose()


# -- finding and lineage ---------------------------------------------------------------------

def test_find_by_hash_alias_and_blob(service: Service, admin: Caller) -> None:
    service.put_class(admin, "lab", "copies")
    one = commit_files(service, admin, {"w/model.bin": b"weights", "README": b"one"})
    two = commit_files(service, admin, {"model.bin": b"weights"})
    copy = commit_files(service, admin, {"w/model.bin": b"weights", "README": b"one"},
                        cls="copies")
    assert [v["name"] for v in service.find(admin, "lab", hash=one["tree"])] == [
        "copies/1", "models/1"]
    assert [v["name"] for v in service.find(admin, "lab", hash=one["tree"], cls="models")] == [
        "models/1"]
    service.put_alias(admin, "lab", "models", "best", 2)
    assert [v["manifest"] for v in service.find(admin, "lab", alias="best")] == [two["manifest"]]
    found = service.find(admin, "lab", blob=hash_bytes(b"weights"), cls="models")
    assert [(v["name"], v["paths"]) for v in found] == [
        ("models/1", ["w/model.bin"]), ("models/2", ["model.bin"])]
    assert copy["tree"] == one["tree"]
    assert service.find(admin, "lab", blob=hash_bytes(b"nothing")) == []
    assert service.version_size(admin, "lab", "models", 1, "0.0.0") == {"bytes": 10, "files": 2}


def test_inputs_and_dependents_follow_lineage_both_ways(service: Service, admin: Caller) -> None:
    service.put_class(admin, "lab", "datasets")
    data = commit_files(service, admin, {"d.csv": b"1,2"}, cls="datasets")
    model = commit_files(service, admin, {"m": b"w"}, inputs=(
        Input(data["manifest"], "datasets/1/0.0.0", "training-data"),))
    assert service.inputs(admin, "lab", model["manifest"]) == [
        {"manifest": data["manifest"], "name": "datasets/1/0.0.0", "label": "training-data",
         "version": data}]
    # The manifest's author; the account that uploaded beside it.
    assert (data["author"], data["author_email"], data["uploader"]) == (
        "Ada", "ada@example.org", "ada")
    dependents = service.dependents(admin, "lab", data["manifest"])
    assert [(d["name"], d["version"], d["label"]) for d in dependents] == [
        ("models/1", "0.0.0", "training-data")]
    with pytest.raises(NotFound):
        service.inputs(admin, "lab", "f" * 64)


def test_migrating_twice_changes_nothing(service: Service) -> None:
    service.db.migrate()
    with service.db.read() as s:
        assert s.scalars(select(Version)).all() == []


def test_listing_assets_runs_the_same_number_of_queries_for_any_number_of_assets(
        service: Service, admin: Caller) -> None:
    from sqlalchemy import event

    def queries_to_list() -> int:
        statements: list[str] = []

        def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
            statements.append(statement)

        event.listen(service.db.engine, "before_cursor_execute", count)
        try:
            service.list_assets(admin, "lab", "models")
        finally:
            event.remove(service.db.engine, "before_cursor_execute", count)
        return len(statements)

    first = commit_files(service, admin, {"a": b"0"})
    commit_files(service, admin, {"a": b"1"}, asset=1, parent=first["manifest"])
    service.put_alias(admin, "lab", "models", "best", 1)
    few = queries_to_list()
    for i in range(2, 7):
        commit_files(service, admin, {"a": f"{i}".encode()})
    service.put_alias(admin, "lab", "models", "newest", 6)
    assert queries_to_list() == few
    items = service.list_assets(admin, "lab", "models")["items"]
    assert [(a["ordinal"], a["versions"], a["aliases"]) for a in items] == [
        (1, 2, ["best"]), (2, 1, []), (3, 1, []), (4, 1, []), (5, 1, []), (6, 1, ["newest"])]
    assert items[0]["latest"]["version"] == "0.0.1"
    assert items[0]["latest"] == service.list_versions(admin, "lab", "models", 1)[-1]


# -- the server's garbage collection, with the injected clock (more in
# tests/integration/test_server_gc.py) --

WEEK = timedelta(days=7)


def gc_totals(report: dict[str, Any]) -> tuple[int, int, int, int]:
    (row,) = report["storages"]
    return row["objects"], row["bytes"], row["freed"], row["freed_bytes"]


def test_the_grace_period_keeps_uploads_younger_than_it(service: Service, admin: Caller,
                                                        clock: Clock, tmp_path: Path) -> None:
    commit_files(service, admin, {"kept": b"kept"})
    _, objects = build({"abandoned": b"abandoned upload"})
    upload(service, admin, objects)
    size = sum(len(data) for data in objects.values())
    storage = tmp_path / "storage"

    clock.now = T0 + WEEK - timedelta(seconds=1)  # younger than the grace period: kept
    assert gc_totals(service.gc(WEEK)) == (0, 0, 0, 0)
    clock.now = T0 + WEEK
    assert gc_totals(service.gc(WEEK, dry_run=True)) == (len(objects), size, 0, 0)
    assert all((storage / object_key(oid)).exists() for oid in objects)
    assert gc_totals(service.gc(WEEK)) == (len(objects), size, len(objects), size)
    assert not any((storage / object_key(oid)).exists() for oid in objects)
    assert service.fsck("lab") == []


def test_an_object_freed_loose_and_sent_again_in_a_pack_commits(
        service: Service, admin: Caller, clock: Clock, tmp_path: Path) -> None:
    manifest, objects = build({"weights": b"weights " * 100})
    upload(service, admin, objects)
    clock.now = T0 + WEEK
    assert gc_totals(service.gc(WEEK))[2] == len(objects)  # freed: no version named them
    # The same objects again, now in a pack (as a client sends small objects): gc's marks
    # on them stay, and the commit's re-check finds them in the stored pack.
    folder = tmp_path / "incoming"
    folder.mkdir()
    for oid, data in objects.items():
        (folder / oid).write_bytes(data)
    name, path, size = pack.write_file([(oid, len(d)) for oid, d in objects.items()],
                                       lambda oid: str(folder / oid), str(folder))
    service.put_pack_file(admin, "lab", name, path, size)
    version = service.commit(admin, "lab", "models", None, None, manifest, "again")
    assert version["manifest"] == manifest
    stream, length = service.open_object(admin, "lab", next(iter(objects)))
    assert length == len(next(iter(objects.values())))
    stream.close()
    assert service.fsck("lab") == []


def test_a_negotiated_upload_that_never_came_is_forgotten(service: Service, admin: Caller,
                                                          clock: Clock) -> None:
    _, objects = build({"announced": b"never sent"})
    # What the negotiation of a presigned upload records before handing out its URL.
    with service.db.transaction() as s:
        service._remember(s, 1, [(oid, len(data)) for oid, data in objects.items()])
    clock.now = T0 + WEEK
    # Nothing was stored: no bytes to free, but the records go.
    assert gc_totals(service.gc(WEEK)) == (len(objects), 0, len(objects), 0)
    answer = service.batch(admin, "lab", "upload",
                           [{"id": oid, "size": len(d)} for oid, d in objects.items()])
    assert all("actions" in item for item in answer["objects"])
