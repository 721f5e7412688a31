"""The remote under a real gunicorn (``ama-server serve``, 2 workers) on 127.0.0.1, reached
through the client's HTTP transport: a full upload, commit and download on every database
and storage kind, errors mapped back to exit codes, DNS bypass, and what the logs keep."""

from __future__ import annotations

import socket
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
import requests

from ama.plumbing import transport
from ama.plumbing.errors import BadInput, NotFound
from ama.plumbing.hashing import hash_bytes
from ama.plumbing.objects import Author, Manifest, Tree, TreeEntry
from ama.plumbing.transport import HttpTransport
from tests.services.server import RunningServer


def write_version(tmp_path: Path, files: dict[str, bytes], parent: str | None = None
                  ) -> tuple[dict[str, Path], str]:
    """Write the objects of one version as files; return {id: path} and the manifest id."""
    folder = tmp_path / f"objects-{uuid.uuid4().hex[:8]}"
    folder.mkdir()
    objects: dict[str, bytes] = {}
    entries = []
    for name, data in files.items():
        objects[hash_bytes(data)] = data
        entries.append(TreeEntry("blob", hash_bytes(data), len(data), name))
    tree = Tree.of(entries).serialize()
    objects[hash_bytes(tree)] = tree
    manifest = Manifest(tree=hash_bytes(tree), author=Author("T", "t@example.org"),
                        created="2026-11-27T16:00:00Z",
                        parents=(parent,) if parent else ()).serialize()
    objects[hash_bytes(manifest)] = manifest
    paths = {}
    for oid, data in objects.items():
        paths[oid] = folder / oid
        paths[oid].write_bytes(data)
    return paths, hash_bytes(manifest)


def push(client: HttpTransport, project: str, paths: dict[str, Path]) -> int:
    """Upload what the remote lacks, as the porcelain will; return how many were sent."""
    answer = client.batch(project, "upload",
                          [{"id": oid, "size": p.stat().st_size} for oid, p in paths.items()])
    sent, to_verify = 0, []
    for item in answer["objects"]:
        assert "error" not in item, item
        actions = item.get("actions") or {}
        if "upload" in actions:
            client.upload(actions["upload"], paths[item["id"]])
            sent += 1
        if "verify" in actions:
            to_verify.append(item["id"])
    if to_verify:
        client.verify(project, to_verify)
    return sent


def test_upload_commit_and_download_round_trip(ama_server: RunningServer,
                                               tmp_path: Path) -> None:
    client = HttpTransport(ama_server.url, ama_server.token)
    project = ama_server.project
    client.put_class(project, "models", description="trained models")
    files = {"weights.bin": bytes(range(256)) * 4096, "empty": b"", "README": b"hello\n"}
    paths, manifest = write_version(tmp_path, files)

    assert push(client, project, paths) == len(paths)
    assert push(client, project, paths) == 0  # everything is there now
    version = client.commit(project, "models", None, None, manifest, "first-upload")
    assert (version["ordinal"], version["version"]) == (1, "0.0.0")

    assert [a["ordinal"] for a in client.assets(project, "models")] == [1]
    assert [v["manifest"] for v in client.versions(project, "models", "1")] == [manifest]
    assert client.version_size(project, "models", "1", "0.0.0") == {
        "bytes": sum(len(d) for d in files.values()), "files": 3}

    reader = HttpTransport(ama_server.url, ama_server.token)
    answer = reader.batch(project, "download",
                          [{"id": oid, "size": p.stat().st_size} for oid, p in paths.items()])
    out = tmp_path / "downloaded"
    out.mkdir()
    for item in answer["objects"]:
        dest = out / item["id"]
        size = reader.download(item["actions"]["download"], item["id"], dest)
        assert dest.read_bytes() == paths[item["id"]].read_bytes()
        assert size == dest.stat().st_size


def test_remote_errors_come_back_as_the_same_errors_and_exit_codes(
        start_ama_server: Callable[..., RunningServer], tmp_path: Path) -> None:
    server = start_ama_server()
    admin = HttpTransport(server.url, server.token)
    admin.put_class(server.project, "models")
    paths, first = write_version(tmp_path, {"a": b"1"})
    push(admin, server.project, paths)
    admin.commit(server.project, "models", None, None, first, "k1")
    paths, second = write_version(tmp_path, {"a": b"2"}, parent=first)
    push(admin, server.project, paths)
    admin.commit(server.project, "models", 1, first, second, "k2")
    paths, third = write_version(tmp_path, {"a": b"3"}, parent=first)
    push(admin, server.project, paths)

    with pytest.raises(transport.Conflict) as conflict:
        admin.commit(server.project, "models", 1, first, third, "k3")
    assert conflict.value.exit_code == 1 and conflict.value.latest == second
    _, unknown = write_version(tmp_path, {"never": b"uploaded"})
    with pytest.raises(transport.ValidationFailed) as invalid:
        admin.commit(server.project, "models", 1, second, unknown, "k4")
    assert invalid.value.exit_code == 1 and invalid.value.problems
    with pytest.raises(NotFound) as missing:
        admin.asset(server.project, "models", "99")
    assert missing.value.exit_code == 3
    with pytest.raises(BadInput) as bad:
        admin.commit(server.project, "models", None, None, "not-an-id", "k5")
    assert bad.value.exit_code == 2 and "manifest" in bad.value.message

    server.run("user", "add", "rita", "--email", "rita@example.org")
    server.run("project", "grant", server.project, "rita", "reader")
    rita = HttpTransport(server.url, server.run("token", "issue", "rita").stdout.strip())
    with pytest.raises(transport.Forbidden) as forbidden:
        rita.put_alias(server.project, "models", "prod", 1)
    assert forbidden.value.exit_code == 4
    with pytest.raises(transport.Unauthenticated) as unauthenticated:
        HttpTransport(server.url, "forged").me()
    assert unauthenticated.value.exit_code == 4 and "ama auth login" in (
        unauthenticated.value.hint or "")


def test_token_rotation_and_revocation_over_http(
        start_ama_server: Callable[..., RunningServer]) -> None:
    server = start_ama_server()
    client = HttpTransport(server.url, server.token)
    new = client.rotate_token()
    assert new != server.token and client.me()["username"] == "admin"
    with pytest.raises(transport.Unauthenticated):
        HttpTransport(server.url, server.token).me()
    client.revoke_token()
    with pytest.raises(transport.Unauthenticated):
        client.me()


def test_an_unreachable_remote_is_exit_5_naming_the_url() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again below: nothing listens there
    url = f"http://127.0.0.1:{port}"
    with pytest.raises(transport.Unreachable) as e:
        HttpTransport(url, "t", retries=1).me()
    assert e.value.exit_code == 5
    assert url in e.value.message


def test_skip_dns_connects_to_the_configured_address_and_keeps_the_host_name(
        start_ama_server: Callable[..., RunningServer], tmp_path: Path) -> None:
    server = start_ama_server()
    port = server.url.rpartition(":")[2]
    # A name that no resolver knows (RFC 6761): only the pinned address can reach it.
    url = f"http://ama.invalid:{port}"
    client = HttpTransport(url, server.token, address="127.0.0.1",
                           environ={"ASSET_SERVER_SKIP_DNS": "true"})
    assert client.me()["username"] == "admin"
    client.put_class(server.project, "models")
    paths, manifest = write_version(tmp_path, {"f": b"via the pinned address"})
    answer = client.batch(server.project, "upload",
                          [{"id": oid, "size": p.stat().st_size} for oid, p in paths.items()])
    hrefs = [i["actions"]["upload"]["href"] for i in answer["objects"]]
    # The server built its transfer hrefs from the Host header, so they name the host name.
    assert all(h.startswith(f"{url}/v1/projects/") for h in hrefs)
    push(client, server.project, paths)
    assert client.commit(server.project, "models", None, None, manifest, "k")["ordinal"] == 1


def test_skip_dns_without_a_configured_address_is_a_clear_error() -> None:
    with pytest.raises(BadInput) as e:
        HttpTransport("http://ama.invalid:1", "t", environ={"ASSET_SERVER_SKIP_DNS": "true"})
    assert "ASSET_SERVER_SKIP_DNS" in e.value.message and e.value.hint


def test_the_access_log_keeps_neither_tokens_nor_query_strings(
        start_ama_server: Callable[..., RunningServer]) -> None:
    server = start_ama_server()
    headers = {"Authorization": f"Bearer {server.token}"}
    secret = "sig=" + "9" * 40
    answer = requests.get(f"{server.url}/v1/projects/{server.project}/find?hash=x&{secret}",
                          headers=headers, timeout=10)
    assert answer.status_code in (200, 400)
    requests.get(f"{server.url}/v1/auth/me?token={server.token}", timeout=10)
    server.process.terminate()  # flush and close the log
    server.process.wait(timeout=15)
    log = server.log.read_text()
    assert f"/v1/projects/{server.project}/find" in log  # the access log is on
    assert server.token not in log
    assert secret not in log and "?" not in log
