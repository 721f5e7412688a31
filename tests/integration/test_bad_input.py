"""Hostile input to the remote and to the client's checks of it: schemas that would fetch
URLs or never end, regexes that backtrack, numbers past what the database holds, JSON nested
too deep, keys given twice, bodies over the limit however they are sent. Each is refused
with 400 or 413 naming the problem (exit 2 on the client), never a 500 or a traceback."""

from __future__ import annotations

import http.server
import json
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import falcon.testing
import pytest
import requests
from click.testing import CliRunner

from ama.cli.main import cli
from ama.plumbing import rules
from ama.plumbing.errors import BadInput
from ama.plumbing.hashing import hash_bytes
from ama.plumbing.objects import Author, Manifest, Tree, TreeEntry
from ama.plumbing.rules import rule_problems
from ama.porcelain.classes import LocalClasses, init_class
from ama.porcelain.init import init
from tests.integration.test_http_api import Api, api, error, make_class, upload
from tests.services.server import RunningServer

__all__ = ["api"]  # the fixture, shared with the API's own tests


def commit_metadata(api: Api, cls: str, metadata: object) -> falcon.testing.Result:
    """Upload a one-file version whose manifest holds ``metadata`` and commit it to ``cls``."""
    tree = Tree.of([TreeEntry("blob", hash_bytes(b"x"), 1, "data.txt")]).serialize()
    manifest = Manifest(tree=hash_bytes(tree), author=Author("T", "t@example.org"),
                        created="2026-11-27T16:00:00Z", message="m",
                        metadata=metadata).serialize()
    upload(api, {hash_bytes(b"x"): b"x", hash_bytes(tree): tree, hash_bytes(manifest): manifest})
    return api.call("POST", f"/v1/projects/demo/classes/{cls}/versions", "wendy", json={
        "asset": None, "parent": None, "manifest": hash_bytes(manifest),
        "idempotency_key": "k"})

# -- schemas: no remote $ref, no endless $ref, patterns in linear time ----------------------


@pytest.fixture
def hits() -> Iterator[tuple[str, list[str]]]:
    """An HTTP server on 127.0.0.1 that answers a schema to anyone and records each path it
    is asked for: ``(its URL, the paths)``."""
    seen: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (the standard library's name)
            seen.append(self.path)
            body = json.dumps({"type": "string"}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/schema+json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", seen
    finally:
        server.shutdown()
        server.server_close()


def test_a_schema_naming_a_url_is_refused_and_the_url_never_fetched(
        api: Api, hits: tuple[str, list[str]]) -> None:
    url, seen = hits
    schema = {"type": "object", "properties": {"x": {"$ref": f"{url}/x.json"}}}
    result = api.call("POST", "/v1/projects/demo/classes",
                      json={"name": "remote", "schema": schema})
    assert result.status_code == 400, result.text
    assert f"{url}/x.json" in error(result)["message"]
    # The client checks the metadata with the class the remote gave it, through the same
    # function the remote commits with: neither may fetch, whatever the class says.
    assert rule_problems(schema, None, {"x": 1}, []) == [
        f"schema: class schema: $ref '{url}/x.json' cannot be resolved ({url}/x.json); "
        "a class schema refers only to its own parts"]
    with pytest.raises(BadInput, match="cannot be resolved"):
        rules.check_schema({"$ref": f"{url}/y.json"})
    assert seen == []


def test_a_schema_file_naming_a_url_is_refused_by_class_init(
        tmp_path: Path, hits: tuple[str, list[str]]) -> None:
    url, seen = hits
    schema_file = tmp_path / "schema.json"
    schema_file.write_text(json.dumps({"$ref": f"{url}/s.json"}))
    with pytest.raises(BadInput, match="cannot be resolved"):
        init_class(LocalClasses(tmp_path / "classes"), "models", schema_file=str(schema_file))
    assert seen == []


@pytest.mark.parametrize("schema", [
    {"$ref": "#"},
    {"allOf": [{"$ref": "#/$defs/a"}], "$defs": {"a": {"anyOf": [{"$ref": "#"}]}}},
    {"properties": {"a": {"$ref": "#/$defs/b"}},
     "$defs": {"b": {"not": {"$ref": "#/$defs/c"}}, "c": {"$ref": "#/$defs/b"}}},
])
def test_a_schema_that_refers_to_itself_without_end_is_refused_at_class_creation(
        api: Api, schema: dict[str, object]) -> None:
    result = api.call("POST", "/v1/projects/demo/classes", json={"name": "loop", "schema": schema})
    assert result.status_code == 400, result.text
    assert "refers to itself without end" in error(result)["message"]


def test_a_recursive_schema_that_descends_is_kept_and_validates(api: Api) -> None:
    tree = {"type": "object", "properties": {"child": {"$ref": "#"}, "n": {"type": "integer"}}}
    assert api.call("POST", "/v1/projects/demo/classes",
                    json={"name": "tree", "schema": tree}).status_code == 201
    assert rule_problems(tree, None, {"child": {"child": {"n": "x"}}}, []) == [
        "schema: metadata child/child/n: 'x' is not of type 'integer'"]


def test_an_endless_schema_already_stored_fails_validation_with_a_reason() -> None:
    # A class made before schemas were checked this way: the commit says why, never a 500.
    assert rule_problems({"$ref": "#"}, None, {}, []) == [
        "schema: class schema refers to itself without end: a $ref leads back to a schema it "
        "started from (#) without descending into a property or item"]


def test_metadata_nested_deeper_than_a_recursive_schema_can_follow_is_a_problem() -> None:
    metadata: dict[str, object] = {}
    for _ in range(2000):
        metadata = {"a": metadata}
    assert rule_problems({"properties": {"a": {"$ref": "#"}}}, None, metadata, []) == [
        "schema: metadata nests deeper than 64 levels"]


CATASTROPHIC = "(a+)+$"
EVIL = "a" * 40 + "!"  # about 2**40 steps for a backtracking engine: hours


@pytest.mark.parametrize(("schema", "metadata", "problem"), [
    ({"type": "object", "properties": {"name": {"type": "string", "pattern": CATASTROPHIC}}},
     {"name": EVIL}, f"metadata name: {EVIL!r} does not match {CATASTROPHIC!r}"),
    ({"type": "object", "patternProperties": {CATASTROPHIC: {"type": "string"}}},
     {"b": 1, EVIL: 1}, None),
    ({"type": "object", "patternProperties": {CATASTROPHIC: {}},
      "additionalProperties": False},
     {EVIL: 1}, f"metadata (root): additional properties are not allowed ({EVIL!r} unexpected)"),
])
def test_a_backtracking_pattern_runs_in_linear_time_on_the_remote(
        api: Api, schema: dict[str, object], metadata: dict[str, object],
        problem: str | None) -> None:
    # Python's re would hold this worker for hours on this input: the commit answering at
    # all (with the schema's verdict) is the proof that the pattern ran on RE2.
    created = api.call("POST", "/v1/projects/demo/classes", json={"name": "evil",
                                                                   "schema": schema})
    assert created.status_code == 201, created.text
    result = commit_metadata(api, "evil", metadata)
    if problem is None:
        assert result.status_code == 201, result.text
    else:
        assert result.status_code == 422, result.text
        assert error(result)["problems"] == [f"schema: {problem}"]


def test_gitignore_rules_run_in_linear_time() -> None:
    # Translated to Python's re, this pattern tries every way to split the name: hours.
    name = "a" * 60 + "!"
    pattern = "*a" * 12 + "b"
    assert rule_problems(None, {"required_files": [pattern]}, {}, [(name, "0" * 64, 1)]) == [
        f"required_files: no file matches {pattern!r}"]


@pytest.mark.parametrize("pattern", [r"(a)\1", "(?=a)b", "(?<!x)y"])
def test_a_pattern_re2_cannot_run_is_refused_at_class_creation(api: Api, pattern: str) -> None:
    result = api.call("POST", "/v1/projects/demo/classes",
                      json={"name": "re", "schema": {"pattern": pattern}})
    assert result.status_code == 400, result.text
    assert f"pattern {pattern!r} is not supported" in error(result)["message"]


# -- numbers in paths and queries ------------------------------------------------------------

@pytest.mark.parametrize(("path", "name"), [
    ("/v1/projects/demo/classes/models/assets/99999999999999999999", "asset"),
    ("/v1/projects/demo/classes/models/assets/99999999999999999999/versions", "asset"),
    ("/v1/projects/demo/classes/models/assets?page=99999999999999999999", "page"),
    ("/v1/projects/demo/classes/models/assets?per_page=99999999999999999999", "per_page"),
    ("/v1/projects?page=99999999999999999999", "page"),
    ("/v1/projects/demo/classes/models/assets?page=9223372036854775807", "page"),
    ("/v1/projects/demo/classes/models/assets/%C2%B9", "asset"),  # '¹' is a digit to Python
    ("/v1/projects/demo/classes/models/assets/1/versions/99999999999999999999.0.0/size",
     "version"),
    ("/v1/projects/demo/classes/models/assets/1/versions/0.%C2%B2.0/size", "version"),
])
def test_a_number_out_of_range_in_a_path_or_query_is_400_naming_it(
        api: Api, path: str, name: str) -> None:
    make_class(api)
    result = api.call("GET", path, "rita")
    assert result.status_code == 400, result.text
    assert f"'{name}'" in error(result)["message"]


@pytest.mark.parametrize(("method", "path", "body"), [
    ("PUT", "/v1/projects/demo/classes/models/aliases/prod", {"asset": 10**20}),
    ("POST", "/v1/projects/demo/classes/models/versions",
     {"asset": 2**63, "parent": None, "manifest": "a" * 64, "idempotency_key": "k"}),
    ("POST", "/v1/projects/demo/objects/batch",
     {"operation": "upload", "objects": [{"id": "a" * 64, "size": 2**64 - 1}]}),
    ("PUT", "/v1/projects/demo/classes/models", {"visualisation": {"x": -(2**70)}}),
])
def test_a_number_out_of_range_in_a_body_is_400_naming_it(
        api: Api, method: str, path: str, body: dict[str, object]) -> None:
    make_class(api)
    result = api.call(method, path, "admin", json=body)
    assert result.status_code == 400, result.text
    assert "is out of range" in error(result)["message"]
    number = next(n for n in (10**20, 2**63, 2**64 - 1, -(2**70)) if str(n) in json.dumps(body))
    assert str(number) in error(result)["message"]


def test_a_float_beyond_range_is_400(api: Api) -> None:
    make_class(api)
    result = api.call("PUT", "/v1/projects/demo/classes/models",
                      body=b'{"visualisation": {"x": 1e400}}',
                      headers={"Content-Type": "application/json"})
    assert result.status_code == 400, result.text
    assert "1e400 is out of range" in error(result)["message"]


# -- JSON bodies: depth, duplicate keys, size ------------------------------------------------

def test_a_body_nested_100000_deep_is_400(api: Api) -> None:
    result = api.call("POST", "/v1/projects/demo/classes", body=b"[" * 100_000,
                      headers={"Content-Type": "application/json"})
    assert result.status_code == 400, result.text
    assert "nests deeper than 64 levels" in error(result)["message"]


def test_a_key_given_twice_is_400_naming_it(api: Api) -> None:
    make_class(api)
    result = api.call("PUT", "/v1/projects/demo/classes/models/aliases/prod", "wendy",
                      body=b'{"asset": 1, "asset": 2}',
                      headers={"Content-Type": "application/json"})
    assert result.status_code == 400, result.text
    assert "'asset' twice" in error(result)["message"]


def test_metadata_nested_100000_deep_is_exit_2_with_a_reason(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    init_class(LocalClasses.open(), "models")
    asset = tmp_path / "asset"
    asset.mkdir()
    monkeypatch.chdir(asset)
    init(asset, "models")
    meta = tmp_path / "meta.json"
    meta.write_text("[" * 100_000 + "]" * 100_000)
    result = CliRunner().invoke(cli, ["upload", "-m", "x", "--metadata", str(meta)])
    assert result.exit_code == 2, result.output
    assert f"metadata file {meta} nests deeper than 64 levels" in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_a_metadata_file_with_a_key_given_twice_is_refused(tmp_path: Path) -> None:
    from ama.porcelain.classes import load_json_file

    meta = tmp_path / "meta.json"
    meta.write_text('{"accuracy": 0.9, "accuracy": 0.1}')
    with pytest.raises(BadInput, match="gives the key 'accuracy' twice"):
        load_json_file(meta, "metadata")


def _raw_request(url: str, head: bytes, chunks: list[bytes]) -> bytes:
    """Send a chunked request and return the answer, read while the body is still going
    out: a server that answers early and closes would otherwise reset the connection
    before the answer is read."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port))) as s:

        def send() -> None:
            try:
                s.sendall(head)
                for chunk in chunks:
                    s.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                s.sendall(b"0\r\n\r\n")
            except OSError:
                pass  # the server answered and closed before reading it all

        sender = threading.Thread(target=send, daemon=True)
        sender.start()
        answer = b""
        try:
            while data := s.recv(65536):
                answer += data
        except ConnectionResetError:
            pass
        sender.join()
    return answer


def test_a_chunked_body_over_the_limit_is_413_naming_the_limit(
        start_ama_server: object) -> None:
    server: RunningServer = start_ama_server()  # type: ignore[operator]
    head = (f"POST /v1/projects/demo/objects/batch HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"Authorization: Bearer {server.token}\r\nContent-Type: application/json\r\n"
            "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n").encode()
    answer = _raw_request(server.url, head, [b" " * 1024 * 1024] * 44)
    status, _, rest = answer.partition(b"\r\n")
    assert status.startswith(b"HTTP/1.1 413"), answer[:500]
    body = json.loads(rest.partition(b"\r\n\r\n")[2])
    assert "16777216 bytes" in body["error"]["message"]
    # A chunked body under the limit is read whole, not taken for an empty one.
    small = requests.post(f"{server.url}/v1/projects/demo/objects/batch",
                          headers={"Authorization": f"Bearer {server.token}",
                                   "Content-Type": "application/json"},
                          data=iter([b'{"operation": "upload", ', b'"objects": []}']),
                          timeout=30)
    assert small.status_code == 200, small.text


def test_a_manifest_nested_100000_deep_is_refused_not_a_500(api: Api) -> None:
    # Manifests are parsed as objects, not as request bodies: their parser has its own guard.
    make_class(api)
    tree = Tree.of([TreeEntry("blob", hash_bytes(b"x"), 1, "data.txt")]).serialize()
    shallow = Manifest(tree=hash_bytes(tree), author=Author("T", "t@example.org"),
                       created="2026-11-27T16:00:00Z", message="m",
                       metadata={"deep": 0}).serialize()
    manifest = shallow.replace(b'{"deep":0}', b'{"deep":' + b"[" * 100_000 + b"]" * 100_000
                               + b"}")
    upload(api, {hash_bytes(b"x"): b"x", hash_bytes(tree): tree, hash_bytes(manifest): manifest})
    result = api.call("POST", "/v1/projects/demo/classes/models/versions", "wendy", json={
        "asset": None, "parent": None, "manifest": hash_bytes(manifest),
        "idempotency_key": "k"})
    # The object is taken (its bytes match its id) but is no manifest the commit can use.
    assert result.status_code == 422, result.text


# -- uploads in parts: what a route takes from its path and body -----------------------------


@pytest.mark.parametrize(("upload_id", "number", "problem"), [
    ("abc123", "²", "parameter 'part number' must be an integer from 1 to 10000"),
    ("abc123", "0", "parameter 'part number' must be an integer from 1 to 10000"),
    ("abc123", "1" * 5000, "parameter 'part number' must be an integer from 1 to 10000"),
    ("abcé", "1", "upload id 'abcé' is not one of this storage's"),
    ("a" * 65, "1", f"upload id '{'a' * 65}' is not one of this storage's"),
])
def test_a_part_with_a_number_or_an_upload_id_no_upload_has_is_refused_with_400(
        api: Api, upload_id: str, number: str, problem: str) -> None:
    oid = hash_bytes(b"in parts")
    assert api.call("POST", f"/v1/projects/demo/objects/{oid}/multipart", "wendy",
                    json={"size": 8}).status_code == 200
    result = api.call("PUT", f"/v1/projects/demo/objects/{oid}/multipart/{upload_id}/{number}",
                      "wendy", body=b"in parts")
    assert result.status_code == 400, result.text
    assert problem in error(result)["message"]


def test_an_upload_in_parts_larger_than_the_server_takes_is_refused_before_it_begins(
        api: Api) -> None:
    oid = hash_bytes(b"huge")
    result = api.call("POST", f"/v1/projects/demo/objects/{oid}/multipart", "wendy",
                      json={"size": 2 ** 50})
    assert result.status_code == 413, result.text
    assert f"an object of {2 ** 50} bytes is larger than" in error(result)["message"]
    assert api.call("POST", "/v1/projects/demo/objects/verify", "wendy",
                    json={"ids": [oid]}).json["objects"][0].get("verified") is not True


def test_a_part_of_an_object_held_already_is_refused(api: Api) -> None:
    data = b"in parts, held"
    oid = hash_bytes(data)
    plan = api.call("POST", f"/v1/projects/demo/objects/{oid}/multipart", "wendy",
                    json={"size": len(data)}).json
    part = f"/v1/projects/demo/objects/{oid}/multipart/{plan['upload_id']}/1"
    upload(api, {oid: data})  # held, by another way
    held = api.call("PUT", part, "wendy", body=data)
    assert held.status_code == 400, held.text
    assert "held already" in error(held)["message"]
