"""The HTTP API through falcon.testing: every route over a real Service on SQLite and file://
storage, the error mapping, body limits, and every way a request can fail to authenticate."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import falcon.testing
import pytest

from ama.plumbing import wire
from ama.plumbing.hashing import hash_bytes
from ama.plumbing.objects import Author, Manifest, Tree, TreeEntry
from ama_remote.app import create_app
from ama_remote.config import load_config
from ama_remote.db import Database
from ama_remote.service import Service

HOST = "ama.test"


@dataclass
class Api:
    client: falcon.testing.TestClient
    service: Service
    db: Database
    tokens: dict[str, str]
    now: list[datetime]

    def call(self, method: str, path: str, user: str | None = "admin", **kwargs: Any
             ) -> falcon.testing.Result:
        headers = dict(kwargs.pop("headers", {}))
        if user is not None:
            headers.setdefault("Authorization", f"Bearer {self.tokens[user]}")
        return self.client.simulate_request(method, path, headers=headers, host=HOST, **kwargs)


def make_api(tmp_path: Path, **config: Any) -> Api:
    now = [datetime(2026, 11, 27, 16, 0, tzinfo=timezone.utc)]
    db = Database(f"sqlite:///{tmp_path / 'ama.db'}")
    db.migrate()
    service = Service(db, clock=lambda: now[0])
    service.add_user("admin", "admin@example.org", admin=True)
    service.create_project("demo", f"file://{tmp_path / 'storage'}")
    tokens = {"admin": service.issue_token("admin")}
    for name, role in (("wendy", "writer"), ("rita", "reader"), ("olga", None)):
        service.add_user(name, f"{name}@example.org")
        if role:
            service.grant("demo", name, role)
        tokens[name] = service.issue_token(name)
    settings = load_config(environ={}, home=tmp_path / "home", **config)
    client = falcon.testing.TestClient(create_app(service, settings))
    return Api(client, service, db, tokens, now)


@pytest.fixture
def api(tmp_path: Path) -> Api:
    return make_api(tmp_path)


def error(result: falcon.testing.Result) -> dict[str, Any]:
    body = result.json
    assert set(body) == {"error"}, body
    assert {"code", "message", "hint"} <= set(body["error"]), body
    err: dict[str, Any] = body["error"]
    return err


def objects_of_one_file(content: bytes) -> tuple[dict[str, bytes], str]:
    """Return {id: bytes} of a blob, its tree and a manifest, and the manifest's id."""
    blob = hash_bytes(content)
    tree = Tree.of([TreeEntry("blob", blob, len(content), "data.txt")]).serialize()
    manifest = Manifest(tree=hash_bytes(tree), author=Author("T", "t@example.org"),
                        created="2026-11-27T16:00:00Z", message="m").serialize()
    objects = {blob: content, hash_bytes(tree): tree, hash_bytes(manifest): manifest}
    return objects, hash_bytes(manifest)


def upload(api: Api, objects: dict[str, bytes], user: str = "wendy") -> None:
    result = api.call("POST", "/v1/projects/demo/objects/batch", user, json={
        "operation": "upload", "objects": [{"id": k, "size": len(v)} for k, v in objects.items()]})
    assert result.status_code == 200, result.text
    for item in result.json["objects"]:
        action = (item.get("actions") or {}).get("upload")
        if action is None:
            continue
        # file:// storage: the href is this server's own, made absolute from the request's host.
        assert action["href"] == f"http://{HOST}/v1/projects/demo/objects/{item['id']}"
        path = action["href"].removeprefix(f"http://{HOST}")
        put = api.call("PUT", path, user, body=objects[item["id"]],
                       headers={"Content-Type": "application/octet-stream"})
        assert put.status_code == 201, put.text


def commit(api: Api, manifest: str, asset: int | None = None, parent: str | None = None,
           key: str = "k1", user: str = "wendy") -> falcon.testing.Result:
    return api.call("POST", "/v1/projects/demo/classes/models/versions", user, json={
        "asset": asset, "parent": parent, "manifest": manifest, "idempotency_key": key})


def make_class(api: Api) -> None:
    result = api.call("POST", "/v1/projects/demo/classes", json={
        "name": "models", "description": "trained models"})
    assert result.status_code == 201, result.text


# -- auth ------------------------------------------------------------------------------------

def test_a_request_without_a_token_is_401_with_a_bearer_challenge(api: Api) -> None:
    result = api.call("GET", "/v1/auth/me", user=None)
    assert result.status_code == 401
    assert result.headers["WWW-Authenticate"].startswith("Bearer")
    assert error(result)["code"] == "unauthenticated"


@pytest.mark.parametrize("header", ["Bearer not-a-real-token", "Basic YWRtaW46YWRtaW4=",
                                    "Bearer", "bearer  "])
def test_forged_or_malformed_credentials_are_401(api: Api, header: str) -> None:
    result = api.call("GET", "/v1/auth/me", user=None, headers={"Authorization": header})
    assert result.status_code == 401
    assert error(result)["code"] == "unauthenticated"


def test_an_expired_token_is_401(api: Api) -> None:
    assert api.call("GET", "/v1/auth/me", "wendy").status_code == 200
    api.now[0] += timedelta(days=31)
    assert api.call("GET", "/v1/auth/me", "wendy").status_code == 401


def test_a_revoked_token_is_401_and_others_still_work(api: Api) -> None:
    result = api.call("DELETE", "/v1/auth/token", "wendy")
    assert result.status_code == 204
    assert api.call("GET", "/v1/auth/me", "wendy").status_code == 401
    assert api.call("GET", "/v1/auth/me", "rita").status_code == 200


def test_a_disabled_users_token_is_401(api: Api) -> None:
    api.service.disable_user("wendy")
    assert api.call("GET", "/v1/auth/me", "wendy").status_code == 401


def test_rotating_a_token_returns_a_new_one_and_retires_the_old(api: Api) -> None:
    result = api.call("POST", "/v1/auth/token", "wendy")
    assert result.status_code == 201, result.text
    new = result.json["token"]
    assert result.json["username"] == "wendy" and new != api.tokens["wendy"]
    assert api.call("GET", "/v1/auth/me", "wendy").status_code == 401
    me = api.call("GET", "/v1/auth/me", None, headers={"Authorization": f"Bearer {new}"})
    assert me.status_code == 200 and me.json["username"] == "wendy"


def test_rotating_needs_a_valid_token_and_an_unknown_login_method_is_400(api: Api) -> None:
    assert api.call("POST", "/v1/auth/token", None).status_code == 401
    result = api.call("POST", "/v1/auth/token", None, json={"grant_type": "password"})
    assert result.status_code == 400
    assert "grant_type" in error(result)["message"]


def test_a_login_grant_issues_a_token_for_the_user_it_proves(tmp_path: Path) -> None:
    api = make_api(tmp_path)
    settings = load_config(environ={}, home=tmp_path / "home")
    app = create_app(api.service, settings, grants={"test": lambda body: body["user"]})
    client = falcon.testing.TestClient(app)
    result = client.simulate_post("/v1/auth/token", json={"grant_type": "test", "user": "rita"})
    assert result.status_code == 201
    me = client.simulate_get("/v1/auth/me",
                             headers={"Authorization": f"Bearer {result.json['token']}"})
    assert me.json["username"] == "rita"


def test_signup_needs_no_token(api: Api) -> None:
    result = api.call("POST", "/v1/auth/signup", None,
                      json={"username": "sam", "email": "sam@example.org"})
    assert result.status_code == 201, result.text
    assert "sam" in [u["username"] for u in api.service.list_users()]


def test_me_lists_the_callers_projects_and_roles(api: Api) -> None:
    result = api.call("GET", "/v1/auth/me", "rita")
    assert result.status_code == 200
    assert result.json["username"] == "rita"
    assert {"name": "demo", "role": "reader"} in result.json["projects"]


# -- projects and membership -----------------------------------------------------------------

def test_a_project_the_caller_is_not_a_member_of_answers_like_a_missing_one(api: Api) -> None:
    hidden = api.call("GET", "/v1/projects/demo", "olga")
    missing = api.call("GET", "/v1/projects/nope", "olga")
    assert hidden.status_code == missing.status_code == 404
    assert error(hidden)["code"] == error(missing)["code"] == "not_found"
    assert api.call("GET", "/v1/projects/demo/classes", "olga").status_code == 404
    assert api.call("GET", "/v1/projects/demo", "rita").status_code == 200


def test_projects_list_only_the_callers_and_paginates(api: Api, tmp_path: Path) -> None:
    for name in ("p1", "p2", "p3"):
        api.service.create_project(name, f"file://{tmp_path / name}")
        api.service.grant(name, "rita", "reader")
    first = api.call("GET", "/v1/projects?per_page=2", "rita")
    assert first.status_code == 200
    assert len(first.json["items"]) == 2 and first.json["next_page"] == 2
    second = api.call("GET", "/v1/projects?per_page=2&page=2", "rita")
    assert len(second.json["items"]) == 2 and second.json["next_page"] is None
    names = {p["name"] for p in first.json["items"] + second.json["items"]}
    assert names == {"demo", "p1", "p2", "p3"}
    assert api.call("GET", "/v1/projects", "olga").json["items"] == []


@pytest.mark.parametrize("query", ["page=0", "per_page=0", "per_page=100000", "page=x"])
def test_bad_paging_parameters_are_400(api: Api, query: str) -> None:
    result = api.call("GET", f"/v1/projects?{query}")
    assert result.status_code == 400
    assert error(result)["code"] == "bad_input"


# -- classes ---------------------------------------------------------------------------------

def test_classes_are_created_listed_read_and_updated(api: Api) -> None:
    make_class(api)
    listed = api.call("GET", "/v1/projects/demo/classes", "rita")
    assert [c["name"] for c in listed.json["items"]] == ["models"]
    one = api.call("GET", "/v1/projects/demo/classes/models", "rita")
    assert one.status_code == 200 and one.json["description"] == "trained models"
    schema = {"type": "object", "properties": {"accuracy": {"type": "number"}}}
    updated = api.call("PUT", "/v1/projects/demo/classes/models",
                       json={"description": "models v2", "schema": schema})
    assert updated.status_code == 200, updated.text
    again = api.call("GET", "/v1/projects/demo/classes/models", "rita")
    assert again.json["description"] == "models v2" and again.json["schema"] == schema


def test_a_reader_cannot_change_classes(api: Api) -> None:
    result = api.call("POST", "/v1/projects/demo/classes", "rita", json={"name": "x"})
    assert result.status_code == 403
    assert error(result)["code"] == "forbidden"


def test_a_missing_class_is_404(api: Api) -> None:
    assert api.call("GET", "/v1/projects/demo/classes/nope").status_code == 404


# -- the whole flow: objects, commit, assets, aliases, find, lineage -------------------------

def test_upload_commit_and_read_back_through_every_route(api: Api) -> None:
    make_class(api)
    objects, manifest = objects_of_one_file(b"hello\n")
    upload(api, objects)
    again = api.call("POST", "/v1/projects/demo/objects/batch", "wendy", json={
        "operation": "upload", "objects": [{"id": k, "size": len(v)} for k, v in objects.items()]})
    assert all(not item.get("actions") for item in again.json["objects"])

    result = commit(api, manifest)
    assert result.status_code == 201, result.text
    version = result.json
    assert (version["ordinal"], version["version"], version["manifest"]) == (1, "0.0.0", manifest)
    assert commit(api, manifest).json == version  # same idempotency key, same version

    base = "/v1/projects/demo/classes/models/assets"
    assets = api.call("GET", base, "rita")
    assert assets.status_code == 200 and [a["ordinal"] for a in assets.json["items"]] == [1]
    assert api.call("GET", f"{base}/1", "rita").status_code == 200
    versions = api.call("GET", f"{base}/1/versions", "rita")
    assert [v["version"] for v in versions.json["items"]] == ["0.0.0"]
    size = api.call("GET", f"{base}/1/versions/0.0.0/size", "rita")
    assert size.status_code == 200 and size.json["bytes"] == 6 and size.json["files"] == 1

    patched = api.call("PATCH", f"{base}/1", "wendy", json={"title": "first", "tags": ["a"]})
    assert patched.status_code == 200, patched.text
    assert api.call("GET", f"{base}/1", "rita").json["title"] == "first"

    alias = api.call("PUT", "/v1/projects/demo/classes/models/aliases/prod", "wendy",
                     json={"asset": 1})
    assert alias.status_code == 200, alias.text
    assert api.call("GET", f"{base}/prod", "rita").json["ordinal"] == 1
    lost = api.call("PUT", "/v1/projects/demo/classes/models/aliases/prod", "wendy",
                    json={"asset": 1, "expected": None})
    assert lost.status_code == 409 and "points at models/1" in lost.text, lost.text
    swapped = api.call("PUT", "/v1/projects/demo/classes/models/aliases/prod", "wendy",
                       json={"asset": 1, "expected": 1})
    assert swapped.status_code == 200, swapped.text
    assert api.call("GET", f"{base}/prod/versions", "rita").json["items"][0]["manifest"] == \
        manifest

    tree = next(k for k, v in objects.items() if v.startswith(b"ama-tree 1\n"))
    found = api.call("GET", f"/v1/projects/demo/find?hash={tree}", "rita")
    assert found.status_code == 200 and [f["ordinal"] for f in found.json["items"]] == [1]
    assert api.call("GET", "/v1/projects/demo/find?alias=prod", "rita").json["items"]
    inputs = api.call("GET", f"/v1/projects/demo/versions/{manifest}/inputs", "rita")
    dependents = api.call("GET", f"/v1/projects/demo/versions/{manifest}/dependents", "rita")
    assert inputs.status_code == dependents.status_code == 200
    assert inputs.json["items"] == dependents.json["items"] == []

    download = api.call("POST", "/v1/projects/demo/objects/batch", "rita", json={
        "operation": "download", "objects": [{"id": manifest, "size": 0}]})
    action = download.json["objects"][0]["actions"]["download"]
    got = api.call(action["method"], action["href"].removeprefix(f"http://{HOST}"), "rita")
    assert got.status_code == 200 and got.content == objects[manifest]
    assert got.headers["Content-Type"] == "application/octet-stream"

    deleted = api.call("DELETE", "/v1/projects/demo/classes/models/aliases/prod", "wendy")
    assert deleted.status_code == 204
    assert api.call("GET", f"{base}/prod", "rita").status_code == 404


@pytest.mark.parametrize("operation", ["upload", "download"])
def test_the_compact_negotiation_answer_expands_to_the_full_one(api: Api,
                                                                operation: str) -> None:
    objects, _ = objects_of_one_file(b"held\n")
    upload(api, objects)
    held = sorted(objects)
    new = [hash_bytes(b"new %d" % n) for n in range(3)]
    asked = [{"id": oid, "size": 5} for oid in [new[0], *held, new[1], held[0], new[2]]]
    path = "/v1/projects/demo/objects/batch"
    full = api.call("POST", path, "wendy", json={"operation": operation, "objects": asked})
    compact = api.call("POST", path, "wendy",
                       json={"operation": operation, "objects": asked, "compact": 1})
    assert full.status_code == compact.status_code == 200, compact.text
    answer = compact.json
    assert answer["compact"] == 1
    transfer = answer["transfer"]
    assert transfer["href"] == f"http://{HOST}/v1/projects/demo/objects/{{id}}"
    if operation == "upload":
        # Held objects are listed by size alone, new ones once, with no action each.
        assert answer["present"] == {oid: len(objects[oid]) for oid in held}
        assert transfer["objects"] == {oid: 5 for oid in new}
        assert answer["objects"] == [] and transfer["method"] == "PUT"
    else:
        assert answer["present"] == {}
        assert transfer["objects"] == {oid: len(objects[oid]) for oid in held}
        assert [item["id"] for item in answer["objects"]] == new
        assert all(item["error"]["code"] == 404 for item in answer["objects"])
    assert wire.expand(answer, operation, asked) == full.json
    assert len(full.json["objects"]) == len(asked)


def test_a_compact_format_the_server_does_not_speak_is_400(api: Api) -> None:
    result = api.call("POST", "/v1/projects/demo/objects/batch", "wendy",
                      json={"operation": "upload", "objects": [], "compact": 2})
    assert result.status_code == 400 and "'compact'" in error(result)["message"]


def test_a_stale_parent_is_409_naming_the_latest_version(api: Api) -> None:
    make_class(api)
    objects, first = objects_of_one_file(b"one\n")
    upload(api, objects)
    assert commit(api, first).status_code == 201
    objects, second = objects_of_one_file(b"two\n")
    upload(api, objects)
    assert commit(api, second, asset=1, parent=first, key="k2").status_code == 201
    objects, third = objects_of_one_file(b"three\n")
    upload(api, objects)
    result = commit(api, third, asset=1, parent=first, key="k3")
    assert result.status_code == 409
    assert error(result)["code"] == "conflict"
    assert error(result)["latest"] == second  # the manifest of version 0.0.1


def test_committing_a_manifest_whose_objects_are_missing_is_422_listing_them(api: Api) -> None:
    make_class(api)
    objects, manifest = objects_of_one_file(b"never uploaded\n")
    result = commit(api, manifest)
    assert result.status_code == 422
    err = error(result)
    assert err["code"] == "validation_failed"
    assert manifest in " ".join(err["problems"]) + err["message"]


def test_committing_a_version_that_holds_ama_files_is_422_naming_the_path(api: Api) -> None:
    make_class(api)
    blob = b"class: models\nasset: 9\n"
    tree = Tree.of([TreeEntry("blob", hash_bytes(blob), len(blob), "HEAD")]).serialize()
    root = Tree.of([TreeEntry("tree", hash_bytes(tree), len(blob), ".ama")]).serialize()
    manifest = Manifest(tree=hash_bytes(root), author=Author("T", "t@example.org"),
                        created="2026-11-27T16:00:00Z").serialize()
    upload(api, {hash_bytes(d): d for d in (blob, tree, root, manifest)})
    result = commit(api, hash_bytes(manifest))
    assert result.status_code == 422
    err = error(result)
    assert err["code"] == "validation_failed" and ".ama/HEAD" in err["message"]
    assert [p.split(":")[0] for p in err["problems"]] == [".ama/HEAD"]


def test_committing_a_version_with_a_file_proxy_is_422_naming_the_path(api: Api) -> None:
    make_class(api)
    descriptor = (b'{"etag":"","format":"ama-proxy/1","id":"' + hash_bytes(b"x").encode()
                  + b'","size":1,"url":"file:///etc/shadow","version":""}')
    tree = Tree.of([TreeEntry("proxy", hash_bytes(descriptor), 1, "shadow")]).serialize()
    manifest = Manifest(tree=hash_bytes(tree), author=Author("T", "t@example.org"),
                        created="2026-11-27T16:00:00Z").serialize()
    upload(api, {hash_bytes(d): d for d in (descriptor, tree, manifest)})
    result = commit(api, hash_bytes(manifest))
    assert result.status_code == 422
    err = error(result)
    assert err["code"] == "validation_failed" and "'shadow'" in err["message"]
    assert err["problems"] == ["shadow: proxy descriptor: its url 'file:///etc/shadow' has the "
                               "scheme 'file'; a proxy may only name s3://, gs://, http://, "
                               "https://"]


def test_bytes_that_do_not_match_the_id_are_refused(api: Api) -> None:
    oid = hash_bytes(b"right")
    result = api.call("PUT", f"/v1/projects/demo/objects/{oid}", "wendy", body=b"wrong")
    assert result.status_code == 422
    assert api.call("GET", f"/v1/projects/demo/objects/{oid}", "wendy").status_code == 404


def test_a_project_on_a_shared_storage_cannot_claim_another_projects_objects(
        api: Api, tmp_path: Path) -> None:
    from ama_remote.models import Project

    # A legacy server let two projects share one storage; its rows are still there.
    with api.db.transaction() as s:
        s.add(Project(name="theirs", storage_url=f"file://{tmp_path / 'storage'}",
                      created=datetime(2026, 1, 1)))
    api.service.grant("theirs", "olga", "admin")
    made = api.call("POST", "/v1/projects/theirs/classes", "olga", json={"name": "models"})
    assert made.status_code == 201, made.text
    make_class(api)
    objects, manifest = objects_of_one_file(b"demo's own data\n")
    upload(api, objects)
    assert commit(api, manifest).status_code == 201

    claim = api.call("POST", "/v1/projects/theirs/objects/verify", "olga",
                     json={"ids": list(objects)})
    assert claim.status_code == 200
    assert [o.get("error", {}).get("code") for o in claim.json["objects"]] == [404] * 3
    nothing = hash_bytes(b"nowhere")
    absent = api.call("POST", "/v1/projects/theirs/objects/verify", "olga", json={"ids": [nothing]})
    assert claim.json["objects"][0]["error"]["message"].replace(next(iter(objects)), "") == \
        absent.json["objects"][0]["error"]["message"].replace(nothing, "")
    stolen = api.call("POST", "/v1/projects/theirs/classes/models/versions", "olga", json={
        "asset": None, "parent": None, "manifest": manifest, "idempotency_key": "k"})
    assert stolen.status_code == 422
    for oid in objects:
        assert api.call("GET", f"/v1/projects/theirs/objects/{oid}", "olga").status_code == 404


def test_a_reader_cannot_upload_commit_or_alias(api: Api) -> None:
    make_class(api)
    oid = hash_bytes(b"x")
    batch = api.call("POST", "/v1/projects/demo/objects/batch", "rita", json={
        "operation": "upload", "objects": [{"id": oid, "size": 1}]})
    assert batch.status_code == 403
    assert api.call("PUT", f"/v1/projects/demo/objects/{oid}", "rita", body=b"x"
                    ).status_code == 403
    assert commit(api, oid, user="rita").status_code == 403
    alias = api.call("PUT", "/v1/projects/demo/classes/models/aliases/a", "rita",
                     json={"asset": 1})
    assert alias.status_code == 403


def test_an_object_the_project_does_not_hold_is_404(api: Api) -> None:
    result = api.call("GET", f"/v1/projects/demo/objects/{hash_bytes(b'nothing')}", "rita")
    assert result.status_code == 404
    assert error(result)["code"] == "not_found"


# -- malformed requests ----------------------------------------------------------------------

def test_a_json_endpoint_refuses_other_content_types_with_415(api: Api) -> None:
    result = api.call("POST", "/v1/projects/demo/objects/batch", "wendy",
                      body=b"operation=upload", headers={"Content-Type": "text/plain"})
    assert result.status_code == 415
    assert error(result)["code"] == "unsupported_media_type"


def test_malformed_json_is_400(api: Api) -> None:
    result = api.call("POST", "/v1/projects/demo/objects/batch", "wendy", body=b"{not json",
                      headers={"Content-Type": "application/json"})
    assert result.status_code == 400
    assert "JSON" in error(result)["message"]


@pytest.mark.parametrize(("body", "field"), [
    ({"objects": []}, "operation"),
    ({"operation": "upload"}, "objects"),
    ({"operation": "delete", "objects": []}, "operation"),
    ({"operation": "upload", "objects": "x"}, "objects"),
    ({"operation": "upload", "objects": [{"id": "abc", "size": 1}]}, "objects[0].id"),
    ({"operation": "upload", "objects": [{"id": "a" * 64, "size": -1}]}, "objects[0].size"),
    ({"operation": "upload", "objects": [{"id": "a" * 64, "size": True}]}, "objects[0].size"),
    ({"operation": "upload", "objects": [["a" * 64, 1]]}, "objects[0]"),
])
def test_a_malformed_batch_is_400_naming_the_field(api: Api, body: dict[str, Any],
                                                   field: str) -> None:
    result = api.call("POST", "/v1/projects/demo/objects/batch", "wendy", json=body)
    assert result.status_code == 400, result.text
    assert f"'{field}'" in error(result)["message"]


@pytest.mark.parametrize(("body", "field"), [
    ({"asset": None, "parent": None, "idempotency_key": "k"}, "manifest"),
    ({"asset": None, "parent": None, "manifest": "zz", "idempotency_key": "k"}, "manifest"),
    ({"asset": "1", "parent": None, "manifest": "a" * 64, "idempotency_key": "k"}, "asset"),
    ({"asset": None, "parent": None, "manifest": "a" * 64}, "idempotency_key"),
    ({"asset": None, "parent": None, "manifest": "a" * 64, "idempotency_key": "k",
      "bump": "huge"}, "bump"),
])
def test_a_malformed_commit_is_400_naming_the_field(api: Api, body: dict[str, Any],
                                                    field: str) -> None:
    make_class(api)
    result = api.call("POST", "/v1/projects/demo/classes/models/versions", "wendy", json=body)
    assert result.status_code == 400, result.text
    assert f"'{field}'" in error(result)["message"]


def test_a_json_body_over_the_limit_is_413(tmp_path: Path) -> None:
    api = make_api(tmp_path, max_request_bytes=1000)
    objects = [{"id": "a" * 64, "size": 1}] * 50
    result = api.call("POST", "/v1/projects/demo/objects/batch", "wendy",
                      json={"operation": "upload", "objects": objects})
    assert result.status_code == 413
    assert error(result)["code"] == "payload_too_large"


def test_an_object_over_the_limit_is_413_before_it_is_read(tmp_path: Path) -> None:
    api = make_api(tmp_path, max_object_bytes=10)
    data = b"eleven byte"
    result = api.call("PUT", f"/v1/projects/demo/objects/{hash_bytes(data)}", "wendy",
                      body=data)
    assert result.status_code == 413
    assert "max_object_bytes" in error(result)["hint"]


def test_an_object_up_to_s3s_own_limit_is_not_refused_as_too_large(tmp_path: Path) -> None:
    # 60 GiB announced: over the old 50 GiB default, far below S3's 5 TiB. The body falls
    # short, so the upload fails, but on its bytes, not on its announced size.
    api = make_api(tmp_path)
    data = b"short"
    result = api.call("PUT", f"/v1/projects/demo/objects/{hash_bytes(data)}", "wendy",
                      body=data, headers={"Content-Length": str(60 << 30)})
    assert result.status_code != 413
    too_big = api.call("PUT", f"/v1/projects/demo/objects/{hash_bytes(data)}", "wendy",
                       body=data, headers={"Content-Length": str((5 << 40) + 1)})
    assert too_big.status_code == 413
    assert str(5 << 40) in error(too_big)["message"]


def test_an_object_id_that_is_not_an_id_is_400(api: Api) -> None:
    assert api.call("GET", "/v1/projects/demo/objects/not-an-id", "rita").status_code == 400


def test_unknown_routes_and_methods_answer_in_the_error_format(api: Api) -> None:
    missing = api.call("GET", "/v1/nothing-here")
    assert missing.status_code == 404 and error(missing)["code"] == "not_found"
    wrong = api.call("DELETE", "/v1/projects")
    assert wrong.status_code == 405 and error(wrong)["code"] == "method_not_allowed"


def test_an_unexpected_failure_is_500_without_internals_and_logged(
        api: Api, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    # Break the database under the running app: every query now fails inside SQLAlchemy.
    api.db.dispose()
    (tmp_path / "ama.db").unlink()
    (tmp_path / "ama.db").mkdir()
    with caplog.at_level(logging.ERROR, logger="ama_remote.app"):
        result = api.call("GET", "/v1/auth/me?secret=query", "rita")
    assert result.status_code == 500
    err = error(result)
    assert err["code"] == "internal"
    assert "sqlite" not in result.text.lower() and "Traceback" not in result.text
    assert "GET /v1/auth/me" in caplog.text
    assert "secret=query" not in caplog.text
    assert api.tokens["rita"] not in caplog.text
