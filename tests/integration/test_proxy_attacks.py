"""Proxy files against hostile peers: a remote that asks an upload for objects it was not
asked about, and a proxy's web server that would collect the user's netrc login or drive
the user's terminal; each a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from ama.plumbing.hashing import hash_bytes
from ama.plumbing.odb import FileObjectDatabase
from ama.plumbing.proxy import ProxyDescriptor
from ama.plumbing.transport import HttpTransport, RemoteError
from ama.porcelain.sources import ProxyChanged, WebSource, fetch_proxy
from ama.porcelain.upload import send


class _Recorded(BaseHTTPRequestHandler):
    """Answers with the server's ``answer(handler)``: (status, headers, body), or None when
    it answered on the handler itself; records each request (method, path, headers, body)
    in ``server.seen``."""

    server: _Server
    protocol_version = "HTTP/1.1"

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self.server.seen.append((self.command, self.path, dict(self.headers),
                                 self.rfile.read(length)))
        answered = self.server.answer(self)
        if answered is None:
            return
        status, headers, body = answered
        self.send_response(status)
        for name, value in {**headers, "Content-Length": str(len(body))}.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_PUT = _handle

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - its name
        pass


class _Server(ThreadingHTTPServer):
    seen: list[tuple[str, str, dict[str, str], bytes]]
    answer: Callable[[BaseHTTPRequestHandler], tuple[int, dict[str, str], bytes] | None]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


@pytest.fixture
def hostile() -> Iterator[_Server]:
    server = _Server(("127.0.0.1", 0), _Recorded)
    server.seen = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_a_remote_cannot_make_an_upload_send_an_object_it_was_not_asked_about(
        tmp_path: Path, hostile: _Server) -> None:
    odb = FileObjectDatabase(tmp_path / "objects")
    # The bytes of a proxy file, kept in the store as a cache, and a file being uploaded:
    # both large enough to be sent alone, not in a pack.
    secret, sent = os.urandom(300 << 10), os.urandom(300 << 10)
    secret_id, sent_id = odb.write(secret), odb.write(sent)

    def answer(handler: BaseHTTPRequestHandler) -> tuple[int, dict[str, str], bytes]:
        if handler.command == "POST":  # the negotiation: "send me the secret instead"
            return 200, {"Content-Type": "application/json"}, json.dumps({"objects": [
                {"id": secret_id, "size": len(secret), "actions": {"upload": {
                    "href": f"{hostile.url}/put/{secret_id}", "method": "PUT"}}}]}).encode()
        return 200, {}, b""

    hostile.answer = answer
    with pytest.raises(RemoteError, match="not asked about"):
        send(HttpTransport(hostile.url, retries=0), "p", odb, [(sent_id, len(sent))],
             parallelism=1)
    assert [method for method, *_ in hostile.seen] == ["POST"]
    assert not any(secret in body for *_, body in hostile.seen)


@pytest.fixture
def netrc_login(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A netrc whose ``default`` login (victim, hunter2) is for any host, where requests
    looks (NETRC): the login's password."""
    netrc = tmp_path / "netrc"
    netrc.write_text("default login victim password hunter2\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))
    return "hunter2"


def test_a_proxy_source_never_gets_the_users_netrc_login(
        tmp_path: Path, hostile: _Server, netrc_login: str) -> None:

    def answer(handler: BaseHTTPRequestHandler) -> tuple[int, dict[str, str], bytes]:
        if handler.path == "/hop/data.bin":  # a redirect: requests looks the netrc up again
            return 302, {"Location": f"{hostile.url}/data.bin"}, b""
        return 200, {"ETag": '"1"'}, b"content"

    hostile.answer = answer
    source = WebSource(f"{hostile.url}/hop/data.bin")
    [file] = source.files("")
    assert b"".join(source.chunks(file)) == b"content"
    assert source.tag(file) == (7, '"1"', "")
    assert len(hostile.seen) == 6
    assert [h for _m, _p, headers, _b in hostile.seen for h in headers
            if h.lower() == "authorization"] == []


def test_a_sources_etag_is_shown_escaped_never_as_a_terminal_would_act_on_it(
        tmp_path: Path, hostile: _Server) -> None:
    tag = '"2"\x1b[2K\x1b[1A'  # erases the message's line and climbs to the one above
    hostile.answer = lambda handler: (200, {"ETag": tag}, b"changed")
    odb = FileObjectDatabase(tmp_path / "objects")
    descriptor = ProxyDescriptor(f"{hostile.url}/x.bin", 7, hash_bytes(b"content"), '"1"')
    with pytest.raises(ProxyChanged) as changed:
        fetch_proxy(odb, "x.bin", descriptor)
    assert changed.value.message.endswith(r"""(ETag "1", now '"2"\x1b[2K\x1b[1A')""")
    assert list(odb) == []
