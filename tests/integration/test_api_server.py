"""The Python API and the ``ama://`` filesystem against ama-server under gunicorn, on each
storage kind: a version written from one machine's store is read file by file, and in
ranges, from another's, with the remote and token passed explicitly."""

from __future__ import annotations

import functools
import http.server
import threading
from collections.abc import Callable
from pathlib import Path

import fsspec
import pandas as pd
import pytest
import requests

import ama
from ama.plumbing.hashing import hash_bytes
from ama.plumbing.transport import HttpTransport, RemoteError
from ama.porcelain.alias import add_alias
from ama.porcelain.info import AssetRef
from tests.services.server import RunningServer

CSV = b"a,b\n1,2\n3,4\n"
BIG = bytes(range(256)) * 2048  # 512 KiB


@pytest.fixture
def server(start_ama_server: Callable[..., RunningServer],
           server_storage_url: str) -> RunningServer:
    return start_ama_server(storage_url=server_storage_url)


def publish(server: RunningServer, tmp_path: Path) -> ama.Version:
    writer = ama.Client(remote=server.url, token=server.token, project=server.project,
                        home=tmp_path / "writer")
    writer.create_class("ml-models")
    root = tmp_path / "asset"
    (root / "data").mkdir(parents=True)
    (root / "data" / "train.csv").write_bytes(CSV)
    (root / "data" / "big.bin").write_bytes(BIG)
    return writer.create("ml-models", root).upload("first", metadata={"k": 1})


def test_a_version_is_read_file_by_file_and_in_ranges(server: RunningServer,
                                                      tmp_path: Path) -> None:
    first = publish(server, tmp_path)
    reader = ama.Client(remote=server.url, token=server.token, project=server.project,
                        home=tmp_path / "reader")
    v = reader.version("ml-models/1")
    assert (v.version, v.manifest, v.metadata) == ("0.0.0", first.manifest, {"k": 1})
    assert [(f.path, f.size) for f in v.files()] == [("data/big.bin", len(BIG)),
                                                     ("data/train.csv", len(CSV))]
    assert reader.blobs_fetched == 0
    assert v.read_range("data/big.bin", 70_000, 1000) == BIG[70_000:71_000]
    assert v.read_range("data/big.bin", len(BIG) - 5, 100) == BIG[-5:]
    assert reader.blobs_fetched == 0
    with v.open("data/train.csv") as fh:
        assert fh.read() == CSV
    assert reader.blobs_fetched == 1
    assert not reader.store.objects.has(hash_bytes(BIG))
    fs = fsspec.filesystem("ama", remote=server.url, token=server.token,
                           project=server.project, home=str(tmp_path / "reader"))
    assert fs.find("ml-models/1") == ["ml-models/1/data/big.bin", "ml-models/1/data/train.csv"]
    frame = pd.read_csv("ama://ml-models/1@0.0.0/data/train.csv",
                        storage_options={"remote": server.url, "token": server.token,
                                         "project": server.project,
                                         "home": str(tmp_path / "reader")})
    assert frame.to_dict("list") == {"a": [1, 3], "b": [2, 4]}


def test_without_the_token_the_api_raises_the_clis_error(server: RunningServer,
                                                         tmp_path: Path) -> None:
    publish(server, tmp_path)
    stranger = ama.Client(remote=server.url, token="not-a-token", project=server.project,
                          home=tmp_path / "stranger")
    with pytest.raises(ama.Unauthenticated) as refused:
        stranger.version("ml-models/1")
    assert refused.value.exit_code == 4


def test_the_objects_route_answers_a_range(start_ama_server: Callable[..., RunningServer],
                                           tmp_path: Path) -> None:
    server = start_ama_server()
    publish(server, tmp_path)
    url = f"{server.url}/v1/projects/{server.project}/objects/{hash_bytes(BIG)}"
    auth = {"Authorization": f"Bearer {server.token}"}
    whole = requests.get(url, headers=auth, timeout=10)
    assert (whole.status_code, whole.content) == (200, BIG)
    assert whole.headers["Accept-Ranges"] == "bytes"
    part = requests.get(url, headers={**auth, "Range": "bytes=10-19"}, timeout=10)
    assert (part.status_code, part.content) == (206, BIG[10:20])
    assert part.headers["Content-Range"] == f"bytes 10-19/{len(BIG)}"
    tail = requests.get(url, headers={**auth, "Range": "bytes=-4"}, timeout=10)
    assert (tail.status_code, tail.content) == (206, BIG[-4:])
    beyond = requests.get(url, headers={**auth, "Range": f"bytes={len(BIG)}-"}, timeout=10)
    assert beyond.status_code == 416


def test_a_ranged_read_from_a_server_that_ignores_range_skips_to_it(tmp_path: Path) -> None:
    # Python's own file server answers every GET with the whole file (200, no Range).
    served = tmp_path / "served"
    served.mkdir()
    (served / "blob").write_bytes(BIG)
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(served))
    with http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler) as httpd:
        thread = threading.Thread(target=httpd.serve_forever, daemon=True)
        thread.start()
        host, port = httpd.server_address[:2]
        transport = HttpTransport(f"http://{host}:{port}")
        try:
            action = {"href": f"http://{host}:{port}/blob", "method": "GET"}
            oid = hash_bytes(BIG)
            assert transport.read_range(action, oid, 100_000, 70_000) == BIG[100_000:170_000]
            assert transport.read_range(action, oid, 0, 3) == BIG[:3]
            with pytest.raises(RemoteError):
                transport.read_range(action, oid, len(BIG) - 2, 10)
        finally:
            transport.session.close()
            httpd.shutdown()


def test_every_call_of_the_api_works_against_the_server(
        start_ama_server: Callable[..., RunningServer], tmp_path: Path) -> None:
    server = start_ama_server()
    first = publish(server, tmp_path)
    client = ama.Client(remote=server.url, token=server.token, project=server.project,
                        home=tmp_path / "writer")
    local = client.open_dir(tmp_path / "asset")
    (tmp_path / "asset" / "data" / "train.csv").write_bytes(CSV + b"5,6\n")
    assert local.add("data/train.csv") == ["data/train.csv"]
    second = local.upload("second", bump="minor")
    assert (str(second), second.message, second.metadata) == ("ml-models/1/0.1.0", "second",
                                                             {"k": 1})
    add_alias(client.remote, AssetRef("ml-models", "1"), "best")
    assert [str(v) for v in client.find(alias="best")] == ["ml-models/1/0.1.0"]
    assert [str(v) for v in client.find(file=hash_bytes(CSV))] == ["ml-models/1/0.0.0"]
    assert [str(v) for v in client.find(file=tmp_path / "asset" / "data" / "big.bin")] == \
        ["ml-models/1/0.0.0", "ml-models/1/0.1.0"]
    assert [str(v) for v in client.find(hash=first.tree_id)] == ["ml-models/1/0.0.0"]
    assert [(a.name, a.latest, a.aliases) for a in client.assets("ml-models")] == \
        [("ml-models/1", "0.1.0", ("best",))]
    reader = ama.Client(remote=server.url, token=server.token, project=server.project,
                        home=tmp_path / "reader")
    reader.version("ml-models/best/0.0.0").checkout(tmp_path / "co")
    assert (tmp_path / "co" / "data" / "train.csv").read_bytes() == CSV
    assert (tmp_path / "co" / "data" / "big.bin").read_bytes() == BIG


def test_a_range_of_a_large_object_from_the_server(
        start_ama_server: Callable[..., RunningServer], tmp_path: Path) -> None:
    # Over 1 MiB the server streams an object while hashing it; a range starts mid-way.
    server = start_ama_server()
    huge = bytes(range(251)) * 20_000  # 5,020,000 bytes
    writer = ama.Client(remote=server.url, token=server.token, project=server.project,
                        home=tmp_path / "writer")
    writer.create_class("blobs")
    (tmp_path / "h").mkdir()
    (tmp_path / "h" / "huge.bin").write_bytes(huge)
    writer.create("blobs", tmp_path / "h").upload("huge")
    url = f"{server.url}/v1/projects/{server.project}/objects/{hash_bytes(huge)}"
    auth = {"Authorization": f"Bearer {server.token}"}
    part = requests.get(url, headers={**auth, "Range": "bytes=4000000-4999999"}, timeout=30)
    assert (part.status_code, part.content) == (206, huge[4_000_000:5_000_000])
    reader = ama.Client(remote=server.url, token=server.token, project=server.project,
                        home=tmp_path / "reader")
    assert reader.version("blobs/1").read_range("huge.bin", 3, 2_000_000) == huge[3:2_000_003]
    assert reader.blobs_fetched == 0
