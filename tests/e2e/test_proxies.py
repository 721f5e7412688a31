"""``ama add --proxy URL``: files whose bytes stay in moto's S3, fake-gcs-server or a web
server on 127.0.0.1, uploaded without their bytes and fetched from the source by a clone
on another machine, through the embedded remote and through ama-server."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from blake3 import blake3

from tests.e2e.test_add_sources import web  # noqa: F401 - a fixture
from tests.e2e.test_lifecycle import AMA, ama, files, two_machines
from tests.services.server import RunningServer


def _stored(storage: Path) -> dict[str, int]:
    """Every file a remote's storage folder holds, with its size."""
    return {p.relative_to(storage).as_posix(): p.stat().st_size
            for p in storage.rglob("*") if p.is_file()}


def _scenario(tmp_path: Path, env: dict[str, str], other: dict[str, str], storage: Path,
              s3_bucket: object, gcs_bucket: object, web: tuple[str, Path]) -> None:  # noqa: F811
    s3 = s3_bucket.client  # type: ignore[attr-defined]
    bucket = s3_bucket.name  # type: ignore[attr-defined]
    big = os.urandom(3 << 20)
    s3.put_object(Bucket=bucket, Key="weights/model.bin", Body=big)
    gcs = gcs_bucket.client.bucket(gcs_bucket.name)  # type: ignore[attr-defined]
    gcs.blob("images/a.png").upload_from_string(b"png a")
    url, site = web
    (site / "labels.json").write_text('{"cat": 1}\n')
    m = tmp_path / "m"
    m.mkdir()
    ama("init", "ml-models", cwd=m, env=env)
    (m / "notes.txt").write_text("a plain file\n")
    ama("add", "notes.txt", cwd=m, env=env)
    added = json.loads(ama("add", "--json", "--proxy", "--dest", "data",
                           f"s3://{bucket}/weights/model.bin",
                           f"gs://{gcs_bucket.name}/images/a.png",  # type: ignore[attr-defined]
                           f"{url}/labels.json", cwd=m, env=env).stdout)
    assert added["new"] == ["data/a.png", "data/labels.json", "data/model.bin"]
    expected = {"notes.txt": b"a plain file\n", "data/model.bin": big,
                "data/a.png": b"png a", "data/labels.json": b'{"cat": 1}\n'}
    assert files(m) == expected
    status = json.loads(ama("status", "--json", cwd=m, env=env).stdout)
    assert (status["modified"], status["deleted"], status["untracked"]) == ([], [], [])
    before = _stored(storage)
    ama("upload", "-m", "proxies", cwd=m, env=env)
    # The remote got the plain file, the trees, the manifest and three small descriptors:
    # never a proxy's bytes.
    sent = {k: v for k, v in _stored(storage).items() if k not in before}
    assert sent and sum(sent.values()) < 64 << 10, sent
    assert not any(blake3(big).hexdigest() in key for key in sent)
    after = json.loads(ama("status", "--json", cwd=m, env=env).stdout)
    assert not any(after["staged"].values()), after
    # A second version: one more proxy, and a plain file staged beside the proxies (the
    # index then no longer equals the version's tree: status compares descriptors).
    gcs.blob("images/b.png").upload_from_string(b"png b")
    ama("add", "--proxy", "--dest", "data", f"gs://{gcs_bucket.name}/images/b.png",  # type: ignore[attr-defined]
        cwd=m, env=env)
    status = json.loads(ama("status", "--json", cwd=m, env=env).stdout)
    assert (status["staged"]["new"], status["staged"]["modified"]) == (["data/b.png"], [])
    ama("upload", "-m", "one more", cwd=m, env=env)
    second = {**expected, "data/b.png": b"png b"}
    # Another machine, an empty asset store: the bytes come from the sources, verified.
    ama("clone", "ml-models/1/0.0.0", "-d", "copy", cwd=tmp_path, env=other)
    assert files(tmp_path / "copy") == expected
    # A switch fetches the new proxy from its source, and back again from the store.
    ama("switch", "0.0.1", cwd=tmp_path / "copy", env=other)
    assert files(tmp_path / "copy") == second
    ama("switch", "0.0.0", cwd=tmp_path / "copy", env=other)
    assert files(tmp_path / "copy") == expected
    # A proxy overwritten and staged is a plain file; discarding brings the proxy back.
    (tmp_path / "copy" / "data" / "model.bin").write_bytes(b"mine")
    ama("add", "data/model.bin", cwd=tmp_path / "copy", env=other)
    status = json.loads(ama("status", "--json", cwd=tmp_path / "copy", env=other).stdout)
    assert status["staged"]["modified"] == ["data/model.bin"]
    ama("discard", "--staged", "--all", cwd=tmp_path / "copy", env=other)
    assert files(tmp_path / "copy") == expected
    status = json.loads(ama("status", "--json", cwd=tmp_path / "copy", env=other).stdout)
    assert not any(status["staged"].values()) and status["modified"] == [], status
    status = json.loads(ama("status", "--json", cwd=tmp_path / "copy", env=other).stdout)
    assert (status["modified"], status["deleted"], status["untracked"]) == ([], [], [])
    # The Python API, on a third machine: listed with their sizes, read from the sources.
    script = ("import ama, json\n"
              "v = ama.version('ml-models/1', '0.0.0')\n"
              "print(json.dumps({f.path: f.size for f in v.files()}))\n"
              "print(v.read_bytes('data/model.bin') == open('copy/data/model.bin', 'rb').read())\n"
              "print(v.read_bytes('data/labels.json').decode().strip())\n")
    api_home = {**other, "AMA_HOME": str(tmp_path / "api-home")}
    ama("remote", "add", "r", env["_REMOTE_URL"], cwd=tmp_path, env=api_home)
    ama("remote", "default", "r", cwd=tmp_path, env=api_home)
    read = subprocess.run([sys.executable, "-c", script], cwd=tmp_path,
                          env={**os.environ, **api_home}, capture_output=True, text=True,
                          timeout=300)
    assert read.returncode == 0, read.stderr
    sizes, same, labels = read.stdout.splitlines()
    assert json.loads(sizes) == {p: len(b) for p, b in expected.items()}
    assert (same, labels) == ("True", '{"cat": 1}')
    for command in (["info"], ["list", "-l"], ["report"]):
        ama(*command, cwd=tmp_path / "copy", env=other)
    copy = tmp_path / "copy"
    verified = json.loads(ama("store", "verify", "--proxies", "--full", "--json", cwd=copy,
                              env=other).stdout)
    assert verified == {"checked": 3, "changed": []}
    # A source that changed is found by store verify --proxies (the ETag tells; without
    # one, as this web server sends none, only --full tells bytes of the same length)...
    old_tag = s3.head_object(Bucket=bucket, Key="weights/model.bin")["ETag"]
    new_tag = s3.put_object(Bucket=bucket, Key="weights/model.bin", Body=b"other bytes")["ETag"]
    (site / "labels.json").write_text('{"cat": 2}\n')
    model = (f"changed\tdata/model.bin\ts3://{bucket}/weights/model.bin: "
             f"ETag {old_tag}, now {new_tag}")
    labels = (f"changed\tdata/labels.json\t{url}/labels.json: its bytes are no longer those "
              f"of object {blake3(expected['data/labels.json']).hexdigest()}")
    checked = ama("store", "verify", "--proxies", cwd=copy, env=other, code=1)
    assert checked.stdout.splitlines() == [model]
    assert "1 proxy file(s) changed at their source" in checked.stderr
    checked = ama("store", "verify", "--proxies", "--full", cwd=copy, env=other, code=1)
    assert checked.stdout.splitlines() == [labels, model]
    # ... and by a clone: an error naming the file and the URL, and nothing placed.
    (site / "labels.json").write_text('{"cat": 1}\n')
    third = {**other, "AMA_HOME": str(tmp_path / "third-home")}
    ama("remote", "add", "r", env["_REMOTE_URL"], cwd=tmp_path, env=third)
    ama("remote", "default", "r", cwd=tmp_path, env=third)
    changed = ama("clone", "ml-models/1", "-d", "again", cwd=tmp_path, env=third, code=1)
    assert (f"ama: error: data/model.bin: its source s3://{bucket}/weights/model.bin "
            f"changed since it was added (ETag {old_tag}, now {new_tag})") in changed.stderr
    assert "hint: ask the asset's author to add it again ('ama add --proxy" in changed.stderr
    assert "data/model.bin" not in files(tmp_path / "again")
    objects = tmp_path / "third-home" / "objects"
    assert not any(p.name == blake3(b"other bytes").hexdigest()[2:]
                   for p in objects.rglob("*"))
    # Without credentials, the clone says which file needs them.
    s3.put_object(Bucket=bucket, Key="weights/model.bin", Body=big)  # a new ETag: changed
    fourth = {k: v for k, v in third.items()
              if k not in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")}
    fourth["AMA_HOME"] = str(tmp_path / "fourth-home")
    for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        os.environ.pop(k, None)  # undone by the s3_bucket fixture's monkeypatch
    ama("remote", "add", "r", env["_REMOTE_URL"], cwd=tmp_path, env=fourth)
    ama("remote", "default", "r", cwd=tmp_path, env=fourth)
    denied = subprocess.run([AMA, "clone", "ml-models/1", "-d", "denied"], cwd=tmp_path,
                            env={**os.environ, **fourth}, capture_output=True, text=True,
                            timeout=300)
    assert denied.returncode == 4, denied.stderr
    assert (f"ama: error: data/model.bin: s3://{bucket}/weights/model.bin: access refused"
            in denied.stderr)
    assert "hint: set AWS_ACCESS_KEY_ID" in denied.stderr


def test_proxies_on_the_embedded_remote(tmp_path: Path, s3_bucket: object,
                                        gcs_bucket: object,
                                        web: tuple[str, Path]) -> None:  # noqa: F811
    shared = (tmp_path / "shared").as_uri()
    env, other = two_machines(tmp_path, "shared", shared, {"_REMOTE_URL": shared})
    _scenario(tmp_path, env, other, tmp_path / "shared", s3_bucket, gcs_bucket, web)


def test_proxies_through_ama_server(tmp_path: Path,
                                    start_ama_server: Callable[..., RunningServer],
                                    s3_bucket: object, gcs_bucket: object,
                                    web: tuple[str, Path]) -> None:  # noqa: F811
    server = start_ama_server()
    env, other = two_machines(tmp_path, "team", server.url,
                              {"AMA_TOKEN": server.token, "AMA_PROJECT": server.project,
                               "_REMOTE_URL": server.url})
    storage = Path(unquote(urlsplit(server.storage_url).path))
    _scenario(tmp_path, env, other, storage, s3_bucket, gcs_bucket, web)


def test_a_large_proxy_is_added_in_bounded_memory(tmp_path: Path,
                                                  web: tuple[str, Path]) -> None:  # noqa: F811
    from tests.e2e.test_add_sources import added_in_bounded_memory

    # 384 MiB, 48 times the most a download reads at once: held whole, it alone would
    # take the peak above 300 MB. (bench/sources.py measures a plain add of 3 GiB.)
    url, site = web
    m = tmp_path / "m"
    m.mkdir()
    ama("class", "init", "ml-models", cwd=tmp_path)
    ama("init", "ml-models", cwd=m)
    added_in_bounded_memory(m, tmp_path, url, site, "--proxy")


class _Endless(BaseHTTPRequestHandler):
    """Serves its server's ``body`` at any path, or, once ``endless`` is set, a body that
    does not end (chunked, no length), counting in ``sent`` the bytes that went out."""

    protocol_version = "HTTP/1.1"
    server: ThreadingHTTPServer

    def do_GET(self) -> None:  # noqa: N802 - the name http.server calls
        server: Any = self.server
        self.send_response(200)
        if not server.endless:
            self.send_header("Content-Length", str(len(server.body)))
            self.end_headers()
            self.wfile.write(server.body)
            return
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        piece = b"%x\r\n" % (1 << 20) + bytes(1 << 20) + b"\r\n"
        with contextlib.suppress(OSError):
            for _ in range(256):  # 256 MiB: endless enough, and a test that ends
                self.wfile.write(piece)
                server.sent += 1 << 20
            self.wfile.write(b"0\r\n\r\n")

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - its name
        pass


def test_store_verify_full_reads_a_source_no_further_than_its_size(tmp_path: Path) -> None:
    server: Any = ThreadingHTTPServer(("127.0.0.1", 0), _Endless)
    server.body, server.endless, server.sent = b"content", False, 0
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        shared = (tmp_path / "shared").as_uri()
        env, _other = two_machines(tmp_path, "shared", shared, {})
        m = tmp_path / "m"
        m.mkdir()
        ama("init", "ml-models", cwd=m, env=env)
        url = f"http://127.0.0.1:{server.server_address[1]}/data.bin"
        ama("add", "--proxy", url, cwd=m, env=env)
        ama("upload", "-m", "a proxy", cwd=m, env=env)
        server.endless = True
        checked = ama("store", "verify", "--proxies", "--full", cwd=m, env=env, code=1)
        assert checked.stdout.splitlines() == [
            f"changed\tdata.bin\t{url}: its bytes are no longer those of object "
            f"{blake3(b'content').hexdigest()}"]
        # Its size is 7 bytes: what went out is a read or two and the socket's buffers.
        assert server.sent < 64 << 20, server.sent
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
