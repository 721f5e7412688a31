"""ama's transfers against storage far away (the proxy of tests/services/wan.py): the
remote's verification of uploads does not grow with objects × round trip inside one
request."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from ama.plumbing.odb import FileObjectDatabase
from ama.plumbing.transport import HttpTransport
from ama.porcelain.upload import send
from tests.services.server import RunningServer
from tests.services.wan import WanProxy


def _hostport(url: str) -> tuple[str, int]:
    host, _, port = url.removeprefix("http://").rpartition(":")
    return host, int(port)


def test_verify_of_many_objects_far_away_answers_within_the_clients_timeout(
        tmp_path: Path, s3_bucket: object, start_ama_server: Callable[..., RunningServer],
        wan_proxy: Callable[..., WanProxy], monkeypatch: pytest.MonkeyPatch) -> None:
    # Storage 300 ms away: reading 80 objects back one after the other takes 24 s or more,
    # six times the client's 4 s read timeout; read in parallel, and answered in parts of
    # about a second, every call comes back in time.
    s3 = wan_proxy(*_hostport(s3_bucket.endpoint_url), rtt_ms=300)  # type: ignore[attr-defined]
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3.url)
    server = start_ama_server(storage_url=s3_bucket.storage_url("ama"))  # type: ignore[attr-defined]
    odb = FileObjectDatabase(tmp_path / "objects")
    with odb.batch():
        objects = [(odb.write(f"object {n}\n".encode()), len(f"object {n}\n")) for n in range(80)]
    client = HttpTransport(server.url, server.token, timeout=(5.0, 4.0), retries=0)
    assert send(client, server.project, odb, objects) == (80, sum(s for _, s in objects))
    answer = client.batch(server.project, "upload", [{"id": o, "size": s} for o, s in objects])
    assert all("actions" not in item for item in answer["objects"])  # every one verified
    # The server read each object once, with no look before it (one GET, no HEAD).
    assert s3.count("HEAD") == 0
    assert s3.count("GET", "/objects/") == 80
