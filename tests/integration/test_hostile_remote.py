"""A hostile (or broken) remote against the client: an HTTP server on 127.0.0.1 that
answers what an ama-server would, but with names, ordinals, ids, sizes and pages chosen to
reach outside the asset store, fill memory or disk, or loop. Each answer is refused with a
RemoteError naming the remote (exit 1 on the command line), and nothing is written where
the remote pointed."""

from __future__ import annotations

import json
import os
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from ama.plumbing.hashing import hash_bytes
from ama.plumbing.odb import FileObjectDatabase
from ama.plumbing.transport import HttpTransport, RemoteError
from ama.porcelain.download import receive
from tests.e2e.test_lifecycle import ama
from tests.integration.test_proxy_attacks import _Server, hostile, netrc_login

__all__ = ["hostile", "netrc_login"]  # fixtures, shared with the proxy attacks' tests

class Fake:
    """The hostile remote: ``routes`` maps (method, path) to a JSON answer, or to a function
    that answers on the request's handler itself; ``seen()`` lists (method, path,
    Authorization header) of each request, to it or to a storage URL it names
    (``/storage/...``)."""

    def __init__(self, server: _Server) -> None:
        self.server = server
        self.url = server.url
        self.routes: dict[tuple[str, str], Any] = {}
        server.answer = self._answer

    def _answer(self, handler: BaseHTTPRequestHandler
                ) -> tuple[int, dict[str, str], bytes] | None:
        answer = self.routes.get((handler.command, urlsplit(handler.path).path))
        if callable(answer):
            answer(handler)
            return None
        if answer is None:
            return 404, {"Content-Type": "application/json"}, json.dumps({"error": {
                "code": 404, "message": f"no {handler.path}"}}).encode()
        return 200, {"Content-Type": "application/json"}, json.dumps(answer).encode()

    def seen(self) -> list[tuple[str, str, str | None]]:
        return [(method, urlsplit(path).path, headers.get("Authorization"))
                for method, path, headers, _ in self.server.seen]


@pytest.fixture
def fake(hostile: _Server) -> Fake:
    return Fake(hostile)


MANIFEST = hash_bytes(b"a manifest")
TREE = hash_bytes(b"a tree")
ASSETS = "/v1/projects/demo/classes/data/assets"


def version(**changes: Any) -> dict[str, Any]:
    return {"class": "data", "ordinal": 1, "name": "data/1", "version": "0.0.0",
            "manifest": MANIFEST, "parent": None, "tree": TREE, "author": "T",
            "author_email": None, "created": None, "message": "m", "uploader": "t",
            "uploaded": None, **changes}


def asset(**changes: Any) -> dict[str, Any]:
    return {"class": "data", "ordinal": 1, "name": "data/1", "title": "", "description": "",
            "tags": [], "aliases": [], "created": None, "status": "", "deleted": None,
            "versions": 1, "latest": None, **changes}


def clone_from(fake: Fake, where: Path, code: int = 1) -> str:
    """``ama clone data/1`` from the fake remote, in ``where``: its stderr."""
    where.mkdir(exist_ok=True)
    ama("remote", "add", "far", fake.url, cwd=where)
    env = {"AMA_REMOTE": "far", "AMA_PROJECT": "demo", "AMA_TOKEN": "the-token"}
    return ama("clone", "data/1", cwd=where, code=code, env=env).stderr


@pytest.mark.parametrize("field", ["version", "manifest", "tree"])
def test_a_version_naming_a_path_is_refused_and_nothing_is_written_there(
        fake: Fake, tmp_path: Path, field: str) -> None:
    target = tmp_path / "outside" / "authorized_keys"
    target.parent.mkdir()
    fake.routes[("GET", f"{ASSETS}/1")] = asset()
    fake.routes[("GET", f"{ASSETS}/1/versions")] = {"items": [version(**{
        field: str(target)})], "next_page": None}
    err = clone_from(fake, tmp_path / "work")
    assert f"the remote at {fake.url} answered a version whose {field} cannot be one" in err
    assert not target.exists()
    assert list(target.parent.iterdir()) == []


@pytest.mark.parametrize("ordinal", ["../../outside", 0, -1, True, "1"])
def test_an_asset_whose_ordinal_is_not_one_is_refused_before_any_folder_is_made(
        fake: Fake, tmp_path: Path, ordinal: Any) -> None:
    fake.routes[("GET", f"{ASSETS}/1")] = asset(ordinal=ordinal)
    err = clone_from(fake, tmp_path / "work")
    assert "answered an asset whose ordinal cannot be one" in err
    assert sorted(p.name for p in (tmp_path / "work").iterdir()) == []
    assert not (tmp_path / "outside").exists()


def test_a_class_whose_name_is_a_path_is_refused_and_no_file_is_replaced(
        fake: Fake, tmp_path: Path) -> None:
    settings = tmp_path / "settings.json"
    settings.write_text('{"mine": true}\n')
    fake.routes[("GET", f"{ASSETS}/1")] = asset()
    fake.routes[("GET", f"{ASSETS}/1/versions")] = {"items": [version()], "next_page": None}
    fake.routes[("GET", "/v1/projects/demo/classes/data")] = {
        "name": str(tmp_path / "settings"), "description": "", "schema": None, "rules": {},
        "visualisation": None, "created": None}
    err = clone_from(fake, tmp_path / "work")
    assert "answered a class whose name cannot be one" in err
    assert settings.read_text() == '{"mine": true}\n'


def test_a_listing_whose_next_page_goes_back_ends_with_an_error(
        fake: Fake, tmp_path: Path) -> None:
    fake.routes[("GET", f"{ASSETS}/1")] = asset()
    fake.routes[("GET", f"{ASSETS}/1/versions")] = {"items": [version()], "next_page": 1}
    err = clone_from(fake, tmp_path / "work")
    assert "with page 1 after page 1" in err
    assert sum(1 for s in fake.seen() if s[1] == f"{ASSETS}/1/versions") == 1


def _negotiation(fake: Fake, objects: list[dict[str, Any]],
                 packs: dict[str, Any] | None = None) -> None:
    answer: dict[str, Any] = {"objects": objects}
    if packs is not None:
        answer["packs"] = packs
    fake.routes[("POST", "/v1/projects/demo/objects/batch")] = answer


def _receive(fake: Fake, tmp_path: Path, wanted: list[tuple[str, int]]) -> FileObjectDatabase:
    odb = FileObjectDatabase(tmp_path / "home" / "objects")
    receive(HttpTransport(fake.url, "the-token"), "demo", odb, wanted, parallelism=2)
    return odb


PACK = hash_bytes(b"a pack")


@pytest.mark.parametrize("place", [
    {"id": PACK, "offset": 64, "length": 50 << 30},  # more than asked, and past the pack
    {"id": PACK, "offset": -5, "length": 100},  # before the pack's start
    {"id": PACK, "offset": 4000, "length": 100},  # past the pack's end
    {"id": "../../x", "offset": 64, "length": 100},  # a pack id that is a path
    {"id": PACK, "offset": 64, "length": "100"},
])
def test_a_packed_object_placed_where_it_cannot_lie_is_refused_before_any_read(
        fake: Fake, tmp_path: Path, place: dict[str, Any]) -> None:
    oid = hash_bytes(b"x" * 100)
    _negotiation(fake, [{"id": oid, "size": 100, "pack": place}], {PACK: {
        "size": 1000, "actions": {"download": {"href": f"{fake.url}/storage/pack"}}}})
    with pytest.raises(RemoteError, match=f"object {oid} lies in a pack where it cannot"):
        _receive(fake, tmp_path, [(oid, 100)])
    assert [s for s in fake.seen() if s[1].startswith("/storage")] == []


def _endless(handler: BaseHTTPRequestHandler) -> None:
    """A body without end, chunk after chunk, until the client hangs up."""
    handler.send_response(200)
    handler.send_header("Transfer-Encoding", "chunked")
    handler.end_headers()
    chunk = b"z" * (1 << 20)
    try:
        while True:
            handler.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
    except OSError:
        pass


def test_a_download_that_does_not_end_stops_at_the_size_asked_and_leaves_nothing(
        fake: Fake, tmp_path: Path) -> None:
    oid = hash_bytes(b"y" * 3000)
    fake.routes[("GET", "/storage/object")] = _endless
    _negotiation(fake, [{"id": oid, "size": 3000, "actions": {"download": {
        "href": f"{fake.url}/storage/object"}}}])
    with pytest.raises(RemoteError, match="more than the 3000 bytes"):
        _receive(fake, tmp_path, [(oid, 3000)])
    assert os.listdir(tmp_path / "home" / "incoming") == []


def test_a_size_answered_unlike_the_size_asked_is_refused(fake: Fake, tmp_path: Path) -> None:
    oid = hash_bytes(b"y" * 3000)
    _negotiation(fake, [{"id": oid, "size": 1 << 40, "actions": {"download": {
        "href": f"{fake.url}/storage/object"}}}])
    with pytest.raises(RemoteError, match=f"size of {1 << 40} bytes for object {oid}"):
        _receive(fake, tmp_path, [(oid, 3000)])
    assert [s for s in fake.seen() if s[1].startswith("/storage")] == []


def test_an_object_the_answer_passes_over_is_an_error_not_a_success(
        fake: Fake, tmp_path: Path) -> None:
    oid = hash_bytes(b"left out")
    _negotiation(fake, [{"id": oid, "size": 8}])  # neither an action, a pack nor an error
    with pytest.raises(RemoteError, match=f"answered for object {oid} .1 in all. neither"):
        _receive(fake, tmp_path, [(oid, 8)])


def test_a_remote_id_that_is_a_path_is_refused_before_the_store_is_touched(
        fake: Fake, tmp_path: Path) -> None:
    with pytest.raises(RemoteError, match="named an object '../../etc/hostname'"):
        _receive(fake, tmp_path, [("../../etc/hostname", 0)])
    assert fake.seen() == []


def test_the_netrc_login_goes_nowhere_and_the_token_only_to_the_remote(
        fake: Fake, tmp_path: Path, netrc_login: str) -> None:
    data = b"stored bytes"
    oid = hash_bytes(data)

    def stored(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        handler.wfile.write(data)

    def elsewhere(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(302)  # on to "another host": the same server by its other name
        handler.send_header("Location", f"http://localhost:{fake.server.server_address[1]}"
                                        "/storage/object")
        handler.send_header("Content-Length", "0")
        handler.end_headers()

    fake.routes[("GET", "/storage/object")] = stored
    fake.routes[("GET", "/v1/redirect")] = elsewhere
    _negotiation(fake, [{"id": oid, "size": len(data), "actions": {"download": {
        "href": f"{fake.url}/v1/redirect"}}}])
    odb = _receive(fake, tmp_path, [(oid, len(data))])
    assert odb.get(oid) == data
    assert fake.seen() == [
        ("POST", "/v1/projects/demo/objects/batch", "Bearer the-token"),
        ("GET", "/v1/redirect", "Bearer the-token"),  # the remote's own origin
        ("GET", "/storage/object", None)]  # another origin: no token, no netrc login




def test_a_remote_error_cannot_drive_the_users_terminal(fake: Fake, tmp_path: Path) -> None:
    def refused(handler: BaseHTTPRequestHandler) -> None:
        body = json.dumps({"error": {"code": "not_found", "message":
                                     "gone\x1b]0;owned\x07\x1b[2J", "hint": "\x1b[31mred"}})
        handler.send_response(404)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body.encode())

    fake.routes[("GET", f"{ASSETS}/1")] = refused
    err = clone_from(fake, tmp_path / "work", code=3)  # not found
    assert "\x1b" not in err and "\x07" not in err
    assert "gone\\x1b]0;owned\\x07\\x1b[2J" in err and "hint: \\x1b[31mred" in err


def test_a_storage_that_ignores_ranges_is_named_not_read_again_and_again(
        fake: Fake, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Each run of a large object's pieces would have read every byte before its start.
    monkeypatch.setenv("AMA_MULTIPART_THRESHOLD", str(1 << 20))
    data = os.urandom(4 << 20)
    oid = hash_bytes(data)

    def whole(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(200)  # whatever the Range asked
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        try:
            handler.wfile.write(data)
        except OSError:
            pass

    fake.routes[("GET", "/storage/object")] = whole
    _negotiation(fake, [{"id": oid, "size": len(data), "actions": {"download": {
        "href": f"{fake.url}/storage/object"}}}])
    with pytest.raises(RemoteError, match="with HTTP 200, not a range"):
        _receive(fake, tmp_path, [(oid, len(data))])
