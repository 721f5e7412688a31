"""``ama list -l`` and ``ama info --url [--presign]`` through the installed ``ama``: where a
project's objects live, on the embedded remote and on ama-server with S3 (moto) storage,
checked by reading the objects at the URLs given."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from urllib.parse import unquote, urlsplit

import requests

from ama.plumbing.hashing import hash_bytes, hash_file
from tests.e2e.test_add_sources import web  # noqa: F401 - a fixture
from tests.e2e.test_lifecycle import ama
from tests.services.server import RunningServer

# w.bin is over the pack threshold, so stored loose; a.yaml goes in a pack.
FILES = {"w.bin": b"weights" * 40_000, "conf/a.yaml": b"lr: 1\n"}
PACKED = {"conf/a.yaml"}


def _read(data: bytes, span: tuple[int, int] | list[int] | None) -> bytes:
    """The bytes of one object from what its URL reads: all of them, or its range."""
    return data if span is None else data[span[0]:span[1] + 1]


def _make(root: Path, env: dict[str, str]) -> None:
    root.mkdir()
    ama("init", "ml-models", cwd=root, env=env)
    for path, data in FILES.items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_bytes(data)
    ama("add", ".", cwd=root, env=env)
    ama("upload", "-m", "first", cwd=root, env=env)


def test_list_long_and_info_url_on_the_embedded_remote(tmp_path: Path) -> None:
    ama("class", "init", "ml-models", cwd=tmp_path)
    _make(tmp_path / "m", {})
    storage = (tmp_path / "home" / ".ama" / "remote" / "storage").as_uri()
    listed = json.loads(ama("list", "ml-models", "-l", "--json", cwd=tmp_path).stdout)
    assert [(a["name"], a["remote"], a["storage"]) for a in listed] == [
        ("ml-models/1", "local", storage)]
    human = ama("list", "ml-models", "-l", cwd=tmp_path).stdout.splitlines()
    assert human[0].split() == ["NAME", "ALIAS", "LATEST", "STATUS", "REMOTE", "STORAGE",
                                "TITLE"]
    assert human[1].split() == ["ml-models/1", "-", "0.0.0", "active", "local", storage]
    assert "STORAGE" not in ama("list", "ml-models", cwd=tmp_path).stdout

    lines = ama("info", "ml-models/1", "--url", cwd=tmp_path).stdout.splitlines()
    assert [line.split("\t")[0] for line in lines] == ["conf/a.yaml", "w.bin"]
    for line in lines:
        path, url, *span = line.split("\t")
        oid = hash_bytes(FILES[path])
        if path in PACKED:
            assert url.startswith(f"{storage}/packs/") and span[0].startswith("bytes=")
            first, last = map(int, span[0].removeprefix("bytes=").split("-"))
            data = Path(unquote(urlsplit(url).path)).read_bytes()
            assert hash_bytes(_read(data, (first, last))) == oid
        else:
            assert (url, span) == (f"{storage}/objects/{oid[:2]}/{oid[2:]}", [])
            assert hash_file(unquote(urlsplit(url).path)) == oid
    # The embedded remote's storage is local: --presign gives the same file:// URLs.
    signed = json.loads(ama("info", "--url", "--presign", "--json", cwd=tmp_path / "m").stdout)
    assert [(f["path"], f["url"], f["expires"]) for f in signed] == [
        (line.split("\t")[0], line.split("\t")[1], None) for line in lines]
    assert [f["range"] is not None for f in signed] == [True, False]
    assert ama("info", "--presign", cwd=tmp_path / "m", code=2)


def test_info_url_presigned_by_s3_behind_ama_server(
        tmp_path: Path, s3_bucket: object,
        start_ama_server: Callable[..., RunningServer]) -> None:
    storage = s3_bucket.storage_url("ama")  # type: ignore[attr-defined]
    server = start_ama_server(storage_url=storage)
    env = {"AMA_TOKEN": server.token, "AMA_PROJECT": server.project}
    ama("remote", "add", "team", server.url, cwd=tmp_path, env=env)
    ama("remote", "default", "team", cwd=tmp_path, env=env)
    ama("class", "init", "ml-models", cwd=tmp_path, env=env)
    _make(tmp_path / "m", env)
    listed = json.loads(ama("list", "ml-models", "-l", "--json", cwd=tmp_path, env=env).stdout)
    assert [(a["remote"], a["storage"]) for a in listed] == [("team", storage)]
    plain = json.loads(ama("info", "ml-models/1/0.0.0", "--url", "--json", cwd=tmp_path,
                           env=env).stdout)
    for f in plain:
        oid = hash_bytes(FILES[f["path"]])
        if f["path"] in PACKED:
            assert f["url"].startswith(f"{storage}/packs/") and f["range"]
        else:
            assert f["url"] == f"{storage}/objects/{oid[:2]}/{oid[2:]}" and f["range"] is None
    signed = json.loads(ama("info", "ml-models/1", "--url", "--presign", "--json",
                            cwd=tmp_path, env=env).stdout)
    for item in signed:
        assert item["url"].startswith("http://127.0.0.1:") and "Signature" in item["url"]
        assert item["expires"] and item["expires"] > 0
        # Anyone holding the URL reads the bytes: no token, no storage credentials.
        answer = requests.get(item["url"], timeout=30)
        assert answer.status_code == 200
        assert _read(answer.content, item["range"]) == FILES[item["path"]]


def test_info_url_gives_a_proxy_files_source(tmp_path: Path,
                                             web: tuple[str, Path]) -> None:  # noqa: F811
    """A proxy file's bytes are at its source, not in the remote's storage: its URL is the
    source's, beside the storage URLs of the version's other files."""
    url, site = web
    (site / "model.bin").write_bytes(b"far away" * 100)
    ama("class", "init", "ml-models", cwd=tmp_path)
    _make(tmp_path / "m", {})
    ama("add", "--proxy", f"{url}/model.bin", cwd=tmp_path / "m")
    ama("upload", "-m", "with a proxy", cwd=tmp_path / "m")
    lines = ama("info", "--url", cwd=tmp_path / "m").stdout.splitlines()
    assert [line.split("\t")[0] for line in lines] == ["conf/a.yaml", "model.bin", "w.bin"]
    assert lines[1] == f"model.bin\t{url}/model.bin"
    listed = json.loads(ama("info", "--url", "--json", cwd=tmp_path / "m").stdout)
    assert listed[1] == {"path": "model.bin", "id": hash_bytes(b"far away" * 100),
                         "size": 800, "url": f"{url}/model.bin", "expires": None,
                         "range": None}
